package recoverd

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// moveIP calls MoveIP(a, to) as the control socket does and runs the
// leader's loop once for it, as Run would on its kick, without the state
// reports step sends (a test sets those up itself).
func moveIP(t *testing.T, r *Recoverd, now *fakeClock, a netip.Addr, to int) error {
	t.Helper()
	res := make(chan error, 1)
	go func() { res <- r.MoveIP(context.Background(), a, to) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		w := r.moves[a]
		r.mu.Unlock()
		if w != nil {
			break
		}
		select {
		case err := <-res:
			return err // refused before any run
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("MoveIP recorded no wish")
		}
		time.Sleep(time.Millisecond)
	}
	now.Advance(minRunGap)
	r.maybeRun(context.Background())
	select {
	case err := <-res:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("MoveIP did not return")
		return nil
	}
}

// heldBy returns one address node pnn holds in f.
func heldBy(t *testing.T, f *fakeCluster, pnn int) netip.Addr {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for x := range f.held[pnn] {
		return x
	}
	t.Fatalf("node %d holds nothing", pnn)
	return netip.Addr{}
}

// staleReport is node pnn's report made before the leader's orders were
// acknowledged: it lists nothing held.
func staleReport(pnn int, ips []netip.Addr) NodeState {
	st := NodeState{PNN: pnn, Boot: 1, Version: 4, RunState: RunStateRunning, Available: ips}
	for _, x := range ips {
		st.Known = append(st.Known, PublicAddr{Prefix: netip.PrefixFrom(x, 24), Ifaces: []string{"eth1"}})
	}
	return st
}

func noDuplicates(t *testing.T, f *fakeCluster, what string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.log {
		if strings.HasPrefix(l, "DUPLICATE") {
			t.Errorf("%s: %s; orders %v", what, l, f.log)
		}
	}
}

// TestMoveIPReleasesOverriddenHolder: `ctdb moveip` must release an
// address on every node that may hold it, as a takeover run does: here
// node 1's acknowledged take is newer than its last report, which does
// not list the address. (MoveIP once built its release list from the raw
// reports, and the address ended on two nodes.)
func TestMoveIPReleasesOverriddenHolder(t *testing.T) {
	r, f, now := newTestLeader(t, 2)
	ips := addrs(2)
	for v := uint64(1); v <= 3; v++ {
		step(t, r, f, now, 100*time.Millisecond, ips, v)
	}
	a := heldBy(t, f, 1)
	// A report made before node 1's take was acknowledged arrives late.
	r.UpdateState(staleReport(1, ips))
	if err := moveIP(t, r, now, a, 0); err != nil {
		t.Fatalf("MoveIP(%s, 0) = %v", a, err)
	}
	noDuplicates(t, f, "MoveIP")
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.held[0][a] || f.held[1][a] {
		t.Errorf("after MoveIP(%s, 0): node 0 holds it %v, node 1 %v; want only node 0", a, f.held[0][a], f.held[1][a])
	}
}

// TestMoveIPReleasesSuspectTake: a node sent a take whose answer was lost
// may hold the address: moveip releases it there first.
func TestMoveIPReleasesSuspectTake(t *testing.T) {
	r, f, now := newTestLeader(t, 2)
	ips := addrs(2)
	for v := uint64(1); v <= 3; v++ {
		step(t, r, f, now, 100*time.Millisecond, ips, v)
	}
	a := heldBy(t, f, 1)
	r.UpdateState(staleReport(1, ips))
	r.mu.Lock()
	delete(r.override, a) // no acknowledgement: only the lost answer says node 1 may hold it
	r.suspect[a] = map[int]time.Time{1: now.Now()}
	r.mu.Unlock()
	if err := moveIP(t, r, now, a, 0); err != nil {
		t.Fatalf("MoveIP(%s, 0) = %v", a, err)
	}
	noDuplicates(t, f, "MoveIP")
}

// TestMoveIPWaitsForUnreachableHolder: an unreachable holder's lease may
// still run: moveip refuses, says why, and takes nothing.
func TestMoveIPWaitsForUnreachableHolder(t *testing.T) {
	r, f, now := newTestLeader(t, 3)
	ips := addrs(3)
	for v := uint64(1); v <= 3; v++ {
		step(t, r, f, now, 100*time.Millisecond, ips, v)
	}
	a := heldBy(t, f, 2)
	f.mu.Lock()
	f.alive[2] = false
	f.leaseEnd[2] = now.Add(2 * time.Second)
	f.log = nil
	f.mu.Unlock()
	step(t, r, f, now, 100*time.Millisecond, ips, 4)
	err := moveIP(t, r, now, a, 0)
	if err == nil || !strings.Contains(err.Error(), "lease of node 2") {
		t.Errorf("MoveIP(%s, 0) with its holder unreachable = %v, want a refusal naming node 2's lease", a, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.log) != 0 {
		t.Errorf("orders while node 2's lease may run: %v", f.log)
	}
}

// TestMoveIPKeepsHolder: moving an address to the node that holds it
// changes nothing and succeeds.
func TestMoveIPKeepsHolder(t *testing.T) {
	r, f, now := newTestLeader(t, 2)
	ips := addrs(2)
	for v := uint64(1); v <= 3; v++ {
		step(t, r, f, now, 100*time.Millisecond, ips, v)
	}
	a := heldBy(t, f, 1)
	f.mu.Lock()
	f.log = nil
	f.mu.Unlock()
	if err := moveIP(t, r, now, a, 1); err != nil {
		t.Fatalf("MoveIP(%s, 1) = %v", a, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.log) != 0 {
		t.Errorf("orders for a move to the holder: %v", f.log)
	}
}
