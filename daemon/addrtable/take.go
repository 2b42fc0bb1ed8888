package addrtable

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// Take adds a public address ordered by the leader: probe that nobody
// else answers for it, add it with a kernel lifetime within the lease, run
// takeip, announce it. It returns nil if the address is already held. The
// caller has checked that the node may host addresses. A failure of a
// script or the kernel is a *FaultError.
func (t *Table) Take(ctx context.Context, a netip.Addr) (err error) {
	release, err := t.acquire(ctx, a)
	if err != nil {
		return err
	}
	defer release()
	defer func() {
		if err != nil {
			t.takeFailures.Add(1)
		}
	}()

	var (
		prefix netip.Prefix
		iface  string
		public bool
		held   bool
		ifaces []string
	)
	t.do(func(s *tableState) {
		pa, ok := s.public[a]
		public = ok
		if !ok {
			return
		}
		prefix, ifaces = pa.Prefix, pa.Ifaces
		if _, held = s.held[a]; held {
			return
		}
		for _, ifc := range pa.Ifaces {
			if s.links[ifc] {
				iface = ifc
				break
			}
		}
	})
	switch {
	case !public:
		return errNotPublic(t.cfg.PNN, a)
	case held:
		return nil
	case iface == "":
		return fmt.Errorf("no interface with link up for %s (%v)", a, ifaces)
	}
	if err := t.probe(ctx, iface, a); err != nil {
		return err
	}

	term := t.cfg.Lease.Term()
	lft := lifetime(term.End, time.Now())
	if lft == 0 {
		return fmt.Errorf("node %d: %w", t.cfg.PNN, ErrNoLease)
	}
	e := &entry{prefix: prefix, iface: iface, term: term.ID, kernelExp: time.Now().Add(lft)}
	t.do(func(s *tableState) {
		s.held[a] = e
		delete(s.foreign, a)
	})
	if err := t.addWithinLease(a, e, lft); err != nil {
		t.forget(a, e)
		_ = t.cfg.Kernel.DelAddr(iface, prefix)
		t.changed()
		err = fmt.Errorf("adding %s to %s: %w", prefix, iface, err)
		if errors.Is(err, errLeaseEnded) {
			return err // not this node's fault
		}
		return fault(err)
	}
	t.changed()
	if err := t.cfg.Kernel.Announce(iface, a); err != nil {
		t.log.Warn("announcing address", "ip", a, "iface", iface, "err", err)
	}
	r := t.cfg.Events.Run(ctx, "takeip", iface, a.String(), strconv.Itoa(prefix.Bits()))
	if !r.OK() {
		t.forget(a, e)
		_ = t.cfg.Kernel.DelAddr(iface, prefix)
		t.changed()
		return fault(fmt.Errorf("takeip event failed: %s", t.cfg.Describe(r)))
	}
	t.do(func(s *tableState) { e.taken = time.Now() })
	t.log.Info("took address", "ip", prefix, "iface", iface)
	t.takes.Add(1)
	t.cfg.Changed()
	t.helper(func() { t.announceLater(iface, a, e) })
	return nil
}

// forget removes a's entry if it is still e.
func (t *Table) forget(a netip.Addr, e *entry) {
	t.do(func(s *tableState) {
		if s.held[a] == e {
			delete(s.held, a)
		}
	})
}

// holds reports whether a's entry is still e.
func (t *Table) holds(a netip.Addr, e *entry) bool {
	var ok bool
	t.do(func(s *tableState) { ok = s.held[a] == e })
	return ok
}

// announceLater repeats the gratuitous ARP, announceRepeat apart as CTDB
// does, while the address is still held. It ends with the table.
func (t *Table) announceLater(iface string, a netip.Addr, e *entry) {
	for range announceCount {
		select {
		case <-t.quit:
			return
		case <-time.After(announceRepeat):
		}
		if !t.holds(a, e) {
			return
		}
		if err := t.cfg.Kernel.Announce(iface, a); err != nil {
			t.log.Debug("announcing address", "ip", a, "err", err)
		}
	}
}

// probe asks the network whether anyone still answers for a, retrying
// every 100 ms up to ProbeTimeout. Someone answering to the end means the
// address is not taken: a ghost of an old holder would otherwise share it.
func (t *Table) probe(ctx context.Context, iface string, a netip.Addr) error {
	wait := t.cfg.ProbeWait()
	start := time.Now()
	deadline := start.Add(t.cfg.ProbeTimeout())
	answered := ""
	silent := 0 // unanswered probes since the last answer
	for {
		mac, err := t.cfg.Kernel.Probe(ctx, iface, a, wait)
		if err != nil {
			// The lease is what keeps an address on one node; the probe
			// only catches ghosts. A broken probe must not stop every
			// takeover, but it needs a human.
			t.log.Error("duplicate-address probe failed; taking the address unprobed", "ip", a, "iface", iface, "err", err)
			return nil
		}
		if mac == nil && answered != "" && silent == 0 {
			// Someone answered before: one unanswered probe may just be a
			// busy host's late answer. Take it on the second silence.
			silent++
			continue
		}
		if mac == nil {
			t.do(func(s *tableState) { delete(s.probed, a) })
			if answered != "" {
				t.log.Info("the other host went silent; taking the address", "ip", a, "mac", answered, "waited", time.Since(start))
			}
			return nil
		}
		t.do(func(s *tableState) { s.probed[a] = mac.String() })
		t.probeAnswered.Add(1)
		silent = 0
		if answered != mac.String() {
			answered = mac.String()
			t.log.Warn("address answered by another host; waiting before taking it", "ip", a, "mac", answered, "iface", iface)
		}
		if time.Now().After(deadline) {
			t.log.Error("address still answered by another host; not taking it", "ip", a, "mac", answered)
			return fmt.Errorf("%s still answered by %s", a, answered)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// addWithinLease adds or refreshes e's address with kernel lifetime lft,
// then checks the lease again: lft was computed before the netlink call,
// and a process frozen in between (SIGSTOP, a VM pause, a loaded host)
// would otherwise set a lifetime that outlives the lease, or re-create an
// address after its lease lapsed, which another node may hold by now. If
// it does, the lifetime is set again from what is left, or the address is
// removed at once when less than a second is left or the lease lapsed
// (errLeaseEnded; the entry leaves the table). The caller holds a's slot.
func (t *Table) addWithinLease(a netip.Addr, e *entry, lft time.Duration) error {
	for range 3 {
		if err := t.cfg.Kernel.AddAddr(e.iface, e.prefix, lft); err != nil {
			return err
		}
		done := time.Now() // the kernel's clock for lft started before this
		term := t.cfg.Lease.Term()
		if term.ID == e.term && !done.Add(lft).After(term.End) {
			t.do(func(s *tableState) {
				if s.held[a] == e {
					e.kernelExp = done.Add(lft)
				}
			})
			return nil
		}
		lft = 0
		if term.ID == e.term {
			lft = lifetime(term.End, done)
		}
		t.log.Warn("address lifetime outlived the lease after a slow add; setting it again", "ip", e.prefix, "left", term.End.Sub(done))
		if lft == 0 {
			break
		}
	}
	t.forget(a, e)
	if err := t.cfg.Kernel.DelAddr(e.iface, e.prefix); err != nil {
		t.log.Warn("removing address", "ip", e.prefix, "err", err)
	}
	return errLeaseEnded
}
