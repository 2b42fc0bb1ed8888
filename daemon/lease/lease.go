// Package lease is the node's lease keeper. It owns this node's lease
// with the leader: it asks the leader for a renewal every RenewInterval,
// extends the lease on a grant that answers one of its own requests, bounds
// the lease by this node's LeaseTime at every moment (a lowered LeaseTime
// shortens the current lease at once), notices a suspend of the host, and
// publishes the lease as a Term.
//
// The lease is measured on this node's monotonic clock from the send time
// of the request a grant answers: send time + min(the grant's LeaseTime,
// the local LeaseTime). No clocks are compared across nodes; the leader
// waits for its own grant time + LeaseTime, which is later.
//
// A Term's ID changes whenever the lease lapses (it ended, or the host was
// suspended): an address added under an older ID may have been dropped by
// the kernel and given to another node meanwhile, so it must never be
// refreshed; the address table drops it instead. A grant after a lapse
// starts a new ID, it never revives the old one.
//
// Lifecycle: New checks the Config; Run is the owner of the lease's state
// until its context ends; Grant, Term and Changed may be called from any
// goroutine at any time.
package lease

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ctdb-go/ctdb-go/recoverd"
)

// Term is the lease as the rest of the node sees it.
type Term struct {
	// End is when the lease ends (monotonic time); the zero Time or a
	// past one means no lease.
	End time.Time
	// ID names one unbroken stretch of leases; it changes on every lapse.
	ID uint64
}

// Valid reports whether the lease runs at now.
func (t Term) Valid(now time.Time) bool { return now.Before(t.End) }

// Leader is what the keeper needs to know of the election
// (recoverd.Recoverd).
type Leader interface {
	// Leader is the leader this node follows and its generation; -1 if none.
	Leader() (int, uint64)
	// ObserveGeneration records a generation seen in a grant; it fails
	// for one that is out of range.
	ObserveGeneration(uint64) error
	// HighestGeneration is the highest generation this node has seen.
	HighestGeneration() uint64
	// SuspectLeader says the leader stopped answering.
	SuspectLeader(pnn int, until time.Time)
}

// Config configures a Keeper.
type Config struct {
	// PNN is this node's number. Required (may be 0).
	PNN int
	// Leader is the election. Required.
	Leader Leader
	// Send sends a lease request to the leader. For this node's own
	// leader the daemon answers locally and calls Grant. Required. It
	// must not block for long: it is called from the owner loop.
	Send func(leader int, req recoverd.LeaseRequest) error
	// LeaseTime is this node's LeaseTime, read at every use, so a changed
	// tunable applies at once. Required.
	LeaseTime func() time.Duration
	// RenewInterval is the time between two requests, read at every use.
	// nil means 250 ms.
	RenewInterval func() time.Duration
	// Report returns the boot and version of the node's state report, sent
	// with each request so the leader can ask for a newer one. nil: zeros.
	Report func() (boot int64, version uint64)
	// WantState is called when a grant asks for a full state report (the
	// leader's copy is older than this node's); nil: ignored. It must not
	// block.
	WantState func()
	// SuspendGap reads CLOCK_BOOTTIME - CLOCK_MONOTONIC
	// (netif.SuspendGap); nil means suspends are not detected.
	SuspendGap func() (time.Duration, error)
	// Logger; nil discards.
	Logger *slog.Logger
}

// Defaults and fixed timings.
const (
	DefaultRenewInterval = 250 * time.Millisecond
	// checkInterval is how often the keeper checks for a lapse, a
	// suspend and a lowered LeaseTime between requests.
	checkInterval = 100 * time.Millisecond
	// suspendSlack is the least growth of CLOCK_BOOTTIME over
	// CLOCK_MONOTONIC taken for a suspend (reading noise is far less).
	suspendSlack = 100 * time.Millisecond
	// forgetAfter drops a request that was never answered.
	forgetAfter = 10 * time.Second
	// silentAfter: a leader that answered before but not for this many
	// renew intervals is suspected (an election need not wait for
	// memberlist to declare it dead; its lock still decides).
	silentAfter = 3
)

// Keeper owns the lease. Its state lives in the Run goroutine; Term is
// published through an atomic pointer after every change.
type Keeper struct {
	cfg   Config
	log   *slog.Logger
	term  atomic.Pointer[Term]
	grant chan grantMsg // Grant → Run
	chg   chan struct{} // Changed; capacity 1
	seen  atomic.Uint64 // grants accepted (metrics)
	lapse atomic.Uint64 // lapses (metrics)
}

type grantMsg struct {
	from int
	g    recoverd.LeaseGrant
	at   time.Time
}

// request is one lease request this node sent.
type request struct {
	at     time.Time
	leader int
}

// New checks cfg and fills defaults. It starts nothing.
func New(cfg Config) (*Keeper, error) {
	if cfg.Leader == nil || cfg.Send == nil || cfg.LeaseTime == nil {
		return nil, errors.New("lease: Leader, Send and LeaseTime are required")
	}
	if cfg.RenewInterval == nil {
		cfg.RenewInterval = func() time.Duration { return DefaultRenewInterval }
	}
	if cfg.Report == nil {
		cfg.Report = func() (int64, uint64) { return 0, 0 }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	k := &Keeper{
		cfg:   cfg,
		log:   cfg.Logger.With("component", "lease"),
		grant: make(chan grantMsg, 64),
		chg:   make(chan struct{}, 1),
	}
	k.term.Store(&Term{ID: 1})
	return k, nil
}

// Term is the current lease.
func (k *Keeper) Term() Term { return *k.term.Load() }

// Changed is signalled (capacity 1, never closed) whenever the Term's ID
// changes: a lapse the address table must act on at once.
func (k *Keeper) Changed() <-chan struct{} { return k.chg }

// Grants is the number of grants accepted.
func (k *Keeper) Grants() uint64 { return k.seen.Load() }

// Lapses is the number of times the lease lapsed while addresses could
// have been held.
func (k *Keeper) Lapses() uint64 { return k.lapse.Load() }

// Grant hands a grant from node from to the keeper. It never blocks: a
// grant that finds the queue full is dropped (the next renewal follows in
// RenewInterval).
func (k *Keeper) Grant(from int, g recoverd.LeaseGrant) {
	select {
	case k.grant <- grantMsg{from: from, g: g, at: time.Now()}:
	default:
		k.log.Debug("dropping a grant: queue full", "from", from)
	}
}

// Run keeps the lease until ctx ends.
func (k *Keeper) Run(ctx context.Context) error {
	s := &state{k: k, sent: map[uint64]request{}}
	renew := time.NewTimer(k.cfg.RenewInterval())
	defer renew.Stop()
	check := time.NewTicker(checkInterval)
	defer check.Stop()
	s.checkSuspend(time.Now()) // the first reading is the baseline
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-renew.C:
			s.ask(time.Now())
			renew.Reset(k.cfg.RenewInterval())
		case m := <-k.grant:
			s.onGrant(m)
		case <-check.C:
			s.check(time.Now())
		}
	}
}

// state is the lease's state, owned by Run.
type state struct {
	k         *Keeper
	seq       uint64
	sent      map[uint64]request
	end       time.Time // lease end; zero: none yet
	base      time.Time // send time of the request behind end
	id        uint64
	lastGrant time.Time
	grantFrom int
	gap       time.Duration // last SuspendGap reading
	gapKnown  bool
}

// publish stores the current term.
func (s *state) publish() {
	s.k.term.Store(&Term{End: s.end, ID: max(s.id, 1)})
}

// newID starts a new term: everything held under the old one goes.
func (s *state) newID(why string) {
	s.id = max(s.id, 1) + 1
	s.k.lapse.Add(1)
	s.k.log.Warn("lease lapsed", "why", why)
	s.publish()
	select {
	case s.k.chg <- struct{}{}:
	default:
	}
}

// ask sends a lease request to the leader this node follows.
func (s *state) ask(now time.Time) {
	leader, _ := s.k.cfg.Leader.Leader()
	if leader < 0 {
		return
	}
	for q, r := range s.sent {
		if now.Sub(r.at) > forgetAfter {
			delete(s.sent, q)
		}
	}
	if leader != s.k.cfg.PNN && !s.lastGrant.IsZero() && s.grantFrom == leader &&
		now.Sub(s.lastGrant) > silentAfter*s.k.cfg.RenewInterval() {
		s.k.cfg.Leader.SuspectLeader(leader, now.Add(time.Second))
	}
	s.seq++
	s.sent[s.seq] = request{at: now, leader: leader}
	boot, ver := s.k.cfg.Report()
	req := recoverd.LeaseRequest{PNN: s.k.cfg.PNN, Seq: s.seq, Generation: s.k.cfg.Leader.HighestGeneration(),
		StateBoot: boot, StateVersion: ver, LeaseTime: s.k.cfg.LeaseTime()}
	if err := s.k.cfg.Send(leader, req); err != nil {
		s.k.log.Debug("sending lease request", "leader", leader, "err", err)
	}
}

// onGrant extends the lease by a grant from node from. It counts only as
// the answer to a request this node sent to that node, from the leader it
// names, in a generation no older than any this node has seen.
func (s *state) onGrant(m grantMsg) {
	g := m.g
	req, ok := s.sent[g.Seq]
	if !ok || req.leader != m.from || g.Leader != m.from {
		s.k.log.Debug("ignoring a grant this node did not ask that node for", "from", m.from, "leader", g.Leader, "seq", g.Seq)
		return
	}
	if err := s.k.cfg.Leader.ObserveGeneration(g.Generation); err != nil {
		s.k.log.Warn("ignoring grant", "from", m.from, "err", err)
		return
	}
	if g.Generation < s.k.cfg.Leader.HighestGeneration() {
		return
	}
	s.check(m.at) // a lapse before this grant is a lapse
	s.lastGrant, s.grantFrom = m.at, m.from
	s.k.seen.Add(1)
	if exp := req.at.Add(min(g.LeaseTime, s.k.cfg.LeaseTime())); exp.After(s.end) {
		s.end, s.base = exp, req.at
		s.publish()
	}
	if g.WantState && s.k.cfg.WantState != nil {
		s.k.cfg.WantState()
	}
}

// check ends the term on a lapse or a suspend, and bounds the lease by the
// local LeaseTime.
func (s *state) check(now time.Time) {
	if d := s.checkSuspend(now); d > 0 {
		s.k.log.Error("host was suspended: the lease and every address held under it are gone", "suspended", d)
		s.end = now
		clear(s.sent) // no request sent before the suspend may extend it
		s.newID("suspend")
		return
	}
	if !s.base.IsZero() {
		if b := s.base.Add(s.k.cfg.LeaseTime()); b.Before(s.end) {
			s.end = b
			s.publish()
		}
	}
	if !s.end.IsZero() && !now.Before(s.end) {
		// The lease ran out: a later grant starts a new term.
		s.end, s.base = time.Time{}, time.Time{}
		s.newID("ran out")
	}
}

// checkSuspend returns how long the host was suspended since the last
// reading, 0 if it was not.
func (s *state) checkSuspend(time.Time) time.Duration {
	if s.k.cfg.SuspendGap == nil {
		return 0
	}
	gap, err := s.k.cfg.SuspendGap()
	if err != nil {
		return 0
	}
	prev, known := s.gap, s.gapKnown
	s.gap, s.gapKnown = gap, true
	if !known || gap-prev < suspendSlack {
		return 0
	}
	return gap - prev
}
