//go:build integration

package tests

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctdb-go/ctdb-go/tests/bed"
)

// Fencing, end to end: with `[failover] fence = true` the leader runs the
// fence event for a node it cannot reach and waits for it before that
// node's addresses move; a failing fence keeps them down; a two-node
// cluster whose private link is cut does not fence itself to death; and a
// ghost still answering ARP for an address after its holder was fenced
// keeps the new holder from taking it until it is silent.

// fenceScriptName is the test fence script, installed on every node
// (whichever node leads runs it).
const fenceScriptName = "01.fence-test"

// powerOff is the test's fence device, shell shared by the test fence
// script and the fake ipmitool. power_off PNN "powers off" node PNN as
// far as a namespace can be powered off: it freezes the node's ctdbd
// (SIGSTOP, waiting until every thread has stopped, so nothing the daemon
// had under way lands afterwards), takes every address off the node's
// public interface and sets it down (a powered-off NIC answers nothing).
// The test writes the node's ctdbd PID and namespace into DIR/pid.PNN and
// DIR/ns.PNN. DIR/fail makes the device unreachable (DIR/fail.N: from
// node N); while DIR/hold exists
// a fence waits after powering off, before it returns (the ghost test
// starts its ghost then). Every fence is logged to DIR/log as
// "<unix time> <leader PNN> fence <PNN> start|fail|done".
const powerOff = `
dir='@DIR@'
log () { echo "$(date +%s.%N) ${CTDB_PNN:-?} fence $1 $2" >>"${dir}/log" ; }
power_off () {
	pid=$(cat "${dir}/pid.$1") || return 1
	ns=$(cat "${dir}/ns.$1") || return 1
	kill -STOP "$pid" || return 1
	n=0
	while [ $n -lt 200 ] ; do
		running=no
		for s in /proc/"$pid"/task/*/stat ; do
			st=$(sed -e 's/.*) //' -e 's/ .*//' "$s" 2>/dev/null)
			case "$st" in T|t|Z|X|"") ;; *) running=yes ;; esac
		done
		[ $running = no ] && break
		n=$((n + 1))
		sleep 0.01
	done
	ip -n "$ns" link set eth1 down || return 1
	ip -n "$ns" addr flush dev eth1 || return 1
	touch "${dir}/fenced.$1"
	n=0
	while [ -e "${dir}/hold" ] && [ $n -lt 400 ] ; do
		n=$((n + 1))
		sleep 0.05
	done
}
`

// fenceScript is the test fence script: `fence PNN ADDRESS` powers node
// PNN off through powerOff.
const fenceScript = `#!/bin/sh
# test fence script (tests/fence_test.go)
# ctdb-go: handles fence
[ "$1" = fence ] || exit 0
` + powerOff + `
log "$2" start
if [ -e "${dir}/fail" ] || [ -e "${dir}/fail.${CTDB_PNN:-}" ] ; then
	log "$2" fail
	echo "ERROR: cannot reach the power controller of node $2 (test)"
	exit 1
fi
power_off "$2" || exit 1
log "$2" done
exit 0
`

// fakeIPMI is an ipmitool for the shipped 90.fence-ipmi: BMC host
// bmc-node<PNN> is node PNN's, powered off through powerOff; its power is
// off once the node was fenced.
const fakeIPMI = `#!/bin/sh
# fake ipmitool (tests/fence_test.go)
` + powerOff + `
host=
while [ $# -gt 3 ] ; do
	[ "$1" = -H ] && host="$2"
	shift
done
pnn="${host#bmc-node}"
if [ -e "${dir}/fail" ] ; then
	log "$pnn" fail
	echo "Error: Unable to establish IPMI v2 / RMCP+ session" >&2
	exit 1
fi
case "$*" in
"chassis power off")
	log "$pnn" start
	power_off "$pnn" || exit 1
	log "$pnn" done
	echo "Chassis Power Control: Down/Off"
	;;
"chassis power status")
	if [ -e "${dir}/fenced.${pnn}" ] ; then
		echo "Chassis Power is off"
	else
		echo "Chassis Power is on"
	fi
	;;
*)
	echo "fake ipmitool: unsupported: $*" >&2
	exit 1
	;;
esac
`

// fenceDevice says how the leader fences in a test.
type fenceDevice struct {
	name string
	// ipmi: the shipped 90.fence-ipmi with fakeIPMI as its ipmitool;
	// otherwise the test fence script.
	ipmi bool
	// failing is what the Fencing line of `ctdb status` says while the
	// device is unreachable.
	failing string
}

var fenceDevices = []fenceDevice{
	{name: "test script", failing: "cannot reach the power controller"},
	{name: "90.fence-ipmi", ipmi: true, failing: "did not power it off"},
}

// fencer is the test fence script's directory and what it knows.
type fencer struct {
	t   *testing.T
	dir string
}

// newFencer makes the script's directory; install fencer.script() as
// fenceScriptName before the bed is built, and call setNodes once the
// daemons run.
func newFencer(t *testing.T) *fencer {
	return &fencer{t: t, dir: t.TempDir()}
}

func (f *fencer) script(body string) string { return strings.ReplaceAll(body, "@DIR@", f.dir) }

// install puts the fence device into cfg: fencing on, and on every node
// the test fence script, or 90.fence-ipmi configured for the fake BMCs.
func (f *fencer) install(cfg *bed.Config, dev fenceDevice) {
	f.t.Helper()
	cfg.Fence = true
	if !dev.ipmi {
		if cfg.EventScripts == nil {
			cfg.EventScripts = map[string]string{}
		}
		cfg.EventScripts[fenceScriptName] = f.script(fenceScript)
		return
	}
	if err := os.WriteFile(filepath.Join(f.dir, "ipmitool"), []byte(f.script(fakeIPMI)), 0o755); err != nil {
		f.t.Fatal(err)
	}
	f.write("ipmi.pw", "secret")
	cfg.InstallShipped = append(cfg.InstallShipped, "90.fence-ipmi")
	var o strings.Builder
	o.WriteString(cfg.ScriptOptions)
	n := cfg.Nodes
	if n == 0 {
		n = 3
	}
	for i := range n {
		fmt.Fprintf(&o, "CTDB_FENCE_IPMI_HOST_%d=bmc-node%d\n", i, i)
	}
	fmt.Fprintf(&o, "CTDB_FENCE_IPMI_USER=fence\nCTDB_FENCE_IPMI_PASSWORD_FILE=%s\n", filepath.Join(f.dir, "ipmi.pw"))
	fmt.Fprintf(&o, "CTDB_FENCE_IPMITOOL=%s\nCTDB_FENCE_IPMI_WAIT=5\n", filepath.Join(f.dir, "ipmitool"))
	cfg.ScriptOptions = o.String()
}

// setNodes writes every node's ctdbd PID and namespace for the script.
func (f *fencer) setNodes(b *bed.Bed) {
	f.t.Helper()
	for i := range b.Nodes() {
		p := b.Daemon(i)
		if p == nil {
			f.t.Fatalf("node %d: ctdbd not started", i)
		}
		f.write(fmt.Sprintf("pid.%d", i), strconv.Itoa(p.PID))
		f.write(fmt.Sprintf("ns.%d", i), b.NodeNS(i))
	}
}

func (f *fencer) write(name, data string) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, name), []byte(data+"\n"), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fencer) remove(name string) {
	f.t.Helper()
	if err := os.Remove(filepath.Join(f.dir, name)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fencer) exists(name string) bool {
	_, err := os.Stat(filepath.Join(f.dir, name))
	return err == nil
}

// fenceRun is one line of the script's log.
type fenceRun struct {
	At     time.Time
	Leader int
	Target int
	What   string // start, fail, done
}

func (r fenceRun) String() string {
	return fmt.Sprintf("%s node %d fence node %d: %s", r.At.Format("15:04:05.000"), r.Leader, r.Target, r.What)
}

// runs reads the script's log.
func (f *fencer) runs() []fenceRun {
	f.t.Helper()
	fh, err := os.Open(filepath.Join(f.dir, "log"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	defer fh.Close()
	var out []fenceRun
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		var ts float64
		var r fenceRun
		var word string
		if _, err := fmt.Sscanf(sc.Text(), "%f %d %s %d %s", &ts, &r.Leader, &word, &r.Target, &r.What); err != nil || word != "fence" {
			f.t.Fatalf("fence log line %q: %v", sc.Text(), err)
		}
		r.At = time.Unix(0, int64(ts*1e9))
		out = append(out, r)
	}
	return out
}

// firstRun is the first log line with this target and outcome.
func (f *fencer) firstRun(target int, what string) (fenceRun, bool) {
	for _, r := range f.runs() {
		if r.Target == target && r.What == what {
			return r, true
		}
	}
	return fenceRun{}, false
}

// fenceBed builds and starts a cluster with fencing on and the test fence
// script on every node; the checker runs from then on (any duplicate
// fails the test).
func fenceBed(t *testing.T, cfg bed.Config, dev fenceDevice) (*bed.Bed, *fencer, *bed.Checker) {
	t.Helper()
	f := newFencer(t)
	f.install(&cfg, dev)
	b := startBed(t, cfg)
	f.setNodes(b)
	t.Cleanup(func() {
		if t.Failed() {
			for _, r := range f.runs() {
				t.Logf("fence log: %s", r)
			}
		}
	})
	return b, f, startChecker(t, b)
}

// leaderAndVictim finds the leader (as node 0 sees it) and a node other
// than the leader that holds public addresses, with those addresses.
func leaderAndVictim(t *testing.T, b *bed.Bed) (leader, victim int, vips []netip.Addr) {
	t.Helper()
	leader, err := leaderOf(ctx(t, 10*time.Second), b, 0)
	if err != nil || leader < 0 {
		t.Fatalf("leader: %d, %v", leader, err)
	}
	held := holders(t, b)
	for i := range b.Nodes() {
		if i == leader {
			continue
		}
		vips = vips[:0]
		for _, p := range b.PublicAddrs() {
			if slices.Equal(held[p.Addr()], []int{i}) {
				vips = append(vips, p.Addr())
			}
		}
		if len(vips) > 0 {
			return leader, i, vips
		}
	}
	t.Fatalf("no node but the leader %d holds an address: %v", leader, held)
	return 0, 0, nil
}

// procStopped says whether every thread of pid is stopped (SIGSTOP).
func procStopped(pid int) bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, p := range tasks {
		data, err := os.ReadFile(p)
		if err != nil {
			return false
		}
		s := string(data)
		f := strings.Fields(s[strings.LastIndex(s, ")")+1:])
		if len(f) == 0 || (f[0] != "T" && f[0] != "t") {
			return false
		}
	}
	return true
}

// offNode says why none of vips is held by exactly one node other than
// victim ("" when each is).
func offNode(b *bed.Bed, victim int, vips []netip.Addr) string {
	held, err := b.Holders()
	if err != nil {
		return err.Error()
	}
	for _, ip := range vips {
		h := held[ip]
		if len(h) != 1 || h[0] == victim {
			return fmt.Sprintf("%s is on nodes %v", ip, h)
		}
	}
	return ""
}

// fencingLine is the "Fencing:" line of `ctdb status` on node i ("" when
// there is none).
func fencingLine(ctx context.Context, b *bed.Bed, i int) (string, error) {
	out, err := b.CtdbContext(ctx, i, "status")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(out.Stdout, "\n") {
		if strings.HasPrefix(l, "Fencing:") {
			return l, nil
		}
	}
	return "", nil
}

// A node cut off from the others is fenced by the leader's fence script,
// and its addresses move as soon as the fence succeeded: the lease
// (LeaseTime 8 s here) would have kept them down far longer.
func TestFenceMovesAddressesAfterFence(t *testing.T) {
	for _, dev := range fenceDevices {
		t.Run(dev.name, func(t *testing.T) { testFenceMoves(t, dev) })
	}
}

func testFenceMoves(t *testing.T, dev fenceDevice) {
	const leaseTime = 8
	b, f, c := fenceBed(t, bed.Config{Nodes: 3, Tunables: map[string]uint32{"LeaseTime": leaseTime}}, dev)
	leader, victim, vips := leaderAndVictim(t, b)
	t.Logf("leader node %d; cutting node %d (holds %v) off the private network", leader, victim, vips)

	w := moveWatch(t, b, victim, vips)
	t0 := time.Now()
	if err := b.Partition([]int{victim}); err != nil {
		t.Fatal(err)
	}
	got, slowest := waitMoved(t, b, w, t0, 30*time.Second)
	if err := b.WaitFor(ctx(t, 10*time.Second), "the addresses on one other node each", func(context.Context) string {
		return offNode(b, victim, vips)
	}); err != nil {
		t.Fatal(err)
	}

	done, ok := f.firstRun(victim, "done")
	if !ok {
		t.Fatalf("the fence script never fenced node %d; its runs: %v", victim, f.runs())
	}
	if done.Leader != leader {
		t.Errorf("node %d was fenced by node %d, want the leader %d", victim, done.Leader, leader)
	}
	for ip, a := range got {
		// The new holder's ARP answer can come only after it took the
		// address: it must be after the fence returned.
		if a.At.Before(done.At) {
			t.Errorf("%s answered by node %d at %s, before the fence of node %d returned at %s",
				ip, b.NodeByMAC(a.MAC), a.At.Format("15:04:05.000"), victim, done.At.Format("15:04:05.000"))
		}
	}
	for _, r := range f.runs() {
		if r.Target != victim {
			t.Errorf("unexpected fence: %s", r)
		}
	}
	if !procStopped(b.Daemon(victim).PID) {
		t.Errorf("node %d's ctdbd (pid %d) is not stopped: the fence script did not run to the end", victim, b.Daemon(victim).PID)
	}
	line, err := fencingLine(ctx(t, 10*time.Second), b, leader)
	if err != nil {
		t.Fatal(err)
	}
	if line != "" {
		t.Errorf("ctdb status on the leader after the fence succeeded: %q, want no Fencing line", line)
	}
	// Half a second more of samples after the move, for the checker.
	after := time.Now().Add(500 * time.Millisecond)
	if _, err := c.WaitReport(ctx(t, 10*time.Second), func(r bed.Report) bool { return r.End.After(after) }); err != nil {
		t.Error(err)
	}
	start, _ := f.firstRun(victim, "start")
	measure(t, "fence_partition_to_fence_start_ms", start.At.Sub(t0).Milliseconds())
	measure(t, "fence_partition_to_fenced_ms", done.At.Sub(t0).Milliseconds())
	measure(t, "fence_partition_to_moved_ms", slowest.Milliseconds())
	t.Logf("without fencing the addresses would have waited for the lease: LeaseTime %d s + %v after the last grant",
		leaseTime, 500*time.Millisecond)
}

// A fence that fails keeps the node's addresses down (fail closed): no
// other node serves them while it fails, `ctdb status` names the node in
// its Fencing line, and once the fence succeeds they move.
func TestFenceFailingKeepsAddressesDown(t *testing.T) {
	for _, dev := range fenceDevices {
		t.Run(dev.name, func(t *testing.T) { testFenceFailing(t, dev) })
	}
}

func testFenceFailing(t *testing.T, dev fenceDevice) {
	b, f, c := fenceBed(t, bed.Config{Nodes: 3}, dev)
	leader, victim, vips := leaderAndVictim(t, b)
	f.write("fail", "")
	t.Logf("leader node %d; fence script failing; cutting node %d (holds %v) off", leader, victim, vips)

	t0 := time.Now()
	if err := b.Partition([]int{victim}); err != nil {
		t.Fatal(err)
	}
	var line string
	want := regexp.MustCompile(fmt.Sprintf(`^Fencing:.*\bnode %d\b.*fail`, victim))
	if err := b.WaitFor(ctx(t, 20*time.Second), "a Fencing line naming the failing fence", func(ctx context.Context) string {
		l, err := fencingLine(ctx, b, leader)
		if err != nil {
			return err.Error()
		}
		line = l
		if !want.MatchString(l) {
			return fmt.Sprintf("ctdb status on node %d: %q", leader, l)
		}
		return ""
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("node %d: %s", leader, line)
	if !strings.Contains(line, dev.failing) {
		t.Errorf("Fencing line %q does not say why (the script's output)", line)
	}

	// Fail closed: for 6 s (three retries) nobody but the cut-off node
	// has any of its addresses, and after its lease ran out nobody has
	// them at all.
	const watch = 6 * time.Second
	tw := time.Now()
	time.Sleep(watch)
	for _, e := range c.Events() {
		if e.At.Before(t0) || !slices.Contains(vips, e.IP) {
			continue
		}
		for _, n := range e.Nodes {
			if n != victim {
				t.Errorf("%s: %s on nodes %v while node %d's fence fails", e.At.Format("15:04:05.000"), e.IP, e.Nodes, victim)
			}
		}
		for _, m := range e.MACs {
			if hw, err := net.ParseMAC(m); err == nil && b.NodeByMAC(hw) != victim {
				t.Errorf("%s: %s answered by %s while node %d's fence fails", e.At.Format("15:04:05.000"), e.IP, m, victim)
			}
		}
	}
	held := holders(t, b)
	for _, ip := range vips {
		if len(held[ip]) != 0 {
			t.Errorf("%s held by %v %v after the partition: want nobody (the node's lease ran out, the fence fails)",
				ip, held[ip], time.Since(t0).Round(time.Millisecond))
		}
	}
	fails := 0
	for _, r := range f.runs() {
		if r.Target == victim && r.What == "fail" && r.At.After(tw) {
			fails++
		}
		if r.What == "done" {
			t.Errorf("fence reported done while failing: %s", r)
		}
	}
	if fails < 2 {
		t.Errorf("%d failed fence attempts in %v, want retries (every 2 s)", fails, watch)
	}

	// The fence device is back: the next retry fences, the addresses move.
	f.remove("fail")
	tf := time.Now()
	if err := b.WaitFor(ctx(t, 20*time.Second), "the addresses on other nodes after the fence", func(context.Context) string {
		return offNode(b, victim, vips)
	}); err != nil {
		t.Fatal(err)
	}
	done, ok := f.firstRun(victim, "done")
	if !ok {
		t.Fatalf("addresses moved but the fence script never succeeded: %v", f.runs())
	}
	measure(t, "fence_retry_to_moved_ms", time.Since(tf).Milliseconds())
	if err := b.WaitFor(ctx(t, 10*time.Second), "no Fencing line", func(ctx context.Context) string {
		l, err := fencingLine(ctx, b, leader)
		if err != nil {
			return err.Error()
		}
		return l
	}); err != nil {
		t.Error(err)
	}
	t.Logf("fenced at %s after %d failed attempts", done.At.Format("15:04:05.000"), fails)
}

// A ghost answers ARP for an address for 1 s after its holder was fenced
// (a NIC that still answers after `ipmitool power reset` returned): the
// new holder sees it in its duplicate-address probe, does not take the
// address while it answers, says who answered (`ctdb ip -v`), and takes
// it once the ghost is silent.
func TestGhostARPAfterFence(t *testing.T) {
	b, f, _ := fenceBed(t, bed.Config{Nodes: 3}, fenceDevices[0])
	leader, victim, vips := leaderAndVictim(t, b)
	ip := vips[0]
	f.write("hold", "")
	t.Logf("leader node %d; cutting node %d off; a ghost answers for %s once it is fenced", leader, victim, ip)

	// Watch every live node's `ctdb ip -v` for the ghost's MAC.
	type sighting struct {
		node int
		line string
	}
	seen := make(chan sighting, 1)
	pollCtx, stopPoll := context.WithCancel(context.Background())
	defer stopPoll()
	pollDone := make(chan struct{})

	// Every cluster node's first ARP answer for ip after the fence.
	w, err := b.WatchARP([]netip.Addr{ip}, time.Millisecond, func(_ netip.Addr, hw net.HardwareAddr) bool {
		n := b.NodeByMAC(hw)
		return n >= 0 && n != victim
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)

	if err := b.Partition([]int{victim}); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx(t, 30*time.Second), 5*time.Millisecond, func() string {
		if f.exists(fmt.Sprintf("fenced.%d", victim)) {
			return ""
		}
		return fmt.Sprintf("node %d not fenced yet", victim)
	}); err != nil {
		t.Fatal(err)
	}
	// The ghost stands in for the fenced node's NIC. Start it only once
	// the checker can no longer see that node's own last answers in the
	// same sample (one checker round), or the two would count as two
	// hosts answering at once, which in reality they are not.
	time.Sleep(100 * time.Millisecond)
	g, err := b.AddGhost(ip, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ghostMAC := g.MAC.String()
	tg := time.Now()
	go func() {
		defer close(pollDone)
		for pollCtx.Err() == nil {
			for _, i := range otherNodes(b, victim) {
				out, err := b.CtdbContext(pollCtx, i, "ip", "-v")
				if err != nil {
					continue
				}
				for _, l := range strings.Split(out.Stdout, "\n") {
					if strings.HasPrefix(l, ip.String()+" ") && strings.Contains(l, "probe-answer["+ghostMAC+"]") {
						select {
						case seen <- sighting{i, l}:
						default:
						}
						return
					}
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	f.remove("hold") // the fence returns: the leader moves the addresses

	got, err := w.Wait(ctx(t, 30*time.Second))
	if err != nil {
		t.Fatalf("%s never answered by another node: %v", ip, err)
	}
	taker := b.NodeByMAC(got[ip].MAC)
	<-g.Done()
	time.Sleep(300 * time.Millisecond) // let the poller see a late line
	stopPoll()
	<-pollDone

	answers := g.Answers()
	var last time.Time
	probes := 0
	for _, a := range answers {
		last = a.At
		if a.SenderIP == netip.IPv4Unspecified() && b.NodeByMAC(a.From) == taker {
			probes++
		}
	}
	t.Logf("ghost %s answered %d requests (%d probes from node %d), the last at %s; node %d answered at %s",
		ghostMAC, len(answers), probes, taker, last.Format("15:04:05.000"), taker, got[ip].At.Format("15:04:05.000"))
	if probes == 0 {
		t.Errorf("the ghost answered no duplicate-address probe (sender 0.0.0.0) from node %d", taker)
	}
	if got[ip].At.Before(last) {
		t.Errorf("node %d answered for %s at %s, while the ghost still answered (last at %s): taken while answered",
			taker, ip, got[ip].At.Format("15:04:05.000"), last.Format("15:04:05.000"))
	}
	select {
	case s := <-seen:
		t.Logf("node %d: ctdb ip -v: %s", s.node, s.line)
		if s.node != taker {
			t.Errorf("probe-answer seen on node %d, but node %d took %s", s.node, taker, ip)
		}
	default:
		t.Errorf("ctdb ip -v never showed probe-answer[%s] for %s on any node", ghostMAC, ip)
	}
	// The log says who answered, too.
	if l := logSince(b, taker, tg, ghostMAC); len(l) == 0 {
		t.Errorf("node %d's log does not name the MAC %s that answered its probes for %s", taker, ghostMAC, ip)
	} else {
		t.Logf("node %d: %s", taker, l[0])
	}
	measure(t, "ghost_silent_to_taken_ms", got[ip].At.Sub(g.Until()).Milliseconds())
	if err := b.WaitFor(ctx(t, 15*time.Second), "the fenced node's addresses on other nodes", func(context.Context) string {
		return offNode(b, victim, vips)
	}); err != nil {
		t.Error(err)
	}
}

// Two nodes lose each other (private link cut both ways at once) with
// fencing on and no cluster lock, so both lead: the fence delay by PNN
// (and, for a leader that never saw the other node, the start-up grace)
// makes node 0 fence node 1 before node 1 could fence node 0. Exactly one
// node survives, with every address. When node 0 cannot fence (its fence
// device is unreachable), node 1 fences node 0 once its grace and delay
// are over, and only then takes node 0's addresses.
func TestTwoNodeFenceRace(t *testing.T) {
	for _, tc := range []struct {
		name     string
		setvars  map[string]uint32 // `ctdb setvar` on every node before the cut
		failFrom int               // the node whose fence device fails; -1 none
		survivor int
		within   time.Duration
	}{
		{"defaults", nil, -1, 0, 30 * time.Second},
		// Without the grace only the delay keeps node 1 from fencing
		// node 0 at once. (Set once the cluster runs: with no grace at
		// all, the first leader would fence a node still starting.)
		{"fence delay only", map[string]uint32{"FenceStartupGrace": 0}, -1, 0, 30 * time.Second},
		{"node 0 cannot fence", nil, 0, 1, 40 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, f, c := fenceBed(t, bed.Config{Nodes: 2, ClusterLock: "none"}, fenceDevices[0])
			for name, v := range tc.setvars {
				for i := range b.Nodes() {
					if out, err := b.Ctdb(i, "setvar", name, strconv.Itoa(int(v))); err != nil || out.Code != 0 {
						t.Fatalf("ctdb setvar %s %d on node %d: %v %s", name, v, i, err, out)
					}
				}
			}
			fenced := 1 - tc.survivor
			if tc.failFrom >= 0 {
				f.write(fmt.Sprintf("fail.%d", tc.failFrom), "")
			}
			held := holders(t, b)
			var fencedAddrs []netip.Addr
			for ip, h := range held {
				if slices.Equal(h, []int{fenced}) {
					fencedAddrs = append(fencedAddrs, ip)
				}
			}
			t0 := time.Now()
			if err := b.Partition([]int{0}, []int{1}); err != nil {
				t.Fatal(err)
			}
			if err := b.WaitFor(ctx(t, tc.within), fmt.Sprintf("every address on node %d", tc.survivor), func(context.Context) string {
				return servedOnlyBy(b, tc.survivor)
			}); err != nil {
				t.Fatal(err)
			}
			moved := time.Since(t0)
			// The loser's leader would fence 2 s (FenceDelayMs × 1)
			// after it lost the other; give it that and more.
			time.Sleep(3 * time.Second)
			if why := servedOnlyBy(b, tc.survivor); why != "" {
				t.Errorf("3 s later: %s", why)
			}
			if !procStopped(b.Daemon(fenced).PID) {
				t.Errorf("node %d's ctdbd is not stopped: node %d was not fenced", fenced, fenced)
			}
			if procStopped(b.Daemon(tc.survivor).PID) {
				t.Errorf("node %d's ctdbd is stopped: node %d was fenced too", tc.survivor, tc.survivor)
			}
			done, ok := f.firstRun(fenced, "done")
			if !ok {
				t.Errorf("node %d was never fenced", fenced)
			}
			for _, r := range f.runs() {
				t.Logf("fence log: %s", r)
				switch {
				case r.Leader == tc.failFrom && r.What != "done":
					// the broken fence device's attempts
				case r.Target != fenced || r.Leader != tc.survivor:
					t.Errorf("want only node %d fencing node %d, got %s", tc.survivor, fenced, r)
				}
			}
			// The survivor took the fenced node's addresses only after
			// the fence returned.
			for _, e := range c.Events() {
				if e.At.Before(t0) || !slices.Contains(fencedAddrs, e.IP) || !slices.Contains(e.Nodes, tc.survivor) {
					continue
				}
				if !ok || e.At.Before(done.At) {
					t.Errorf("%s: %s on node %d before node %d was fenced", e.At.Format("15:04:05.000"), e.IP, tc.survivor, fenced)
				}
			}
			st, err := b.Status(ctx(t, 10*time.Second), tc.survivor)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range st {
				if n.PNN == tc.survivor && !n.OK() {
					t.Errorf("the survivor, node %d, is %s", n.PNN, n.FlagString())
				}
			}
			if lines := logSince(b, fenced, t0, "now the leader"); len(lines) > 0 {
				t.Logf("node %d became leader during the partition too (no lock, no quorum): %s", fenced, lines[0])
			}
			measure(t, "two_node_cut_to_all_on_survivor_ms", moved.Milliseconds())
		})
	}
}

// logSince lists node i's log lines stamped at or after t that contain
// substr.
func logSince(b *bed.Bed, i int, t time.Time, substr string) []string {
	var out []string
	for _, l := range strings.Split(b.Logs(i), "\n") {
		ts, ok := strings.CutPrefix(l, "time=")
		if !ok || !strings.Contains(l, substr) {
			continue
		}
		ts, _, _ = strings.Cut(ts, " ")
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err == nil && !at.Before(t) {
			out = append(out, l)
		}
	}
	return out
}

// servedOnlyBy says why not every public address is configured on node i
// alone and answered by its MAC alone ("" when all are).
func servedOnlyBy(b *bed.Bed, i int) string {
	held, err := b.Holders()
	if err != nil {
		return err.Error()
	}
	for _, p := range b.PublicAddrs() {
		if h := held[p.Addr()]; !slices.Equal(h, []int{i}) {
			return fmt.Sprintf("%s is on nodes %v", p.Addr(), h)
		}
	}
	for _, p := range b.PublicAddrs() {
		macs, err := b.ARPAll(context.Background(), p.Addr(), 20*time.Millisecond)
		if err != nil {
			return err.Error()
		}
		if len(macs) != 1 || b.NodeByMAC(macs[0]) != i {
			return fmt.Sprintf("%s answered by %v", p.Addr(), macs)
		}
	}
	return ""
}

// otherNodes is every node but i.
func otherNodes(b *bed.Bed, i int) []int {
	var out []int
	for n := range b.Nodes() {
		if n != i {
			out = append(out, n)
		}
	}
	return out
}

// A stranger keeps answering ARP for one public address (a host
// configured with it by mistake): the cluster does not take that address
// while it answers (its ARP probes see the stranger, `ctdb ip -v` names
// its MAC), bans nobody for it, and keeps serving every other address.
// Once the stranger is gone the address is served again.
func TestGhostPersistentStranger(t *testing.T) {
	b := startBed(t, bed.Config{Nodes: 3})
	c, err := b.StartChecker(50 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	ip := b.PublicAddrs()[0].Addr()
	held := holders(t, b)
	holder := held[ip][0]
	g, err := b.AddGhost(ip, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Move the address: its holder is disabled, another node must take
	// it and finds the stranger answering.
	if out, err := b.Ctdb(holder, "disable"); err != nil || out.Code != 0 {
		t.Fatalf("ctdb disable on node %d: %v %s", holder, err, out)
	}
	t0 := time.Now()
	var line string
	if err := b.WaitFor(ctx(t, 15*time.Second), "probe-answer in ctdb ip -v", func(ctx context.Context) string {
		for _, i := range otherNodes(b, holder) {
			out, err := b.CtdbContext(ctx, i, "ip", "-v")
			if err != nil {
				return err.Error()
			}
			for _, l := range strings.Split(out.Stdout, "\n") {
				if strings.HasPrefix(l, ip.String()+" ") && strings.Contains(l, "probe-answer["+g.MAC.String()+"]") {
					line = fmt.Sprintf("node %d: %s", i, l)
					return ""
				}
			}
		}
		return "not yet"
	}); err != nil {
		t.Error(err)
	}
	t.Logf("%s", line)
	// Long enough for several take attempts (TakeIPProbeTimeoutMs 1 s
	// each, retried by the leader).
	time.Sleep(8 * time.Second)
	st, err := b.Status(ctx(t, 10*time.Second), otherNodes(b, holder)[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st {
		if n.PNN != holder && !n.OK() {
			t.Errorf("%v after the stranger appeared: node %d is %s (want OK: a stranger on one address is no node's fault)",
				time.Since(t0).Round(time.Millisecond), n.PNN, n.FlagString())
		}
	}
	held = holders(t, b)
	if h := held[ip]; len(h) != 0 {
		t.Errorf("%s configured on nodes %v while the stranger %s answers for it", ip, h, g.MAC)
	}
	for _, p := range b.PublicAddrs() {
		if p.Addr() == ip {
			continue
		}
		if h := held[p.Addr()]; len(h) != 1 || h[0] == holder {
			t.Errorf("%s on nodes %v, want one OK node (not the disabled node %d)", p.Addr(), h, holder)
		}
	}
	// The stranger goes: the address is served again.
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	tg := time.Now()
	if err := b.WaitFor(ctx(t, 20*time.Second), ip.String()+" served", func(context.Context) string {
		h, err := b.Holders()
		if err != nil {
			return err.Error()
		}
		if len(h[ip]) != 1 || h[ip][0] == holder {
			return fmt.Sprintf("%s on nodes %v", ip, h[ip])
		}
		return ""
	}); err != nil {
		t.Error(err)
	}
	measure(t, "stranger_gone_to_taken_ms", time.Since(tg).Milliseconds())
	rep := c.Stop()
	if rep.AddrDuplicates > 0 {
		t.Errorf("an address on two nodes: %s", rep)
	}
	for _, d := range rep.Examples {
		cluster := 0
		for _, n := range d.Node {
			if n >= 0 {
				cluster++
			}
		}
		// Before its release the disabled holder answers beside the
		// stranger: that is the stranger's doing, not the cluster's.
		taken := cluster > 0 && !slices.Equal(d.Node, []int{-1, holder}) && !slices.Equal(d.Node, []int{holder, -1})
		if cluster > 1 || d.Kind == bed.DupARP && slices.Contains(d.MACs, g.MAC.String()) && taken {
			t.Errorf("duplicate: %s", d)
		}
	}
}

// The leader itself is cut off: it loses quorum and steps down, the
// others elect a new leader, which fences the old one and moves its
// addresses.
func TestFenceLeaderCutOff(t *testing.T) {
	b, f, _ := fenceBed(t, bed.Config{Nodes: 3}, fenceDevices[0])
	leader, err := leaderOf(ctx(t, 10*time.Second), b, 0)
	if err != nil || leader < 0 {
		t.Fatalf("leader: %d, %v", leader, err)
	}
	var vips []netip.Addr
	for ip, h := range holders(t, b) {
		if slices.Equal(h, []int{leader}) {
			vips = append(vips, ip)
		}
	}
	slices.SortFunc(vips, netip.Addr.Compare)
	t.Logf("cutting the leader, node %d (holds %v), off the private network", leader, vips)
	w := moveWatch(t, b, leader, vips)
	t0 := time.Now()
	if err := b.Partition([]int{leader}); err != nil {
		t.Fatal(err)
	}
	got, slowest := waitMoved(t, b, w, t0, 30*time.Second)
	if err := b.WaitFor(ctx(t, 10*time.Second), "the old leader's addresses on other nodes", func(context.Context) string {
		return offNode(b, leader, vips)
	}); err != nil {
		t.Fatal(err)
	}
	done, ok := f.firstRun(leader, "done")
	if !ok {
		t.Fatalf("node %d was never fenced: %v", leader, f.runs())
	}
	if done.Leader == leader {
		t.Errorf("node %d fenced itself: %s", leader, done)
	}
	for ip, a := range got {
		if a.At.Before(done.At) {
			t.Errorf("%s answered by node %d before the old leader was fenced (%s)", ip, b.NodeByMAC(a.MAC), done)
		}
	}
	newLeader, err := leaderOf(ctx(t, 10*time.Second), b, otherNodes(b, leader)[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("new leader node %d fenced node %d: %s", newLeader, leader, done)
	start, _ := f.firstRun(leader, "start")
	measure(t, "fence_leader_cut_to_fence_start_ms", start.At.Sub(t0).Milliseconds())
	measure(t, "fence_leader_cut_to_moved_ms", slowest.Milliseconds())
}
