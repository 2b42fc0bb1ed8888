package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ctdb-go/ctdb-go/tests/bed"
)

// runner runs scenarios for one implementation.
type runner struct {
	opt  options
	impl string
}

// limits are how long the phases of a trial may take. Debian's CTDB
// needs far longer: a stopped or cut-off node is only declared dead after
// KeepaliveInterval × KeepaliveLimit (25 s), and its monitor runs every
// 15 s.
type limits struct {
	start   time.Duration // cluster start until healthy
	fault   time.Duration // fault until detected, moved and answered
	settle  time.Duration // fault undone until healthy
	balance time.Duration // then until balanced (else the trial goes on, with a note)
}

func (r *runner) limits(sc scenario) limits {
	l := limits{start: 90 * time.Second, fault: 30 * time.Second, settle: 60 * time.Second, balance: 15 * time.Second}
	if r.opt.debian {
		l = limits{start: 180 * time.Second, fault: 60 * time.Second, settle: 180 * time.Second, balance: 60 * time.Second}
	}
	if len(sc.addrs) > 100 {
		l.start *= 2
		l.fault *= 2
		l.settle *= 2
		l.balance *= 2
	}
	return l
}

// cluster is a running bed and the benchmark's address watch on it.
type cluster struct {
	b   *bed.Bed
	w   *addrWatch
	pgs []*bed.Postgres // postgres scenarios: each node's server
	// unbalanced is set once the addresses failed to spread evenly
	// within the limit; later settles then wait only briefly for it.
	unbalanced bool
}

func (r *runner) newCluster(ctx context.Context, sc scenario) (*cluster, error) {
	cfg := bed.Config{
		Nodes:          3,
		PublicAddrs:    sc.addrs,
		Bin:            r.opt.bin,
		Prefix:         prefix,
		InstallShipped: []string{"10.interface"},
		EventScripts:   map[string]string{probeName: probeScript},
	}
	if r.opt.verbose {
		cfg.Logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "  | "+format+"\n", args...) }
	}
	var pgScript, pgOptions string
	if sc.postgres {
		bin, err := bed.PostgresBinDir()
		if err != nil {
			return nil, err
		}
		repo, err := repoDir()
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(filepath.Join(repo, "events.d", "50.postgres"))
		if err != nil {
			return nil, err
		}
		pgScript, pgOptions = string(data), bed.PostgresScriptOptions(bin)
		cfg.InstallShipped = append(cfg.InstallShipped, "50.postgres")
		cfg.ScriptOptions = pgOptions
	}
	b, err := bed.New(cfg)
	if err != nil {
		return nil, err
	}
	c := &cluster{b: b}
	if err := routeToClient(b); err != nil {
		b.Close()
		return nil, err
	}
	if r.opt.debian {
		dc := bed.DebianConfig{EventScripts: map[string]string{probeName: probeScript}}
		if sc.postgres {
			// ctdb-go's script follows CTDB's contract; Debian's
			// package has no PostgreSQL script of its own.
			dc.EventScripts["50.postgres"] = pgScript
		}
		if err := b.UseDebianCTDB(dc); err != nil {
			b.Close()
			return nil, err
		}
		if sc.postgres {
			for i := range b.Nodes() {
				if err := appendFile(filepath.Join(b.ConfigDir(i), "script.options"), "\n# benchfailover: 50.postgres\n"+pgOptions); err != nil {
					b.Close()
					return nil, err
				}
			}
		}
	}
	if sc.postgres {
		for i := range b.Nodes() {
			pg, err := b.StartPostgres(i)
			if err != nil {
				b.Close()
				return nil, err
			}
			c.pgs = append(c.pgs, pg)
		}
	}
	start := time.Now()
	if err := b.StartAll(); err != nil {
		c.close()
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, r.limits(sc).start)
	defer cancel()
	if err := b.WaitHealthy(sctx); err != nil {
		err = fmt.Errorf("the cluster did not become healthy: %w%s", err, c.logTails(15))
		c.close()
		return nil, err
	}
	logf("  cluster %s healthy after %s", b.ID(), ms(time.Since(start)))
	w, err := watchAddrs(b)
	if err != nil {
		c.close()
		return nil, err
	}
	c.w = w
	return c, nil
}

// close stops the daemons, waits for their children (Debian's ctdbd has
// some) and removes the bed.
func (c *cluster) close() {
	if c.w != nil {
		c.w.close()
	}
	for i := range c.b.Nodes() {
		if c.b.Running(i) {
			_ = c.b.Kill(i)
		}
		if c.b.Daemon(i) != nil {
			if _, err := c.b.ReapNode(context.Background(), i, 2*time.Second); err != nil {
				logf("  node %d: %v", i, err)
			}
		}
	}
	if err := c.b.Close(); err != nil {
		logf("  closing the bed: %v", err)
	}
}

// reap waits for what is left of node i's dead daemon and says if
// anything had to be killed.
func (c *cluster) reap(i int) error {
	killed, err := c.b.ReapNode(context.Background(), i, 3*time.Second)
	if len(killed) > 0 {
		logf("  node %d: processes %v outlived the killed daemon by 3 s; killed them", i, killed)
	}
	return err
}

func (c *cluster) logTails(n int) string {
	var s strings.Builder
	for i := range c.b.Nodes() {
		fmt.Fprintf(&s, "\n--- node %d log (end):\n%s", i, c.b.LogTail(i, n))
	}
	return s.String()
}

// holdings maps each node to the public addresses configured on it.
func (c *cluster) holdings() ([][]netip.Addr, error) {
	held, err := c.b.Holders()
	if err != nil {
		return nil, err
	}
	per := make([][]netip.Addr, c.b.Nodes())
	for _, p := range c.b.PublicAddrs() {
		for _, n := range held[p.Addr()] {
			per[n] = append(per[n], p.Addr())
		}
	}
	return per, nil
}

// balanced says why the addresses are not spread evenly yet ("" when
// they are: counts differ by at most one, or a fifth of a node's share).
func (c *cluster) balanced() string {
	per, err := c.holdings()
	if err != nil {
		return err.Error()
	}
	counts := make([]int, len(per))
	for i, as := range per {
		counts[i] = len(as)
	}
	tol := max(1, len(c.b.PublicAddrs())/(5*len(per)))
	if slices.Max(counts)-slices.Min(counts) > tol {
		return fmt.Sprintf("addresses per node %v", counts)
	}
	return ""
}

// settle waits until the cluster is healthy (at most limit) and balanced
// (at most balance more). A cluster that is healthy but stays unbalanced
// is accepted with a note. A node left banned is unbanned, as an
// operator would (a ban lasts RecoveryBanPeriod, 300 s).
func (c *cluster) settle(ctx context.Context, limit, balance time.Duration) (note string, err error) {
	// Wait in rounds of at most 30 s; between rounds unban any node
	// left banned (a ban lasts RecoveryBanPeriod, 300 s).
	deadline := time.Now().Add(limit)
	var unbanned []int
	for {
		round := time.Now().Add(30 * time.Second)
		if deadline.Before(round) {
			round = deadline
		}
		wctx, cancel := context.WithDeadline(ctx, round)
		err = c.b.WaitHealthy(wctx)
		cancel()
		if err == nil || ctx.Err() != nil || !time.Now().Before(deadline) {
			break
		}
		for _, n := range c.unbanAll(ctx) {
			if !slices.Contains(unbanned, n) {
				unbanned = append(unbanned, n)
			}
		}
	}
	if len(unbanned) > 0 {
		note = fmt.Sprintf("node(s) %v were left BANNED; unbanned them with ctdb unban", unbanned)
	}
	if err != nil {
		return note, err
	}
	if c.unbalanced {
		balance = min(balance, 10*time.Second)
	}
	bctx, cancel3 := context.WithTimeout(ctx, balance)
	defer cancel3()
	if berr := c.b.WaitFor(bctx, "the addresses to spread evenly", func(context.Context) string { return c.balanced() }); berr != nil {
		if ctx.Err() != nil {
			return note, ctx.Err()
		}
		c.unbalanced = true
		note = strings.TrimPrefix(note+"; healthy but not balanced: "+c.balanced(), "; ")
	}
	return note, nil
}

// unbanAll runs `ctdb unban` on every node that some node sees BANNED,
// and returns them.
func (c *cluster) unbanAll(ctx context.Context) []int {
	var banned []int
	for i := range c.b.Nodes() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := c.b.Status(sctx, i)
		cancel()
		if err != nil {
			continue
		}
		for _, n := range st {
			if strings.Contains(n.FlagString(), "BANNED") && !slices.Contains(banned, n.PNN) {
				banned = append(banned, n.PNN)
			}
		}
	}
	for _, n := range banned {
		if err := ctdbCmd(c, n, "unban"); err != nil {
			logf("  %v", err)
		}
	}
	return banned
}

// trial is what one trial measured.
type trial struct {
	victim   int
	leader   bool // the victim was the leader (held the cluster lock) when the fault came
	addrs    []netip.Addr
	detect   time.Duration
	moved    time.Duration
	arp      time.Duration
	got      struct{ detect, moved, arp bool }
	dups     int
	unserved time.Duration
	notes    []string
	injected bool // the fault was injected (the trial counts)
	broken   bool // the cluster could not be brought back: start a new one
}

// scenario runs every trial of sc and sums them up.
func (r *runner) scenario(ctx context.Context, sc scenario) Result {
	res := Result{Scenario: sc.name, Implementation: r.impl}
	if sc.unavailable != nil {
		if why := sc.unavailable(r.opt.debian); why != "" {
			logf("%s: %s", sc.name, why)
			res.Notes = append(res.Notes, why)
			return res
		}
	}
	logf("%s: %s (%s, %d trials)", sc.name, sc.about, r.impl, r.opt.trials)
	if sc.phase > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("each fault comes after a random 0-%s wait, at a random point of the monitor cycle", sc.phase))
	}
	var c *cluster
	defer func() {
		if c != nil {
			c.close()
		}
	}()
	var detect, moved, arp []time.Duration
	var unserved *time.Duration
	notes := map[string]int{}
	var order []string
	note := func(s string) {
		if notes[s] == 0 {
			order = append(order, s)
		}
		notes[s]++
	}
	// A trial that never got as far as the fault (the cluster would not
	// settle) does not count; it is tried again, up to twice the trials.
	for k, attempts := 0, 0; k < r.opt.trials && attempts < 2*r.opt.trials; attempts++ {
		if ctx.Err() != nil {
			return res
		}
		if c == nil {
			var err error
			c, err = r.newCluster(ctx, sc)
			if err != nil {
				if ctx.Err() != nil {
					return res
				}
				logf("%s: %v", sc.name, err)
				note(fmt.Sprintf("%s: could not start a cluster: %s", r.impl, firstLine(err.Error())))
				break
			}
		}
		t := r.trial(ctx, c, sc, k)
		if ctx.Err() != nil {
			return res
		}
		if !t.injected {
			for _, n := range t.notes {
				note("before a fault: " + n)
			}
			logf("  trial %d not run: %s", k+1, strings.Join(t.notes, "; "))
			if t.broken {
				c.close()
				c = nil
			}
			continue
		}
		k++
		res.Trials++
		res.Addresses = append(res.Addresses, len(t.addrs))
		if t.got.detect {
			detect = append(detect, t.detect)
		}
		if t.got.moved {
			moved = append(moved, t.moved)
		}
		if t.got.arp {
			arp = append(arp, t.arp)
		}
		if !t.got.detect || !t.got.moved || !t.got.arp {
			res.Incomplete++
		}
		res.DuplicateSamples += t.dups
		if unserved == nil || t.unserved > *unserved {
			u := t.unserved
			unserved = &u
		}
		for _, n := range t.notes {
			note(n)
		}
		logf("  #%d %s", k, t.summary())
		if t.broken {
			c.close()
			c = nil
		}
	}
	res.DetectMS = summarize(detect)
	res.MovedMS = summarize(moved)
	res.ARPMS = summarize(arp)
	if unserved != nil {
		res.UnservedMSMax = summarize([]time.Duration{*unserved}).Max
	}
	for _, n := range order {
		if notes[n] > 1 {
			n = fmt.Sprintf("%s (%d trials)", n, notes[n])
		}
		res.Notes = append(res.Notes, n)
	}
	return res
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func (t *trial) summary() string {
	d := func(ok bool, v time.Duration) string {
		if !ok {
			return "never"
		}
		return ms(v)
	}
	who := fmt.Sprintf("node %d", t.victim)
	if t.leader {
		who += ", the leader"
	}
	s := fmt.Sprintf("victim %s (%d addresses): detected %s, configured elsewhere %s, ARP answered elsewhere %s, %d duplicate samples, longest unserved %s",
		who, len(t.addrs), d(t.got.detect, t.detect), d(t.got.moved, t.moved), d(t.got.arp, t.arp), t.dups, ms(t.unserved))
	for _, n := range t.notes {
		s += "\n      " + n
	}
	return s
}

// trial runs trial k of sc on c: settle, pick the victim, arm the probes,
// inject, measure, undo, settle again.
func (r *runner) trial(ctx context.Context, c *cluster, sc scenario, k int) (t trial) {
	lim := r.limits(sc)
	b := c.b
	if note, err := c.settle(ctx, lim.settle, lim.balance); err != nil {
		t.notes = append(t.notes, "the cluster was not healthy before the trial: "+firstLine(err.Error()))
		t.broken = true
		return t
	} else if note != "" {
		t.notes = append(t.notes, note)
	}
	if sc.phase > 0 {
		select {
		case <-ctx.Done():
			return t
		case <-time.After(rand.N(sc.phase)):
		}
	}
	per, err := c.holdings()
	if err != nil {
		t.notes = append(t.notes, err.Error())
		t.broken = true
		return t
	}
	var candidates []int
	for i, as := range per {
		if len(as) > 0 {
			candidates = append(candidates, i)
		}
	}
	if len(candidates) == 0 {
		t.notes = append(t.notes, "no node holds an address")
		t.broken = true
		return t
	}
	t.victim = candidates[k%len(candidates)]
	t.addrs = per[t.victim]
	v := t.victim
	observer := (v + 1) % b.Nodes()
	c.w.trim(time.Now().Add(-time.Second))
	t.leader = leaderOf(ctx, b, observer) == v

	checker, err := b.StartChecker(sc.checkEvery)
	if err != nil {
		t.notes = append(t.notes, err.Error())
		t.broken = true
		return t
	}
	defer checker.Stop()
	old := b.NodeMAC(v).String()
	arpw, err := b.WatchARP(t.addrs, sc.arpEvery, func(_ netip.Addr, hw net.HardwareAddr) bool {
		return hw.String() != old && b.NodeByMAC(hw) >= 0
	})
	if err != nil {
		t.notes = append(t.notes, err.Error())
		t.broken = true
		return t
	}
	defer arpw.Close()

	// The probes run from t0, alongside the injection: a command such
	// as ctdb disable may take a while to return.
	t0 := time.Now()
	fctx, cancel := context.WithTimeout(ctx, lim.fault)
	defer cancel()
	var wg sync.WaitGroup
	var derr, merr, aerr error
	var answered map[netip.Addr]bed.ARPAnswer
	wg.Add(3)
	go func() {
		defer wg.Done()
		at, err := pollFlagged(fctx, b, observer, v)
		derr = err
		if err == nil {
			t.detect, t.got.detect = at.Sub(t0), true
		}
	}()
	go func() {
		defer wg.Done()
		got, err := c.w.waitMoved(fctx, t.addrs, v, t0)
		merr = err
		if err == nil {
			t.moved, t.got.moved = latest(got, func(a appeared) time.Time { return a.at }).Sub(t0), true
		}
	}()
	go func() {
		defer wg.Done()
		got, err := arpw.Wait(fctx)
		aerr, answered = err, got
		if err == nil {
			t.arp, t.got.arp = latest(got, func(a bed.ARPAnswer) time.Time { return a.At }).Sub(t0), true
		}
	}()
	if err := sc.inject(c, v); err != nil {
		if !sc.softInject {
			cancel()
			wg.Wait()
			t.notes = append(t.notes, "injecting the fault: "+err.Error())
			t.broken = true
			return t
		}
		t.notes = append(t.notes, fmt.Sprintf("%s (after %s; measuring on)", firstLine(err.Error()), ms(time.Since(t0))))
	}
	t.injected = true
	wg.Wait()
	arpw.Close()
	if ctx.Err() != nil {
		return t
	}
	lost := false
	if derr != nil {
		t.notes = append(t.notes, fmt.Sprintf("node %d's ctdb status never showed the victim flagged within %s", observer, lim.fault))
		lost = true
	}
	if merr != nil {
		t.notes = append(t.notes, fmt.Sprintf("addresses not configured on another node within %s: %v", lim.fault, firstLine(merr.Error())))
		lost = true
	}
	if aerr != nil {
		t.notes = append(t.notes, fmt.Sprintf("ARP not answered by another node within %s", lim.fault))
		lost = true
	}
	if lost {
		if t.leader {
			t.notes = append(t.notes, "(the victim was the leader, holding the cluster lock)")
		}
		held, _ := b.Holders()
		moved := c.w.arrivals(t.addrs, v, t0)
		var missing []string
		for _, ip := range t.addrs {
			if _, ok := moved[ip]; !ok && len(missing) < 5 {
				missing = append(missing, fmt.Sprintf("%s on %v", ip, held[ip]))
			}
		}
		var silent []string
		for _, ip := range t.addrs {
			if _, ok := answered[ip]; !ok && len(silent) < 5 {
				macs, _ := b.ARPAll(ctx, ip, 50*time.Millisecond)
				var who []int
				for _, m := range macs {
					who = append(who, b.NodeByMAC(m))
				}
				silent = append(silent, fmt.Sprintf("%s on %v answered by %v", ip, held[ip], who))
			}
		}
		logf("  trial %d of %s incomplete (fault at %s); not moved: %v; not answered by another node: %v; the nodes' logs end:%s",
			k+1, sc.name, t0.Format("15:04:05.000"), missing, silent, c.logTails(20))
	}
	for _, e := range c.w.takeErrors() {
		t.notes = append(t.notes, "address watch: "+e)
	}

	rerr := sc.restore(c, v)
	if rerr != nil && sc.softInject {
		t.notes = append(t.notes, "undoing the fault: "+firstLine(rerr.Error())+" (settling on)")
		rerr = nil
	}
	if rerr != nil {
		t.notes = append(t.notes, "undoing the fault: "+rerr.Error())
		t.broken = true
	} else if note, err := c.settle(ctx, lim.settle, lim.balance); err != nil {
		if ctx.Err() != nil {
			return t
		}
		t.notes = append(t.notes, "the cluster did not recover after the fault was undone: "+firstLine(err.Error()))
		logf("  the cluster did not recover; the nodes' logs end:%s", c.logTails(20))
		t.broken = true
	} else if note != "" {
		t.notes = append(t.notes, note)
	}
	rep := checker.Stop()
	t.dups = rep.DuplicateSamples
	t.unserved = rep.MaxUnserved(t0)
	if rep.DuplicateSamples > 0 && len(rep.Examples) > 0 {
		t.notes = append(t.notes, fmt.Sprintf("duplicate: %s (first of %d samples)", rep.Examples[0].String(), rep.DuplicateSamples))
	}
	if rep.Errors > 0 {
		t.notes = append(t.notes, fmt.Sprintf("checker: %d rounds failed: %s", rep.Errors, rep.FirstError))
	}
	return t
}

// latest is the latest time among m's values.
func latest[V any](m map[netip.Addr]V, at func(V) time.Time) time.Time {
	var l time.Time
	for _, v := range m {
		if t := at(v); t.After(l) {
			l = t
		}
	}
	return l
}

// pollFlagged polls observer's `ctdb -X status` until it shows victim
// with any flag, and returns when that answer came back: every 20 ms for
// the first 3 s, then every 100 ms.
func pollFlagged(ctx context.Context, b *bed.Bed, observer, victim int) (time.Time, error) {
	start := time.Now()
	for {
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		st, err := b.Status(sctx, observer)
		cancel()
		now := time.Now()
		if err == nil && victim < len(st) && !st[victim].OK() {
			return now, nil
		}
		every := 20 * time.Millisecond
		if now.Sub(start) > 3*time.Second {
			every = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("victim never flagged")
			}
			return time.Time{}, fmt.Errorf("%w (%v)", ctx.Err(), err)
		case <-time.After(every):
		}
	}
}

func ms(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// leaderOf is the leader's PNN as observer's `ctdb leader` says, -1 when
// it cannot tell.
func leaderOf(ctx context.Context, b *bed.Bed, observer int) int {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := b.CtdbContext(lctx, observer, "leader")
	if err != nil || out.Code != 0 {
		return -1
	}
	var pnn int
	if _, err := fmt.Sscanf(strings.TrimSpace(out.Stdout), "%d", &pnn); err != nil {
		return -1
	}
	return pnn
}

// routeToClient gives every node an on-link route to the client's subnet
// on its public interface when no public address covers the client (as
// with disable-900's 198.18.4.0/22), the way a real public network would
// route clients. Without it a node has no route back to the client, and
// under arp_filter=1 (which CTDB's 10.interface sets at init) the kernel
// does not answer the client's ARP at all. Both implementations get it.
func routeToClient(b *bed.Bed) error {
	for _, p := range b.PublicAddrs() {
		if p.Contains(bed.ClientAddr.Addr()) {
			return nil
		}
	}
	for i := range b.Nodes() {
		out, err := b.Exec(b.NodeNS(i), "ip", "route", "add", bed.ClientAddr.Masked().String(), "dev", bed.PublicIface, "metric", "100")
		if err != nil {
			return err
		}
		if out.Code != 0 {
			return fmt.Errorf("node %d: adding a route to the client: %s", i, out)
		}
	}
	return nil
}

func appendFile(path, data string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(data)
	return errors.Join(err, f.Close())
}
