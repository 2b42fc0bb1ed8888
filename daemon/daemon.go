package daemon

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/ctdb-go/ctdb-go/daemon/addrtable"
	"github.com/ctdb-go/ctdb-go/daemon/config"
	"github.com/ctdb-go/ctdb-go/daemon/lease"
	"github.com/ctdb-go/ctdb-go/daemon/member"
	"github.com/ctdb-go/ctdb-go/daemon/monitor"
	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
	"github.com/ctdb-go/ctdb-go/daemon/state"
	"github.com/ctdb-go/ctdb-go/recoverd"
)

// Config says where a node's files are.
type Config struct {
	ConfigDir string // ctdb.conf, nodes, public_addresses, events.d (CTDB_BASE)
	// Conf is the configuration ctdbd has loaded from ConfigDir; nil
	// means New loads it.
	Conf     *config.Config
	RunDir   string // the control socket
	StateDir string // state.db
	Logger   *slog.Logger
	// Kernel replaces the real kernel seam (tests); nil means netif.Linux.
	Kernel kernel
	// LockHelper holds a file cluster lock in a child process (ctdbd
	// --lock-helper) that lets it go when this daemon is stopped or gone;
	// ctdbd sets it. Otherwise the lock is held in-process.
	LockHelper bool
	// MemberTransport replaces memberlist's network (tests use
	// memberlist.MockNetwork); nil means UDP and TCP on the nodes address.
	MemberTransport memberlist.Transport
}

// Daemon is one node. Its mutable state is guarded by mu; the goroutines
// started by Run read and change it only under mu and never hold mu across
// I/O (netlink, scripts, network).
type Daemon struct {
	cfg   Config
	conf  *config.Config
	tun   *config.Tunables
	pnn   int
	log   *slog.Logger
	store *state.Store
	k     kernel
	ev    events
	// running is set once Run has built every part (Reload needs them).
	running atomic.Bool
	// firstMonitor is the wait before the first monitor run; 0 means
	// CTDB's 2 s (tests shorten it).
	firstMonitor time.Duration
	// eventsDir is where the event scripts are (events.d, or CTDB's
	// events/legacy).
	eventsDir string
	mem       *member.Member
	rec       *recoverd.Recoverd
	lease     *lease.Keeper
	table     *addrtable.Table
	started   time.Time
	boot      int64
	changed   chan struct{} // node state changed: tell the leader
	urgent    chan struct{} // flags or health changed: tell the leader now
	// shutdownReq is `ctdb shutdown`.
	shutdownReq chan struct{}

	// mu guards the fields below.
	mu           sync.Mutex
	runstate     string
	healthy      bool
	admin        nodeflag.Flags
	banUntil     time.Time
	version      uint64
	lastRecovery time.Time
	lastRecTook  time.Duration
	lastTold     string // fingerprint of the last NodeState sent
	mon          *monitor.Monitor
	// public is this node's public_addresses, by address; pubs in file
	// order. `ctdb reloadips` replaces both.
	public map[netip.Addr]config.PublicAddress
	pubs   []config.PublicAddress
}

// New loads the configuration and opens local state; it starts nothing.
func New(cfg Config) (*Daemon, error) {
	if cfg.ConfigDir == "" {
		cfg.ConfigDir = "/etc/ctdb"
	}
	if cfg.RunDir == "" {
		cfg.RunDir = "/run/ctdb"
	}
	if cfg.StateDir == "" {
		cfg.StateDir = "/var/lib/ctdb"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	conf := cfg.Conf
	var err error
	if conf == nil {
		if conf, err = config.Load(cfg.ConfigDir); err != nil {
			return nil, err
		}
	}
	d := &Daemon{
		cfg:         cfg,
		conf:        conf,
		tun:         conf.Tunables,
		log:         cfg.Logger.With("component", "daemon"),
		started:     time.Now(),
		boot:        time.Now().UnixNano(),
		changed:     make(chan struct{}, 1),
		urgent:      make(chan struct{}, 1),
		shutdownReq: make(chan struct{}, 1),
		runstate:    recoverd.RunStateInit,
		public:      map[netip.Addr]config.PublicAddress{},
	}
	d.setPublic(conf.PublicAddresses)
	d.k = cfg.Kernel
	if d.k == nil {
		if d.k, err = newLinux(cfg.Logger); err != nil {
			return nil, err
		}
	}
	local, err := d.k.LocalAddrs()
	if err != nil {
		return nil, fmt.Errorf("listing local addresses: %w", err)
	}
	if d.pnn, err = conf.FindPNN(local); err != nil {
		return nil, err
	}
	d.log = d.log.With("pnn", d.pnn)
	for _, pa := range conf.PublicAddresses {
		for _, ifc := range pa.Ifaces {
			if !d.k.LinkExists(ifc) {
				return nil, fmt.Errorf("%s: unknown interface %s for public address %s",
					filepath.Join(cfg.ConfigDir, "public_addresses"), ifc, pa.Prefix)
			}
		}
	}
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating state dir: %w", err)
	}
	if d.store, err = state.OpenOptions(filepath.Join(cfg.StateDir, "state.db"), state.Options{Logger: d.log}); err != nil {
		return nil, err
	}
	return d, nil
}

// PNN is this node's number.
func (d *Daemon) PNN() int { return d.pnn }

// publicIfaces lists every interface named in public_addresses.
func (d *Daemon) publicIfaces() map[string]bool { return publicIfacesOf(d.publicAddrs()) }

func (d *Daemon) setRunState(s string) {
	d.mu.Lock()
	d.runstate = s
	d.mu.Unlock()
	d.log.Info("run state", "runstate", s)
	d.noteChange()
}

// noteChange tells the report loop that the node state changed.
func (d *Daemon) noteChange() {
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// noteUrgent is noteChange for a change of flags or health, which the
// leader hears of at once, without waiting out the gap between reports.
func (d *Daemon) noteUrgent() {
	select {
	case d.urgent <- struct{}{}:
	default:
	}
	d.noteChange()
}

// flags is this node's own flag word.
func (d *Daemon) flagsLocked() nodeflag.Flags {
	f := d.admin
	if !d.healthy {
		f |= nodeflag.Unhealthy
	}
	return f
}

// cleanStale removes public addresses left from an earlier run: the
// lease they were added under is gone with that run (and their kernel
// lifetime may not have run out yet after a quick restart).
func (d *Daemon) cleanStale() {
	held, err := d.store.Held()
	if err != nil {
		d.log.Warn("reading held addresses", "err", err)
	}
	for _, h := range held {
		if err := d.k.DelAddr(h.Iface, h.Prefix); err != nil {
			d.log.Warn("removing stale address", "ip", h.Prefix, "iface", h.Iface, "err", err)
		} else {
			d.log.Info("removed address held before restart", "ip", h.Prefix, "iface", h.Iface)
		}
	}
	all, err := d.k.AllAddrs()
	if err != nil {
		d.log.Warn("listing addresses", "err", err)
	}
	for ifc, ps := range all {
		for _, p := range ps {
			if _, ok := d.publicAddr(p.Addr()); ok {
				if err := d.k.DelAddr(ifc, p); err == nil {
					d.log.Info("removing public address", "ip", p, "iface", ifc)
				}
			}
		}
	}
	if err := d.store.SetHeld(nil); err != nil {
		d.log.Warn("clearing held addresses", "err", err)
	}
}

func (d *Daemon) restoreAdmin() error {
	f, until, err := d.store.AdminFlags()
	if err != nil {
		return fmt.Errorf("reading admin flags: %w", err)
	}
	if d.conf.Conf.Legacy.StartAsDisabled {
		f |= nodeflag.PermanentlyDisabled
	}
	if d.conf.Conf.Legacy.StartAsStopped {
		f |= nodeflag.Stopped
	}
	if f&nodeflag.Banned != 0 && time.Now().After(until) {
		f &^= nodeflag.Banned
	}
	d.admin = f & nodeflag.Admin
	d.banUntil = until
	if d.admin != 0 {
		d.log.Info("admin flags restored", "flags", d.admin.String())
	}
	return nil
}

// setPublic installs this node's public addresses.
func (d *Daemon) setPublic(pas []config.PublicAddress) {
	m := make(map[netip.Addr]config.PublicAddress, len(pas))
	for _, pa := range pas {
		m[pa.Prefix.Addr()] = pa
	}
	d.mu.Lock()
	d.public, d.pubs = m, pas
	d.mu.Unlock()
}

// publicAddrs is this node's public_addresses, in file order.
func (d *Daemon) publicAddrs() []config.PublicAddress {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pubs
}

// publicAddr looks up one of this node's public addresses.
func (d *Daemon) publicAddr(a netip.Addr) (config.PublicAddress, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	pa, ok := d.public[a]
	return pa, ok
}

// publicIfacesOf lists every interface named in pas.
func publicIfacesOf(pas []config.PublicAddress) map[string]bool {
	m := map[string]bool{}
	for _, pa := range pas {
		for _, ifc := range pa.Ifaces {
			m[ifc] = true
		}
	}
	return m
}
