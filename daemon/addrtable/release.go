package addrtable

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/eventscript"
)

// Release removes an address: releaseip first, then the address. It
// also removes a public address found here that was never given to this
// node. It returns nil if the address is not here. A failure of a script
// or the kernel is a *FaultError (the address is removed all the same
// when only releaseip failed).
func (t *Table) Release(ctx context.Context, a netip.Addr, newHolder int) error {
	release, err := t.acquire(ctx, a)
	if err != nil {
		return err
	}
	defer release()
	var (
		prefix netip.Prefix
		iface  string
		found  bool
	)
	t.do(func(s *tableState) {
		if e, ok := s.held[a]; ok {
			prefix, iface, found = e.prefix, e.iface, true
		} else if ifc, ok := s.foreign[a]; ok {
			prefix, iface, found = netip.PrefixFrom(a, a.BitLen()), ifc, true
			if pa, ok := s.public[a]; ok {
				prefix = pa.Prefix
			}
		}
		// Out of the table before anything else, so nothing counts it as
		// held once it is deleted.
		delete(s.held, a)
		delete(s.foreign, a)
	})
	if !found {
		return nil // redundant release
	}
	r := t.cfg.Events.Run(t.connectionsEnv(ctx, a), "releaseip", iface, a.String(), strconv.Itoa(prefix.Bits()))
	err = t.cfg.Kernel.DelAddr(iface, prefix)
	t.changed()
	if err != nil {
		return fault(fmt.Errorf("removing %s from %s: %w", prefix, iface, err))
	}
	t.log.Info("released address", "ip", prefix, "iface", iface, "new_holder", newHolder)
	t.releases.Add(1)
	if !r.OK() {
		return fault(fmt.Errorf("releaseip event failed (address removed): %s", t.cfg.Describe(r)))
	}
	return nil
}

// ReleaseAll releases every address here, without waiting for a leader
// (stop, ban, shutdown, a failed daemon).
func (t *Table) ReleaseAll(ctx context.Context, why string) {
	var addrs []netip.Addr
	t.do(func(s *tableState) {
		for a := range s.held {
			addrs = append(addrs, a)
		}
		for a := range s.foreign {
			addrs = append(addrs, a)
		}
	})
	slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	for _, a := range addrs {
		if err := t.Release(ctx, a, -1); err != nil {
			t.log.Warn("releasing address", "ip", a, "why", why, "err", err)
		}
	}
}

// connectionsEnv tells releaseip how many established TCP connections a
// has, as CTDB_TCP_CONNECTIONS="IP N" (see events.d/README.md), so that
// its scripts need not start ss to find none. One count serves releases
// for connCountAge; a connection made after it goes unlisted, as one made
// after a script's own listing always did, and its client learns of the
// move from the new holder's RST.
func (t *Table) connectionsEnv(ctx context.Context, a netip.Addr) context.Context {
	var counts map[netip.Addr]int
	t.do(func(s *tableState) {
		if s.conns != nil && time.Since(s.connsAt) < connCountAge {
			counts = s.conns
		}
	})
	if counts == nil {
		m, err := t.cfg.Kernel.EstablishedTCP()
		if err != nil {
			t.log.Debug("counting TCP connections", "ip", a, "err", err)
			return ctx
		}
		counts = m
		t.do(func(s *tableState) { s.conns, s.connsAt = m, time.Now() })
	}
	return eventscript.WithEnv(ctx, fmt.Sprintf("CTDB_TCP_CONNECTIONS=%s %d", a, counts[a]))
}
