//go:build integration

package tests

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
	"github.com/ctdb-go/ctdb-go/tests/bed"
)

// Issue 2, "Done when": a one-node ctdbd with two public addresses and the
// shipped 10.interface, in network namespaces, with the real binaries.

// leaseTime is the LeaseTime tunable the tests run with (CTDB-go's default),
// in whole seconds, as the kernel lifetimes are.
const leaseTime = 2

func oneNode(t *testing.T, cfg bed.Config) *bed.Bed {
	t.Helper()
	cfg.Nodes = 1
	cfg.PublicAddrs = []netip.Prefix{
		netip.MustParsePrefix("198.18.1.1/24"),
		netip.MustParsePrefix("198.18.1.2/24"),
	}
	cfg.InstallShipped = append(cfg.InstallShipped, "10.interface")
	if cfg.Tunables == nil {
		cfg.Tunables = map[string]uint32{}
	}
	cfg.Tunables["LeaseTime"] = leaseTime
	return startBed(t, cfg)
}

func publicAddrs(b *bed.Bed) []netip.Addr {
	var out []netip.Addr
	for _, p := range b.PublicAddrs() {
		out = append(out, p.Addr())
	}
	return out
}

// nodeHas says why node i does not hold exactly want ("" when it does).
func nodeHas(b *bed.Bed, i int, want []netip.Addr) string {
	ps, err := b.NodeAddrs(i)
	if err != nil {
		return err.Error()
	}
	var got []netip.Addr
	for _, p := range ps {
		got = append(got, p.Addr())
	}
	slices.SortFunc(got, netip.Addr.Compare)
	if !slices.Equal(got, want) {
		return fmt.Sprintf("node %d holds %v, want %v", i, got, want)
	}
	return ""
}

// nodeFlags is node i's flags as node i reports them in `ctdb -X status`.
func nodeFlags(ctx context.Context, b *bed.Bed, i int) (nodeflag.Flags, error) {
	st, err := b.Status(ctx, i)
	if err != nil {
		return 0, err
	}
	for _, n := range st {
		if n.PNN == i {
			return n.Flags, nil
		}
	}
	return 0, fmt.Errorf("node %d not in its own status", i)
}

// checkLifetimes asserts that node 0 holds both public addresses with a
// kernel lifetime in (0, LeaseTime] seconds, valid and preferred alike.
func checkLifetimes(t *testing.T, b *bed.Bed) {
	t.Helper()
	lft := publicLifetimes(t, b, 0)
	for _, ip := range publicAddrs(b) {
		l, ok := lft[ip]
		if !ok {
			t.Errorf("%s not on node 0's %s (have %v)", ip, bed.PublicIface, lft)
			continue
		}
		valid, preferred := l[0], l[1]
		t.Logf("%s valid_lft %ds preferred_lft %ds", ip, valid, preferred)
		if valid <= 0 || valid > leaseTime {
			t.Errorf("%s valid_lft = %d s, want 1..%d (LeaseTime)", ip, valid, leaseTime)
		}
		if preferred > valid {
			t.Errorf("%s preferred_lft = %d s, longer than valid_lft %d s", ip, preferred, valid)
		}
	}
}

// TestNodeHoldsAddressesWithLease: both addresses held, each with a kernel
// lifetime no longer than the lease, and kept (refreshed) well past it.
func TestNodeHoldsAddressesWithLease(t *testing.T) {
	b := oneNode(t, bed.Config{})
	want := publicAddrs(b)
	if why := nodeHas(b, 0, want); why != "" {
		t.Fatal(why)
	}
	checkLifetimes(t, b)

	// Refreshed, not just set once: sample for three lease times; the
	// addresses never go and their lifetime never exceeds the lease.
	end := time.Now().Add(3 * leaseTime * time.Second)
	samples := 0
	for time.Now().Before(end) {
		lft := publicLifetimes(t, b, 0)
		for _, ip := range want {
			l, ok := lft[ip]
			if !ok {
				t.Fatalf("%s gone from node 0 after %d samples: lifetime not refreshed", ip, samples)
			}
			if l[0] <= 0 || l[0] > leaseTime {
				t.Fatalf("%s valid_lft = %d s, want 1..%d", ip, l[0], leaseTime)
			}
		}
		samples++
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d samples over %ds: both addresses held, valid_lft within the lease", samples, 3*leaseTime)

	// `ctdb ip` agrees: both on PNN 0.
	ips, err := b.IPs(ctx(t, 10*time.Second), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range want {
		if ips[ip] != 0 {
			t.Errorf("ctdb ip: %s on %d, want 0", ip, ips[ip])
		}
	}
}

// TestNodePublicCable: pulling the public cable makes the node UNHEALTHY
// and removes both addresses; restoring it brings them back.
func TestNodePublicCable(t *testing.T) {
	b := oneNode(t, bed.Config{})
	want := publicAddrs(b)

	t0 := time.Now()
	if err := b.PullPublic(0); err != nil {
		t.Fatal(err)
	}
	// Two watchers at once: the flag through the CLI, the addresses
	// through netlink (1 ms).
	unhealthy := make(chan error, 1)
	var tUnhealthy, cli time.Duration
	go func() {
		unhealthy <- poll(ctx(t, 10*time.Second), 5*time.Millisecond, func() string {
			start := time.Now()
			f, err := nodeFlags(context.Background(), b, 0)
			if err != nil {
				return err.Error()
			}
			if f&nodeflag.Unhealthy == 0 {
				return fmt.Sprintf("node 0 flags %v, want UNHEALTHY", f)
			}
			tUnhealthy, cli = time.Since(t0), time.Since(start)
			return ""
		})
	}()
	var tGone time.Duration
	err := poll(ctx(t, 10*time.Second), time.Millisecond, func() string {
		if why := nodeHas(b, 0, nil); why != "" {
			return why
		}
		tGone = time.Since(t0)
		return ""
	})
	if err != nil {
		t.Errorf("addresses not removed after the public cable was pulled: %v", err)
	}
	if err := <-unhealthy; err != nil {
		t.Errorf("ctdb status never said UNHEALTHY: %v", err)
	}
	if t.Failed() {
		t.FailNow()
	}
	// The figure is when `ctdb status` returned saying so; one call
	// takes a while itself.
	t.Logf("the ctdb status call that saw UNHEALTHY took %v", cli.Round(time.Millisecond))
	measure(t, "node.public_pull_to_unhealthy", tUnhealthy)
	measure(t, "node.public_pull_to_addrs_gone", tGone)

	out, err := b.Ctdb(0, "status")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ctdb status:\n%s", out.Stdout)
	if !strings.Contains(out.Stdout, "UNHEALTHY") {
		t.Errorf("ctdb status does not say UNHEALTHY:\n%s", out)
	}
	// Still none a while later: nothing re-adds them while the link is down.
	time.Sleep(500 * time.Millisecond)
	if why := nodeHas(b, 0, nil); why != "" {
		t.Errorf("with the cable still out: %s", why)
	}

	t1 := time.Now()
	if err := b.RestorePublic(0); err != nil {
		t.Fatal(err)
	}
	var tBack time.Duration
	if err := poll(ctx(t, 20*time.Second), 5*time.Millisecond, func() string {
		if why := nodeHas(b, 0, want); why != "" {
			return why
		}
		tBack = time.Since(t1)
		return ""
	}); err != nil {
		t.Fatalf("addresses not back after the cable was restored: %v", err)
	}
	measure(t, "node.public_restore_to_addrs_back", tBack)
	if err := b.WaitFor(ctx(t, 20*time.Second), "node 0 OK", func(ctx context.Context) string {
		f, err := nodeFlags(ctx, b, 0)
		if err != nil {
			return err.Error()
		}
		if f != 0 {
			return fmt.Sprintf("node 0 flags %v", f)
		}
		return ""
	}); err != nil {
		t.Fatal(err)
	}
	checkLifetimes(t, b)
}

// TestNodeKill9: a SIGKILLed ctdbd cannot delete its addresses; the kernel
// does when their lifetime (the lease) runs out. A restarted daemon takes
// them back.
func TestNodeKill9(t *testing.T) {
	b := oneNode(t, bed.Config{})
	want := publicAddrs(b)
	if why := nodeHas(b, 0, want); why != "" {
		t.Fatal(why)
	}
	t0 := time.Now()
	if err := b.Kill(0); err != nil {
		t.Fatal(err)
	}
	var tGone time.Duration
	// The lease is LeaseTime from the last renewal; the kernel removes an
	// expired address up to ~0.3 s late. Wait generously, then fail.
	if err := poll(ctx(t, (leaseTime+3)*time.Second), time.Millisecond, func() string {
		if why := nodeHas(b, 0, nil); why != "" {
			return why
		}
		tGone = time.Since(t0)
		return ""
	}); err != nil {
		t.Fatalf("addresses left behind by the killed daemon %ds after LeaseTime: %v", 3, err)
	}
	measure(t, "node.kill9_to_addrs_gone", tGone)
	// And nothing comes back by itself.
	time.Sleep(500 * time.Millisecond)
	if why := nodeHas(b, 0, nil); why != "" {
		t.Errorf("after the kill: %s", why)
	}

	// A restart after the crash serves them again.
	t1 := time.Now()
	if err := b.Start(0); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitHealthy(ctx(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	measure(t, "node.restart_to_healthy", time.Since(t1))
	checkLifetimes(t, b)
}

// hangScript is a monitor script that, once, hangs with children and a
// grandchild when $CTDB_BASE/hang.flag exists; it writes every PID it
// starts (and its own) to $CTDB_BASE/hang.pids. The flag is taken by mv,
// so only one monitor run hangs.
const hangScript = `#!/bin/sh
case "$1" in
monitor)
	mv "$CTDB_BASE/hang.flag" "$CTDB_BASE/hang.taken" 2>/dev/null || exit 0
	pids="$CTDB_BASE/hang.pids.tmp"
	echo $$ >"$pids"
	sleep 1000 &
	echo $! >>"$pids"
	sleep 1000 &
	echo $! >>"$pids"
	( sleep 1000 &
	  echo $! >>"$pids"
	  wait ) &
	echo $! >>"$pids"
	mv "$pids" "$CTDB_BASE/hang.pids"
	wait
	;;
esac
exit 0
`

// TestNodeHungScript: a monitor script that hangs is killed, with its
// children and grandchildren, at EventScriptTimeout, and `ctdb event
// status` shows it TIMEDOUT.
func TestNodeHungScript(t *testing.T) {
	const timeout = 3
	b := oneNode(t, bed.Config{
		Tunables: map[string]uint32{
			"EventScriptTimeout": timeout,
			// The hanging run comes within 3 s of the flag, and the run
			// after the timeout 3 s later, long after both status
			// commands below have read the timeout.
			"MonitorInterval": 3,
		},
		EventScripts: map[string]string{"60.hang": hangScript},
	})
	base := b.Paths(0).Config
	if err := os.WriteFile(filepath.Join(base, "hang.flag"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The run that takes the flag writes its PIDs once every child is up.
	var pids []int
	pidFile := filepath.Join(base, "hang.pids")
	if err := poll(ctx(t, 20*time.Second), 10*time.Millisecond, func() string {
		data, err := os.ReadFile(pidFile)
		if err != nil {
			return "no monitor run took the flag yet"
		}
		pids = pids[:0]
		for _, f := range strings.Fields(string(data)) {
			n, err := strconv.Atoi(f)
			if err != nil {
				return fmt.Sprintf("%s: %v", pidFile, err)
			}
			pids = append(pids, n)
		}
		return ""
	}); err != nil {
		t.Fatal(err)
	}
	hung := time.Now()
	t.Logf("hanging monitor run: script and children %v", pids)
	if len(pids) != 5 {
		t.Fatalf("%s lists %d PIDs, want 5 (script, two children, subshell, grandchild)", pidFile, len(pids))
	}
	for _, pid := range pids {
		if procGone(pid) {
			t.Fatalf("PID %d already gone while the script hangs", pid)
		}
	}

	// The daemon answers while its script hangs.
	if out, err := b.Ctdb(0, "status"); err != nil || out.Code != 0 {
		t.Errorf("ctdb status while the script hangs: %v, %v", out, err)
	}

	// TIMEDOUT in `ctdb event status legacy monitor`, then in the short
	// spelling (monitor is the default event).
	var status string
	var tTimedOut time.Duration
	if err := poll(ctx(t, (timeout+10)*time.Second), 20*time.Millisecond, func() string {
		out, err := b.Ctdb(0, "event", "status", "legacy", "monitor")
		if err != nil {
			return err.Error()
		}
		if scriptState(out.Stdout, "60.hang") != "TIMEDOUT" {
			return fmt.Sprintf("ctdb event status legacy monitor:\n%s", out)
		}
		status = out.Stdout
		tTimedOut = time.Since(hung)
		return ""
	}); err != nil {
		t.Fatalf("60.hang never TIMEDOUT: %v", err)
	}
	t.Logf("ctdb event status legacy monitor:\n%s", status)
	measure(t, "node.script_hang_to_timedout", tTimedOut)
	out, err := b.Ctdb(0, "event", "status")
	if err != nil {
		t.Fatal(err)
	}
	if got := scriptState(out.Stdout, "60.hang"); got != "TIMEDOUT" || out.Code != 110 {
		t.Errorf("ctdb event status: 60.hang %q, exit %d; want TIMEDOUT, 110 (ETIMEDOUT):\n%s", got, out.Code, out)
	}

	// Every process of the script is gone (or a zombie waiting for
	// whoever inherited it): the whole process group was killed.
	var alive []int
	if err := poll(ctx(t, 2*time.Second), 10*time.Millisecond, func() string {
		alive = alive[:0]
		for _, pid := range pids {
			if !procGone(pid) {
				alive = append(alive, pid)
			}
		}
		if len(alive) > 0 {
			return fmt.Sprintf("still running: %v", alive)
		}
		return ""
	}); err != nil {
		for _, pid := range alive {
			cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			t.Errorf("PID %d (%q) survived the timeout", pid, strings.ReplaceAll(string(cmd), "\x00", " "))
		}
		// Do not leave them for the next test.
		for _, pid := range alive {
			_ = killPID(pid)
		}
		t.FailNow()
	}

	// One timeout is not MonitorTimeoutCount of them: the node stays
	// healthy and holds its addresses, and the next run passes again.
	if why := nodeHas(b, 0, publicAddrs(b)); why != "" {
		t.Errorf("after one monitor timeout: %s", why)
	}
	if err := b.WaitFor(ctx(t, 20*time.Second), "a passing monitor run", func(ctx context.Context) string {
		out, err := b.CtdbContext(ctx, 0, "event", "status", "legacy", "monitor")
		if err != nil {
			return err.Error()
		}
		if scriptState(out.Stdout, "60.hang") != "OK" {
			return out.Stdout
		}
		return ""
	}); err != nil {
		t.Error(err)
	}
	if f, err := nodeFlags(ctx(t, 10*time.Second), b, 0); err != nil || f != 0 {
		t.Errorf("node 0 flags after one timed-out monitor = %v, %v; want OK", f, err)
	}
}

// scriptState is the state column of script's line in `ctdb event status`.
func scriptState(out, script string) string {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == script {
			return f[1]
		}
	}
	return ""
}

func killPID(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

// TestNodeTerminate: SIGTERM releases every address before ctdbd exits
// (it does not leave them to the kernel lifetime), and the exit is clean.
func TestNodeTerminate(t *testing.T) {
	b := oneNode(t, bed.Config{})
	if why := nodeHas(b, 0, publicAddrs(b)); why != "" {
		t.Fatal(why)
	}
	t0 := time.Now()
	if err := b.Terminate(0); err != nil {
		t.Errorf("ctdbd on SIGTERM: %v", err)
	}
	measure(t, "node.sigterm_to_exit", time.Since(t0))
	// Checked at once: with LeaseTime 2 the lifetimes alone would keep
	// them for another second or so.
	if why := nodeHas(b, 0, nil); why != "" {
		t.Errorf("after a clean shutdown: %s", why)
	}
}
