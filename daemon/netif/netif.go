// Package netif is the one part of ctdb-go that touches the kernel: public
// addresses (netlink, with kernel lifetimes), link state (ethtool and netlink
// link events), ARP and IPv6 neighbour discovery on raw packet sockets,
// the promote_secondaries sysctl and /proc/net/bonding.
//
// Linux is the real implementation. It works in the network namespace that
// was current for the thread that called New: its netlink and ethtool
// sockets are opened there at once, and every later socket (ARP, link
// watches) and sysctl write is made there too, whatever thread the caller
// runs on. ctdbd runs inside its namespace, so that is simply "this host".
//
// Fake offers the same methods over in-memory state and records every
// mutating call as a line of text, for the daemon's tests.
package netif

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/safchain/ethtool"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ErrNoLink is wrapped by every error caused by an interface that does not
// exist (in this network namespace).
var ErrNoLink = errors.New("netif: no such interface")

// ErrClosed is returned by a Linux's methods after Close.
var ErrClosed = errors.New("netif: closed")

// ErrUnsupportedLink is returned by Probe and Announce on a link that has
// ARP but no 6-byte (Ethernet) hardware address, such as InfiniBand.
var ErrUnsupportedLink = errors.New("netif: link type not supported for ARP/ND")

// Config configures a Linux.
type Config struct {
	// ProcRoot is where procfs is mounted; "" means "/proc". Bonds are read
	// from ProcRoot/net/bonding/<iface> and sysctls written under
	// ProcRoot/sys. With the default, /proc/thread-self/net is read
	// instead of /proc/net, which shows the main thread's namespace.
	ProcRoot string
	// SysRoot is where sysfs is mounted; "" means "/sys". Not read at
	// present: every link fact comes from netlink and ethtool, which follow
	// the network namespace, while a sysfs mount shows the namespace of
	// whoever mounted it.
	SysRoot string
	// Logger receives warnings from link watches; nil means slog.Default().
	Logger *slog.Logger
}

// LinkEvent is a change of an interface's carrier or existence, as sent
// by WatchLinks.
type LinkEvent struct {
	Iface string
	// Up is the carrier (IFF_LOWER_UP): the link is administratively up
	// and has a carrier. Always false when Exists is false.
	Up bool
	// Exists is false when the interface was removed (or renamed away,
	// or moved to another namespace).
	Exists bool
}

// AddrInfo is an address on an interface with its remaining lifetime.
type AddrInfo struct {
	Prefix netip.Prefix
	// ValidLft is the remaining valid lifetime as the kernel reports it,
	// in whole seconds; meaningless when Permanent.
	ValidLft time.Duration
	// Permanent is true for an address without a lifetime ("forever").
	Permanent bool
}

// Linux is the real kernel interface. Its methods are safe for concurrent
// use.
type Linux struct {
	procRoot string
	sysRoot  string
	log      *slog.Logger

	subRcvBuf int // receive buffer of link subscriptions; 0 is the kernel's default (tests shrink it)

	ns  netns.NsHandle   // the namespace New ran in; every socket is opened there
	nl  *netlink.Handle  // route netlink socket, opened in ns
	eth *ethtool.Ethtool // ioctl socket for ETHTOOL_GLINK, opened in ns
	// ioctlFD is a datagram socket opened in ns for the interface lookups
	// of ifreq.go.
	ioctlFD int
	// diagFD is a NETLINK_SOCK_DIAG socket opened in ns for
	// EstablishedTCP, which holds diagMu for a dump.
	diagFD int
	diagMu sync.Mutex

	closed    atomic.Bool // set by Close (under mu); read without mu on every call
	closeOnce sync.Once
	done      chan struct{}  // closed by Close; stops link watches
	wg        sync.WaitGroup // link watches and packet-socket readers

	// mu guards socks, and orders wg.Add against Close's wg.Wait.
	mu    sync.Mutex
	socks map[uint16]*pktSocket // by EtherType; opened on first use
}

// New checks cfg, fills its defaults and opens the netlink and ethtool
// sockets in the calling thread's network namespace. It needs no
// privileges; the methods that change things need CAP_NET_ADMIN (addresses,
// sysctl) or CAP_NET_RAW (Probe, Announce).
func New(cfg Config) (*Linux, error) {
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if cfg.SysRoot == "" {
		cfg.SysRoot = "/sys"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	l := &Linux{
		procRoot: filepath.Clean(cfg.ProcRoot),
		sysRoot:  filepath.Clean(cfg.SysRoot),
		log:      cfg.Logger.With("component", "netif"),
		done:     make(chan struct{}),
	}

	// One thread for the namespace handle and both sockets, so that they
	// all belong to the same namespace.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("getting the network namespace: %w", err)
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("opening netlink socket: %w", err)
	}
	// A request to the kernel never takes long; this bounds a wedged one.
	if err := h.SetSocketTimeout(5 * time.Second); err != nil {
		h.Close()
		ns.Close()
		return nil, fmt.Errorf("setting netlink timeout: %w", err)
	}
	e, err := ethtool.NewEthtool()
	if err != nil {
		h.Close()
		ns.Close()
		return nil, fmt.Errorf("opening ethtool socket: %w", err)
	}
	fd, err := openIoctlSocket()
	if err != nil {
		e.Close()
		h.Close()
		ns.Close()
		return nil, err
	}
	dfd, err := openDiagSocket()
	if err != nil {
		unix.Close(fd)
		e.Close()
		h.Close()
		ns.Close()
		return nil, err
	}
	l.ns, l.nl, l.eth, l.ioctlFD, l.diagFD = ns, h, e, fd, dfd
	return l, nil
}

// Close stops the link watches, closes the sockets and waits for the
// goroutines. It is idempotent. Closing a packet socket waits for an RCU
// grace period, so Close can take some 10-30 ms.
func (l *Linux) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed.Store(true)
		socks := l.socks
		l.mu.Unlock()
		close(l.done)
		for _, s := range socks {
			s.conn.Close() // ends its reader
		}
		l.wg.Wait()
		l.eth.Close()
		unix.Close(l.ioctlFD)
		l.diagMu.Lock()
		unix.Close(l.diagFD)
		l.diagFD = -1
		l.diagMu.Unlock()
		l.nl.Close()
		l.ns.Close()
	})
	return nil
}

// inNS runs fn on a thread in l's namespace: the caller's own when it is
// there already (the normal case, one namespace per daemon), otherwise a
// throwaway thread that is switched there and never returned to the pool.
func (l *Linux) inNS(fn func() error) error {
	if l.closed.Load() {
		return ErrClosed
	}
	runtime.LockOSThread()
	cur, err := netns.Get()
	if err == nil {
		same := cur.Equal(l.ns)
		cur.Close()
		if same {
			defer runtime.UnlockOSThread()
			return fn()
		}
	}
	runtime.UnlockOSThread()

	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the runtime ends this thread with the goroutine,
		// so no other goroutine ever runs in the switched namespace.
		runtime.LockOSThread()
		if err := netns.Set(l.ns); err != nil {
			errc <- fmt.Errorf("entering network namespace: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// link looks iface up; a missing one gives an error wrapping ErrNoLink.
func (l *Linux) link(iface string) (netlink.Link, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	lk, err := l.nl.LinkByName(iface)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
			return nil, fmt.Errorf("%w: %s", ErrNoLink, iface)
		}
		return nil, fmt.Errorf("looking up %s: %w", iface, err)
	}
	return lk, nil
}

// lifetimeSeconds turns the time left on a lease into the whole seconds the
// kernel takes as valid_lft, rounding down so that the kernel never keeps
// an address past the lease.
func lifetimeSeconds(d time.Duration) (uint32, error) {
	if d < time.Second {
		return 0, fmt.Errorf("lifetime %v is under one second", d)
	}
	s := int64(d / time.Second)
	// 0xFFFFFFFF is the kernel's "forever".
	if s >= math.MaxUint32 {
		return 0, fmt.Errorf("lifetime %v is too long", d)
	}
	return uint32(s), nil
}

// checkPrefix rejects prefixes the kernel could misread.
func checkPrefix(p netip.Prefix) error {
	if !p.IsValid() {
		return fmt.Errorf("invalid prefix %v", p)
	}
	if p.Addr().Is4In6() || p.Addr().Zone() != "" {
		return fmt.Errorf("prefix %v is not a plain IPv4 or IPv6 prefix", p)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{
		IP:   net.IP(p.Addr().AsSlice()),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}
}

func prefixOf(a netlink.Addr) (netip.Prefix, bool) {
	if a.IPNet == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := a.Mask.Size()
	ip = ip.Unmap()
	if bits == 128 && ip.Is4() {
		ones -= 96
	}
	return netip.PrefixFrom(ip, ones), true
}

// AddAddr adds p to iface, or refreshes it when it is there, with a kernel
// lifetime: valid_lft = preferred_lft = lifetime in whole seconds, rounded
// down (it must be at least one second). When the lifetime runs out the
// kernel removes the address by itself (up to ~0.3 s late).
//
// It is `ip addr replace`: IPv4 gets the broadcast address as with
// `brd +` (prefixes shorter than /31), as CTDB adds its addresses. IPv6 is
// added with IFA_F_NODAD so that it is usable at once: the kernel's own DAD
// would keep it tentative for a second or more, and ctdb-go probes with
// Probe before it adds an address.
func (l *Linux) AddAddr(iface string, p netip.Prefix, lifetime time.Duration) error {
	if err := checkPrefix(p); err != nil {
		return fmt.Errorf("adding %s to %s: %w", p, iface, err)
	}
	secs, err := lifetimeSeconds(lifetime)
	if err != nil {
		return fmt.Errorf("adding %s to %s: %w", p, iface, err)
	}
	idx, err := l.ifIndex(iface)
	if err != nil {
		return fmt.Errorf("adding %s to %s: %w", p, iface, err)
	}
	a := &netlink.Addr{IPNet: ipNet(p), LinkIndex: idx, ValidLft: int(secs), PreferedLft: int(secs)}
	if p.Addr().Is4() {
		if p.Bits() < 31 {
			a.Broadcast = broadcast(p)
		}
	} else {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := l.nl.AddrReplace(nil, a); err != nil {
		return fmt.Errorf("adding %s to %s: %w", p, iface, err)
	}
	return nil
}

func broadcast(p netip.Prefix) net.IP {
	b := p.Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return net.IP(b[:])
}

// DelAddr removes p (address and prefix length) from iface. An address
// that is not there is no error; a missing iface is (ErrNoLink).
//
// Deleting the primary IPv4 address of a subnet also deletes its
// secondaries unless promote_secondaries is set: call PromoteSecondaries
// on every public interface first.
func (l *Linux) DelAddr(iface string, p netip.Prefix) error {
	if err := checkPrefix(p); err != nil {
		return fmt.Errorf("deleting %s from %s: %w", p, iface, err)
	}
	idx, err := l.ifIndex(iface)
	if err != nil {
		return fmt.Errorf("deleting %s from %s: %w", p, iface, err)
	}
	if err := l.nl.AddrDel(nil, &netlink.Addr{IPNet: ipNet(p), LinkIndex: idx}); err != nil {
		if errors.Is(err, unix.EADDRNOTAVAIL) {
			return nil
		}
		return fmt.Errorf("deleting %s from %s: %w", p, iface, err)
	}
	return nil
}

// Addrs returns the addresses on iface, IPv4 and IPv6, in kernel order.
func (l *Linux) Addrs(iface string) ([]netip.Prefix, error) {
	return prefixes(l.AddrDetails(iface))
}

// prefixes is Addrs from AddrDetails.
func prefixes(infos []AddrInfo, err error) ([]netip.Prefix, error) {
	if err != nil {
		return nil, err
	}
	ps := make([]netip.Prefix, len(infos))
	for i, a := range infos {
		ps[i] = a.Prefix
	}
	return ps, nil
}

// AddrDetails returns the addresses on iface with their remaining
// lifetimes.
func (l *Linux) AddrDetails(iface string) ([]AddrInfo, error) {
	lk, err := l.link(iface)
	if err != nil {
		return nil, fmt.Errorf("listing addresses of %s: %w", iface, err)
	}
	as, err := l.nl.AddrList(lk, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("listing addresses of %s: %w", iface, err)
	}
	infos := make([]AddrInfo, 0, len(as))
	for _, a := range as {
		p, ok := prefixOf(a)
		if !ok {
			continue
		}
		info := AddrInfo{Prefix: p}
		if uint32(a.ValidLft) == math.MaxUint32 {
			info.Permanent = true
		} else {
			info.ValidLft = time.Duration(a.ValidLft) * time.Second
		}
		infos = append(infos, info)
	}
	return infos, nil
}

// AllAddrs returns the addresses of every interface, keyed by name; an
// interface without addresses has an empty list.
func (l *Linux) AllAddrs() (map[string][]netip.Prefix, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	links, err := l.nl.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing links: %w", err)
	}
	names := make(map[int]string, len(links))
	all := make(map[string][]netip.Prefix, len(links))
	for _, lk := range links {
		names[lk.Attrs().Index] = lk.Attrs().Name
		all[lk.Attrs().Name] = []netip.Prefix{}
	}
	as, err := l.nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	for _, a := range as {
		name, ok := names[a.LinkIndex]
		if !ok {
			continue // a link that appeared between the two dumps
		}
		if p, ok := prefixOf(a); ok {
			all[name] = append(all[name], p)
		}
	}
	return all, nil
}

// LocalAddrs returns every address configured on this host (in this
// namespace), once each.
func (l *Linux) LocalAddrs() ([]netip.Addr, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	as, err := l.nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	seen := make(map[netip.Addr]bool, len(as))
	var out []netip.Addr
	for _, a := range as {
		p, ok := prefixOf(a)
		if !ok || seen[p.Addr()] {
			continue
		}
		seen[p.Addr()] = true
		out = append(out, p.Addr())
	}
	return out, nil
}

// LinkUp reports whether iface has a link, as `ethtool IFACE` shows "Link
// detected" (ETHTOOL_GLINK: up and carrier). For drivers without that
// (some virtual devices) it falls back to netlink: IFF_UP and IFF_LOWER_UP.
func (l *Linux) LinkUp(iface string) (bool, error) {
	if l.closed.Load() {
		return false, ErrClosed
	}
	state, err := l.eth.LinkState(iface)
	if err == nil {
		return state != 0, nil
	}
	if errors.Is(err, unix.ENODEV) {
		return false, fmt.Errorf("reading link state of %s: %w: %s", iface, ErrNoLink, iface)
	}
	lk, lerr := l.link(iface)
	if lerr != nil {
		return false, fmt.Errorf("reading link state of %s: %w", iface, lerr)
	}
	return carrier(lk.Attrs().RawFlags), nil
}

func carrier(flags uint32) bool {
	return flags&unix.IFF_UP != 0 && flags&unix.IFF_LOWER_UP != 0
}

// LinkExists reports whether iface exists.
func (l *Linux) LinkExists(iface string) bool {
	_, err := l.link(iface)
	return err == nil
}

// HardwareAddr returns the MAC address of iface.
func (l *Linux) HardwareAddr(iface string) (net.HardwareAddr, error) {
	lk, err := l.link(iface)
	if err != nil {
		return nil, fmt.Errorf("reading hardware address of %s: %w", iface, err)
	}
	return append(net.HardwareAddr(nil), lk.Attrs().HardwareAddr...), nil
}

// checkIfname refuses names that are not interface names, so that they
// cannot reach outside the proc directories they are joined to.
func checkIfname(iface string) error {
	if iface == "" || len(iface) > unix.IFNAMSIZ-1 || iface == "." || iface == ".." ||
		strings.ContainsAny(iface, "/ \t\n:") {
		return fmt.Errorf("invalid interface name %q", iface)
	}
	return nil
}

// PromoteSecondaries sets net.ipv4.conf.<iface>.promote_secondaries = 1,
// so that deleting the first public address of a subnet does not take the
// others with it (CTDB sets it too).
func (l *Linux) PromoteSecondaries(iface string) error {
	if err := checkIfname(iface); err != nil {
		return fmt.Errorf("setting promote_secondaries: %w", err)
	}
	path := filepath.Join(l.procRoot, "sys/net/ipv4/conf", iface, "promote_secondaries")
	err := l.inNS(func() error {
		// O_TRUNC without O_CREATE: a sysctl is never created.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return err
		}
		if _, err := f.WriteString("1\n"); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
	if errors.Is(err, os.ErrNotExist) {
		err = fmt.Errorf("%w: %s (%w)", ErrNoLink, iface, err)
	}
	if err != nil {
		return fmt.Errorf("setting promote_secondaries on %s: %w", iface, err)
	}
	return nil
}

// procNet is the proc directory for this namespace's network files.
func (l *Linux) procNet() string {
	if l.procRoot == "/proc" {
		return "/proc/thread-self/net"
	}
	return filepath.Join(l.procRoot, "net")
}

// Bond reads ProcRoot/net/bonding/<iface>. ok is false (and the error nil)
// when iface is not a bond.
func (l *Linux) Bond(iface string) (BondStatus, bool, error) {
	if err := checkIfname(iface); err != nil {
		return BondStatus{}, false, fmt.Errorf("reading bond: %w", err)
	}
	var data []byte
	err := l.inNS(func() error {
		var err error
		data, err = os.ReadFile(filepath.Join(l.procNet(), "bonding", iface))
		return err
	})
	if errors.Is(err, os.ErrNotExist) {
		return BondStatus{}, false, nil
	}
	if err != nil {
		return BondStatus{}, false, fmt.Errorf("reading bond %s: %w", iface, err)
	}
	return parseBond(iface, string(data)), true, nil
}
