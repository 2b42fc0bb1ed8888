//go:build integration

package tests

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctdb-go/ctdb-go/tests/bed"
)

// A public address configured by hand on a node that was not given it (as
// a script, an administrator or a stale configuration would) is released
// there by the leader without anyone's help; the node that holds it keeps
// it throughout; `ctdb status` counts it and the leader's log says so.
func TestDuplicateResolved(t *testing.T) {
	b := startBed(t, bed.Config{Nodes: 3})
	c, err := b.StartChecker(50 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	leader, err := leaderOf(ctx(t, 10*time.Second), b, 0)
	if err != nil || leader < 0 {
		t.Fatalf("leader: %d, %v", leader, err)
	}
	held := holders(t, b)
	// The address of the first node that is not the leader, added on
	// another node that is not the leader either where there is one.
	var ip netip.Prefix
	holder, stranger := -1, -1
	for _, p := range b.PublicAddrs() {
		h := held[p.Addr()]
		if len(h) == 1 && h[0] != leader {
			ip, holder = p, h[0]
			break
		}
	}
	if holder < 0 {
		t.Fatalf("no address held by a node other than the leader %d: %v", leader, held)
	}
	for i := range b.Nodes() {
		if i != holder && (stranger < 0 || stranger == leader) {
			stranger = i
		}
	}
	t.Logf("leader node %d; %s is node %d's; adding it by hand on node %d", leader, ip, holder, stranger)

	t0 := time.Now()
	if err := b.AddAddr(stranger, ip); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFor(ctx(t, 20*time.Second), "the duplicate resolved", func(context.Context) string {
		h, err := b.Holders()
		if err != nil {
			return err.Error()
		}
		if !slices.Equal(h[ip.Addr()], []int{holder}) {
			return fmt.Sprintf("%s on nodes %v", ip.Addr(), h[ip.Addr()])
		}
		return ""
	}); err != nil {
		t.Fatal(err)
	}
	measure(t, "duplicate_added_to_resolved_ms", time.Since(t0).Milliseconds())

	// Nothing else moved, and the holder never lost it. (The checker saw
	// the duplicate itself while it lasted: that is what was resolved.)
	rep := c.Stop()
	t.Logf("checker: %s", rep)
	sawDup := false
	for _, e := range c.Events() {
		if e.At.Before(t0) {
			continue
		}
		if e.IP != ip.Addr() {
			t.Errorf("%s changed while only %s was duplicated: %v", e.IP, ip.Addr(), e)
			continue
		}
		if !slices.Contains(e.Nodes, holder) {
			t.Errorf("%s: %s on nodes %v: node %d lost it", e.At.Format("15:04:05.000"), e.IP, e.Nodes, holder)
		}
		sawDup = sawDup || len(e.Nodes) > 1
	}
	if !sawDup {
		t.Logf("the checker never saw %s on two nodes (resolved between samples?)", ip.Addr())
	}
	if why := spread(b, nil); why != "" {
		t.Errorf("after the duplicate was resolved: %s", why)
	}

	// The counter, as every node's `ctdb status` shows it (they ask the
	// leader).
	re := regexp.MustCompile(`(?m)^Duplicates resolved:(\d+)$`)
	for i := range b.Nodes() {
		out, err := b.Ctdb(i, "status")
		if err != nil {
			t.Fatal(err)
		}
		m := re.FindStringSubmatch(out.Stdout)
		if m == nil {
			t.Errorf("ctdb status on node %d has no \"Duplicates resolved:\" line:\n%s", i, out.Stdout)
			continue
		}
		if n, _ := strconv.Atoi(m[1]); n < 1 {
			t.Errorf("ctdb status on node %d: %s, want at least 1", i, m[0])
		}
	}
	if l := b.Logs(leader); !strings.Contains(l, "on more than one node") || !strings.Contains(l, ip.Addr().String()) {
		t.Errorf("the leader's log does not report the duplicate of %s; it ends:\n%s", ip.Addr(), b.LogTail(leader, 30))
	}
	if l := b.Logs(stranger); !strings.Contains(l, "released address") {
		t.Errorf("node %d's log does not say it released %s", stranger, ip.Addr())
	}
}
