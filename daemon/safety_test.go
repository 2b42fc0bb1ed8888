package daemon

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/control"
	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
	"github.com/ctdb-go/ctdb-go/recoverd"
)

// TestOrderOnlyFromItsLeader: an order in another node's name, or from an
// older generation, is refused and changes nothing.
func TestOrderOnlyFromItsLeader(t *testing.T) {
	t.Parallel()
	d, k, _, _, _ := oneNode(t)
	eventually(t, "addresses taken", func() bool { return len(held(k)) == 2 })
	gen := d.rec.HighestGeneration()
	a := netip.MustParseAddr("198.18.1.1")
	tests := []struct {
		name string
		from int
		o    recoverd.Order
		want string
	}{
		{"in another node's name", 1, recoverd.Order{Generation: gen, Leader: 0, Addrs: []netip.Addr{a}}, "in the name of node 0"},
		{"older generation", 0, recoverd.Order{Generation: gen - 1, Leader: 0, Addrs: []netip.Addr{a}}, "but generation"},
		{"forged generation", 0, recoverd.Order{Generation: 1<<64 - 1, Leader: 0, Addrs: []netip.Addr{a}}, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := json.Marshal(tt.o)
			out, err := d.onOrder(recoverd.KindRelease)(context.Background(), tt.from, b)
			if err != nil {
				t.Fatal(err)
			}
			var rep recoverd.OrderReply
			if err := json.Unmarshal(out, &rep); err != nil {
				t.Fatal(err)
			}
			if len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0], tt.want) {
				t.Errorf("reply errors = %q, want one containing %q", rep.Errors, tt.want)
			}
			if rep.Generation != gen {
				t.Errorf("reply generation = %d, want %d", rep.Generation, gen)
			}
			if len(held(k)) != 2 {
				t.Errorf("addresses after a refused release: %v", held(k))
			}
		})
	}
}

// TestBanAlwaysEnds: a ban ends when its period is over, also one
// restored at start or whose store write failed (no timer of its own).
func TestBanAlwaysEnds(t *testing.T) {
	t.Parallel()
	d, _, _, _, _ := oneNode(t)
	d.mu.Lock()
	d.admin |= nodeflag.Banned
	d.banUntil = time.Now().Add(200 * time.Millisecond)
	d.mu.Unlock()
	eventually(t, "ban lifted", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.admin&nodeflag.Banned == 0
	})
	if f, _, err := d.store.AdminFlags(); err != nil || f&nodeflag.Banned != 0 {
		t.Errorf("stored flags after the ban = %v, %v; want not banned", f, err)
	}
}

// TestSetVarApplies: ctdb setvar MonitorInterval changes the monitor's
// schedule at once; a tunable read only at start is refused, saying so.
func TestSetVarApplies(t *testing.T) {
	t.Parallel()
	d, _, fail, _, _ := oneNode(t)
	runs := filepath.Join(filepath.Dir(fail), "monitor-runs")
	script := "#!/bin/sh\n[ \"$1\" = monitor ] && echo run >>" + runs + "\nexit 0\n"
	if err := os.WriteFile(filepath.Join(filepath.Dir(fail), "etc", "events.d", "50.check"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		b, _ := os.ReadFile(runs)
		return strings.Count(string(b), "run\n")
	}
	eventually(t, "a first monitor run", func() bool { return count() >= 1 })
	if r := d.Handle(context.Background(), control.Request{Command: control.CmdSetVar, Args: []string{"MonitorInterval", "1"}}); r.ExitCode != 0 {
		t.Fatalf("setvar MonitorInterval 1: %+v", r)
	}
	// With the 15 s interval the next two runs would take 5+10 s.
	n := count()
	eventually(t, "two runs a second apart", func() bool { return count() >= n+2 })

	r := d.Handle(context.Background(), control.Request{Command: control.CmdSetVar, Args: []string{"ProbeIntervalMs", "500"}})
	if r.ExitCode == 0 || !strings.Contains(r.Error, "restart ctdbd") {
		t.Errorf("setvar ProbeIntervalMs = %+v, want a refusal that says to restart", r)
	}
	if v, _ := d.tun.Get("ProbeIntervalMs"); v != 200 {
		t.Errorf("ProbeIntervalMs = %d after a refused setvar, want 200", v)
	}
}

// TestReportsSpeakForTheirSender: a lease request or a state report that
// names another node than the one it came from is refused.
func TestReportsSpeakForTheirSender(t *testing.T) {
	t.Parallel()
	d, _, _, _, _ := oneNode(t)
	eventually(t, "the daemon running", d.running.Load)
	if _, err := d.onLease(context.Background(), 1, recoverd.LeaseRequest{PNN: 0, Seq: 1}); err == nil {
		t.Error("a lease request from node 1 for node 0 was served")
	}
	eventually(t, "node 0's own report", func() bool { _, ok := d.rec.States()[0]; return ok })
	before := d.rec.States()[0]
	forged := before.Version + 1000
	if _, err := d.onState(context.Background(), 1, recoverd.NodeState{PNN: 0, Boot: before.Boot, Version: forged}); err == nil {
		t.Error("a state report from node 1 for node 0 was taken")
	}
	if after := d.rec.States()[0]; after.Version >= forged {
		t.Errorf("node 0's state changed to version %d by node 1's report", after.Version)
	}
}

// TestBanOrderOnlyFromTheLeader: the leader's ban order bans at once,
// without waiting for a takeover run; from another node it is refused.
func TestBanOrderOnlyFromTheLeader(t *testing.T) {
	t.Parallel()
	d, _, _, _, _ := oneNode(t)
	eventually(t, "the daemon running", d.running.Load)
	eventually(t, "this node leading", d.rec.IsLeader)
	if _, err := d.onBan(context.Background(), 1, banOrder{Seconds: 60}); err == nil {
		t.Error("a ban order from node 1, which does not lead, was obeyed")
	}
	if _, err := d.onBan(context.Background(), 0, banOrder{Seconds: 60}); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	banned := d.admin&nodeflag.Banned != 0
	d.mu.Unlock()
	if !banned {
		t.Error("not banned after the leader's ban order")
	}
}
