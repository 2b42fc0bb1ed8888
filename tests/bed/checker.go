package bed

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
)

// Checker samples the cluster's invariants while a test runs. Every
// interval it reads each node's addresses (netlink, in each node's
// namespace) and ARPs for every public address from the client, reading
// every answer within a window, so two MACs answering one address are
// seen. See Report for what it records.
type Checker struct {
	b        *Bed
	interval time.Duration
	window   time.Duration
	ips      []netip.Addr
	handles  []*netlink.Handle // one per node, the checker's own
	arp      *arpConn

	stop chan struct{}
	done chan struct{}
	once sync.Once

	// mu guards the fields below it.
	mu      sync.Mutex
	rec     *recorder
	changed chan struct{} // closed and replaced after every sample
	final   *Report
}

// StartChecker starts sampling every interval (0 means 50 ms). The ARP
// window is 20 ms, or 2/5 of a shorter interval. Close stops it too.
func (b *Bed) StartChecker(interval time.Duration) (*Checker, error) {
	if interval == 0 {
		interval = 50 * time.Millisecond
	}
	window := min(20*time.Millisecond, interval*2/5)
	c := &Checker{
		b:        b,
		interval: interval,
		window:   window,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		changed:  make(chan struct{}),
	}
	for _, p := range b.cfg.PublicAddrs {
		c.ips = append(c.ips, p.Addr())
	}
	slices.SortFunc(c.ips, netip.Addr.Compare)
	c.rec = newRecorder(c.ips, interval, b.NodeByMAC)
	// Handles of its own: the checker's reads never wait behind a test's.
	for i, ns := range b.nodes {
		h, err := netlink.NewHandleAt(b.nsh[ns], netlinkRoute)
		if err != nil {
			c.closeHandles()
			return nil, fmt.Errorf("bed: checker: netlink in node %d: %w", i, err)
		}
		c.handles = append(c.handles, h)
	}
	a, err := b.dialARP()
	if err != nil {
		c.closeHandles()
		return nil, fmt.Errorf("bed: checker: %w", err)
	}
	c.arp = a
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		c.closeHandles()
		a.Close()
		return nil, fmt.Errorf("bed: checker: %w", errClosed)
	}
	b.checkers = append(b.checkers, c)
	b.mu.Unlock()
	go c.run()
	return c, nil
}

func (c *Checker) closeHandles() {
	for _, h := range c.handles {
		h.Close()
	}
}

func (c *Checker) run() {
	defer close(c.done)
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		s, err := c.sample()
		c.mu.Lock()
		if err != nil {
			c.rec.fail(err)
		} else {
			c.rec.add(s)
		}
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
	}
}

// sample makes one round: pass 1 reads every node, pass 2 again when pass
// 1 saw an address on two nodes, then one ARP request per address and
// every answer within the window.
func (c *Checker) sample() (sample, error) {
	s := sample{At: time.Now(), Nodes: len(c.handles), ARP: map[netip.Addr][]arpReply{}, Asked: map[netip.Addr]time.Time{}}
	want := map[netip.Addr]bool{}
	for _, ip := range c.ips {
		want[ip] = true
	}
	pass := func() (twice bool, err error) {
		count := map[netip.Addr]int{}
		for i, h := range c.handles {
			as, err := addrList(h, nil)
			if err != nil {
				return false, fmt.Errorf("reading node %d's addresses: %w", i, err)
			}
			r := nodeRead{Node: i, Addrs: map[netip.Addr]bool{}}
			for _, a := range as {
				if p, ok := prefixOf(a); ok && want[p.Addr()] {
					r.Addrs[p.Addr()] = true
					count[p.Addr()]++
				}
			}
			s.Reads = append(s.Reads, r)
		}
		for _, n := range count {
			if n > 1 {
				twice = true
			}
		}
		return twice, nil
	}
	twice, err := pass()
	if err != nil {
		return s, err
	}
	if twice {
		if _, err := pass(); err != nil {
			return s, err
		}
	}
	sent := time.Now()
	for _, ip := range c.ips {
		if err := c.arp.Request(ip); err != nil {
			return s, err
		}
		s.Asked[ip] = time.Now()
	}
	// The window runs from the last request: 900 of them take a while.
	end := time.Now().Add(c.window)
	deadline := time.NewTimer(time.Until(end))
	defer deadline.Stop()
	take := func(r arpReply) {
		// Replies read now but stamped before this round's requests
		// answer an earlier round.
		if want[r.IP] && !r.At.Before(sent) {
			s.ARP[r.IP] = append(s.ARP[r.IP], r)
		}
	}
	for {
		select {
		case r := <-c.arp.Replies:
			take(r)
		case <-deadline.C:
			// What already arrived in time but was not read yet.
			for {
				select {
				case r := <-c.arp.Replies:
					if r.At.Before(end) {
						take(r)
					}
				default:
					s.Took = time.Since(s.At)
					return s, nil
				}
			}
		}
	}
}

// Stop ends sampling and returns the final report. It is idempotent.
func (c *Checker) Stop() Report {
	c.once.Do(func() {
		close(c.stop)
		<-c.done
		c.arp.Close()
		c.closeHandles()
		c.mu.Lock()
		r := c.rec.report()
		c.final = &r
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	return *c.final
}

// Report is the report so far, without stopping.
func (c *Checker) Report() Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.final != nil {
		return *c.final
	}
	return c.rec.report()
}

// Events is the log so far of changes, per public address, in who holds
// it and which MACs answer for it, in sample order.
func (c *Checker) Events() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.rec.events)
}

// wait blocks until the next sample (or Stop) or ctx ends.
func (c *Checker) wait(ctx context.Context) error {
	c.mu.Lock()
	ch, stopped := c.changed, c.final != nil
	c.mu.Unlock()
	if stopped {
		return errStopped
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WaitServedBy waits until a sample sees ip answered by mac alone at or
// after since, and returns when (see recorder.servedBy: the time is the
// answer's arrival, so its resolution is the sampling interval). For
// millisecond timing use Bed.WaitARP.
func (c *Checker) WaitServedBy(ctx context.Context, ip netip.Addr, mac net.HardwareAddr, since time.Time) (time.Time, error) {
	for {
		c.mu.Lock()
		at, ok := c.rec.servedBy(ip, mac.String(), since)
		c.mu.Unlock()
		if ok {
			return at, nil
		}
		if err := c.wait(ctx); err != nil {
			return time.Time{}, fmt.Errorf("bed: waiting for %s to be answered by %s: %w", ip, mac, err)
		}
	}
}

// WaitEvent waits for the first event at or after since that cond
// accepts, e.g. "198.18.1.2 configured on node 0 alone":
//
//	c.WaitEvent(ctx, t0, func(e Event) bool { return e.IP == ip && slices.Equal(e.Nodes, []int{0}) })
//
// An event is a change, so a state that already held before since is not
// found; check Events first for that.
func (c *Checker) WaitEvent(ctx context.Context, since time.Time, cond func(Event) bool) (Event, error) {
	seen := 0
	for {
		c.mu.Lock()
		evs := c.rec.events[seen:]
		seen = len(c.rec.events)
		for _, e := range evs {
			if !e.At.Before(since) && cond(e) {
				c.mu.Unlock()
				return e, nil
			}
		}
		c.mu.Unlock()
		if err := c.wait(ctx); err != nil {
			return Event{}, fmt.Errorf("bed: waiting for a checker event: %w", err)
		}
	}
}

// WaitReport waits until cond accepts the report so far (checked after
// every sample).
func (c *Checker) WaitReport(ctx context.Context, cond func(Report) bool) (Report, error) {
	for {
		r := c.Report()
		if cond(r) {
			return r, nil
		}
		if err := c.wait(ctx); err != nil {
			return r, fmt.Errorf("bed: waiting on the checker's report: %w", err)
		}
	}
}
