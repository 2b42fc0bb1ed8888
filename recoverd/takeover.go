package recoverd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/control"
	"github.com/ctdb-go/ctdb-go/ipalloc"
)

// AllocNode is one node as ipalloc sees it.
type AllocNode struct {
	PNN     int
	CanHost bool
}

// AllocIP is one public address as ipalloc sees it.
type AllocIP struct {
	Addr        netip.Addr
	Current     int // -1: nobody
	KnownOn     []int
	AvailableOn []int
}

// AllocInput is a takeover run's question to ipalloc.
type AllocInput struct {
	Algorithm    uint32
	NoIPTakeover bool
	NoIPFailback bool
	// ForceRebalance are nodes LCP2 should rebalance onto even if they
	// already hold an address: nodes that just became able to host.
	ForceRebalance []int
	Nodes          []AllocNode
	IPs            []AllocIP
}

// AllocateFunc answers where each address goes (-1: nowhere).
type AllocateFunc func(AllocInput) map[netip.Addr]int

// IPAlloc is the AllocateFunc of ctdbd: ipalloc, with the algorithm the
// IPAllocAlgorithm tunable names.
func IPAlloc(in AllocInput) map[netip.Addr]int {
	ai := ipalloc.Input{
		Algorithm:      ipalloc.Algorithm(in.Algorithm),
		NoIPTakeover:   in.NoIPTakeover,
		NoIPFailback:   in.NoIPFailback,
		ForceRebalance: in.ForceRebalance,
	}
	for _, n := range in.Nodes {
		ai.Nodes = append(ai.Nodes, ipalloc.Node{PNN: n.PNN, CanHost: n.CanHost})
	}
	for _, ip := range in.IPs {
		ai.IPs = append(ai.IPs, ipalloc.IP{Addr: ip.Addr, Current: ip.Current, KnownOn: ip.KnownOn, AvailableOn: ip.AvailableOn})
	}
	out := make(map[netip.Addr]int, len(in.IPs))
	for _, a := range ipalloc.Allocate(ai).Assignments {
		out[a.Addr] = a.PNN
	}
	return out
}

// op moves one address: release it on every node in release, then take
// it on take (-1: only release).
type op struct {
	addr    netip.Addr
	release []int
	take    int
}

// minRunGap is the least time between the starts of two takeover runs.
const minRunGap = 100 * time.Millisecond

// StartupHold is how long a new leader waits for every live node to be
// able to host before its first placement.
const StartupHold = 5 * time.Second

// plan is one takeover run's decision.
type plan struct {
	ops     []op
	keep    map[netip.Addr]int    // addresses that stay where they are
	blocked map[netip.Addr]string // addresses that wait, and why
	wake    time.Time             // run again by then (a lease runs out)
	dups    []string              // duplicate holders found
	canHost map[int]bool          // which nodes could host in this run
}

// safeTimeLocked is when pnn can hold nothing any more, once this leader
// grants it nothing: the end of the lease this leader granted it, and no
// earlier than the longest lease an earlier leader could have granted
// (maxLease from this leader's start), plus LeaseMargin for the kernel.
func (r *Recoverd) safeTimeLocked(pnn int) time.Time {
	t := r.leaderSince.Add(r.maxLease)
	if e := r.grantEnd[pnn]; e.After(t) {
		t = e
	}
	return t.Add(LeaseMargin)
}

// hasLeaseLocked: the node renewed recently enough to have at least a
// second of lease left, so it can add an address with a lifetime.
func (r *Recoverd) hasLeaseLocked(pnn int, now time.Time) bool {
	e, ok := r.grantEnd[pnn]
	return ok && e.Sub(now) > time.Second+100*time.Millisecond
}

// computeLocked decides a run; it changes nothing.
func (r *Recoverd) computeLocked(now time.Time, dry bool) plan {
	p := plan{keep: map[netip.Addr]int{}, blocked: map[netip.Addr]string{}}
	in := AllocInput{
		Algorithm:    r.tunable("IPAllocAlgorithm", 2),
		NoIPTakeover: r.tunable("NoIPTakeover", 0) != 0,
		NoIPFailback: r.tunable("NoIPFailback", 0) != 0,
	}
	canHost := map[int]bool{}
	p.canHost = canHost
	allCan := true
	for _, pnn := range r.cfg.Nodes {
		st := r.states[pnn]
		ok := r.peers[pnn].Alive && st != nil && st.RunState == RunStateRunning &&
			st.Flags.CanHost() && r.hasLeaseLocked(pnn, now)
		canHost[pnn] = ok
		in.Nodes = append(in.Nodes, AllocNode{PNN: pnn, CanHost: ok})
		// Force only a node this leader saw unable before: after a
		// leader change nothing is known, and forcing every node would
		// move addresses between healthy nodes.
		if was, known := r.canHost[pnn]; ok && known && !was {
			in.ForceRebalance = append(in.ForceRebalance, pnn)
		}
		if r.peers[pnn].Alive && !ok {
			allCan = false
		}
	}
	for _, pnn := range r.cfg.Deleted {
		in.Nodes = append(in.Nodes, AllocNode{PNN: pnn})
	}
	slices.SortFunc(in.Nodes, func(a, b AllocNode) int { return a.PNN - b.PNN })
	// Right after a leader starts, nodes become healthy one after another
	// (each runs its first monitor 2 s after it starts). Placing addresses
	// on the first healthy node only to move them again is churn, and LCP2
	// never rebalances onto a node that already got one: wait until every
	// live node can host, or StartupHold has passed.
	hold := !allCan && now.Sub(r.leaderSince) < StartupHold && len(r.assigned) == 0

	type ipInfo struct {
		known, avail []int
		alive, dead  []int // claimants
	}
	ips := map[netip.Addr]*ipInfo{}
	get := func(a netip.Addr) *ipInfo {
		if ips[a] == nil {
			ips[a] = &ipInfo{}
		}
		return ips[a]
	}
	for _, pnn := range r.cfg.Nodes {
		st := r.states[pnn]
		if st == nil {
			continue
		}
		avail := make(map[netip.Addr]bool, len(st.Available))
		for _, a := range st.Available {
			avail[a] = true
		}
		for _, k := range st.Known {
			i := get(k.Prefix.Addr())
			i.known = append(i.known, pnn)
			if canHost[pnn] && avail[k.Prefix.Addr()] {
				i.avail = append(i.avail, pnn)
			}
		}
		for _, a := range r.heldByLocked(pnn, st) {
			i := get(a)
			if r.peers[pnn].Alive {
				i.alive = append(i.alive, pnn)
			} else {
				i.dead = append(i.dead, pnn)
			}
		}
	}
	for a, m := range r.suspect {
		for pnn := range m {
			i := get(a)
			if r.peers[pnn].Alive {
				if !slices.Contains(i.alive, pnn) {
					i.alive = append(i.alive, pnn)
				}
			} else if !slices.Contains(i.dead, pnn) {
				i.dead = append(i.dead, pnn)
			}
		}
	}

	addrs := make([]netip.Addr, 0, len(ips))
	for a, i := range ips {
		if len(i.known) == 0 {
			// Held but configured nowhere (removed by reloadips, or
			// added by hand): it must go.
			continue
		}
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	for _, a := range addrs {
		i := ips[a]
		slices.Sort(i.alive)
		cur := -1
		if to, moving := r.inflightTo[a]; moving && r.inflight[a] {
			// Plan as if moves in flight had landed; otherwise every run
			// during a big move sees the old holders still loaded and
			// sends yet more addresses to the nodes that gain them.
			cur = to
		} else if h, ok := r.assigned[a]; ok && slices.Contains(i.alive, h) {
			cur = h
		} else if len(i.alive) > 0 {
			cur = i.alive[0]
		}
		in.IPs = append(in.IPs, AllocIP{Addr: a, Current: cur, KnownOn: i.known, AvailableOn: i.avail})
	}
	// Nodes whose holdings this leader does not know yet (no state
	// report) may hold anything until their lease, granted by an earlier
	// leader, has run out: nothing is taken before they report or then.
	var unknown []int
	unknownWhy := map[int]string{}
	for _, pnn := range r.cfg.Nodes {
		if r.states[pnn] != nil {
			continue
		}
		if why := r.unknownGateLocked(pnn, now, dry); why != "" {
			unknown = append(unknown, pnn)
			unknownWhy[pnn] = why
		}
	}
	target := map[netip.Addr]int{}
	if hold {
		p.wake = r.leaderSince.Add(StartupHold)
		for _, ip := range in.IPs {
			if ip.Current >= 0 {
				target[ip.Addr] = ip.Current
			} else {
				p.blocked[ip.Addr] = "waiting for the nodes to become healthy after start-up"
			}
		}
	} else if !r.cfg.FailoverDisabled && len(in.IPs) > 0 {
		target = r.cfg.Allocate(in)
	}

	for a, i := range ips {
		if r.inflight[a] {
			continue
		}
		t, ok := target[a]
		if !ok || len(i.known) == 0 {
			t = -1
		}
		if why := r.deadGateLocked(i.dead, now, dry); why != "" {
			// An unreachable node may still hold it: nobody else gets it
			// before its lease has run out, or it has been fenced.
			p.blocked[a] = why
			for _, d := range i.dead {
				if w := r.safeTimeLocked(d); now.Before(w) && (p.wake.IsZero() || w.Before(p.wake)) {
					p.wake = w
				}
			}
			if r.cfg.Fence != nil {
				if w := now.Add(250 * time.Millisecond); p.wake.IsZero() || w.Before(p.wake) {
					p.wake = w
				}
			}
			continue
		}
		var others []int
		for _, c := range i.alive {
			if c != t {
				others = append(others, c)
			}
		}
		holds := slices.Contains(i.alive, t)
		if len(i.alive) > 1 || len(i.alive) == 1 && r.assigned[a] != i.alive[0] && hasKey(r.assigned, a) {
			p.dups = append(p.dups, fmt.Sprintf("%s held by %v", a, i.alive))
		}
		switch {
		case t < 0 && len(i.alive) == 0:
		case holds && len(others) == 0:
			p.keep[a] = t
		case t < 0:
			p.ops = append(p.ops, op{addr: a, release: others, take: -1})
		case holds:
			p.ops = append(p.ops, op{addr: a, release: others, take: -1})
			p.keep[a] = t
		default:
			if u := slices.DeleteFunc(slices.Clone(unknown), func(x int) bool { return x == t }); len(u) > 0 {
				p.blocked[a] = unknownWhy[u[0]]
				if w := r.safeTimeLocked(u[0]); p.wake.IsZero() || w.Before(p.wake) {
					p.wake = w
				}
				continue
			}
			p.ops = append(p.ops, op{addr: a, release: others, take: t})
		}
	}
	slices.SortFunc(p.ops, func(x, y op) int { return x.addr.Compare(y.addr) })
	return p
}

func hasKey[K comparable, V any](m map[K]V, k K) bool { _, ok := m[k]; return ok }

// heldByLocked is what node pnn holds: its last report, corrected by the
// orders it acknowledged after that report was made.
func (r *Recoverd) heldByLocked(pnn int, st *NodeState) []netip.Addr {
	newer := func(o override) bool { return o.boot == st.Boot && o.version > st.Version }
	out := make([]netip.Addr, 0, len(st.Held))
	reported := make(map[netip.Addr]bool, len(st.Held))
	for _, a := range st.Held {
		reported[a] = true
		if o, ok := r.override[a][pnn]; ok && newer(o) && !o.held {
			continue
		}
		out = append(out, a)
	}
	for a, m := range r.override {
		if o, ok := m[pnn]; ok && newer(o) && o.held && !reported[a] {
			out = append(out, a)
		}
	}
	return out
}

// noteOrderLocked records an acknowledged order's effect.
func (r *Recoverd) noteOrderLocked(a netip.Addr, pnn int, held bool, rep OrderReply) {
	if r.override[a] == nil {
		r.override[a] = map[int]override{}
	}
	r.override[a][pnn] = override{held: held, boot: rep.Boot, version: rep.Version}
}

// maybeRun starts a takeover run when one is due. It does not wait for
// the addresses to move: each address moves on its own goroutine, and a
// later run skips addresses still moving.
func (r *Recoverd) maybeRun(ctx context.Context) {
	now := r.now()
	r.mu.Lock()
	if !r.leader || now.Before(r.runAt) {
		r.mu.Unlock()
		return
	}
	if now.Sub(r.lastStart) < minRunGap {
		// A burst of reports (hundreds of addresses moving) asks for a
		// run each: one run per minRunGap serves them all.
		r.runAt = r.lastStart.Add(minRunGap)
		wait := r.runAt.Sub(now)
		r.mu.Unlock()
		go func() {
			time.Sleep(wait)
			select {
			case r.kick <- struct{}{}:
			default:
			}
		}()
		return
	}
	r.lastStart = now
	interval := time.Duration(r.tunable("RecoverInterval", 1)) * time.Second
	r.runAt = now.Add(interval)
	start := time.Now()
	p := r.computeLocked(now, false)
	if !p.wake.IsZero() && p.wake.Before(r.runAt) {
		r.runAt = p.wake
	}
	for a, t := range p.keep {
		r.assigned[a] = t
	}
	r.blocked = p.blocked
	r.canHost = p.canHost
	if len(p.dups) > 0 {
		r.dups += uint64(len(p.dups))
		r.log.Warn("address held by a node that was not given it; releasing it there", "dups", p.dups)
	}
	gen := r.gen
	for _, o := range p.ops {
		r.inflight[o.addr] = true
		r.inflightTo[o.addr] = o.take
	}
	if len(p.ops) > 0 {
		r.opsRunning += len(p.ops)
		r.runs++
		r.lastRun = now
	}
	waiters := r.waiters
	if len(p.ops) == 0 {
		r.waiters = nil
	}
	r.mu.Unlock()
	if len(p.ops) == 0 {
		for _, w := range waiters {
			close(w)
		}
		return
	}
	r.log.Info("takeover run", "moves", len(p.ops), "generation", gen)
	r.launch(ctx, p.ops, gen, start)
}

// launch runs ops concurrently and sends ipreallocated when all are done.
// A move spends most of its ~50-100 ms waiting (two round trips, the ARP
// probe's wait, the scripts), so many run at once: TakeoverParallelism
// per node, since each node does its own part.
func (r *Recoverd) launch(ctx context.Context, ops []op, gen uint64, start time.Time) {
	par := int(r.tunable("TakeoverParallelism", 8))
	if par < 1 {
		par = 1
	}
	sem := make(chan struct{}, par*max(2, len(r.cfg.Nodes)))
	done := make(chan struct{})
	remaining := len(ops)
	results := make(chan bool, len(ops))
	for _, o := range ops {
		go func() {
			sem <- struct{}{}
			ok := r.execute(ctx, o, gen)
			<-sem
			results <- ok
		}()
	}
	go func() {
		defer close(done)
		failed := 0
		for range remaining {
			if !<-results {
				failed++
			}
		}
		took := time.Since(start)
		r.mu.Lock()
		r.lastRunTook = took
		r.opsRunning -= len(ops)
		var waiters []chan struct{}
		if r.opsRunning == 0 {
			waiters = r.waiters
			r.waiters = nil
		}
		if failed > 0 {
			r.runAt = r.now().Add(time.Second)
		}
		peers := r.peers
		r.mu.Unlock()
		r.log.Info("takeover run completed", "moves", len(ops), "failed", failed, "took", took)
		payload, _ := json.Marshal(Order{Generation: gen, Leader: r.cfg.PNN})
		for pnn, p := range peers {
			if p.Alive {
				_ = r.cfg.Transport.Send(pnn, KindIPReallocated, payload, true)
			}
		}
		for _, w := range waiters {
			close(w)
		}
	}()
}

// execute moves one address: every release acknowledged, then the take.
func (r *Recoverd) execute(ctx context.Context, o op, gen uint64) bool {
	defer func() {
		r.mu.Lock()
		delete(r.inflight, o.addr)
		delete(r.inflightTo, o.addr)
		r.mu.Unlock()
	}()
	timeout := time.Duration(r.tunable("TakeoverTimeout", 9)) * time.Second
	for _, pnn := range o.release {
		rep, err := r.order(ctx, pnn, KindRelease, o.addr, o.take, gen, timeout)
		var oe *orderError
		if asOrderError(err, &oe) && oe.fault {
			// The releaseip event failed, but the address is gone.
			r.mu.Lock()
			r.noteOrderLocked(o.addr, pnn, false, rep)
			r.mu.Unlock()
			r.failed(ctx, pnn)
		}
		if err != nil {
			r.log.Warn("release failed", "ip", o.addr, "pnn", pnn, "err", err)
			return false
		}
		r.mu.Lock()
		r.noteOrderLocked(o.addr, pnn, false, rep)
		if m := r.suspect[o.addr]; m != nil {
			delete(m, pnn)
		}
		if r.assigned[o.addr] == pnn {
			delete(r.assigned, o.addr)
		}
		r.mu.Unlock()
	}
	if o.take < 0 {
		return true
	}
	r.mu.Lock()
	if r.suspect[o.addr] == nil {
		r.suspect[o.addr] = map[int]time.Time{}
	}
	r.suspect[o.addr][o.take] = r.now()
	r.mu.Unlock()
	rep, err := r.order(ctx, o.take, KindTake, o.addr, o.take, gen, timeout)
	r.mu.Lock()
	defer r.mu.Unlock()
	var oe *orderError
	switch {
	case err == nil:
		r.assigned[o.addr] = o.take
		r.noteOrderLocked(o.addr, o.take, true, rep)
		delete(r.suspect[o.addr], o.take)
	case asOrderError(err, &oe):
		// The node answered: it did not take it.
		r.noteOrderLocked(o.addr, o.take, false, rep)
		delete(r.suspect[o.addr], o.take)
	}
	if len(r.suspect[o.addr]) == 0 {
		delete(r.suspect, o.addr)
	}
	if err != nil {
		r.log.Warn("take failed", "ip", o.addr, "pnn", o.take, "err", err)
		if oe != nil && oe.fault {
			go r.failed(ctx, o.take)
		}
		return false
	}
	r.log.Info("address moved", "ip", o.addr, "from", o.release, "to", o.take)
	return true
}

// orderError is a node's own refusal, as opposed to no answer; fault
// says whether the node itself failed (an event script, the kernel).
type orderError struct {
	msg   string
	fault bool
}

func (e *orderError) Error() string { return e.msg }

func asOrderError(err error, target **orderError) bool {
	oe, ok := err.(*orderError)
	if ok {
		*target = oe
	}
	return ok
}

func (r *Recoverd) order(ctx context.Context, pnn int, kind string, a netip.Addr, newHolder int, gen uint64, timeout time.Duration) (OrderReply, error) {
	payload, _ := json.Marshal(Order{Generation: gen, Leader: r.cfg.PNN, Addrs: []netip.Addr{a}, NewHolder: []int{newHolder}})
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rep OrderReply
	b, err := r.cfg.Transport.Request(cctx, pnn, kind, payload)
	if err != nil {
		return rep, err
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		return rep, fmt.Errorf("decoding %s reply: %w", kind, err)
	}
	if rep.Generation > gen {
		// The node follows a newer generation than this run's: step up
		// above it, so the next run's orders are obeyed.
		if err := r.ObserveGeneration(rep.Generation); err != nil {
			r.log.Warn("order reply with a generation", "pnn", pnn, "err", err)
		}
	}
	if len(rep.Errors) > 0 && rep.Errors[0] != "" {
		return rep, &orderError{msg: rep.Errors[0], fault: len(rep.Faults) > 0 && rep.Faults[0]}
	}
	return rep, nil
}

// failed counts a failed order against a node; two within
// RecoveryGracePeriod ban it for RecoveryBanPeriod (EnableBans).
func (r *Recoverd) failed(ctx context.Context, pnn int) {
	if r.cfg.Ban == nil || r.tunable("EnableBans", 1) == 0 {
		return
	}
	grace := time.Duration(r.tunable("RecoveryGracePeriod", 120)) * time.Second
	now := r.now()
	r.mu.Lock()
	f := slices.DeleteFunc(r.failures[pnn], func(t time.Time) bool { return now.Sub(t) > grace })
	f = append(f, now)
	ban := len(f) >= 2
	if ban {
		f = nil
	}
	r.failures[pnn] = f
	others := 0
	for p, ok := range r.canHost {
		if ok && p != pnn {
			others++
		}
	}
	r.mu.Unlock()
	if ban && others == 0 {
		r.log.Error("node keeps failing takeover orders, but it is the only node that can host addresses: not banning it", "pnn", pnn)
		return
	}
	if ban {
		period := time.Duration(r.tunable("RecoveryBanPeriod", 300)) * time.Second
		r.log.Error("banning node after repeated takeover failures", "pnn", pnn, "period", period)
		if err := r.cfg.Ban(ctx, pnn, period); err != nil {
			r.log.Warn("banning node", "pnn", pnn, "err", err)
		}
	}
}

// RunNow starts a takeover run and waits until its addresses have moved.
func (r *Recoverd) RunNow(ctx context.Context) error {
	w := make(chan struct{})
	r.mu.Lock()
	if !r.leader {
		r.mu.Unlock()
		return ErrNotLeader
	}
	r.waiters = append(r.waiters, w)
	r.runAt = r.now()
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
	select {
	case <-w:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// DryRun reports what a takeover run would move now, moving nothing.
func (r *Recoverd) DryRun() (control.Plan, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.leader {
		return control.Plan{}, ErrNotLeader
	}
	p := r.computeLocked(r.now(), true)
	var out control.Plan
	for _, o := range p.ops {
		from := -1
		if len(o.release) > 0 {
			from = o.release[0]
		}
		out.Moves = append(out.Moves, control.Move{Addr: o.addr, From: from, To: o.take})
	}
	return out, nil
}

// MoveIP moves one address to a node now (`ctdb moveip`).
func (r *Recoverd) MoveIP(ctx context.Context, a netip.Addr, to int) error {
	r.mu.Lock()
	if !r.leader {
		r.mu.Unlock()
		return ErrNotLeader
	}
	st := r.states[to]
	if st == nil || !slices.ContainsFunc(st.Known, func(k PublicAddr) bool { return k.Prefix.Addr() == a }) {
		r.mu.Unlock()
		return fmt.Errorf("node %d cannot host IP address %s", to, a)
	}
	if !st.Flags.CanHost() || !r.peers[to].Alive {
		r.mu.Unlock()
		return fmt.Errorf("node %d cannot host addresses now (%v)", to, st.Flags)
	}
	if r.inflight[a] {
		r.mu.Unlock()
		return fmt.Errorf("address %s is moving already; try again", a)
	}
	var release []int
	holds := false
	for pnn, s := range r.states {
		if slices.Contains(s.Held, a) {
			if pnn == to {
				holds = true
			} else {
				release = append(release, pnn)
			}
		}
	}
	slices.Sort(release)
	o := op{addr: a, release: release, take: to}
	if holds {
		o.take = -1
	}
	r.inflight[a] = true
	gen := r.gen
	r.mu.Unlock()
	if !r.execute(ctx, o, gen) {
		return fmt.Errorf("moving %s to node %d failed; see the leader's log", a, to)
	}
	r.mu.Lock()
	r.assigned[a] = to
	r.mu.Unlock()
	return nil
}

// unknownGateLocked says why a node whose holdings this leader does not
// know (it never reported) still blocks takes ("" if it no longer does).
// A reachable node will report soon; an unreachable one may hold any
// address until its lease, granted by an earlier leader, has run out —
// or, with fencing on, until it has been fenced.
func (r *Recoverd) unknownGateLocked(pnn int, now time.Time, dry bool) string {
	if r.peers[pnn].Alive || r.cfg.Fence == nil {
		if now.Before(r.safeTimeLocked(pnn)) {
			return fmt.Sprintf("waiting for node %d to report what it holds", pnn)
		}
		return ""
	}
	return r.deadGateLocked([]int{pnn}, now, dry)
}

// deadGateLocked says why addresses claimed by the unreachable nodes dead
// cannot move yet ("" if they can). A dry run starts no fencing.
func (r *Recoverd) deadGateLocked(dead []int, now time.Time, dry bool) string {
	for _, d := range dead {
		if dry {
			if r.cfg.Fence == nil && now.Before(r.safeTimeLocked(d)) {
				return fmt.Sprintf("waiting for the lease of node %d to run out", d)
			}
			if fs := r.fencing[d]; r.cfg.Fence != nil && (fs == nil || !fs.done) {
				return fmt.Sprintf("node %d must be fenced first", d)
			}
			continue
		}
		if ok, why := r.fenceGateLocked(r.runCtx, d, now); !ok {
			return why
		}
	}
	return ""
}
