// Package soak is the randomized fault injector behind `make soak`
// (tests/cmd/soak) and TestSoak: it runs a cluster in a test bed (package
// bed) for a while, draws one fault at a time at random from a seeded
// source, holds it 1-10 s, heals it, and checks two invariants all along:
//
//   - safety: no sample of the invariant checker (every 50 ms, every node's
//     kernel addresses and the ARP answers the client sees) shows an
//     address on two nodes;
//   - liveness: within 15 s of each heal every public address is
//     configured on exactly one node and answered from the client.
//
// The same seed draws the same faults, targets and holds (what the daemons
// do in between is not deterministic).
package soak

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ctdb-go/ctdb-go/tests/bed"
)

// Config is a soak run.
type Config struct {
	Seed     uint64        // the random source's seed; 0 means one drawn from the clock
	Duration time.Duration // how long faults are drawn; 0 means 10m
	Nodes    int           // cluster size; 0 means 5
	// Bin is passed to bed.Config.Bin ("" is the bed's default).
	Bin string
	// Logf gets the seed, every fault with its time, and the summary.
	Logf func(format string, args ...any)
	// BedLogf, when set, gets the bed's command lines.
	BedLogf func(format string, args ...any)
}

// Fault kinds.
const (
	KindKill          = "kill"           // SIGKILL ctdbd, restart it at the heal
	KindStop          = "stop"           // SIGSTOP ctdbd, SIGCONT at the heal
	KindStopScripts   = "stop-scripts"   // SIGSTOP ctdbd's children (event scripts)
	KindPullPublic    = "pull-public"    // public cable
	KindPullPrivate   = "pull-private"   // private cable
	KindFullPartition = "full-partition" // a minority cut off on both networks
	KindDoubleCrash   = "double-crash"   // SIGKILL two daemons at once
	KindDisable       = "disable"        // ctdb disable / enable
	KindBan           = "ban"            // ctdb ban N / unban
	KindLoss          = "loss"           // nftables numgen drop on a node's private link
	KindDelay         = "delay"          // tbf on a node's private link
)

// Kinds lists every fault kind, in drawing order.
var Kinds = []string{KindKill, KindStop, KindStopScripts, KindPullPublic, KindPullPrivate,
	KindFullPartition, KindDoubleCrash, KindDisable, KindBan, KindLoss, KindDelay}

// LivenessDeadline is how long after a heal every address must be served.
const LivenessDeadline = 15 * time.Second

// leaseTime is the cluster's LeaseTime tunable, seconds.
const leaseTime = 2

// Summary is what a run saw.
type Summary struct {
	Seed             uint64
	Faults           map[string]int // injected, by kind
	Samples          int            // checker samples
	DuplicateSamples int            // samples with an address on two nodes or two MACs answering
	AddrDuplicates   int            // of which: an address on two nodes' kernels
	LivenessMisses   int            // heals after which not every address was served in time
	Misses           []string       // what each miss saw
	Duplicates       []string       // the checker's first duplicates
	Report           string         // the checker's report
}

// Err is non-nil when an invariant was broken.
func (s Summary) Err() error {
	var errs []error
	if s.DuplicateSamples > 0 {
		errs = append(errs, fmt.Errorf("soak: %d samples with a duplicate address (on two nodes' kernels: %d)", s.DuplicateSamples, s.AddrDuplicates))
	}
	if s.LivenessMisses > 0 {
		errs = append(errs, fmt.Errorf("soak: %d heals not followed by every address served within %v", s.LivenessMisses, LivenessDeadline))
	}
	return errors.Join(errs...)
}

// String is the summary as printed.
func (s Summary) String() string {
	var b strings.Builder
	kinds := make([]string, 0, len(s.Faults))
	total := 0
	for k, n := range s.Faults {
		kinds = append(kinds, k+"="+strconv.Itoa(n))
		total += n
	}
	sort.Strings(kinds)
	fmt.Fprintf(&b, "soak summary: seed %d; %d faults (%s); %d samples; duplicate samples %d (address on two nodes: %d); liveness misses %d",
		s.Seed, total, strings.Join(kinds, " "), s.Samples, s.DuplicateSamples, s.AddrDuplicates, s.LivenessMisses)
	for _, m := range s.Misses {
		fmt.Fprintf(&b, "\n  liveness miss: %s", m)
	}
	for _, d := range s.Duplicates {
		fmt.Fprintf(&b, "\n  duplicate: %s", d)
	}
	return b.String()
}

// fault is one drawn fault: what, on which nodes, for how long.
type fault struct {
	Kind  string
	Nodes []int
	Hold  time.Duration
	Loss  int // KindLoss: percent dropped
}

func (f fault) String() string {
	s := fmt.Sprintf("%s nodes %v hold %v", f.Kind, f.Nodes, f.Hold.Round(100*time.Millisecond))
	if f.Kind == KindLoss {
		s += fmt.Sprintf(" (%d%% lost)", f.Loss)
	}
	return s
}

// draw picks the next fault.
func draw(r *rand.Rand, nodes int, maxHold time.Duration) fault {
	f := fault{Kind: Kinds[r.IntN(len(Kinds))]}
	f.Hold = time.Second + time.Duration(r.Int64N(int64(9*time.Second)))
	f.Hold = min(f.Hold, max(maxHold, time.Second))
	perm := r.Perm(nodes)
	switch f.Kind {
	case KindDoubleCrash:
		f.Nodes = perm[:2]
	case KindFullPartition:
		f.Nodes = perm[:1+r.IntN((nodes-1)/2)] // a minority
	default:
		f.Nodes = perm[:1]
	}
	sort.Ints(f.Nodes)
	if f.Kind == KindLoss {
		f.Loss = 20 + r.IntN(61) // 20-80 %
	}
	return f
}

// Run runs a soak and returns its summary; the error is a broken
// invariant (Summary.Err) or a bed that could not run. The bed is closed
// before Run returns.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	if cfg.Duration == 0 {
		cfg.Duration = 10 * time.Minute
	}
	if cfg.Nodes == 0 {
		cfg.Nodes = 5
	}
	if cfg.Nodes < 3 {
		return Summary{}, fmt.Errorf("soak: %d nodes: want at least 3 (a majority must survive a fault)", cfg.Nodes)
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	sum := Summary{Seed: cfg.Seed, Faults: map[string]int{}}
	start := time.Now()
	logf := func(format string, args ...any) {
		cfg.Logf("+%8.3fs %s", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	logf("soak: seed %d, %v, %d nodes (rerun with -seed %d)", cfg.Seed, cfg.Duration, cfg.Nodes, cfg.Seed)
	if err := needTools(); err != nil {
		return sum, err
	}
	var addrs []netip.Prefix
	for i := 1; i <= 2*cfg.Nodes; i++ {
		addrs = append(addrs, netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}), 24))
	}
	b, err := bed.New(bed.Config{
		Nodes:          cfg.Nodes,
		PublicAddrs:    addrs,
		Bin:            cfg.Bin,
		InstallShipped: []string{"10.interface"},
		// A monitor script that takes a while, so that there are
		// children to stop (KindStopScripts).
		EventScripts: map[string]string{"50.soak": "#!/bin/sh\ncase \"$1\" in monitor) sleep 0.5 ;; esac\nexit 0\n"},
		Tunables:     map[string]uint32{"LeaseTime": leaseTime, "MonitorInterval": 2, "EventScriptTimeout": 20},
		Logf:         cfg.BedLogf,
	})
	if err != nil {
		return sum, err
	}
	defer b.Close()
	c, err := b.StartChecker(50 * time.Millisecond)
	if err != nil {
		return sum, err
	}
	if err := b.StartAll(); err != nil {
		return sum, err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err = b.WaitHealthy(wctx)
	cancel()
	if err != nil {
		return sum, fmt.Errorf("soak: the cluster never became healthy: %w\n%s", err, logTails(b))
	}
	logf("cluster healthy; injecting faults for %v", cfg.Duration)

	r := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	end := time.Now().Add(cfg.Duration)
	for n := 1; ctx.Err() == nil; n++ {
		left := time.Until(end)
		if left < 2*time.Second {
			break
		}
		f := draw(r, cfg.Nodes, left-time.Second)
		sum.Faults[f.Kind]++
		logf("fault %d: %s", n, f)
		heal, err := inject(b, f, logf)
		if err != nil {
			logf("fault %d: injecting: %v", n, err)
		}
		select {
		case <-time.After(f.Hold):
		case <-ctx.Done():
		}
		if heal != nil {
			if err := heal(); err != nil {
				logf("fault %d: healing: %v", n, err)
			}
		}
		t0 := time.Now()
		logf("fault %d: healed", n)
		why := waitServed(b, c, t0)
		if why != "" {
			sum.LivenessMisses++
			miss := fmt.Sprintf("fault %d (%s): %v after the heal: %s", n, f, LivenessDeadline, why)
			sum.Misses = append(sum.Misses, miss)
			logf("LIVENESS MISS: %s", miss)
			logf("nodes' logs at the miss:\n%s", logTails(b))
			// Let the cluster settle before the next fault, so that one
			// miss does not make the next ones.
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := b.WaitHealthy(wctx); err != nil {
				logf("still not healthy 10 s later: %v", err)
			}
			cancel()
		} else {
			logf("fault %d: every address served by one node %v after the heal", n, time.Since(t0).Round(time.Millisecond))
		}
		if rep := c.Report(); rep.DuplicateSamples > sum.DuplicateSamples {
			logf("DUPLICATE: %d samples so far; first: %s", rep.DuplicateSamples, rep.Examples[0])
			sum.DuplicateSamples = rep.DuplicateSamples
		}
	}
	rep := c.Stop()
	sum.Samples = rep.Samples
	sum.DuplicateSamples = rep.DuplicateSamples
	sum.AddrDuplicates = rep.AddrDuplicates
	for _, d := range rep.Examples {
		sum.Duplicates = append(sum.Duplicates, d.String())
	}
	sum.Report = rep.String()
	logf("%s", sum)
	if err := sum.Err(); err != nil {
		logf("checker: %s", rep)
		logf("node logs:\n%s", logTails(b))
		return sum, err
	}
	return sum, nil
}

// needTools makes sure nft and tc exist, running tests/install-deps.sh
// (which installs only what is missing) when one does not.
func needTools() error {
	missing := func() []string {
		var m []string
		for _, t := range []string{"nft", "tc", "ip"} {
			if _, err := exec.LookPath(t); err != nil {
				m = append(m, t)
			}
		}
		return m
	}
	if len(missing()) == 0 {
		return nil
	}
	if script, err := findInstallDeps(); err == nil {
		out, err := exec.Command("sh", script, "demo").CombinedOutput()
		if err != nil {
			return fmt.Errorf("soak: %s: %w\n%s", script, err, out)
		}
	}
	if m := missing(); len(m) > 0 {
		return fmt.Errorf("soak: %v not found (apt-get install nftables iproute2)", m)
	}
	return nil
}

func findInstallDeps() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(d, "tests", "install-deps.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		up := filepath.Dir(d)
		if up == d {
			return "", errors.New("no tests/install-deps.sh above the working directory")
		}
		d = up
	}
}

// inject injects f and returns how to heal it.
func inject(b *bed.Bed, f fault, logf func(string, ...any)) (func() error, error) {
	n := f.Nodes[0]
	ctdb := func(i int, args ...string) error {
		out, err := b.Ctdb(i, args...)
		if err == nil && out.Code != 0 {
			err = fmt.Errorf("ctdb %s on node %d: %s", strings.Join(args, " "), i, out)
		}
		return err
	}
	restart := func(nodes ...int) func() error {
		return func() error {
			var errs []error
			for _, i := range nodes {
				if !b.Running(i) {
					errs = append(errs, b.Start(i))
				}
			}
			return errors.Join(errs...)
		}
	}
	switch f.Kind {
	case KindKill:
		return restart(n), b.Kill(n)
	case KindDoubleCrash:
		errc := make(chan error, len(f.Nodes))
		for _, i := range f.Nodes {
			go func() { errc <- b.Kill(i) }()
		}
		var errs []error
		for range f.Nodes {
			errs = append(errs, <-errc)
		}
		return restart(f.Nodes...), errors.Join(errs...)
	case KindStop:
		return func() error { return b.Cont(n) }, b.Stop(n)
	case KindStopScripts:
		pids := stopChildren(b, n, 3*time.Second)
		logf("stopped node %d's ctdbd children %v", n, pids)
		return func() error {
			for _, p := range pids {
				_ = syscall.Kill(p, syscall.SIGCONT)
			}
			return nil
		}, nil
	case KindPullPublic:
		return func() error { return b.RestorePublic(n) }, b.PullPublic(n)
	case KindPullPrivate:
		return func() error { return b.RestorePrivate(n) }, b.PullPrivate(n)
	case KindFullPartition:
		return b.Heal, b.FullPartition(f.Nodes)
	case KindDisable:
		return func() error { return ctdb(n, "enable") }, ctdb(n, "disable")
	case KindBan:
		secs := max(1, int(f.Hold.Seconds()))
		return func() error { return ctdb(n, "unban") }, ctdb(n, "ban", strconv.Itoa(secs))
	case KindLoss:
		// Both directions of the node's private link, in its namespace:
		// nothing else sees these rules.
		rules := fmt.Sprintf(`table inet soak {
	chain in { type filter hook input priority 0; iifname "%[1]s" numgen random mod 100 < %[2]d drop; }
	chain out { type filter hook output priority 0; oifname "%[1]s" numgen random mod 100 < %[2]d drop; }
}
`, bed.PrivateIface, f.Loss)
		err := nftIn(b, b.NodeNS(n), rules)
		return func() error { return nftDel(b, b.NodeNS(n)) }, err
	case KindDelay:
		// tbf: 256 kbit/s with up to 400 ms of queue on eth0.
		out, err := b.Exec(b.NodeNS(n), "tc", "qdisc", "replace", "dev", bed.PrivateIface, "root", "tbf", "rate", "256kbit", "burst", "4kb", "latency", "400ms")
		if err == nil && out.Code != 0 {
			err = fmt.Errorf("tc: %s", out)
		}
		return func() error {
			out, err := b.Exec(b.NodeNS(n), "tc", "qdisc", "del", "dev", bed.PrivateIface, "root")
			if err == nil && out.Code != 0 {
				err = fmt.Errorf("tc: %s", out)
			}
			return err
		}, err
	}
	return nil, fmt.Errorf("soak: unknown fault %q", f.Kind)
}

func nftIn(b *bed.Bed, ns, rules string) error {
	f, err := os.CreateTemp("", "soak-nft-*.conf")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(rules); err != nil {
		f.Close()
		return err
	}
	f.Close()
	out, err := b.Exec(ns, "nft", "-f", f.Name())
	if err == nil && out.Code != 0 {
		err = fmt.Errorf("nft: %s", out)
	}
	return err
}

func nftDel(b *bed.Bed, ns string) error {
	out, err := b.Exec(ns, "nft", "delete", "table", "inet", "soak")
	if err == nil && out.Code != 0 {
		err = fmt.Errorf("nft: %s", out)
	}
	return err
}

// stopChildren SIGSTOPs every descendant of node n's ctdbd (its event
// scripts and what they run), waiting up to d for one to exist, and
// returns their PIDs.
func stopChildren(b *bed.Bed, n int, d time.Duration) []int {
	p := b.Daemon(n)
	if p == nil {
		return nil
	}
	deadline := time.Now().Add(d)
	for {
		kids := descendants(p.PID)
		if len(kids) > 0 || time.Now().After(deadline) {
			for _, k := range kids {
				_ = syscall.Kill(k, syscall.SIGSTOP)
			}
			return kids
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// descendants lists the PIDs below pid, from /proc.
func descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	parent := map[int]int{}
	for _, e := range ents {
		id, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(data)
		f := strings.Fields(s[strings.LastIndex(s, ")")+1:])
		if len(f) > 1 {
			if pp, err := strconv.Atoi(f[1]); err == nil {
				parent[id] = pp
			}
		}
	}
	var out []int
	for id := range parent {
		for p := parent[id]; p > 1; p = parent[p] {
			if p == pid {
				out = append(out, id)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// waitServed waits until LivenessDeadline after t0 for every public
// address to be configured on exactly one node and answered from the
// client (the checker's latest sample); it returns the last reason when
// that never happened.
func waitServed(b *bed.Bed, c *bed.Checker, t0 time.Time) string {
	time.Sleep(100 * time.Millisecond) // a checker sample after the heal
	why := ""
	for time.Since(t0) < LivenessDeadline {
		if why = servedOnce(b, c); why == "" {
			return ""
		}
		time.Sleep(50 * time.Millisecond)
	}
	return why
}

func servedOnce(b *bed.Bed, c *bed.Checker) string {
	held, err := b.Holders()
	if err != nil {
		return err.Error()
	}
	for _, p := range b.PublicAddrs() {
		if h := held[p.Addr()]; len(h) != 1 {
			return fmt.Sprintf("%s is on nodes %v", p.Addr(), h)
		}
	}
	for ip, spans := range c.Report().Unserved {
		if len(spans) > 0 && spans[len(spans)-1].Open {
			return fmt.Sprintf("%s unserved as the client sees it (%s)", ip, spans[len(spans)-1].Why)
		}
	}
	return ""
}

// logTails is the last 40 lines of every node's log.
func logTails(b *bed.Bed) string {
	var s strings.Builder
	for i := range b.Nodes() {
		fmt.Fprintf(&s, "--- node %d log (%s), last lines:\n%s\n", i, b.Paths(i).Log, b.LogTail(i, 40))
	}
	return s.String()
}
