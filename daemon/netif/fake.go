package netif

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Fake is an in-memory stand-in for Linux with the same methods, for tests
// of the code that uses netif. It holds interfaces (carrier up or down, a
// MAC, addresses with lifetimes), records every successful mutating call
// as one line of text (see Transcript) and lets the test change link state,
// script probe answers, bonds and errors. Its methods are safe for
// concurrent use.
//
// Addresses expire as the kernel's do, when their whole-second lifetime has
// passed on the Now clock, and deleting the first IPv4 address of a subnet
// deletes the others on that interface unless PromoteSecondaries was called
// for it, as the kernel does.
type Fake struct {
	// Now is the clock for address lifetimes; nil means time.Now, which is
	// fake time inside a testing/synctest bubble. Set it before use.
	Now func() time.Time

	// mu guards everything below.
	mu       sync.Mutex
	links    map[string]*fakeLink
	nlinks   int // links ever added, for their MACs
	answers  map[netip.Addr]net.HardwareAddr
	conns    map[netip.Addr]int
	bonds    map[string]BondStatus
	errs     map[string]error
	lines    []string
	watchers map[*fakeWatch]struct{}
}

type fakeLink struct {
	mac     net.HardwareAddr
	up      bool
	promote bool
	addrs   []fakeAddr // in the order added, as the kernel lists them
}

type fakeAddr struct {
	p       netip.Prefix
	expires time.Time
}

// NewFake returns a Fake without interfaces.
func NewFake() *Fake {
	return &Fake{
		links:    map[string]*fakeLink{},
		answers:  map[netip.Addr]net.HardwareAddr{},
		conns:    map[netip.Addr]int{},
		bonds:    map[string]BondStatus{},
		errs:     map[string]error{},
		watchers: map[*fakeWatch]struct{}{},
	}
}

func (f *Fake) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func (f *Fake) record(format string, args ...any) {
	f.lines = append(f.lines, fmt.Sprintf(format, args...))
}

// Transcript returns the mutating calls made since NewFake or Reset, one
// line each, e.g. "addr add 198.18.1.5/24 dev eth1 valid_lft 3",
// "addr del 198.18.1.5/24 dev eth1", "arp announce 198.18.1.5 dev eth1"
// ("ndp …" for IPv6), "arp probe 198.18.1.5 dev eth1",
// "sysctl net.ipv4.conf.eth1.promote_secondaries=1". Calls that failed are
// not recorded; the test's own changes (links, answers) are not either.
func (f *Fake) Transcript() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.lines)
}

// Reset empties the transcript; the state stays.
func (f *Fake) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lines = nil
}

// AddLink adds interface iface with the given carrier and a MAC of its own
// (02:00:00:00:00:01 for the first link added, and so on). Watchers hear of
// it. Adding an existing interface only sets its carrier.
func (f *Fake) AddLink(iface string, up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if lk, ok := f.links[iface]; ok {
		f.setUp(iface, lk, up)
		return
	}
	f.nlinks++
	f.links[iface] = &fakeLink{
		mac: net.HardwareAddr{0x02, 0, 0, 0, byte(f.nlinks >> 8), byte(f.nlinks)},
		up:  up,
	}
	f.emit(LinkEvent{Iface: iface, Up: up, Exists: true})
}

// RemoveLink removes iface and its addresses; watchers hear of it.
func (f *Fake) RemoveLink(iface string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.links[iface]; !ok {
		return
	}
	delete(f.links, iface)
	f.emit(LinkEvent{Iface: iface})
}

// SetLinkUp sets the carrier of iface (which must have been added);
// watchers hear of a change.
func (f *Fake) SetLinkUp(iface string, up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	lk, ok := f.links[iface]
	if !ok {
		panic(fmt.Sprintf("netif.Fake: SetLinkUp(%q): no such link", iface))
	}
	f.setUp(iface, lk, up)
}

func (f *Fake) setUp(iface string, lk *fakeLink, up bool) {
	if lk.up == up {
		return
	}
	lk.up = up
	f.emit(LinkEvent{Iface: iface, Up: up, Exists: true})
}

// SetProbeAnswer makes Probe for ip answer with mac; a nil mac means
// nobody answers (the default).
func (f *Fake) SetProbeAnswer(ip netip.Addr, mac net.HardwareAddr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if mac == nil {
		delete(f.answers, ip)
		return
	}
	f.answers[ip] = slices.Clone(mac)
}

// SetTCPConnections sets what EstablishedTCP counts for ip.
func (f *Fake) SetTCPConnections(ip netip.Addr, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns[ip] = n
}

// EstablishedTCP returns what SetTCPConnections set, or the error set
// for "EstablishedTCP".
func (f *Fake) EstablishedTCP() (map[netip.Addr]int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs["EstablishedTCP"]; err != nil {
		return nil, err
	}
	return maps.Clone(f.conns), nil
}

// SetBond makes iface a bond in the state b (its Name is set to iface).
func (f *Fake) SetBond(iface string, b BondStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b.Name = iface
	b.Slaves = slices.Clone(b.Slaves)
	f.bonds[iface] = b
}

// SetError makes the method with that name (e.g. "AddAddr") fail with err
// until it is set again; nil clears it.
func (f *Fake) SetError(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.errs, method)
		return
	}
	f.errs[method] = err
}

// link returns iface after pruning its expired addresses.
func (f *Fake) link(iface string) (*fakeLink, error) {
	lk, ok := f.links[iface]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoLink, iface)
	}
	now := f.now()
	lk.addrs = slices.DeleteFunc(lk.addrs, func(a fakeAddr) bool { return !now.Before(a.expires) })
	return lk, nil
}

// AddAddr adds or refreshes p on iface with valid_lft = whole seconds of
// lifetime, as Linux.AddAddr.
func (f *Fake) AddAddr(iface string, p netip.Prefix, lifetime time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs["AddAddr"]; err != nil {
		return err
	}
	if err := checkPrefix(p); err != nil {
		return fmt.Errorf("adding %s to %s: %w", p, iface, err)
	}
	secs, err := lifetimeSeconds(lifetime)
	if err != nil {
		return fmt.Errorf("adding %s to %s: %w", p, iface, err)
	}
	lk, err := f.link(iface)
	if err != nil {
		return fmt.Errorf("adding %s to %s: %w", p, iface, err)
	}
	expires := f.now().Add(time.Duration(secs) * time.Second)
	if i := slices.IndexFunc(lk.addrs, func(a fakeAddr) bool { return a.p == p }); i >= 0 {
		lk.addrs[i].expires = expires
	} else {
		lk.addrs = append(lk.addrs, fakeAddr{p: p, expires: expires})
	}
	f.record("addr add %s dev %s valid_lft %d", p, iface, secs)
	return nil
}

// sameSubnet says whether the kernel counts a and b as one IPv4 subnet
// (one is the other's secondary).
func sameSubnet(a, b netip.Prefix) bool {
	return a.Addr().Is4() && b.Addr().Is4() && a.Bits() == b.Bits() && a.Masked() == b.Masked()
}

// DelAddr removes p from iface, as Linux.DelAddr; absent is no error.
func (f *Fake) DelAddr(iface string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs["DelAddr"]; err != nil {
		return err
	}
	if err := checkPrefix(p); err != nil {
		return fmt.Errorf("deleting %s from %s: %w", p, iface, err)
	}
	lk, err := f.link(iface)
	if err != nil {
		return fmt.Errorf("deleting %s from %s: %w", p, iface, err)
	}
	f.record("addr del %s dev %s", p, iface)
	i := slices.IndexFunc(lk.addrs, func(a fakeAddr) bool { return a.p == p })
	if i < 0 {
		return nil
	}
	primary := slices.IndexFunc(lk.addrs, func(a fakeAddr) bool { return sameSubnet(a.p, p) }) == i
	lk.addrs = slices.Delete(lk.addrs, i, i+1)
	if primary && !lk.promote {
		lk.addrs = slices.DeleteFunc(lk.addrs, func(a fakeAddr) bool { return sameSubnet(a.p, p) })
	}
	return nil
}

// Addrs returns the unexpired addresses on iface in the order added.
func (f *Fake) Addrs(iface string) ([]netip.Prefix, error) {
	return prefixes(f.AddrDetails(iface))
}

// AddrDetails returns the unexpired addresses on iface with the whole
// seconds left of their lifetimes.
func (f *Fake) AddrDetails(iface string) ([]AddrInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs["AddrDetails"]; err != nil {
		return nil, err
	}
	lk, err := f.link(iface)
	if err != nil {
		return nil, fmt.Errorf("listing addresses of %s: %w", iface, err)
	}
	now := f.now()
	infos := make([]AddrInfo, len(lk.addrs))
	for i, a := range lk.addrs {
		infos[i] = AddrInfo{Prefix: a.p, ValidLft: a.expires.Sub(now).Truncate(time.Second)}
	}
	return infos, nil
}

// AllAddrs returns the addresses of every interface.
func (f *Fake) AllAddrs() (map[string][]netip.Prefix, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs["AllAddrs"]; err != nil {
		return nil, err
	}
	all := make(map[string][]netip.Prefix, len(f.links))
	for name := range f.links {
		lk, _ := f.link(name)
		ps := []netip.Prefix{}
		for _, a := range lk.addrs {
			ps = append(ps, a.p)
		}
		all[name] = ps
	}
	return all, nil
}

// LocalAddrs returns every address on every interface, interfaces by
// name, once each.
func (f *Fake) LocalAddrs() ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs["LocalAddrs"]; err != nil {
		return nil, err
	}
	names := make([]string, 0, len(f.links))
	for name := range f.links {
		names = append(names, name)
	}
	slices.Sort(names)
	var out []netip.Addr
	for _, name := range names {
		lk, _ := f.link(name)
		for _, a := range lk.addrs {
			if !slices.Contains(out, a.p.Addr()) {
				out = append(out, a.p.Addr())
			}
		}
	}
	return out, nil
}

// LinkUp returns the carrier of iface.
func (f *Fake) LinkUp(iface string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs["LinkUp"]; err != nil {
		return false, err
	}
	lk, err := f.link(iface)
	if err != nil {
		return false, fmt.Errorf("reading link state of %s: %w", iface, err)
	}
	return lk.up, nil
}

// LinkExists reports whether iface was added and not removed.
func (f *Fake) LinkExists(iface string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.links[iface]
	return ok
}

// HardwareAddr returns the MAC of iface.
func (f *Fake) HardwareAddr(iface string) (net.HardwareAddr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs["HardwareAddr"]; err != nil {
		return nil, err
	}
	lk, err := f.link(iface)
	if err != nil {
		return nil, fmt.Errorf("reading hardware address of %s: %w", iface, err)
	}
	return slices.Clone(lk.mac), nil
}

func arpWord(ip netip.Addr) string {
	if ip.Is4() {
		return "arp"
	}
	return "ndp"
}

// Probe returns the answer set by SetProbeAnswer for ip at once (nil when
// none): it does not wait.
func (f *Fake) Probe(ctx context.Context, iface string, ip netip.Addr, wait time.Duration) (net.HardwareAddr, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs["Probe"]; err != nil {
		return nil, err
	}
	if wait <= 0 {
		return nil, fmt.Errorf("probing %s on %s: wait %v is not positive", ip, iface, wait)
	}
	if _, ok := family(ip); !ok {
		return nil, fmt.Errorf("probing %s on %s: not an IPv4 or IPv6 address", ip, iface)
	}
	if _, err := f.link(iface); err != nil {
		return nil, fmt.Errorf("probing %s on %s: %w", ip, iface, err)
	}
	f.record("%s probe %s dev %s", arpWord(ip), ip, iface)
	return slices.Clone(f.answers[ip]), nil
}

// Announce records a gratuitous ARP (or unsolicited NA) for ip.
func (f *Fake) Announce(iface string, ip netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs["Announce"]; err != nil {
		return err
	}
	if _, ok := family(ip); !ok {
		return fmt.Errorf("announcing %s on %s: not an IPv4 or IPv6 address", ip, iface)
	}
	if _, err := f.link(iface); err != nil {
		return fmt.Errorf("announcing %s on %s: %w", ip, iface, err)
	}
	f.record("%s announce %s dev %s", arpWord(ip), ip, iface)
	return nil
}

// PromoteSecondaries records the sysctl and keeps secondaries of iface
// from then on.
func (f *Fake) PromoteSecondaries(iface string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs["PromoteSecondaries"]; err != nil {
		return err
	}
	lk, err := f.link(iface)
	if err != nil {
		return fmt.Errorf("setting promote_secondaries on %s: %w", iface, err)
	}
	lk.promote = true
	f.record("sysctl net.ipv4.conf.%s.promote_secondaries=1", iface)
	return nil
}

// Bond returns the state set by SetBond; ok is false for other interfaces.
func (f *Fake) Bond(iface string) (BondStatus, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs["Bond"]; err != nil {
		return BondStatus{}, false, err
	}
	b, ok := f.bonds[iface]
	b.Slaves = slices.Clone(b.Slaves)
	return b, ok, nil
}

// Close does nothing; watches end with their contexts.
func (f *Fake) Close() error { return nil }

// fakeWatch is one WatchLinks reader: an unbounded queue so that the test
// changing links never blocks on a slow reader.
type fakeWatch struct {
	mu    sync.Mutex
	queue []LinkEvent
	wake  chan struct{} // capacity 1: "the queue may have grown"
}

// emit queues ev for every watcher; f.mu is held.
func (f *Fake) emit(ev LinkEvent) {
	for w := range f.watchers {
		w.mu.Lock()
		w.queue = append(w.queue, ev)
		w.mu.Unlock()
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// WatchLinks delivers the link changes made with AddLink, RemoveLink and
// SetLinkUp after it returns, in order, until ctx ends; then it closes the
// channel.
func (f *Fake) WatchLinks(ctx context.Context) (<-chan LinkEvent, error) {
	f.mu.Lock()
	if err := f.errs["WatchLinks"]; err != nil {
		f.mu.Unlock()
		return nil, err
	}
	w := &fakeWatch{wake: make(chan struct{}, 1)}
	f.watchers[w] = struct{}{}
	f.mu.Unlock()

	out := make(chan LinkEvent)
	go func() {
		defer close(out)
		defer func() {
			f.mu.Lock()
			delete(f.watchers, w)
			f.mu.Unlock()
		}()
		for {
			w.mu.Lock()
			if len(w.queue) == 0 {
				w.mu.Unlock()
				select {
				case <-w.wake:
					continue
				case <-ctx.Done():
					return
				}
			}
			ev := w.queue[0]
			w.queue = w.queue[1:]
			w.mu.Unlock()
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
