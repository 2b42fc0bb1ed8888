package recoverd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/ctdb-go/ctdb-go/ipalloc"
)

// minRunGap is the least time between the starts of two takeover runs.
const minRunGap = 100 * time.Millisecond

// noteOrderLocked records an acknowledged order's effect.
func (r *Recoverd) noteOrderLocked(a netip.Addr, pnn int, held bool, rep OrderReply) {
	if r.override[a] == nil {
		r.override[a] = map[int]Override{}
	}
	r.override[a][pnn] = Override{Held: held, Boot: rep.Boot, Version: rep.Version}
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
			r.wake()
		}()
		return
	}
	r.lastStart = now
	interval := r.cfg.Tunables.RecoverInterval()
	r.runAt = now.Add(interval)
	start := time.Now()
	d := Decide(r.viewLocked(), now)
	if !d.Wake.IsZero() && d.Wake.Before(r.runAt) {
		r.runAt = d.Wake
	}
	r.applyLocked(ctx, d)
	gen := r.gen
	if len(d.Ops) > 0 {
		r.opsRunning += len(d.Ops)
		r.runs++
		r.lastRun = now
	}
	waiters := r.waiters
	if len(d.Ops) == 0 {
		r.waiters = nil
	}
	r.mu.Unlock()
	if len(d.Ops) == 0 {
		for _, w := range waiters {
			close(w)
		}
		return
	}
	r.log.Info("takeover run", "moves", len(d.Ops), "generation", gen)
	r.launch(ctx, d.Ops, gen, start)
}

// viewLocked is what Decide reads, as of now. The maps are r's own, not
// copies: Decide only reads them, and it runs before r.mu is released.
func (r *Recoverd) viewLocked() View {
	v := View{
		Self:        r.cfg.PNN,
		Nodes:       r.cfg.Nodes,
		Deleted:     r.cfg.Deleted,
		Alive:       make(map[int]bool, len(r.peers)),
		States:      r.states,
		Overrides:   r.override,
		Assigned:    r.assigned,
		Moving:      r.inflight,
		MovingTo:    r.inflightTo,
		Suspect:     make(map[netip.Addr][]int, len(r.suspect)),
		CouldHost:   r.canHost,
		GrantEnd:    r.grantEnd,
		LastGrant:   r.lastGrant,
		LeaderSince: r.leaderSince,
		MaxLease:    r.maxLease,
		LostAt:      r.lostAt,
		Fencing:     r.fencing,
		Loss:        r.loss,
		Seen:        r.seen,
		Started:     r.started,

		FailoverDisabled:  r.cfg.FailoverDisabled,
		Fence:             r.cfg.Fence != nil,
		Quorum:            r.cfg.Quorum,
		Algorithm:         ipalloc.Algorithm(r.cfg.Tunables.IPAllocAlgorithm()),
		NoIPTakeover:      r.cfg.Tunables.NoIPTakeover(),
		NoIPFailback:      r.cfg.Tunables.NoIPFailback(),
		RenewInterval:     r.cfg.Tunables.LeaseRenewInterval(),
		FenceDelay:        r.cfg.Tunables.FenceDelay(),
		FenceStartupGrace: r.cfg.Tunables.FenceStartupGrace(),
		Allocate:          r.cfg.Allocate,
	}
	for pnn, p := range r.peers {
		v.Alive[pnn] = p.Alive
	}
	for a, m := range r.suspect {
		for pnn := range m {
			v.Suspect[a] = append(v.Suspect[a], pnn)
		}
	}
	if len(r.moves) > 0 {
		v.Prefer = make(map[netip.Addr]int, len(r.moves))
		for a, w := range r.moves {
			v.Prefer[a] = w.to
		}
	}
	return v
}

// applyLocked records what decision d implies and starts its fences;
// the caller launches its ops. Addresses with an op are marked moving
// (towards their take) until the op ends.
func (r *Recoverd) applyLocked(ctx context.Context, d Decision) {
	for a, t := range d.Keep {
		r.assigned[a] = t
	}
	r.blocked = d.Blocked
	r.canHost = d.CanHost
	if len(d.Duplicates) > 0 {
		// Counted in DuplicatesResolved once their ops succeed (launch).
		r.log.Warn("address on more than one node; releasing it on all but one", "dups", d.Duplicates)
	}
	for pnn, t := range d.LostAt {
		r.lostAt[pnn] = t
	}
	for pnn, fs := range d.FenceStates {
		r.fencing[pnn] = fs
	}
	for _, pnn := range d.Fence {
		go r.fence(ctx, pnn, d.FenceStates[pnn].Loss)
	}
	r.settleMovesLocked(d)
	for _, o := range d.Ops {
		r.inflight[o.Addr] = true
		r.inflightTo[o.Addr] = o.Take
	}
}

// launch runs ops concurrently and sends ipreallocated when all are done.
// A move spends most of its ~50-100 ms waiting (two round trips, the ARP
// probe's wait, the scripts), so many run at once: TakeoverParallelism
// per node, since each node does its own part.
func (r *Recoverd) launch(ctx context.Context, ops []Op, gen uint64, start time.Time) {
	par := r.cfg.Tunables.TakeoverParallelism()
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
			r.mu.Lock()
			if ok && o.Duplicate {
				r.dups++
			}
			if w := r.moves[o.Addr]; w != nil && w.op {
				var err error
				if !ok {
					err = fmt.Errorf("moving %s to node %d failed; see the leader's log", o.Addr, w.to)
				}
				r.answerMoveLocked(o.Addr, err)
			}
			r.mu.Unlock()
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
func (r *Recoverd) execute(ctx context.Context, o Op, gen uint64) bool {
	defer func() {
		r.mu.Lock()
		delete(r.inflight, o.Addr)
		delete(r.inflightTo, o.Addr)
		r.mu.Unlock()
	}()
	timeout := r.cfg.Tunables.TakeoverTimeout()
	for _, pnn := range o.Release {
		rep, err := r.order(ctx, pnn, KindRelease, o.Addr, o.Take, gen, timeout)
		var oe *orderError
		if asOrderError(err, &oe) && oe.fault {
			// The releaseip event failed, but the address is gone.
			r.mu.Lock()
			r.noteOrderLocked(o.Addr, pnn, false, rep)
			r.mu.Unlock()
			r.failed(ctx, pnn)
		}
		if err != nil {
			r.log.Warn("release failed", "ip", o.Addr, "pnn", pnn, "err", err)
			return false
		}
		r.mu.Lock()
		r.noteOrderLocked(o.Addr, pnn, false, rep)
		if m := r.suspect[o.Addr]; m != nil {
			delete(m, pnn)
		}
		if r.assigned[o.Addr] == pnn {
			delete(r.assigned, o.Addr)
		}
		r.mu.Unlock()
	}
	if o.Take < 0 {
		return true
	}
	r.mu.Lock()
	if r.suspect[o.Addr] == nil {
		r.suspect[o.Addr] = map[int]time.Time{}
	}
	r.suspect[o.Addr][o.Take] = r.now()
	r.mu.Unlock()
	rep, err := r.order(ctx, o.Take, KindTake, o.Addr, o.Take, gen, timeout)
	r.mu.Lock()
	defer r.mu.Unlock()
	var oe *orderError
	switch {
	case err == nil:
		r.assigned[o.Addr] = o.Take
		r.noteOrderLocked(o.Addr, o.Take, true, rep)
		delete(r.suspect[o.Addr], o.Take)
	case asOrderError(err, &oe):
		// The node answered: it did not take it.
		r.noteOrderLocked(o.Addr, o.Take, false, rep)
		delete(r.suspect[o.Addr], o.Take)
	}
	if len(r.suspect[o.Addr]) == 0 {
		delete(r.suspect, o.Addr)
	}
	if err != nil && oe == nil {
		// No answer: the node may or may not hold it now. Its next
		// grant asks for a report, which settles it.
		r.askState[o.Take] = true
	}
	if err != nil {
		r.log.Warn("take failed", "ip", o.Addr, "pnn", o.Take, "err", err)
		if oe != nil && oe.fault {
			go r.failed(ctx, o.Take)
		}
		return false
	}
	r.log.Info("address moved", "ip", o.Addr, "from", o.Release, "to", o.Take)
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
	if r.cfg.Ban == nil || !r.cfg.Tunables.EnableBans() {
		return
	}
	grace := r.cfg.Tunables.RecoveryGracePeriod()
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
		period := r.cfg.Tunables.RecoveryBanPeriod()
		r.log.Error("banning node after repeated takeover failures", "pnn", pnn, "period", period)
		if err := r.cfg.Ban(ctx, pnn, period); err != nil {
			r.log.Warn("banning node", "pnn", pnn, "err", err)
		}
	}
}
