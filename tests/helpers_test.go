//go:build integration

package tests

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ctdb-go/ctdb-go/tests/bed"
)

// Helpers shared by the end-to-end tests of the real daemon (node_test.go,
// cluster_test.go).

// measures collects every MEASURE figure of this run, for the summary.
var measures struct {
	mu    sync.Mutex
	lines []string
}

// measure logs a measured figure as "MEASURE name=value" (grep for it in
// `go test -v` output) and keeps it for the test's summary line. When
// CTDB_MEASURE_FILE is set the line is appended to that file too. Figures
// are logged, never asserted (PLAN.md: no timed assertions).
func measure(t *testing.T, name string, v any) {
	t.Helper()
	if d, ok := v.(time.Duration); ok {
		v = d.Round(time.Millisecond)
	}
	line := fmt.Sprintf("%s=%v", name, v)
	t.Logf("MEASURE %s", line)
	measures.mu.Lock()
	measures.lines = append(measures.lines, line)
	measures.mu.Unlock()
	if f := os.Getenv("CTDB_MEASURE_FILE"); f != "" {
		if fh, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintf(fh, "MEASURE %s %s\n", t.Name(), line)
			fh.Close()
		}
	}
}

// measureSummary logs, at the end of the test, one line with every figure
// measured so far in this run: "MEASURE-SUMMARY a=1ms b=2ms".
func measureSummary(t *testing.T) {
	t.Cleanup(func() {
		measures.mu.Lock()
		defer measures.mu.Unlock()
		t.Logf("MEASURE-SUMMARY %s", strings.Join(measures.lines, " "))
	})
}

// startBed builds a bed (closed at the end of the test), starts every
// daemon and waits until the cluster is healthy. On failure the end of
// every node's log is logged.
func startBed(t *testing.T, cfg bed.Config) *bed.Bed {
	t.Helper()
	if cfg.Logf == nil {
		cfg.Logf = quietLogf(t)
	}
	b := newBed(t, cfg)
	dumpLogsOnFailure(t, b)
	measureSummary(t)
	if err := b.StartAll(); err != nil {
		t.Fatalf("StartAll: %v", err)
	}
	if err := b.WaitHealthy(ctx(t, 30*time.Second)); err != nil {
		t.Fatalf("WaitHealthy: %v", err)
	}
	return b
}

// quietLogf is t.Logf for the bed's command lines, minus the topology's
// and a line that repeats the one before it (polling loops run the same
// command often).
func quietLogf(t *testing.T) func(string, ...any) {
	var mu sync.Mutex
	last, repeats := "", 0
	return func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		if strings.HasPrefix(line, "ip -n ") || strings.HasPrefix(line, "ip netns add ") {
			return // building the topology: the bed's own tests cover it
		}
		mu.Lock()
		defer mu.Unlock()
		if line == last {
			repeats++
			return
		}
		if repeats > 0 {
			t.Logf("(last line repeated %d times)", repeats)
		}
		last, repeats = line, 0
		t.Logf("%s", line)
	}
}

// dumpLogsOnFailure logs the end of every node's log when t fails; with
// CTDB_E2E_LOGS=DIR set it also copies every node's whole log to
// DIR/<test>/n<i>.log (the bed's run directory goes at Close, and a later
// run's Sweep removes even a KEEP_BED=1 one), for passing tests too when
// CTDB_E2E_LOGS_ALL=1.
func dumpLogsOnFailure(t *testing.T, b *bed.Bed) {
	t.Cleanup(func() {
		all := os.Getenv("CTDB_E2E_LOGS_ALL") == "1"
		if !t.Failed() && !all {
			return
		}
		dir := os.Getenv("CTDB_E2E_LOGS")
		if dir != "" {
			dir = filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_"))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Logf("CTDB_E2E_LOGS: %v", err)
				dir = ""
			}
		}
		for i := range b.Nodes() {
			if t.Failed() {
				t.Logf("--- node %d log (%s), last lines:\n%s", i, b.Paths(i).Log, b.LogTail(i, 80))
			}
			if dir != "" {
				f := filepath.Join(dir, fmt.Sprintf("n%d.log", i))
				if err := os.WriteFile(f, []byte(b.Logs(i)), 0o644); err != nil {
					t.Logf("CTDB_E2E_LOGS: %v", err)
				} else {
					t.Logf("node %d's whole log copied to %s", i, f)
				}
			}
		}
	})
}

// startChecker starts the invariant checker sampling every 50 ms; when the
// test ends it is stopped and the test fails on any duplicate sample.
// Registered after the bed, so it runs before the bed is closed.
func startChecker(t *testing.T, b *bed.Bed) *bed.Checker {
	t.Helper()
	c, err := b.StartChecker(50 * time.Millisecond)
	if err != nil {
		t.Fatalf("StartChecker: %v", err)
	}
	t.Cleanup(func() {
		rep := c.Stop()
		t.Logf("checker: %s", rep)
		if err := rep.Err(); err != nil {
			t.Errorf("invariant checker: %v\n%s", err, rep)
			for _, d := range rep.Examples {
				t.Errorf("  duplicate: %s", d)
			}
		}
	})
	return c
}

// poll calls cond every 'every' until it returns "" or ctx ends; the error
// carries cond's last reason. For measurements finer than WaitFor's 100 ms.
func poll(ctx context.Context, every time.Duration, cond func() string) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		why := cond()
		if why == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", why, ctx.Err())
		case <-t.C:
		}
	}
}

// holders maps each public address to its holders (netlink); fails the
// test on a read error.
func holders(t *testing.T, b *bed.Bed) map[netip.Addr][]int {
	t.Helper()
	h, err := b.Holders()
	if err != nil {
		t.Fatalf("Holders: %v", err)
	}
	return h
}

// spread says why the public addresses are not on exactly one node each
// and spread as want (addresses per node; nil means evenly over every
// node), "" when they are.
func spread(b *bed.Bed, want []int) string {
	held, err := b.Holders()
	if err != nil {
		return err.Error()
	}
	count := make([]int, b.Nodes())
	for _, p := range b.PublicAddrs() {
		h := held[p.Addr()]
		if len(h) != 1 {
			return fmt.Sprintf("%s is on nodes %v", p.Addr(), h)
		}
		count[h[0]]++
	}
	if want == nil {
		if slices.Max(count)-slices.Min(count) > 1 {
			return fmt.Sprintf("addresses per node %v, want balanced", count)
		}
		return ""
	}
	if !slices.Equal(count, want) {
		return fmt.Sprintf("addresses per node %v, want %v", count, want)
	}
	return ""
}

// perNode counts the public addresses each node holds (netlink).
func perNode(t *testing.T, b *bed.Bed) []int {
	t.Helper()
	count := make([]int, b.Nodes())
	for _, hs := range holders(t, b) {
		for _, h := range hs {
			count[h]++
		}
	}
	return count
}

// balancedOK says why the cluster is not balanced with every node OK as
// node 'from' sees it ("" when it is).
func balancedOK(ctx context.Context, b *bed.Bed, from int) string {
	if why := spread(b, nil); why != "" {
		return why
	}
	st, err := b.Status(ctx, from)
	if err != nil {
		return err.Error()
	}
	for _, n := range st {
		if !n.OK() {
			return fmt.Sprintf("node %d sees node %d as %s", from, n.PNN, n.FlagString())
		}
	}
	return ""
}

// heldBy lists the public addresses node i has configured (netlink), sorted.
func heldBy(t *testing.T, b *bed.Bed, i int) []netip.Addr {
	t.Helper()
	var out []netip.Addr
	for ip, hs := range holders(t, b) {
		if slices.Contains(hs, i) {
			out = append(out, ip)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// publicLifetimes reads, in node i's namespace, the valid and preferred
// lifetimes (seconds) of every public address on its public interface.
func publicLifetimes(t *testing.T, b *bed.Bed, i int) map[netip.Addr][2]int {
	t.Helper()
	h, err := b.Netlink(b.NodeNS(i))
	if err != nil {
		t.Fatalf("Netlink(node %d): %v", i, err)
	}
	l, err := h.LinkByName(bed.PublicIface)
	if err != nil {
		t.Fatalf("node %d %s: %v", i, bed.PublicIface, err)
	}
	as, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatalf("node %d addresses: %v", i, err)
	}
	out := map[netip.Addr][2]int{}
	for _, a := range as {
		ip, ok := netip.AddrFromSlice(a.IP)
		if ok {
			out[ip.Unmap()] = [2]int{a.ValidLft, a.PreferedLft}
		}
	}
	return out
}

// moveWatch arms an ARPWatch on ips, accepting only answers from a MAC
// other than node from's.
func moveWatch(t *testing.T, b *bed.Bed, from int, ips []netip.Addr) *bed.ARPWatch {
	t.Helper()
	old := b.NodeMAC(from).String()
	w, err := b.WatchARP(ips, time.Millisecond, func(_ netip.Addr, hw net.HardwareAddr) bool {
		return hw.String() != old
	})
	if err != nil {
		t.Fatalf("WatchARP: %v", err)
	}
	t.Cleanup(w.Close)
	return w
}

// waitMoved waits for w and returns, per address, who answers and when;
// it fails the test when an address is never answered by another node.
// The slowest answer, relative to t0, is returned as well.
func waitMoved(t *testing.T, b *bed.Bed, w *bed.ARPWatch, t0 time.Time, d time.Duration) (map[netip.Addr]bed.ARPAnswer, time.Duration) {
	t.Helper()
	got, err := w.Wait(ctx(t, d))
	var slowest time.Duration
	ips := make([]netip.Addr, 0, len(got))
	for ip := range got {
		ips = append(ips, ip)
	}
	sort.Slice(ips, func(i, j int) bool { return ips[i].Less(ips[j]) })
	for _, ip := range ips {
		a := got[ip]
		took := a.At.Sub(t0)
		slowest = max(slowest, took)
		n := b.NodeByMAC(a.MAC)
		t.Logf("%s answered by node %d %v after the fault", ip, n, took.Round(time.Millisecond))
		if n < 0 {
			t.Errorf("%s answered by %v, which is no node's MAC", ip, a.MAC)
		}
	}
	if err != nil {
		t.Fatalf("addresses not answered by another node: %v", err)
	}
	return got, slowest
}

// procGone reports whether pid has exited (no /proc entry, or a zombie
// waiting to be reaped by whoever inherited it).
func procGone(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndex(s, ")")+1:])
	return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
}
