// Package addrtable is the node's address table. It owns the public
// addresses configured on this node's interfaces: which ones it holds and
// under which lease term, the carrier of the public interfaces, what
// answered the last duplicate-address probe, and every kernel change of a
// public address.
//
// Each address goes through its steps in order, one operation at a time:
// a take is probe → add (kernel lifetime within the lease) → takeip →
// gratuitous ARP; a release is releaseip → delete; a refresh sets the
// lifetime again within the lease; a lapse of the lease removes it. An
// operation holds the address's slot from its first check to its last
// kernel call, so no other operation can act on a check that is no longer
// true (a refresh cannot re-create an address that a release has just
// deleted, a scan cannot call an address that is being taken vanished).
// After every add the lease is checked again: a process frozen between
// computing a lifetime and the netlink call must not outlive its lease.
//
// The table's state has one owner, the Run goroutine; methods send it
// closures (do) and wait. Kernel calls and scripts run outside the owner,
// under the address's slot.
//
// Lifecycle: New checks the Config and starts nothing; Run owns the state
// and runs the refresh, scan and persist loops until its context ends;
// methods may be called before Run (they wait for it) and fail with
// ErrStopped after it returned.
package addrtable

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/config"
	"github.com/ctdb-go/ctdb-go/daemon/eventscript"
	"github.com/ctdb-go/ctdb-go/daemon/lease"
	"github.com/ctdb-go/ctdb-go/daemon/state"
)

// Kernel is what the table needs from the kernel (netif.Linux, netif.Fake).
type Kernel interface {
	AddAddr(iface string, p netip.Prefix, lifetime time.Duration) error
	DelAddr(iface string, p netip.Prefix) error
	AllAddrs() (map[string][]netip.Prefix, error)
	Probe(ctx context.Context, iface string, ip netip.Addr, wait time.Duration) (net.HardwareAddr, error)
	Announce(iface string, ip netip.Addr) error
	EstablishedTCP() (map[netip.Addr]int, error)
}

// Events runs takeip and releaseip (eventscript.Runner).
type Events interface {
	Run(ctx context.Context, event string, args ...string) eventscript.Result
}

// Lease is the lease keeper (lease.Keeper).
type Lease interface {
	Term() lease.Term
	Changed() <-chan struct{}
}

// Store persists the held addresses (state.Store), so a restarted
// daemon removes what it held before.
type Store interface {
	SetHeld([]state.Held) error
}

// Config configures a Table.
type Config struct {
	PNN    int    // this node, for messages
	Kernel Kernel // required
	Events Events // required
	Lease  Lease  // required
	Store  Store  // nil: nothing persisted
	// ProbeWait is how long one duplicate-address probe waits for an
	// answer, ProbeTimeout how long a take keeps probing while another
	// host answers; read at every take (tunables ARPProbeWaitMs,
	// TakeIPProbeTimeoutMs). nil: 20 ms and 1 s.
	ProbeWait, ProbeTimeout func() time.Duration
	// Changed is called (it must not block) whenever what the node holds
	// or can host changed, so the leader hears of it.
	Changed func()
	// Describe says why an event failed, for errors; nil: its status.
	Describe func(eventscript.Result) string
	// Public and Links are the node's public addresses and the carrier of
	// its public interfaces at start (SetPublic and SetLink change them).
	Public []config.PublicAddress
	Links  map[string]bool
	Logger *slog.Logger
}

// Fixed timings.
const (
	refreshEvery = 100 * time.Millisecond // lifetime refresh and lapse check
	scanEvery    = time.Second            // kernel listing against the table
	flushGap     = 100 * time.Millisecond // least time between two persists
	// lifetimeMargin is lease time not handed to the kernel: an add that
	// takes longer than this is caught by the check after it.
	lifetimeMargin = 100 * time.Millisecond
	// refreshBefore: a lifetime is set again when this little is left.
	refreshBefore = 600 * time.Millisecond
	// announceRepeat: gratuitous ARPs after a take, as CTDB sends them.
	announceRepeat = 1100 * time.Millisecond
	announceCount  = 2
	// connCountAge is how long one count of the established TCP
	// connections serves further releases: a takeover run releases
	// hundreds of addresses within a second and a count walks the whole
	// TCP table, as ss does.
	connCountAge = 100 * time.Millisecond
)

// ErrStopped is returned by calls after Run has returned.
var ErrStopped = errors.New("addrtable: stopped")

// Table is the address table.
type Table struct {
	cfg  Config
	log  *slog.Logger
	ops  chan func(*tableState)
	quit chan struct{}  // closed when Run's loops end: helpers stop
	stop chan struct{}  // closed when Run returns
	wg   sync.WaitGroup // helpers (announcements, releaseip after a drop)
	// hmu guards closing: no helper starts once Run waits for them.
	hmu     sync.Mutex
	closing bool
	// Counters for metrics.
	takes, takeFailures, releases, leaseDrops, probeAnswered atomic.Uint64
	dirty                                                    chan struct{} // persist wanted
}

// tableState is owned by the Run goroutine.
type tableState struct {
	public  map[netip.Addr]config.PublicAddress
	links   map[string]bool // public interface → carrier
	held    map[netip.Addr]*entry
	foreign map[netip.Addr]string // public addresses here that were not given to us → iface
	busy    map[netip.Addr]chan struct{}
	probed  map[netip.Addr]string // MAC that answered the last probe
	conns   map[netip.Addr]int    // last TCP count
	connsAt time.Time
}

// entry is an address this node holds.
type entry struct {
	prefix    netip.Prefix
	iface     string
	term      uint64    // lease term it was added under
	kernelExp time.Time // when the kernel drops it unless refreshed
	taken     time.Time // when its take completed; zero while pending
}

// New checks cfg and fills defaults. It starts nothing.
func New(cfg Config) (*Table, error) {
	if cfg.Kernel == nil || cfg.Events == nil || cfg.Lease == nil {
		return nil, errors.New("addrtable: Kernel, Events and Lease are required")
	}
	if cfg.ProbeWait == nil {
		cfg.ProbeWait = func() time.Duration { return 20 * time.Millisecond }
	}
	if cfg.ProbeTimeout == nil {
		cfg.ProbeTimeout = func() time.Duration { return time.Second }
	}
	if cfg.Changed == nil {
		cfg.Changed = func() {}
	}
	if cfg.Describe == nil {
		cfg.Describe = func(r eventscript.Result) string { return string(r.Status) }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Table{
		cfg:   cfg,
		log:   cfg.Logger.With("component", "addrtable"),
		ops:   make(chan func(*tableState)),
		quit:  make(chan struct{}),
		stop:  make(chan struct{}),
		dirty: make(chan struct{}, 1),
	}, nil
}

// Run owns the table until ctx ends, then writes the held addresses one
// last time. It runs the refresh, scan and persist loops and waits for
// them.
func (t *Table) Run(ctx context.Context) error {
	s := &tableState{
		public: map[netip.Addr]config.PublicAddress{}, links: map[string]bool{},
		held: map[netip.Addr]*entry{}, foreign: map[netip.Addr]string{},
		busy: map[netip.Addr]chan struct{}{}, probed: map[netip.Addr]string{},
	}
	for _, pa := range t.cfg.Public {
		s.public[pa.Prefix.Addr()] = pa
	}
	for ifc, up := range t.cfg.Links {
		s.links[ifc] = up
	}
	done := make(chan struct{})
	go func() { defer close(done); t.background(ctx) }()
	t.serve(s, done)
	// The loops ended; helpers still use the owner until they are done.
	close(t.quit)
	t.hmu.Lock()
	t.closing = true
	t.hmu.Unlock()
	helpers := make(chan struct{})
	go func() { t.wg.Wait(); close(helpers) }()
	t.serve(s, helpers)
	close(t.stop)
	return nil
}

// serve runs operations on s until until is closed.
func (t *Table) serve(s *tableState, until <-chan struct{}) {
	for {
		select {
		case fn := <-t.ops:
			fn(s)
		case <-until:
			return
		}
	}
}

// helper runs fn on a goroutine that Run waits for; none once Run is
// ending.
func (t *Table) helper(fn func()) {
	t.hmu.Lock()
	defer t.hmu.Unlock()
	if t.closing {
		return
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		fn()
	}()
}

// do runs fn on the owner and waits for it.
func (t *Table) do(fn func(*tableState)) error {
	ran := make(chan struct{})
	select {
	case t.ops <- func(s *tableState) { fn(s); close(ran) }:
	case <-t.stop:
		return ErrStopped
	}
	<-ran
	return nil
}

// background runs the refresh, scan and persist loops until ctx ends.
func (t *Table) background(ctx context.Context) {
	refresh := time.NewTicker(refreshEvery)
	defer refresh.Stop()
	scan := time.NewTicker(scanEvery)
	defer scan.Stop()
	var flush <-chan time.Time
	lastFlush := time.Time{}
	for {
		select {
		case <-ctx.Done():
			t.persist()
			return
		case <-refresh.C:
			t.refresh(ctx)
		case <-t.cfg.Lease.Changed():
			t.refresh(ctx) // the lease lapsed: drop at once
		case <-scan.C:
			t.scan()
		case <-t.dirty:
			if wait := flushGap - time.Since(lastFlush); wait > 0 {
				flush = time.After(wait)
				continue
			}
			t.persist()
			lastFlush = time.Now()
		case <-flush:
			flush = nil
			t.persist()
			lastFlush = time.Now()
		}
	}
}

// acquire waits until no other operation acts on a and takes its slot;
// the returned function gives it back.
func (t *Table) acquire(ctx context.Context, a netip.Addr) (func(), error) {
	for {
		var wait chan struct{}
		if err := t.do(func(s *tableState) {
			if ch, busy := s.busy[a]; busy {
				wait = ch
				return
			}
			s.busy[a] = make(chan struct{})
		}); err != nil {
			return nil, err
		}
		if wait == nil {
			return func() { t.free(a) }, nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.stop:
			return nil, ErrStopped
		}
	}
}

// tryAcquire takes a's slot only if it is free.
func (t *Table) tryAcquire(s *tableState, a netip.Addr) bool {
	if _, busy := s.busy[a]; busy {
		return false
	}
	s.busy[a] = make(chan struct{})
	return true
}

// free gives a's slot back.
func (t *Table) free(a netip.Addr) {
	t.do(func(s *tableState) {
		if ch, ok := s.busy[a]; ok {
			close(ch)
			delete(s.busy, a)
		}
	})
}

// changed persists the held addresses (batched) and tells the node.
func (t *Table) changed() {
	select {
	case t.dirty <- struct{}{}:
	default:
	}
	t.cfg.Changed()
}

// persist writes the held addresses.
func (t *Table) persist() {
	if t.cfg.Store == nil {
		return
	}
	var hs []state.Held
	if err := t.do(func(s *tableState) {
		for _, e := range s.held {
			hs = append(hs, state.Held{Prefix: e.prefix, Iface: e.iface, Expires: e.kernelExp})
		}
	}); err != nil {
		return
	}
	if err := t.cfg.Store.SetHeld(hs); err != nil {
		t.log.Warn("persisting held addresses", "err", err)
	}
}

// SetPublic installs this node's public addresses (public_addresses).
func (t *Table) SetPublic(pas []config.PublicAddress) error {
	return t.do(func(s *tableState) {
		s.public = make(map[netip.Addr]config.PublicAddress, len(pas))
		for _, pa := range pas {
			s.public[pa.Prefix.Addr()] = pa
		}
	})
}

// SetLink records a public interface's carrier; it reports whether that
// changed it.
func (t *Table) SetLink(iface string, up bool) (changed bool) {
	t.do(func(s *tableState) {
		was, known := s.links[iface]
		s.links[iface] = up
		changed = !known || was != up
	})
	return changed
}

// Snapshot is what the table holds, for reports, status and metrics.
type Snapshot struct {
	Held    map[netip.Addr]string // address → interface
	Foreign map[netip.Addr]string // found here, not given to us → interface
	Links   map[string]bool
	Probed  map[netip.Addr]string // MAC that answered the last probe
}

// Snapshot returns a copy of the table's state.
func (t *Table) Snapshot() Snapshot {
	sn := Snapshot{Held: map[netip.Addr]string{}, Foreign: map[netip.Addr]string{},
		Links: map[string]bool{}, Probed: map[netip.Addr]string{}}
	t.do(func(s *tableState) {
		for a, e := range s.held {
			sn.Held[a] = e.iface
		}
		for a, ifc := range s.foreign {
			sn.Foreign[a] = ifc
		}
		for ifc, up := range s.links {
			sn.Links[ifc] = up
		}
		for a, mac := range s.probed {
			sn.Probed[a] = mac
		}
	})
	return sn
}

// Counters are the table's event counts.
type Counters struct {
	Takes, TakeFailures, Releases, LeaseDrops, ProbeAnswered uint64
}

// Counters returns the counts so far.
func (t *Table) Counters() Counters {
	return Counters{Takes: t.takes.Load(), TakeFailures: t.takeFailures.Load(), Releases: t.releases.Load(),
		LeaseDrops: t.leaseDrops.Load(), ProbeAnswered: t.probeAnswered.Load()}
}

// lifetime is the kernel lifetime for an address added at now: the whole
// seconds left on the lease less lifetimeMargin, rounded down, so the
// kernel drops the address no later than the lease ends. Zero means "do
// not hold it".
func lifetime(end, now time.Time) time.Duration {
	left := end.Sub(now) - lifetimeMargin
	if left < time.Second {
		return 0
	}
	return left.Truncate(time.Second)
}

// FaultError marks a failure that is this node's own (an event script or
// the kernel failed): the leader bans a node for repeated faults only, not
// for refusals that are not its doing.
type FaultError struct{ Err error }

func (e *FaultError) Error() string { return e.Err.Error() }
func (e *FaultError) Unwrap() error { return e.Err }

func fault(err error) error { return &FaultError{err} }

// IsFault reports whether err is the node's own fault.
func IsFault(err error) bool {
	var f *FaultError
	return errors.As(err, &f)
}

// errLeaseEnded: the lease ended or lapsed while an address was added, so
// it was removed again. Not the node's fault.
var errLeaseEnded = errors.New("lease ended while the address was added")

// ErrNoLease is returned by Take when the node has no lease to add with.
var ErrNoLease = errors.New("no lease")

func errNotPublic(pnn int, a netip.Addr) error {
	return fmt.Errorf("%s is not a public address of node %d", a, pnn)
}
