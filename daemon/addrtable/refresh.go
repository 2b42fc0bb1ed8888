package addrtable

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"time"
)

// refresh keeps held addresses' kernel lifetimes within the lease and
// drops those whose lease lapsed or ended. Addresses another operation is
// acting on are left to it (a take sets its own lifetime; a release
// removes it) and seen at the next pass.
func (t *Table) refresh(ctx context.Context) {
	now := time.Now()
	term := t.cfg.Lease.Term()
	lft := lifetime(term.End, now)
	type job struct {
		a    netip.Addr
		e    *entry
		drop bool
	}
	var jobs []job
	t.do(func(s *tableState) {
		for a, e := range s.held {
			var j job
			switch {
			case e.term != term.ID || !term.Valid(now) || lft == 0 && e.kernelExp.After(term.End):
				// Added under a lease that lapsed (the kernel may have
				// dropped it, another node may hold it), or the lease
				// ended: it goes.
				j = job{a: a, e: e, drop: true}
			case e.kernelExp.After(term.End):
				// The lease got shorter than the kernel lifetime
				// (LeaseTime lowered): set it again.
				j = job{a: a, e: e}
			case lft == 0:
				// Under a second left: a whole-second lifetime would
				// outlive the lease, so no refresh; the kernel drops the
				// address when the lifetime set earlier (within the
				// lease) runs out, unless a grant comes first.
				continue
			case e.kernelExp.Sub(now) < refreshBefore || now.Add(lft).Sub(e.kernelExp) >= time.Second:
				j = job{a: a, e: e}
			default:
				continue
			}
			if t.tryAcquire(s, a) {
				jobs = append(jobs, j)
			}
		}
	})
	dropped := false
	for _, j := range jobs {
		var err error
		if !j.drop {
			err = t.setLifetime(j.a, j.e)
		}
		if j.drop || errors.Is(err, errLeaseEnded) {
			t.drop(ctx, j.a, j.e)
			dropped = true
		} else if err != nil {
			t.log.Warn("refreshing address lifetime", "ip", j.e.prefix, "iface", j.e.iface, "err", err)
		}
		t.free(j.a)
	}
	if dropped {
		t.changed()
	}
}

// setLifetime sets a held address's kernel lifetime again from the
// current lease. The caller holds a's slot.
func (t *Table) setLifetime(a netip.Addr, e *entry) error {
	term := t.cfg.Lease.Term()
	lft := lifetime(term.End, time.Now())
	if term.ID != e.term || lft == 0 {
		return errLeaseEnded
	}
	if !t.holds(a, e) {
		return nil // released meanwhile
	}
	return t.addWithinLease(a, e, lft)
}

// drop removes an address whose lease is gone and runs releaseip for it
// in the background (the address is already down). The caller holds a's
// slot.
func (t *Table) drop(ctx context.Context, a netip.Addr, e *entry) {
	t.forget(a, e)
	if err := t.cfg.Kernel.DelAddr(e.iface, e.prefix); err != nil {
		t.log.Debug("removing address", "ip", e.prefix, "err", err) // the kernel may have dropped it first
	}
	t.log.Warn("lease ran out: address dropped", "ip", a, "iface", e.iface)
	t.leaseDrops.Add(1)
	t.helper(func() {
		t.cfg.Events.Run(t.connectionsEnv(context.WithoutCancel(ctx), a), "releaseip", e.iface, a.String(), strconv.Itoa(e.prefix.Bits()))
	})
}

// scan compares the kernel's public addresses with the table: a held
// address gone from the kernel is forgotten; a public address on our
// interfaces that was never given to us is foreign (the leader releases
// it). Addresses another operation is acting on are skipped.
func (t *Table) scan() {
	listed := time.Now()
	all, err := t.cfg.Kernel.AllAddrs()
	if err != nil {
		t.log.Warn("listing addresses", "err", err)
		return
	}
	changed := false
	t.do(func(s *tableState) {
		present := map[netip.Addr]string{}
		for ifc, ps := range all {
			for _, p := range ps {
				if _, ok := s.public[p.Addr()]; ok {
					present[p.Addr()] = ifc
				}
			}
		}
		for a, e := range s.held {
			// Only a take that completed before the listing began can
			// have vanished from it.
			if _, ok := present[a]; !ok && s.busy[a] == nil && !e.taken.IsZero() && e.taken.Before(listed) {
				t.log.Warn("held address vanished from the kernel", "ip", a)
				delete(s.held, a)
				changed = true
			}
		}
		foreign := map[netip.Addr]string{}
		for a, ifc := range present {
			if _, ok := s.held[a]; ok || s.busy[a] != nil {
				continue
			}
			foreign[a] = ifc
			if _, known := s.foreign[a]; !known {
				t.log.Warn("public address configured here without being given to this node", "ip", a, "iface", ifc)
			}
		}
		if len(foreign) != len(s.foreign) {
			changed = true
		}
		s.foreign = foreign
	})
	if changed {
		t.changed()
	}
}
