package recoverd

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestMoveIPReleasesOverriddenHolder: `ctdb moveip` must release an
// address on every node that may hold it, as a takeover run does. It
// builds its release list from the raw state reports, so a node whose
// acknowledged take is newer than its last report is not asked to
// release, and the address ends on two nodes (in a real cluster the ARP
// probe may catch it, unless the public network is cut). Takeover runs
// get this right through Decide (leader.txt, the override cases).
func TestMoveIPReleasesOverriddenHolder(t *testing.T) {
	t.Skip("suspected bug: MoveIP ignores overrides, suspect takes and unreachable holders; see the comment")
	r, f, now := newTestLeader(t, 2)
	ips := addrs(2)
	for v := uint64(1); v <= 3; v++ {
		step(t, r, f, now, 100*time.Millisecond, ips, v)
	}
	var a netip.Addr
	f.mu.Lock()
	for x := range f.held[1] {
		a = x
	}
	f.mu.Unlock()
	if !a.IsValid() {
		t.Fatalf("node 1 holds nothing: %v", f.counts())
	}
	// A report made before node 1's take was acknowledged arrives late.
	st := NodeState{PNN: 1, Boot: 1, Version: 4, RunState: RunStateRunning, Available: ips}
	for _, x := range ips {
		st.Known = append(st.Known, PublicAddr{Prefix: netip.PrefixFrom(x, 24), Ifaces: []string{"eth1"}})
	}
	r.UpdateState(st)
	if err := r.MoveIP(context.Background(), a, 0); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.log {
		if strings.HasPrefix(l, "DUPLICATE") {
			t.Errorf("MoveIP(%s, 0): %s; orders %v", a, l, f.log)
		}
	}
}
