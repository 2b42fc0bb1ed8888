package daemon

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/eventscript"
	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
	"github.com/ctdb-go/ctdb-go/daemon/state"
	"github.com/ctdb-go/ctdb-go/recoverd"
)

// lifetime is the kernel lifetime for an address added now: the whole
// seconds left on the lease less lifetimeMargin, rounded down, so the
// kernel drops the address no later than the lease ends even when the add
// itself is slow. Zero means "do not hold it".
func lifetime(leaseExp, now time.Time) time.Duration {
	left := leaseExp.Sub(now) - lifetimeMargin
	if left < time.Second {
		return 0
	}
	return left.Truncate(time.Second)
}

// lifetimeMargin is lease time not handed to the kernel: a netlink add
// that takes longer than this (a loaded host) is caught by the check
// after it (see addWithinLease).
const lifetimeMargin = 100 * time.Millisecond

// refreshLoop keeps held addresses' kernel lifetimes within the lease,
// drops addresses whose lease is nearly gone, and notices addresses that
// appeared or vanished behind our back.
func (d *Daemon) refreshLoop(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	scan := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-d.term.Changed(): // the lease lapsed: drop at once
		}
		d.refresh(ctx)
		d.expireBan()
		if time.Since(scan) >= time.Second {
			scan = time.Now()
			d.scanKernel()
		}
	}
}

func (d *Daemon) refresh(ctx context.Context) {
	now := time.Now()
	type todo struct {
		h    heldAddr
		p    *heldAddr
		addr netip.Addr
		lft  time.Duration
	}
	var refresh, drop []todo
	term := d.term.Term()
	lft := lifetime(term.End, now)
	d.mu.Lock()
	for a, h := range d.held {
		switch {
		case h.term != term.ID || !term.Valid(now) || lft == 0 && h.kernelExp.After(term.End):
			// Added under a lease that lapsed (the kernel may have
			// dropped it, another node may hold it), or the lease ended.
			drop = append(drop, todo{h: *h, addr: a})
			delete(d.held, a)
		case h.kernelExp.After(term.End):
			// The lease got shorter than the kernel's lifetime.
			refresh = append(refresh, todo{h: *h, p: h, addr: a, lft: lft})
		case lft == 0:
			// Under a second left: a whole-second lifetime would outlive
			// the lease, so no refresh; the kernel drops the address when
			// the lifetime set earlier (within the lease) runs out, unless
			// a grant comes first. A leader change fits in that second.
		case h.kernelExp.Sub(now) < 600*time.Millisecond || now.Add(lft).Sub(h.kernelExp) >= time.Second:
			refresh = append(refresh, todo{h: *h, p: h, addr: a, lft: lft})
		}
	}
	d.mu.Unlock()
	for _, t := range refresh {
		err := d.kernelRefresh(t.addr, t.p)
		switch {
		case errors.Is(err, errLeaseEnded):
			d.log.Warn("lease ran out: address dropped", "ip", t.addr, "iface", t.h.iface)
			d.stats.leaseDrops.Add(1)
			d.persistHeld()
			d.noteChange()
			go d.ev.Run(d.connectionsEnv(context.Background(), t.addr), "releaseip", t.h.iface, t.addr.String(), strconv.Itoa(t.h.prefix.Bits()))
		case err != nil:
			d.log.Warn("refreshing address lifetime", "ip", t.h.prefix, "iface", t.h.iface, "err", err)
		}
	}
	if len(drop) > 0 {
		for _, t := range drop {
			if err := d.kernelDel(t.addr, t.h.iface, t.h.prefix); err != nil {
				d.log.Warn("removing address", "ip", t.h.prefix, "err", err)
			}
			d.log.Warn("lease ran out: address dropped", "ip", t.addr, "iface", t.h.iface)
			d.stats.leaseDrops.Add(1)
		}
		d.persistHeld()
		d.noteChange()
		go func() {
			for _, t := range drop {
				d.ev.Run(d.connectionsEnv(ctx, t.addr), "releaseip", t.h.iface, t.addr.String(), strconv.Itoa(t.h.prefix.Bits()))
			}
		}()
	}
}

// expireBan lifts a ban whose period is over: a ban always ends, whether
// it was set in this run or restored from state.db, and whether or not
// persisting it worked.
func (d *Daemon) expireBan() {
	d.mu.Lock()
	if d.admin&nodeflag.Banned == 0 || time.Now().Before(d.banUntil) {
		d.mu.Unlock()
		return
	}
	d.admin &^= nodeflag.Banned
	d.banUntil = time.Time{}
	flags := d.admin
	d.mu.Unlock()
	d.log.Info("ban period over", "flags", flags.String())
	if err := d.store.SetAdminFlags(flags, time.Time{}); err != nil {
		d.log.Error("persisting admin flags after the ban", "err", err)
	}
	d.noteUrgent()
}

// scanKernel compares the kernel's public addresses with what we hold.
func (d *Daemon) scanKernel() {
	listed := time.Now()
	all, err := d.k.AllAddrs()
	if err != nil {
		d.log.Warn("listing addresses", "err", err)
		return
	}
	present := map[netip.Addr]string{}
	for ifc, ps := range all {
		for _, p := range ps {
			if _, ok := d.publicAddr(p.Addr()); ok {
				present[p.Addr()] = ifc
			}
		}
	}
	changed := false
	d.mu.Lock()
	for a, h := range d.held {
		// Only an address whose kernel add completed before the listing
		// began can have vanished: a take registers it before AddAddr,
		// and under load that add may come after the listing.
		if _, ok := present[a]; !ok && !h.added.IsZero() && h.added.Before(listed) {
			d.log.Warn("held address vanished from the kernel", "ip", a)
			delete(d.held, a)
			changed = true
		}
	}
	foreign := map[netip.Addr]string{}
	for a, ifc := range present {
		if _, ok := d.held[a]; !ok && !d.releasing[a] {
			foreign[a] = ifc
			if _, known := d.foreign[a]; !known {
				d.log.Warn("public address configured here without being given to this node", "ip", a, "iface", ifc)
			}
		}
	}
	if len(foreign) != len(d.foreign) {
		changed = true
	}
	d.foreign = foreign
	d.mu.Unlock()
	if changed {
		d.persistHeld()
		d.noteChange()
	}
}

// persistHeld asks the flusher to write the held addresses. Takes and
// releases come by the hundred in a takeover run; one bbolt commit (two
// fsyncs) each would serialise them, so writes are batched. The list is
// only needed after a crash, and cleanStale then also removes every
// configured public address it finds, so a short lag loses nothing.
func (d *Daemon) persistHeld() {
	select {
	case d.dirty <- struct{}{}:
	default:
	}
}

// flushLoop writes the held addresses at most every flushGap.
func (d *Daemon) flushLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			d.writeHeld()
			return
		case <-d.dirty:
		}
		d.writeHeld()
		select {
		case <-ctx.Done():
			d.writeHeld()
			return
		case <-time.After(flushGap):
		}
	}
}

// flushGap is the least time between two writes of the held addresses.
const flushGap = 100 * time.Millisecond

func (d *Daemon) writeHeld() {
	d.mu.Lock()
	var hs []state.Held
	for _, h := range d.held {
		hs = append(hs, state.Held{Prefix: h.prefix, Iface: h.iface, Expires: h.kernelExp})
	}
	d.mu.Unlock()
	if err := d.store.SetHeld(hs); err != nil {
		d.log.Warn("persisting held addresses", "err", err)
	}
}

// take adds an address ordered by the leader: probe, add with a lifetime
// within the lease, run takeip, announce.
func (d *Daemon) take(ctx context.Context, a netip.Addr) (err error) {
	pa, ok := d.publicAddr(a)
	if !ok {
		return fmt.Errorf("%s is not a public address of node %d", a, d.pnn)
	}
	d.mu.Lock()
	flags := d.flagsLocked()
	if !flags.CanHost() || d.runstate != "RUNNING" {
		d.mu.Unlock()
		return fmt.Errorf("node %d cannot host addresses (%s, %s)", d.pnn, flags, d.runstate)
	}
	if _, ok := d.held[a]; ok {
		d.mu.Unlock()
		return nil
	}
	iface := ""
	for _, ifc := range pa.Ifaces {
		if d.links[ifc] {
			iface = ifc
			break
		}
	}
	d.mu.Unlock()
	if iface == "" {
		return fmt.Errorf("no interface with link up for %s (%v)", a, pa.Ifaces)
	}
	if err := d.probe(ctx, iface, a); err != nil {
		return err
	}
	term := d.term.Term()
	lft := lifetime(term.End, time.Now())
	if lft == 0 {
		return fmt.Errorf("node %d has no lease", d.pnn)
	}
	d.mu.Lock()
	d.held[a] = &heldAddr{prefix: pa.Prefix, iface: iface, kernelExp: time.Now().Add(lft), term: term.ID}
	delete(d.foreign, a)
	d.owners[a] = d.pnn
	d.mu.Unlock()
	if err := d.kernelAdd(a, iface, pa.Prefix); err != nil {
		d.mu.Lock()
		delete(d.held, a)
		d.mu.Unlock()
		_ = d.kernelDel(a, iface, pa.Prefix)
		err = fmt.Errorf("adding %s to %s: %w", pa.Prefix, iface, err)
		if errors.Is(err, errReleasedWhileTaken) || errors.Is(err, errLeaseEnded) {
			return err // not this node's fault
		}
		return fault(err)
	}
	d.persistHeld()
	if err := d.k.Announce(iface, a); err != nil {
		d.log.Warn("announcing address", "ip", a, "iface", iface, "err", err)
	}
	r := d.ev.Run(ctx, "takeip", iface, a.String(), strconv.Itoa(pa.Prefix.Bits()))
	if !r.OK() {
		d.mu.Lock()
		delete(d.held, a)
		d.mu.Unlock()
		_ = d.kernelDel(a, iface, pa.Prefix)
		d.persistHeld()
		d.noteChange()
		return fault(fmt.Errorf("takeip event failed: %s", describe(r)))
	}
	d.log.Info("took address", "ip", pa.Prefix, "iface", iface)
	d.stats.takes.Add(1)
	d.noteChange()
	go d.announceLater(iface, a)
	return nil
}

// announceLater repeats the gratuitous ARP twice, 1.1 s apart as CTDB does,
// while the address is still held.
func (d *Daemon) announceLater(iface string, a netip.Addr) {
	for range 2 {
		time.Sleep(1100 * time.Millisecond)
		d.mu.Lock()
		_, ok := d.held[a]
		d.mu.Unlock()
		if !ok {
			return
		}
		if err := d.k.Announce(iface, a); err != nil {
			d.log.Debug("announcing address", "ip", a, "err", err)
		}
	}
}

// probe asks the network whether anyone still answers for a, retrying
// every 100 ms up to TakeIPProbeTimeoutMs. Someone answering to the end
// means the address is not taken: a ghost of an old holder would otherwise
// share it.
func (d *Daemon) probe(ctx context.Context, iface string, a netip.Addr) error {
	wait := d.tun.ARPProbeWait()
	start := time.Now()
	deadline := start.Add(d.tun.TakeIPProbeTimeout())
	answered := ""
	silent := 0 // unanswered probes since the last answer
	for {
		mac, err := d.k.Probe(ctx, iface, a, wait)
		if err != nil {
			// The lease is what keeps an address on one node; the probe
			// only catches ghosts. A broken probe must not stop every
			// takeover, but it needs a human.
			d.log.Error("duplicate-address probe failed; taking the address unprobed", "ip", a, "iface", iface, "err", err)
			return nil
		}
		if mac == nil && answered != "" && silent == 0 {
			// Someone answered before: one unanswered probe may just be a
			// busy host's late answer. Take it on the second silence.
			silent++
			continue
		}
		if mac == nil {
			d.mu.Lock()
			delete(d.probeAnswers, a)
			d.mu.Unlock()
			if answered != "" {
				d.log.Info("the other host went silent; taking the address", "ip", a, "mac", answered, "waited", time.Since(start))
			}
			return nil
		}
		d.mu.Lock()
		d.probeAnswers[a] = mac.String()
		d.mu.Unlock()
		d.stats.probeAnswered.Add(1)
		silent = 0
		if answered != mac.String() {
			answered = mac.String()
			d.log.Warn("address answered by another host; waiting before taking it", "ip", a, "mac", answered, "iface", iface)
		}
		if time.Now().After(deadline) {
			d.log.Error("address still answered by another host; not taking it", "ip", a, "mac", mac.String())
			return fmt.Errorf("%s still answered by %s", a, mac)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// release removes an address: releaseip first, then the address.
func (d *Daemon) release(ctx context.Context, a netip.Addr, newHolder int) error {
	d.mu.Lock()
	h, ok := d.held[a]
	var hv heldAddr
	if ok {
		hv = *h
	} else if ifc, f := d.foreign[a]; f {
		pfx := netip.PrefixFrom(a, 32)
		if pa, ok := d.public[a]; ok {
			pfx = pa.Prefix
		}
		hv = heldAddr{prefix: pfx, iface: ifc}
		ok = true
	}
	d.owners[a] = newHolder
	if ok {
		// Out of held before anything else, so no lifetime refresh can
		// bring it back once it is deleted; releasing keeps the kernel
		// scan from calling it foreign meanwhile.
		delete(d.held, a)
		delete(d.foreign, a)
		d.releasing[a] = true
	}
	d.mu.Unlock()
	if !ok {
		return nil // redundant release
	}
	r := d.ev.Run(d.connectionsEnv(ctx, a), "releaseip", hv.iface, a.String(), strconv.Itoa(hv.prefix.Bits()))
	err := d.kernelDel(a, hv.iface, hv.prefix)
	d.mu.Lock()
	delete(d.releasing, a)
	d.mu.Unlock()
	d.persistHeld()
	d.noteChange()
	if err != nil {
		return fault(fmt.Errorf("removing %s from %s: %w", hv.prefix, hv.iface, err))
	}
	d.log.Info("released address", "ip", hv.prefix, "iface", hv.iface, "new_holder", newHolder)
	d.stats.releases.Add(1)
	if !r.OK() {
		return fault(fmt.Errorf("releaseip event failed (address removed): %s", describe(r)))
	}
	return nil
}

// connectionsEnv tells releaseip how many established TCP connections a
// has, as CTDB_TCP_CONNECTIONS="IP N" (see events.d/README.md), so that
// its scripts need not start ss to find none.
func (d *Daemon) connectionsEnv(ctx context.Context, a netip.Addr) context.Context {
	counts, err := d.tcpCounts()
	if err != nil {
		d.log.Debug("counting TCP connections", "ip", a, "err", err)
		return ctx
	}
	return eventscript.WithEnv(ctx, fmt.Sprintf("CTDB_TCP_CONNECTIONS=%s %d", a, counts[a]))
}

// connCountAge is how long one count of the established TCP connections
// serves further releases. A takeover run releases hundreds of addresses
// within a second, and a count walks the kernel's whole TCP table, as ss
// does: one per release would cost most of what it saves. A connection
// made after the count goes unlisted, as one made after a script's own
// listing always did; its client learns of the move from the new holder's
// RST.
const connCountAge = 100 * time.Millisecond

func (d *Daemon) tcpCounts() (map[netip.Addr]int, error) {
	d.conns.Lock()
	defer d.conns.Unlock()
	if d.conns.counts != nil && time.Since(d.conns.at) < connCountAge {
		return d.conns.counts, nil
	}
	m, err := d.k.EstablishedTCP()
	if err != nil {
		return nil, err
	}
	d.conns.counts, d.conns.at = m, time.Now()
	return m, nil
}

// dropAll releases every address this node holds, without waiting for a
// leader (stop, ban, shutdown).
func (d *Daemon) dropAll(ctx context.Context, why string) {
	d.mu.Lock()
	var addrs []netip.Addr
	for a := range d.held {
		addrs = append(addrs, a)
	}
	for a := range d.foreign {
		addrs = append(addrs, a)
	}
	d.mu.Unlock()
	slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	for _, a := range addrs {
		if err := d.release(ctx, a, -1); err != nil {
			d.log.Warn("releasing address", "ip", a, "why", why, "err", err)
		}
	}
}

// nodeState is the report sent to the leader.
func (d *Daemon) nodeStateLocked() recoverd.NodeState {
	st := recoverd.NodeState{
		PNN: d.pnn, Boot: d.boot, Version: d.version,
		Flags: d.flagsLocked(), RunState: d.runstate,
	}
	if d.banUntil.After(time.Now()) && d.admin&nodeflag.Banned != 0 {
		st.Flags |= nodeflag.Banned
	}
	for _, pa := range d.pubs {
		st.Known = append(st.Known, recoverd.PublicAddr{Prefix: pa.Prefix, Ifaces: pa.Ifaces})
		for _, ifc := range pa.Ifaces {
			if d.links[ifc] {
				st.Available = append(st.Available, pa.Prefix.Addr())
				break
			}
		}
	}
	for a := range d.held {
		st.Held = append(st.Held, a)
	}
	for a := range d.foreign {
		st.Held = append(st.Held, a)
	}
	slices.SortFunc(st.Held, func(a, b netip.Addr) int { return a.Compare(b) })
	return st
}

// dropStale removes addresses held under a lease that ran out.
func (d *Daemon) dropStale(stale map[netip.Addr]*heldAddr) {
	for a, h := range stale {
		if err := d.kernelDel(a, h.iface, h.prefix); err != nil {
			d.log.Warn("removing address", "ip", h.prefix, "err", err)
		}
		d.log.Warn("lease ran out: address dropped", "ip", a, "iface", h.iface)
		d.stats.leaseDrops.Add(1)
	}
	d.persistHeld()
	d.noteChange()
	go func() {
		for a, h := range stale {
			d.ev.Run(d.connectionsEnv(context.Background(), a), "releaseip", h.iface, a.String(), strconv.Itoa(h.prefix.Bits()))
		}
	}()
}

// faultError marks an order's failure as this node's own fault (an event
// script or the kernel failed); the leader bans a node for repeated faults
// only, not for refusals that are not its doing.
type faultError struct{ err error }

func (e *faultError) Error() string { return e.err.Error() }
func (e *faultError) Unwrap() error { return e.err }

func fault(err error) error { return &faultError{err} }

// Every kernel change of a public address happens under that address's
// lock (kernelAdd, kernelRefresh, kernelDel), and a removal takes the
// address out of d.held before it deletes it. So a lifetime refresh, which
// re-checks d.held under the lock, can never bring back an address that a
// release or a lapsed lease has just removed: netlink's add-or-replace
// would create it again, on a node that has given it away.
func (d *Daemon) addrLock(a netip.Addr) *sync.Mutex {
	b := a.As16()
	h := fnv.New32a()
	h.Write(b[:])
	return &d.kmu[h.Sum32()%uint32(len(d.kmu))]
}

// kernelAdd adds a newly taken address with the lifetime left on the lease.
func (d *Daemon) kernelAdd(a netip.Addr, iface string, p netip.Prefix) error {
	l := d.addrLock(a)
	l.Lock()
	defer l.Unlock()
	term := d.term.Term()
	lft := lifetime(term.End, time.Now())
	d.mu.Lock()
	h, held := d.held[a]
	if held {
		h.kernelExp = time.Now().Add(lft)
	}
	d.mu.Unlock()
	if !held {
		return fmt.Errorf("%s: %w", a, errReleasedWhileTaken)
	}
	if lft == 0 || h.term != term.ID {
		return fmt.Errorf("node %d has no lease", d.pnn)
	}
	if err := d.addWithinLease(a, h, lft); err != nil {
		return err
	}
	// From now on a kernel listing shows it (see scanKernel).
	d.mu.Lock()
	if d.held[a] == h {
		h.added = time.Now()
	}
	d.mu.Unlock()
	return nil
}

// errReleasedWhileTaken: a release (an order, a lapsed lease) removed an
// address between its take's registration and its kernel add.
var errReleasedWhileTaken = errors.New("released while being taken")

// kernelRefresh extends the lifetime of a held address, if it is still the
// entry h and the lease still has a whole second.
func (d *Daemon) kernelRefresh(a netip.Addr, h *heldAddr) error {
	l := d.addrLock(a)
	l.Lock()
	defer l.Unlock()
	term := d.term.Term()
	lft := lifetime(term.End, time.Now())
	d.mu.Lock()
	cur, ok := d.held[a]
	ok = ok && cur == h && h.term == term.ID && lft > 0
	if ok {
		h.kernelExp = time.Now().Add(lft)
	}
	d.mu.Unlock()
	if !ok {
		return nil // released, or lapsed: refresh drops it
	}
	return d.addWithinLease(a, h, lft)
}

// errLeaseEnded: the lease ended while an address was being added, so it
// was removed again.
var errLeaseEnded = errors.New("lease ended while the address was added")

// addWithinLease adds or refreshes h's address with kernel lifetime lft,
// then checks the lease again: lft was computed before the netlink call,
// and a process frozen in between (SIGSTOP, a VM pause, a loaded host)
// would otherwise set a lifetime that outlives the lease, or re-create an
// address after its lease lapsed, which another node may hold by now. If
// it does, the lifetime is set again from what is left, or the address is
// removed at once when less than a second is left or the lease lapsed
// (errLeaseEnded; the entry leaves d.held). The caller holds a's address
// lock.
func (d *Daemon) addWithinLease(a netip.Addr, h *heldAddr, lft time.Duration) error {
	for range 3 {
		if err := d.k.AddAddr(h.iface, h.prefix, lft); err != nil {
			return err
		}
		done := time.Now() // the kernel's clock for lft started before this
		term := d.term.Term()
		if term.ID == h.term && !done.Add(lft).After(term.End) {
			return nil
		}
		lft = 0
		if term.ID == h.term {
			lft = lifetime(term.End, done)
		}
		d.mu.Lock()
		if d.held[a] == h {
			h.kernelExp = done.Add(lft)
		}
		d.mu.Unlock()
		d.log.Warn("address lifetime outlived the lease after a slow add; setting it again", "ip", h.prefix, "left", term.End.Sub(done))
		if lft == 0 {
			break
		}
	}
	d.mu.Lock()
	if d.held[a] == h {
		delete(d.held, a)
	}
	d.mu.Unlock()
	if err := d.k.DelAddr(h.iface, h.prefix); err != nil {
		d.log.Warn("removing address", "ip", h.prefix, "err", err)
	}
	return errLeaseEnded
}

// kernelDel removes an address the caller has already taken out of d.held.
func (d *Daemon) kernelDel(a netip.Addr, iface string, p netip.Prefix) error {
	l := d.addrLock(a)
	l.Lock()
	defer l.Unlock()
	return d.k.DelAddr(iface, p)
}
