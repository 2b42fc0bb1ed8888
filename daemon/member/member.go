// Package member owns this node's membership in the cluster. It runs
// hashicorp/memberlist over the nodes' private addresses, unicast only,
// under the cluster's name as memberlist label (packets of another cluster
// are dropped) and an optional encryption key; it gossips each node's Meta
// (PNN, flags, generation, leader), turns memberlist's callbacks into an
// Event channel, and carries node-to-node messages (one-way, and
// request/response with a request id).
//
// A node's memberlist name is "pnn-N"; nodes with other names, with a meta
// that does not decode or names another PNN, or at an address that is not
// node N's in Config.Nodes (with Config.Peers: not one of them) are refused
// (memberlist's AliveDelegate).
//
// Node-to-node messages do not ride in memberlist's user messages, whose
// receiver cannot tell who sent them: they are frames on a channel of our
// own multiplexed on the gossip port (transport.go), sealed with AES-GCM
// under the cluster key, accepted only from the address of the node they
// name as sender, and refused when replayed (seal.go). A cluster of more
// than one node needs a key unless Config.Insecure says otherwise; keys
// rotate without a restart (SetKeys).
//
// Lifecycle: New checks the Config and starts nothing; Run creates the
// memberlist (binds the UDP and TCP port), joins the peers, keeps joining
// the ones it does not see, and leaves and shuts down when its context ends
// or Close is called. Close is idempotent and waits for every goroutine of
// the Member, handlers included.
package member

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
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
	// Nodes maps every other node's PNN to its private address and gossip
	// port (this node's own entry, if present, is ignored; with the real
	// transport it must be Bind). A node is refused at any address but its
	// own, and a message is accepted only from the address of the node it
	// names as sender. Set Nodes or Peers, not both.
	Nodes map[int]netip.AddrPort
	// Peers are every other node's private address and port, without
	// their PNNs: a node at an address not listed here is refused, but a
	// node's address is then only what memberlist says it is, so a key
	// holder could speak for a dead node from another peer's address.
	//
	// Deprecated: set Nodes.
	Peers []netip.AddrPort
	// Key encrypts and authenticates all gossip (AES-GCM with memberlist's
	// keyring) and seals node-to-node messages; 16, 24 or 32 bytes. A
	// cluster of more than one node needs one unless Insecure is set. The
	// label alone separates clusters but authenticates nothing.
	Key []byte
	// Insecure allows a cluster of more than one node without Key: any host
	// that can send to the gossip port can then join and send messages as
	// any node. New logs a warning saying so.
	Insecure bool

	// Failure detection and gossip; 0 means the LAN-tuned default, which
	// detects a dead node in about 0.8 s (measured.md §4, "t2").
	ProbeInterval  time.Duration // between probes of a random node; 200ms
	ProbeTimeout   time.Duration // for an ack to a direct probe; 100ms, <= ProbeInterval
	SuspicionMult  int           // suspicion lasts SuspicionMult × ProbeInterval (N < 10); 2
	GossipInterval time.Duration // between gossip rounds; 50ms

	// RejoinInterval is how often Run tries to join peers it does not see
	// (not started yet, or on the other side of a healed partition); 1s.
	RejoinInterval time.Duration
	// PushPullInterval is how often a node exchanges its full membership
	// list (every node's state and meta) with a random peer, which repairs
	// what gossip missed; 5s. memberlist stretches it for clusters above
	// 32 nodes.
	PushPullInterval time.Duration

	// Transport carries memberlist's packets and streams, and our
	// messages; nil means the real UDP+TCP transport on Bind. Tests use
	// memberlist.MockNetwork. It must give each packet's and stream's true
	// source (Packet.From, RemoteAddr) as "ip:port": a message whose
	// source is unknown is refused, and a bare MockTransport's streams
	// (net.Pipe) have none, so only best-effort messages cross a bare
	// MockNetwork (testnet_test.go has one with addresses).
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
	// maxBestEffort is the largest best-effort datagram, sealed frame and
	// magic byte included (sealOverhead+1 more than the frame):
	// memberlist's UDPBufferSize, the payload of one packet on a 1500-byte
	// MTU.
	maxBestEffort = 1400
	// maxReliable is memberlist's limit for a reliable user message.
	maxReliable = 20 << 20
	// maxQueuedEvents bounds the events waiting for a reader of Events;
	// beyond it the oldest is dropped. Updates of a node coalesce with
	// its queued event, so only joins and leaves pile up.
	maxQueuedEvents = 1024
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
	// nodeAddrs is Config.Nodes without this node; nil with Config.Peers.
	nodeAddrs map[int]netip.AddrPort
	// boot is this Member's run id, random and non-zero: it tells peers
	// which run of this node a message was for, or from (seal.go).
	boot   uint64
	sealer atomic.Pointer[sealer] // seals frames; replaced by SetKeys
	replay *replayGuard
	// keyMu serialises SetKeys.
	keyMu sync.Mutex

	closing   chan struct{} // closed by Close
	closeOnce sync.Once
	done      chan struct{} // closed once stopped: Run returned, or Close before Run
	events    chan Event    // closed once stopped
	metaCh    chan struct{} // cap 1: SetMeta asks Run to gossip the meta
	eventWake chan struct{} // cap 1: queue grew

	// stopCtx ends when the Member stops; handlers run under it.
	stopCtx context.Context
	stop    context.CancelFunc
	// wg counts handler goroutines and the event delivery goroutine.
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
	nodes    map[int]memberlist.Node
	handlers map[string]Handler
	pending  map[uint64]*call
	inflight int
	queue    []Event                   // events not yet taken from the channel
	joinErr  map[netip.AddrPort]string // last join failure logged per peer
	tr       *frameTransport           // set by Run
	// keys are the cluster keys, primary first; none when insecure.
	keys    [][]byte
	keyring *memberlist.Keyring // memberlist's, once running with a key
	seq     map[int]uint64      // last sequence number sent to each PNN
	boots   map[int]uint64      // each node's run id, from its meta
	// dropped counts events dropped from a full queue.
	dropped  uint64
	lastWarn map[string]time.Time // per reason a message was refused
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
	if len(cfg.Key) > 0 {
		if err := checkKey(cfg.Key); err != nil {
			return nil, err
		}
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
	var nodeAddrs map[int]netip.AddrPort
	if cfg.Nodes != nil {
		if len(cfg.Peers) > 0 {
			return nil, errors.New("member: both Nodes and Peers set; want Nodes")
		}
		nodeAddrs = make(map[int]netip.AddrPort, len(cfg.Nodes))
		for _, pnn := range slices.Sorted(maps.Keys(cfg.Nodes)) {
			a := unmap(cfg.Nodes[pnn])
			switch {
			case pnn < 0 || pnn > maxPNN:
				return nil, fmt.Errorf("member: node PNN %d out of range", pnn)
			case pnn == cfg.PNN:
				if cfg.Transport == nil && a != bind {
					return nil, fmt.Errorf("member: this node's address %v in Nodes is not Bind %v", a, bind)
				}
				continue
			}
			nodeAddrs[pnn] = a
			cfg.Peers = append(cfg.Peers, a)
		}
	}
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
	if cfg.Nodes != nil {
		cfg.Nodes = maps.Clone(cfg.Nodes) // and Peers are its addresses, by PNN
	}
	logger := cfg.Logger.With("component", "member")
	var keys [][]byte
	frameKey := insecureKey
	switch {
	case len(cfg.Key) > 0:
		keys = [][]byte{cfg.Key}
		frameKey = cfg.Key
	case len(peers) > 0 && !cfg.Insecure:
		return nil, fmt.Errorf("member: no gossip key for a cluster of %d nodes: "+
			"any host on the private network could join it and order its nodes about "+
			"(set a key, or Insecure to run without one)", len(peers)+1)
	case len(peers) > 0:
		logger.Warn("gossip is not authenticated: any host on the private network can control this cluster " +
			"(set a gossip key file)")
	}
	s, err := newSealer(cfg.Cluster, [][]byte{frameKey})
	if err != nil {
		return nil, err
	}
	var boot [8]byte
	for binary.BigEndian.Uint64(boot[:]) == 0 {
		if _, err := rand.Read(boot[:]); err != nil {
			return nil, fmt.Errorf("member: run id: %w", err)
		}
	}

	stopCtx, stop := context.WithCancel(context.Background())
	m := &Member{
		cfg:       cfg,
		log:       logger,
		name:      nodeName(cfg.PNN),
		peerSet:   peerSet,
		nodeAddrs: nodeAddrs,
		boot:      binary.BigEndian.Uint64(boot[:]),
		replay:    newReplayGuard(),
		keys:      keys,
		seq:       make(map[int]uint64),
		boots:     make(map[int]uint64),
		lastWarn:  make(map[string]time.Time),
		closing:   make(chan struct{}),
		done:      make(chan struct{}),
		events:    make(chan Event),
		metaCh:    make(chan struct{}, 1),
		eventWake: make(chan struct{}, 1),
		stopCtx:   stopCtx,
		stop:      stop,
		// A node starts unhealthy until its first monitor event passes.
		meta:     Meta{PNN: cfg.PNN, Flags: nodeflag.Unhealthy, Leader: NoLeader},
		peers:    make(map[int]Peer),
		nodes:    make(map[int]memberlist.Node),
		handlers: make(map[string]Handler),
		pending:  make(map[uint64]*call),
		joinErr:  make(map[netip.AddrPort]string),
	}
	m.sealer.Store(s)
	return m, nil
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	if !ap.IsValid() {
		return ap
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// newTransport makes the transport memberlist and our frames share:
// Config.Transport, or UDP and TCP on Bind.
func (m *Member) newTransport() (*frameTransport, error) {
	inner := m.cfg.Transport
	if inner == nil {
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{m.cfg.Bind.Addr().String()},
			BindPort:  int(m.cfg.Bind.Port()),
			Logger:    m.memberlistLogger(),
		})
		if err != nil {
			return nil, err
		}
		inner = nt
	}
	return newFrameTransport(inner, m.receiveSealed, m.log), nil
}

func (m *Member) memberlistLogger() *log.Logger {
	return log.New(logWriter{m.cfg.Logger.With("component", "memberlist")}, "", 0)
}

// memberlistConfig builds a fresh memberlist configuration (memberlist
// writes into it) for transport tr and keys (primary first; none: no
// encryption).
func (m *Member) memberlistConfig(tr *frameTransport, keys [][]byte) (*memberlist.Config, error) {
	c := memberlist.DefaultLANConfig()
	c.Name = m.name
	c.Transport = tr
	if m.cfg.Transport == nil {
		c.BindAddr = m.cfg.Bind.Addr().String()
		c.BindPort = int(m.cfg.Bind.Port())
		c.AdvertiseAddr = c.BindAddr
		c.AdvertisePort = c.BindPort
	}
	c.Label = m.cfg.Cluster
	if len(keys) > 0 {
		kr, err := memberlist.NewKeyring(cloneKeys(keys[1:]), slices.Clone(keys[0]))
		if err != nil {
			return nil, fmt.Errorf("member: keyring: %w", err)
		}
		c.Keyring = kr
	}
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
	c.Logger = m.memberlistLogger()
	return c, nil
}

func cloneKeys(keys [][]byte) [][]byte {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = slices.Clone(k)
	}
	return out
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
	m.wg.Add(1)
	go m.deliverEvents()

	// keyMu: a SetKeys now would change keys under us.
	m.keyMu.Lock()
	ml, err := m.create()
	m.keyMu.Unlock()
	if err != nil {
		m.shutdown()
		return fmt.Errorf("starting memberlist: %w", err)
	}
	m.mu.Lock()
	self := m.peers[m.cfg.PNN] // Create reported our own join
	encrypted := len(m.keys) > 0
	m.mu.Unlock()
	m.log.Info("membership started", "cluster", m.cfg.Cluster, "pnn", m.cfg.PNN,
		"addr", self.Addr, "peers", len(m.cfg.Peers), "encrypted", encrypted)

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

// create starts the transport and memberlist, which shuts the transport
// down with itself. Call it with keyMu held.
func (m *Member) create() (*memberlist.Memberlist, error) {
	tr, err := m.newTransport()
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	keys := cloneKeys(m.keys)
	m.tr = tr
	m.mu.Unlock()
	c, err := m.memberlistConfig(tr, keys)
	if err != nil {
		tr.Shutdown()
		return nil, err
	}
	ml, err := memberlist.Create(c)
	if err != nil {
		tr.Shutdown() // not always done by memberlist on failure
		return nil, err
	}
	m.mu.Lock()
	m.ml = ml
	m.keyring = c.Keyring
	m.mu.Unlock()
	return ml, nil
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

// Events returns the channel of membership changes. Events wait in a
// queue, so memberlist is never blocked: an Update of a node whose last
// queued event is a Join or an Update is merged into that event (which
// then carries the newer Peer), and beyond maxQueuedEvents (1024) the
// oldest event is dropped (and counted in a Debug log). A reader that
// reads late thus still sees every node's latest state, but not every
// step. The channel is closed when the Member stops.
func (m *Member) Events() <-chan Event { return m.events }

// queueEvent queues ev for Events. Call it with mu held.
func (m *Member) queueEvent(ev Event) {
	if ev.Kind == Update {
		for i := len(m.queue) - 1; i >= 0; i-- {
			if m.queue[i].Peer.PNN != ev.Peer.PNN {
				continue
			}
			if m.queue[i].Kind != Leave {
				m.queue[i].Peer = ev.Peer
				return
			}
			break
		}
	}
	if len(m.queue) >= maxQueuedEvents {
		m.dropped++
		m.log.Debug("nobody reads events: dropping the oldest", "event", m.queue[0].Kind, "pnn", m.queue[0].Peer.PNN, "dropped", m.dropped)
		m.queue[0] = Event{}
		m.queue = m.queue[1:]
	}
	m.queue = append(m.queue, ev)
	wake(m.eventWake)
}

// deliverEvents moves queued events to the Events channel. It takes an
// event off the queue before it waits to send it (queueEvent changes and
// drops queued events), so one event more than the queue holds may wait.
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
			m.queue[0] = Event{}
			m.queue = m.queue[1:]
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
		case <-m.stopCtx.Done():
			return
		}
	}
}

// SetKeys installs the cluster keys without a restart: primary seals
// messages and encrypts gossip from now on, every key given is accepted,
// and keys not given are removed, from memberlist's keyring and from
// message sealing alike. Rotate in three steps, each on every node before
// the next: SetKeys(old, new) (install), SetKeys(new, old) (use),
// SetKeys(new) (remove). Keys are 16, 24 or 32 bytes. A Member running
// without a key (Insecure) cannot start using one: restart it with a key.
func (m *Member) SetKeys(primary []byte, others ...[]byte) error {
	keys := [][]byte{slices.Clone(primary)}
	for _, k := range others {
		if !slices.ContainsFunc(keys, func(have []byte) bool { return bytes.Equal(have, k) }) {
			keys = append(keys, slices.Clone(k))
		}
	}
	s, err := newSealer(m.cfg.Cluster, keys)
	if err != nil {
		return err
	}
	m.keyMu.Lock()
	defer m.keyMu.Unlock()
	m.mu.Lock()
	state, kr, had := m.state, m.keyring, len(m.keys) > 0
	m.mu.Unlock()
	switch {
	case state == stateStopped:
		return ErrClosed
	case state == stateRunning && !had:
		return errors.New("member: running without a key: restart with one to use keys")
	}
	if kr != nil {
		for _, k := range keys {
			if err := kr.AddKey(slices.Clone(k)); err != nil {
				return fmt.Errorf("member: installing key: %w", err)
			}
		}
		if err := kr.UseKey(keys[0]); err != nil {
			return fmt.Errorf("member: using key: %w", err)
		}
		for _, k := range cloneKeys(kr.GetKeys()) {
			if !slices.ContainsFunc(keys, func(want []byte) bool { return bytes.Equal(want, k) }) {
				if err := kr.RemoveKey(k); err != nil {
					return fmt.Errorf("member: removing key: %w", err)
				}
			}
		}
	}
	m.mu.Lock()
	m.keys = keys
	m.mu.Unlock()
	m.sealer.Store(s)
	m.log.Info("cluster keys set", "keys", len(keys))
	return nil
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
