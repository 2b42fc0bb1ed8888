package recoverd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
)

// LeaseMargin is added to LeaseTime before the leader gives away an address
// of a node it no longer grants: the kernel removes an expired address up to
// ~0.3 s late (measured); 0.5 s covers it.
const LeaseMargin = 500 * time.Millisecond

// ErrNotLeader is returned by leader-only calls on a node that is not it.
var ErrNotLeader = errors.New("recoverd: not recovery master")

// MaxGeneration is the largest generation any node accepts. Leaders count
// up from 1, one per election, so no real cluster comes near it; a larger
// value can only be forged or corrupt, and accepting it would let one
// message end the cluster (every real order would be refused as older) or
// wrap the counter. It leaves room to step up past any valid value.
const MaxGeneration = 1 << 62

// ErrBadGeneration is returned for a generation above MaxGeneration.
var ErrBadGeneration = errors.New("recoverd: generation out of range")

// Peer is one node as membership sees it.
type Peer struct {
	PNN        int
	Alive      bool
	Flags      nodeflag.Flags
	Leader     int // the leader this node announces; -1 none
	Generation uint64
}

// Transport is what recoverd needs from membership (daemon/member).
// Requests and sends to the local node must be delivered locally.
type Transport interface {
	Peers() []Peer
	Request(ctx context.Context, pnn int, kind string, payload []byte) ([]byte, error)
	Send(pnn int, kind string, payload []byte, reliable bool) error
}

// Lock takes the cluster lock without waiting. On success it returns a
// channel closed when the lock is lost, and a release function.
type Lock func(ctx context.Context) (lost <-chan struct{}, release func() error, err error)

// Tunables are the tunables recoverd reads (config.Tunables); each is
// read where it is used, so ctdb setvar applies at once.
type Tunables interface {
	LeaseTime() time.Duration
	LeaseRenewInterval() time.Duration
	RecoverInterval() time.Duration
	TakeoverTimeout() time.Duration
	TakeoverParallelism() int
	IPAllocAlgorithm() int
	NoIPTakeover() bool
	NoIPFailback() bool
	EnableBans() bool
	RecoveryGracePeriod() time.Duration
	RecoveryBanPeriod() time.Duration
	FenceTimeout() time.Duration
	FenceDelay() time.Duration
	FenceStartupGrace() time.Duration
}

// GenerationStore keeps the generation across restarts.
type GenerationStore interface {
	Generation() (uint64, error)
	SetGeneration(uint64) error
}

// Config configures Recoverd. Zero values are filled by New.
type Config struct {
	PNN   int
	Nodes []int // every PNN that is not DELETED
	// Deleted are the DELETED nodes' PNNs: they host nothing, but the
	// deterministic algorithm counts them, as CTDB's does.
	Deleted []int
	// Lock is the cluster lock; nil means none (the lowest candidate
	// leads; safe only with quorum).
	Lock   Lock
	Quorum bool // majority quorum
	// FailoverDisabled is `[failover] disabled`: no allocation at all.
	FailoverDisabled bool
	Tunables         Tunables
	Transport        Transport
	Store            GenerationStore
	// Ban bans a node for a period (through its control); nil: no bans.
	Ban func(ctx context.Context, pnn int, period time.Duration) error
	// Fence fences an unreachable node (runs the fence event and waits);
	// nil means fencing is off: addresses wait for the lease instead.
	Fence func(ctx context.Context, pnn int) error
	// Allocate computes the placement (ipalloc).
	Allocate AllocateFunc
	Logger   *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Recoverd elects the leader and, on the leader, grants leases and runs
// takeover runs. Its state is guarded by mu; network calls are made
// without it. A takeover run reads the state as a View (viewLocked),
// decides with Decide, which changes nothing, and then records and
// carries out the Decision (applyLocked, launch).
type Recoverd struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	kick chan struct{} // a takeover run is wanted

	// mu guards everything below.
	mu          sync.Mutex
	leader      bool
	gen         uint64
	leaderSince time.Time
	validUntil  time.Time // grants only before this (see tick)
	lockLost    <-chan struct{}
	release     func() error
	lastTry     time.Time
	quorumOK    bool
	peers       map[int]Peer
	states      map[int]NodeState
	lastGrant   map[int]time.Time // when each node's last grant was given
	// grantEnd is, per node, the end of the lease this leader granted it
	// (grant time + the LeaseTime in that grant): a node's own lease ends
	// no later, since it counts from its request's send time.
	grantEnd map[int]time.Time
	// maxLease is the longest lease any node may hold from an earlier
	// leader: the largest LeaseTime this leader or any requester uses.
	maxLease time.Duration
	// maxSeen is the highest generation this node has seen, persisted
	// (see ObserveGeneration).
	maxSeen    uint64
	assigned   map[netip.Addr]int
	inflight   map[netip.Addr]bool
	inflightTo map[netip.Addr]int               // where a moving address goes (-1: nowhere)
	suspect    map[netip.Addr]map[int]time.Time // may hold it: a take whose result is unknown
	// askState: nodes whose next lease grant asks for a full state
	// report (a take to them went unanswered: only a report tells
	// whether they hold the address, and a node reports only what
	// changes).
	askState    map[int]bool
	failures    map[int][]time.Time
	runAt       time.Time // next run no later than this
	dups        uint64
	lastRun     time.Time
	lastRunTook time.Duration
	runs        uint64
	waiters     []chan struct{} // woken when the current ops finish
	opsRunning  int
	blocked     map[netip.Addr]string // why an address is not being served
	canHost     map[int]bool          // as of the last run
	fencing     map[int]FenceState    // unreachable nodes whose addresses wait for a fence
	lostAt      map[int]time.Time     // when an unreachable node was first seen gone
	silent      map[int]time.Time     // leaders whose grants stopped, until when
	// override records what an acknowledged order did to a node's
	// holdings, until a state report at least as new says so itself:
	// reports are asynchronous, and an older one must not undo an order.
	override map[netip.Addr]map[int]Override
	// moves are the pending `ctdb moveip` requests, by address: Decide
	// reads them as View.Prefer, and each is answered once the run it
	// started has kept or moved its address, or could not.
	moves map[netip.Addr]*moveWish
	// loss counts, per node, the times it was seen alive after it was
	// not (View.Loss); kept across leaderships, as fences outlive them.
	loss      map[int]uint64
	seen      map[int]bool // nodes seen alive since this daemon started
	started   time.Time
	lastStart time.Time // of the last takeover run
}

// New checks cfg and fills defaults.
func New(cfg Config) (*Recoverd, error) {
	if cfg.Transport == nil || cfg.Tunables == nil || cfg.Allocate == nil {
		return nil, errors.New("recoverd: Transport, Tunables and Allocate are required")
	}
	if !slices.Contains(cfg.Nodes, cfg.PNN) {
		return nil, fmt.Errorf("recoverd: PNN %d is not among the nodes %v", cfg.PNN, cfg.Nodes)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Recoverd{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "recoverd"),
		now:        cfg.Now,
		kick:       make(chan struct{}, 1),
		peers:      map[int]Peer{},
		states:     map[int]NodeState{},
		lastGrant:  map[int]time.Time{},
		grantEnd:   map[int]time.Time{},
		assigned:   map[netip.Addr]int{},
		inflight:   map[netip.Addr]bool{},
		inflightTo: map[netip.Addr]int{},
		suspect:    map[netip.Addr]map[int]time.Time{},
		askState:   map[int]bool{},
		failures:   map[int][]time.Time{},
		blocked:    map[netip.Addr]string{},
		fencing:    map[int]FenceState{},
		lostAt:     map[int]time.Time{},
		loss:       map[int]uint64{},
		silent:     map[int]time.Time{},
		override:   map[netip.Addr]map[int]Override{},
		moves:      map[netip.Addr]*moveWish{},
		seen:       map[int]bool{},
		started:    cfg.Now(),
	}
	if cfg.Store != nil {
		g, err := cfg.Store.Generation()
		if err != nil {
			return nil, fmt.Errorf("recoverd: reading generation: %w", err)
		}
		if g > MaxGeneration {
			r.log.Error("stored generation out of range; starting from 0", "generation", g)
			g = 0
		}
		r.maxSeen = g
	}
	return r, nil
}

// ObserveGeneration records a generation seen in a grant, an order or a
// peer's meta: the highest one is persisted before it is acted on, so a
// node never follows an older leader after any sequence of crashes, and a
// new leader starts above it. A leader that learns of a higher generation
// than its own steps up above it (a node that refused its orders, or
// gossiped what an earlier leader used). It returns ErrBadGeneration for a
// value above MaxGeneration, which is ignored.
func (r *Recoverd) ObserveGeneration(g uint64) error {
	if g > MaxGeneration {
		return fmt.Errorf("%w: %d", ErrBadGeneration, g)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if g <= r.maxSeen && !(r.leader && g > r.gen) {
		return nil
	}
	return r.raiseLocked(g, true)
}

// raiseLocked makes g the highest generation seen and, with stepUp on a
// leader whose own is not above it, steps up to g+1. Another leader's own
// generation never makes a leader step up (two lock-less leaders would
// outbid each other for ever; the lower one gives way in tick instead). The store is written under r.mu:
// a bbolt commit is ~0.2 ms and happens once per election, and writing it
// outside the lock would let two raises persist out of order.
func (r *Recoverd) raiseLocked(g uint64, stepUp bool) error {
	next := max(r.maxSeen, g)
	lead := stepUp && r.leader && g > r.gen
	if lead {
		next = g + 1
	}
	if r.cfg.Store != nil && next > r.maxSeen {
		if err := r.cfg.Store.SetGeneration(next); err != nil {
			return fmt.Errorf("persisting generation %d: %w", next, err)
		}
	}
	r.maxSeen = next
	if lead {
		r.log.Warn("stepping the generation up past one seen elsewhere", "seen", g, "generation", next)
		r.gen = next
	}
	return nil
}

// HighestGeneration is the highest generation this node has seen (its
// own as leader included): what it gossips, and the least it obeys.
func (r *Recoverd) HighestGeneration() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxSeen
}

// LeaseTime is the lease length granted to nodes.
func (r *Recoverd) LeaseTime() time.Duration { return r.cfg.Tunables.LeaseTime() }

// leaseTimeLocked is LeaseTime; the name says it is safe under r.mu
// (Tunables has its own lock).
func (r *Recoverd) leaseTimeLocked() time.Duration { return r.LeaseTime() }

// Run elects and leads until ctx ends; then it gives up the lock.
func (r *Recoverd) Run(ctx context.Context) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	defer r.stepDown("shutting down")
	for {
		r.tick(ctx)
		r.maybeRun(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-r.kick:
		}
	}
}

// wake makes Run look again now (a run may be due); it never blocks, and
// may be called with r.mu held.
func (r *Recoverd) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Trigger asks for a takeover run soon (on the leader; ignored elsewhere).
func (r *Recoverd) Trigger(reason string) {
	r.mu.Lock()
	if r.leader {
		r.log.Debug("takeover run requested", "reason", reason)
		r.runAt = r.now()
	}
	r.mu.Unlock()
	r.wake()
}

// Status is the leader's view for `ctdb status`.
type Status struct {
	Leader             int
	Generation         uint64
	LastRun            time.Time
	LastRunTook        time.Duration
	Runs               uint64
	DuplicatesResolved uint64
	Blocked            map[netip.Addr]string
}

// Status reports the leader's counters (zero on a non-leader).
func (r *Recoverd) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Status{Leader: -1, LastRun: r.lastRun, LastRunTook: r.lastRunTook, Runs: r.runs,
		DuplicatesResolved: r.dups, Blocked: map[netip.Addr]string{}}
	if r.leader {
		s.Leader, s.Generation = r.cfg.PNN, r.gen
	} else {
		s.Leader, s.Generation = r.knownLeaderLocked()
	}
	for a, why := range r.blocked {
		s.Blocked[a] = why
	}
	return s
}
