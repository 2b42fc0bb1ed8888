//go:build integration

package tests

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ctdb-go/ctdb-go/tests/bed"
)

// TestNodeSIGHUP: SIGHUP to a node of a running cluster (a logrotate
// postrotate) reloads it: the log file is reopened, a public address
// added to its public_addresses is served, and no address moves. ctdbd
// keeps running.
func TestNodeSIGHUP(t *testing.T) {
	b, c := cluster(t, bed.Config{Nodes: 3}, "sighup.start_to_balanced")
	before := holders(t, b)
	t0 := time.Now()

	const node = 1
	np := b.Paths(node)
	extra := netip.MustParsePrefix("198.18.1.7/24")
	pa := filepath.Join(np.Config, "public_addresses")
	old, err := os.ReadFile(pa)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pa, append(old, []byte(fmt.Sprintf("%s %s\n", extra, bed.PublicIface))...), 0o644); err != nil {
		t.Fatal(err)
	}
	rotated := np.Log + ".1"
	if err := os.Rename(np.Log, rotated); err != nil {
		t.Fatal(err)
	}
	if err := b.Signal(node, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}

	if err := poll(ctx(t, 15*time.Second), 100*time.Millisecond, func() string {
		log, err := os.ReadFile(np.Log)
		if err != nil || !strings.Contains(string(log), "SIGHUP: reloading") {
			return "the log file was not reopened"
		}
		// The bed's checker knows only the addresses it configured: look
		// at every node's kernel for the new one.
		var on []int
		for i := range b.Nodes() {
			ps, err := b.NodeAddrs(i)
			if err != nil {
				return err.Error()
			}
			if slices.Contains(ps, extra) {
				on = append(on, i)
			}
		}
		if !slices.Equal(on, []int{node}) {
			return fmt.Sprintf("%s is on %v, want node %d (the only one to list it)", extra.Addr(), on, node)
		}
		return ""
	}); err != nil {
		t.Fatal(err)
	}
	if !b.Running(node) {
		t.Fatal("ctdbd exited on SIGHUP")
	}
	after := holders(t, b)
	for ip, h := range before {
		if !slices.Equal(after[ip], h) {
			t.Errorf("%s moved from %v to %v on SIGHUP", ip, h, after[ip])
		}
	}
	for _, e := range c.Events() {
		if e.At.After(t0) && !slices.Equal(e.Nodes, before[e.IP]) {
			t.Errorf("%s changed at %s to %v (was %v)", e.IP, e.At.Format(time.StampMilli), e.Nodes, before[e.IP])
		}
	}
}
