// Package member owns this node's membership in the cluster. It runs
// hashicorp/memberlist over the nodes' private addresses, unicast only,
// under the cluster's name as memberlist label (packets of another cluster
// are dropped) and an optional encryption key; it gossips each node's Meta
// (PNN, flags, generation, leader), turns memberlist's callbacks into an
// Event channel, carries node-to-node messages (one-way, and request/response
// with a request id) and push/pull state that does not fit in the meta.
//
// A node's memberlist name is "pnn-N"; nodes with other names, with a meta
// that does not decode or names another PNN, or at an address that is not
// one of Config.Peers are refused (memberlist's AliveDelegate).
//
// Lifecycle: New checks the Config and starts nothing; Run creates the
// memberlist (binds the UDP and TCP port), joins the peers, keeps joining
// the ones it does not see, and leaves and shuts down when its context ends
// or Close is called. Close is idempotent and waits for every goroutine of
// the Member, handlers included.
package member

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
)

// Config configures a Member.
type Config struct {
	// Cluster is the cluster's name, used as memberlist label: packets and
	// streams with another label are dropped. Required, at most 255 bytes.
	Cluster string
	// PNN is this node's number; its memberlist name is "pnn-PNN".
	PNN int
	// Bind is this node's private address and gossip port (UDP and TCP).
	// Required with the real transport, and must be a specific address:
	// peers know this node by it. Ignored when Transport is set.
	Bind netip.AddrPort
	// Peers are every other node's private address and port. A node at an
	// address not listed here is refused.
	Peers []netip.AddrPort
	// Key, if set, encrypts and authenticates all gossip (AES-GCM with
	// memberlist's SecretKey); 16, 24 or 32 bytes. The label alone
	// separates clusters but authenticates nothing.
	Key []byte

	// Failure detection and gossip; 0 means the LAN-tuned default, which
	// detects a dead node in about 0.8 s (measured.md §4, "t2").
	ProbeInterval  time.Duration // between probes of a random node; 200ms
	ProbeTimeout   time.Duration // for an ack to a direct probe; 100ms, <= ProbeInterval
	SuspicionMult  int           // suspicion lasts SuspicionMult × ProbeInterval (N < 10); 2
	GossipInterval time.Duration // between gossip rounds; 50ms

	// RejoinInterval is how often Run tries to join peers it does not see
	// (not started yet, or on the other side of a healed partition); 1s.
	RejoinInterval time.Duration
	// PushPullInterval is how often a node exchanges full state (members and
	// SetLocalState's bytes) with a random peer; 5s. memberlist stretches
	// it for clusters above 32 nodes.
	PushPullInterval time.Duration

	// Transport carries memberlist's packets and streams; nil means the
	// real UDP+TCP transport on Bind. Tests use memberlist.MockNetwork.
	Transport memberlist.Transport
	Logger    *slog.Logger // nil means slog.Default()
}

// Defaults, LAN-tuned (measured.md §4).
const (
	defaultProbeInterval    = 200 * time.Millisecond
	defaultProbeTimeout     = 100 * time.Millisecond
	defaultSuspicionMult    = 2
	defaultGossipInterval   = 50 * time.Millisecond
	defaultRejoinInterval   = time.Second
	defaultPushPullInterval = 5 * time.Second

	// suspicionMaxTimeoutMult caps how much longer than the minimum a
	// suspicion lasts without confirmations; memberlist's LAN default of 6
	// is for large clusters.
	suspicionMaxTimeoutMult = 2
	// tcpTimeout bounds a join, a push/pull and a reliable message send
	// (memberlist's LAN default is 10s, far longer than a LAN needs).
	tcpTimeout = 2 * time.Second
	// leaveTimeout bounds how long Run waits for its leave message to go out.
	leaveTimeout = time.Second
	// maxInflight bounds handler goroutines; messages beyond are dropped
	// (a request then times out at the sender) and a warning is logged.
	maxInflight = 1024
	// maxBestEffort is the largest best-effort frame: memberlist's
	// UDPBufferSize, the payload of one packet on a 1500-byte MTU.
	maxBestEffort = 1400
	// maxReliable is memberlist's limit for a reliable user message.
	maxReliable = 20 << 20
)

// Peer is one node as this node sees it.
type Peer struct {
	PNN   int
	Addr  netip.AddrPort // its private gossip address
	Alive bool           // false once memberlist declared it dead or it left
	Meta  Meta           // its last gossiped meta
}

// EventKind says what happened to a peer.
type EventKind int

const (
	Join   EventKind = iota + 1 // became alive (also after being dead)
	Leave                       // left, or declared dead
	Update                      // changed its meta
)

func (k EventKind) String() string {
	switch k {
	case Join:
		return "join"
	case Leave:
		return "leave"
	case Update:
		return "update"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one membership change, this node's own included.
type Event struct {
	Kind EventKind
	Peer Peer // as it is after the change
}

// Handler serves one kind of message. For a request its result is sent
// back (an error as a RemoteError); for a one-way message it is dropped.
// ctx ends when the Member stops, and for a request when the requester
// stops waiting; a handler must return then.
type Handler func(ctx context.Context, from int, payload []byte) ([]byte, error)

var (
	// ErrNotRunning is returned by Send and Request before Run.
	ErrNotRunning = errors.New("member: not running")
	// ErrClosed is returned once the Member stopped.
	ErrClosed = errors.New("member: closed")
	// ErrUnknownPeer is returned for a PNN that is not an alive member.
	ErrUnknownPeer = errors.New("member: no such peer")
	// ErrPeerLeft is returned by Request when the peer left or was declared
	// dead while the request was outstanding.
	ErrPeerLeft = errors.New("member: peer left")
)

// RemoteError is a request's handler error, or the remote's "no handler".
type RemoteError struct {
	PNN  int    // who answered
	Kind string // the request's kind
	Msg  string // the error's text
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("pnn %d handling %s: %s", e.PNN, e.Kind, e.Msg)
}

// Member is this node's membership. Its methods are safe for concurrent use.
type Member struct {
	cfg     Config
	log     *slog.Logger
	name    string
	peerSet map[netip.AddrPort]bool

	closing   chan struct{} // closed by Close
	closeOnce sync.Once
	done      chan struct{} // closed once stopped: Run returned, or Close before Run
	events    chan Event    // closed once stopped
	metaCh    chan struct{} // cap 1: SetMeta asks Run to gossip the meta
	eventWake chan struct{} // cap 1: queue grew
	stateWake chan struct{} // cap 1: remote grew

	// stopCtx ends when the Member stops; handlers run under it.
	stopCtx context.Context
	stop    context.CancelFunc
	// wg counts handler goroutines and the two delivery goroutines.
	wg     sync.WaitGroup
	nextID atomic.Uint64

	// mu guards the fields below. It is never held while calling into
	// memberlist, whose callbacks (delegate, below) take it.
	mu    sync.Mutex
	state runState
	ml    *memberlist.Memberlist
	meta  Meta
	peers map[int]Peer
	// nodes holds a copy of each alive member's memberlist Node, taken in
	// the event callbacks: memberlist's Members and LocalNode return
	// pointers into its own state, which it rewrites under its lock, so
	// reading them at all is a data race.
	nodes       map[int]memberlist.Node
	handlers    map[string]Handler
	pending     map[uint64]*call
	inflight    int
	queue       []Event        // events not yet taken from the channel
	remote      map[int][]byte // latest push/pull state per PNN, not yet delivered
	localState  func() []byte
	remoteState func(pnn int, state []byte)
	joinErr     map[netip.AddrPort]string // last join failure logged per peer
}

type runState int

const (
	stateNew runState = iota
	stateRunning
	stateStopped
)

// call is an outstanding Request.
type call struct {
	pnn int
	ch  chan result // cap 1; the first answer wins
}

type result struct {
	payload []byte
	err     error
}

// New checks cfg and fills in defaults. It starts nothing: Run does.
func New(cfg Config) (*Member, error) {
	if cfg.Cluster == "" {
		return nil, errors.New("member: Cluster (the cluster's name) is required")
	}
	if len(cfg.Cluster) > memberlist.LabelMaxSize {
		return nil, fmt.Errorf("member: cluster name longer than %d bytes", memberlist.LabelMaxSize)
	}
	if cfg.PNN < 0 || cfg.PNN > maxPNN {
		return nil, fmt.Errorf("member: PNN %d out of range", cfg.PNN)
	}
	if cfg.Transport == nil {
		if !cfg.Bind.IsValid() || cfg.Bind.Addr().IsUnspecified() {
			return nil, fmt.Errorf("member: Bind %v: want this node's private address and port", cfg.Bind)
		}
	}
	switch len(cfg.Key) {
	case 0, 16, 24, 32:
	default:
		return nil, fmt.Errorf("member: key is %d bytes, want 16, 24 or 32", len(cfg.Key))
	}
	if cfg.ProbeInterval < 0 || cfg.ProbeTimeout < 0 || cfg.SuspicionMult < 0 ||
		cfg.GossipInterval < 0 || cfg.RejoinInterval < 0 || cfg.PushPullInterval < 0 {
		return nil, errors.New("member: negative timing")
	}
	if cfg.ProbeInterval == 0 {
		cfg.ProbeInterval = defaultProbeInterval
	}
	if cfg.ProbeTimeout == 0 {
		cfg.ProbeTimeout = min(defaultProbeTimeout, cfg.ProbeInterval)
	}
	if cfg.ProbeTimeout > cfg.ProbeInterval {
		return nil, fmt.Errorf("member: ProbeTimeout %v longer than ProbeInterval %v", cfg.ProbeTimeout, cfg.ProbeInterval)
	}
	if cfg.SuspicionMult == 0 {
		cfg.SuspicionMult = defaultSuspicionMult
	}
	if cfg.GossipInterval == 0 {
		cfg.GossipInterval = defaultGossipInterval
	}
	if cfg.RejoinInterval == 0 {
		cfg.RejoinInterval = defaultRejoinInterval
	}
	if cfg.PushPullInterval == 0 {
		cfg.PushPullInterval = defaultPushPullInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Key = slices.Clone(cfg.Key)
	bind := unmap(cfg.Bind)
	peerSet := make(map[netip.AddrPort]bool, len(cfg.Peers))
	peers := make([]netip.AddrPort, 0, len(cfg.Peers))
	for _, p := range cfg.Peers {
		p = unmap(p)
		switch {
		case !p.IsValid() || p.Port() == 0 || p.Addr().IsUnspecified():
			return nil, fmt.Errorf("member: peer %v: want a private address and port", p)
		case cfg.Transport == nil && p == bind:
			return nil, fmt.Errorf("member: peer %v is this node's own address", p)
		case peerSet[p]:
			return nil, fmt.Errorf("member: peer %v listed twice", p)
		}
		peerSet[p] = true
		peers = append(peers, p)
	}
	cfg.Peers = peers
	cfg.Bind = bind

	stopCtx, stop := context.WithCancel(context.Background())
	return &Member{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "member"),
		name:      nodeName(cfg.PNN),
		peerSet:   peerSet,
		closing:   make(chan struct{}),
		done:      make(chan struct{}),
		events:    make(chan Event),
		metaCh:    make(chan struct{}, 1),
		eventWake: make(chan struct{}, 1),
		stateWake: make(chan struct{}, 1),
		stopCtx:   stopCtx,
		stop:      stop,
		// A node starts unhealthy until its first monitor event passes.
		meta:     Meta{PNN: cfg.PNN, Flags: nodeflag.Unhealthy, Leader: NoLeader},
		peers:    make(map[int]Peer),
		nodes:    make(map[int]memberlist.Node),
		handlers: make(map[string]Handler),
		pending:  make(map[uint64]*call),
		remote:   make(map[int][]byte),
		joinErr:  make(map[netip.AddrPort]string),
	}, nil
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	if !ap.IsValid() {
		return ap
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// memberlistConfig builds a fresh memberlist configuration (memberlist
// writes into it).
func (m *Member) memberlistConfig() *memberlist.Config {
	c := memberlist.DefaultLANConfig()
	c.Name = m.name
	if m.cfg.Transport != nil {
		c.Transport = m.cfg.Transport
	} else {
		c.BindAddr = m.cfg.Bind.Addr().String()
		c.BindPort = int(m.cfg.Bind.Port())
		c.AdvertiseAddr = c.BindAddr
		c.AdvertisePort = c.BindPort
	}
	c.Label = m.cfg.Cluster
	c.SecretKey = slices.Clone(m.cfg.Key)
	c.ProbeInterval = m.cfg.ProbeInterval
	c.ProbeTimeout = m.cfg.ProbeTimeout
	c.SuspicionMult = m.cfg.SuspicionMult
	c.SuspicionMaxTimeoutMult = suspicionMaxTimeoutMult
	c.GossipInterval = m.cfg.GossipInterval
	c.PushPullInterval = m.cfg.PushPullInterval
	c.TCPTimeout = tcpTimeout
	// Messages are small and the network is a LAN: LZW on every one costs
	// CPU when a takeover run sends hundreds (receivers still read
	// compressed ones, so nodes with either setting talk).
	c.EnableCompression = false
	d := &delegate{m}
	c.Delegate = d
	c.Events = d
	c.Alive = d
	c.Logger = log.New(logWriter{m.cfg.Logger.With("component", "memberlist")}, "", 0)
	return c
}

// Run creates the memberlist, joins the peers and keeps joining those it
// does not see every RejoinInterval, gossips meta changes, and when ctx
// ends or Close is called leaves the cluster, shuts memberlist down, waits
// for the handlers and closes the Events channel. It returns nil after a
// clean stop, an error if memberlist cannot start (e.g. the port is taken),
// ErrClosed after Close. Run may be called once.
func (m *Member) Run(ctx context.Context) error {
	m.mu.Lock()
	switch m.state {
	case stateRunning:
		m.mu.Unlock()
		return errors.New("member: Run called twice")
	case stateStopped:
		m.mu.Unlock()
		return ErrClosed
	}
	m.state = stateRunning
	m.mu.Unlock()
	m.wg.Add(2)
	go m.deliverEvents()
	go m.deliverStates()

	ml, err := memberlist.Create(m.memberlistConfig())
	if err != nil {
		m.shutdown()
		return fmt.Errorf("starting memberlist: %w", err)
	}
	m.mu.Lock()
	m.ml = ml
	m.mu.Unlock()
	m.mu.Lock()
	self := m.peers[m.cfg.PNN] // Create reported our own join
	m.mu.Unlock()
	m.log.Info("membership started", "cluster", m.cfg.Cluster, "pnn", m.cfg.PNN,
		"addr", self.Addr, "peers", len(m.cfg.Peers), "encrypted", len(m.cfg.Key) > 0)

	ticker := time.NewTicker(m.cfg.RejoinInterval)
	defer ticker.Stop()
	var joining chan struct{} // closed when a join round ends; nil: none running
	startJoins := func() {
		joining = make(chan struct{})
		go func(done chan struct{}) {
			defer close(done)
			m.joinMissing(ml)
		}(joining)
	}
	startJoins()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-m.closing:
			break loop
		case <-joining:
			joining = nil
		case <-ticker.C:
			if joining == nil {
				startJoins()
			}
		case <-m.metaCh:
			// UpdateNode queues the broadcast at once and then waits for it
			// to be fully retransmitted; the wait buys nothing here.
			_ = ml.UpdateNode(time.Millisecond)
		}
	}

	if err := ml.Leave(leaveTimeout); err != nil {
		m.log.Debug("leaving", "err", err)
	}
	if err := ml.Shutdown(); err != nil {
		m.log.Warn("shutting down memberlist", "err", err)
	}
	if joining != nil {
		<-joining
	}
	m.shutdown()
	m.log.Info("membership stopped")
	return nil
}

// shutdown stops everything but memberlist: fails outstanding requests,
// cancels and waits for handlers and delivery, closes Events.
func (m *Member) shutdown() {
	m.mu.Lock()
	m.state = stateStopped
	for _, c := range m.pending {
		select {
		case c.ch <- result{err: ErrClosed}:
		default:
		}
	}
	m.mu.Unlock()
	m.stop()
	m.wg.Wait()
	close(m.events)
	close(m.done)
}

// Close stops the Member and waits until Run has returned and every
// goroutine of the Member has ended. It may be called more than once, and
// before or without Run.
func (m *Member) Close() error {
	m.closeOnce.Do(func() { close(m.closing) })
	m.mu.Lock()
	if m.state == stateNew {
		m.state = stateStopped
		m.mu.Unlock()
		m.stop()
		close(m.events)
		close(m.done)
		return nil
	}
	m.mu.Unlock()
	<-m.done
	return nil
}

// joinMissing joins, in parallel, every peer that is not an alive member.
func (m *Member) joinMissing(ml *memberlist.Memberlist) {
	m.mu.Lock()
	var have []netip.AddrPort
	for _, p := range m.peers {
		if p.Alive {
			have = append(have, p.Addr)
		}
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range missingPeers(m.cfg.Peers, have) {
		wg.Go(func() {
			_, err := ml.Join([]string{p.String()})
			m.noteJoin(p, err)
		})
	}
	wg.Wait()
}

// missingPeers returns the peers that are not among the alive members'
// addresses, in order.
func missingPeers(peers, alive []netip.AddrPort) []netip.AddrPort {
	var out []netip.AddrPort
	for _, p := range peers {
		if !slices.Contains(alive, p) {
			out = append(out, p)
		}
	}
	return out
}

// noteJoin logs a join failure once per peer and distinct error, so a
// peer that is down does not log every RejoinInterval.
func (m *Member) noteJoin(p netip.AddrPort, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		delete(m.joinErr, p)
		return
	}
	msg := joinError(err)
	if m.joinErr[p] == msg {
		m.log.Debug("joining peer", "peer", p, "err", msg)
		return
	}
	m.joinErr[p] = msg
	m.log.Warn("joining peer", "peer", p, "err", msg)
}

// joinError flattens memberlist's multierror ("1 error occurred:\n\t* ...").
func joinError(err error) string {
	if me, ok := err.(interface{ WrappedErrors() []error }); ok {
		var msgs []string
		for _, e := range me.WrappedErrors() {
			msgs = append(msgs, e.Error())
		}
		return strings.Join(msgs, "; ")
	}
	return err.Error()
}

func nodeAddr(n *memberlist.Node) (netip.AddrPort, bool) {
	a, ok := netip.AddrFromSlice(n.Addr)
	if !ok {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Unmap(), n.Port), true
}

// SetMeta sets this node's meta and has Run gossip it (a non-blocking
// call; peers see it within a few GossipIntervals). meta.PNN is ignored: a
// node's meta always carries its own PNN. Before Run the meta is kept and
// goes out with the node's first alive message.
func (m *Member) SetMeta(meta Meta) error {
	if meta.Leader < NoLeader || meta.Leader > maxPNN {
		return fmt.Errorf("member: leader %d out of range", meta.Leader)
	}
	meta.PNN = m.cfg.PNN
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == stateStopped {
		return ErrClosed
	}
	m.meta = meta
	if p, ok := m.peers[m.cfg.PNN]; ok {
		p.Meta = meta
		m.peers[m.cfg.PNN] = p
	}
	select {
	case m.metaCh <- struct{}{}:
	default:
	}
	return nil
}

// Members returns every node this node has seen since Run started, this
// node included, sorted by PNN; nodes that left or died have Alive false.
// Before Run it is empty.
func (m *Member) Members() []Peer {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Peer, 0, len(m.peers))
	for _, p := range m.peers {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Peer) int { return cmp.Compare(a.PNN, b.PNN) })
	return out
}

// Events returns the channel of membership changes. Events are queued
// without bound and never dropped, so memberlist is never blocked; the
// reader must keep reading. The channel is closed when the Member stops.
func (m *Member) Events() <-chan Event { return m.events }

// SetLocalState sets the function whose bytes this node sends in every
// push/pull (at join, and every PushPullInterval with one random peer).
// It is called on memberlist's goroutine and must return at once, e.g. a
// prepared snapshot. Call it before Run.
func (m *Member) SetLocalState(fn func() []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.localState = fn
}

// OnRemoteState sets the function called with a peer's push/pull state. It
// runs on a goroutine of its own, one call at a time; if states arrive
// faster than it returns, only the latest per PNN is delivered. Call it
// before Run.
func (m *Member) OnRemoteState(fn func(pnn int, state []byte)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.remoteState = fn
}

// deliverEvents moves queued events to the Events channel.
func (m *Member) deliverEvents() {
	defer m.wg.Done()
	for {
		m.mu.Lock()
		var (
			ev  Event
			has = len(m.queue) > 0
		)
		if has {
			ev = m.queue[0]
		}
		m.mu.Unlock()
		if !has {
			select {
			case <-m.eventWake:
				continue
			case <-m.stopCtx.Done():
				return
			}
		}
		select {
		case m.events <- ev:
			m.mu.Lock()
			m.queue[0] = Event{}
			m.queue = m.queue[1:]
			m.mu.Unlock()
		case <-m.stopCtx.Done():
			return
		}
	}
}

// deliverStates hands push/pull states to the OnRemoteState function.
func (m *Member) deliverStates() {
	defer m.wg.Done()
	for {
		select {
		case <-m.stateWake:
		case <-m.stopCtx.Done():
			return
		}
		for {
			m.mu.Lock()
			states, fn := m.remote, m.remoteState
			m.remote = make(map[int][]byte)
			m.mu.Unlock()
			if len(states) == 0 || fn == nil {
				break
			}
			for _, pnn := range slices.Sorted(maps.Keys(states)) {
				fn(pnn, states[pnn])
			}
		}
	}
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
