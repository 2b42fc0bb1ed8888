package main

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/ctdb-go/ctdb-go/tests/bed"
)

// addrWatch follows, per node, which public addresses are configured, from
// netlink address notifications in each node's namespace (no polling), and
// records when each address appeared on each node. "Appeared" is a change
// from absent to present: ctdb-go refreshes an address's lifetime every
// few hundred ms, and each refresh is another RTM_NEWADDR for an address
// already there.
type addrWatch struct {
	want map[netip.Addr]bool
	done chan struct{}
	wg   sync.WaitGroup

	// mu guards the fields below it.
	mu      sync.Mutex
	present []map[netip.Addr]bool
	adds    map[netip.Addr][]appeared
	changed chan struct{} // closed and replaced on every change
	errs    []string
}

type appeared struct {
	node int
	at   time.Time
}

// watchAddrs starts an addrWatch over every node of b.
func watchAddrs(b *bed.Bed) (*addrWatch, error) {
	w := &addrWatch{
		want:    map[netip.Addr]bool{},
		done:    make(chan struct{}),
		adds:    map[netip.Addr][]appeared{},
		changed: make(chan struct{}),
	}
	for _, p := range b.PublicAddrs() {
		w.want[p.Addr()] = true
	}
	for i := range b.Nodes() {
		w.present = append(w.present, map[netip.Addr]bool{})
		h, err := netns.GetFromName(b.NodeNS(i))
		if err != nil {
			w.close()
			return nil, fmt.Errorf("opening node %d's namespace: %w", i, err)
		}
		ready := make(chan error, 1)
		w.wg.Add(1)
		go w.follow(i, h, ready)
		if err := <-ready; err != nil {
			w.close()
			return nil, fmt.Errorf("watching node %d's addresses: %w", i, err)
		}
	}
	return w, nil
}

// follow subscribes to node i's address changes, and subscribes again
// (listing what is there) if the kernel drops the subscription.
func (w *addrWatch) follow(i int, h netns.NsHandle, ready chan<- error) {
	defer w.wg.Done()
	defer h.Close()
	first := true
	for {
		ch := make(chan netlink.AddrUpdate, 8192)
		stop := make(chan struct{})
		err := netlink.AddrSubscribeWithOptions(ch, stop, netlink.AddrSubscribeOptions{
			Namespace:              &h,
			ListExisting:           true,
			ReceiveBufferSize:      8 << 20,
			ReceiveBufferForceSize: true,
			ErrorCallback: func(err error) {
				w.mu.Lock()
				w.errs = append(w.errs, fmt.Sprintf("node %d: %v", i, err))
				w.mu.Unlock()
			},
		})
		if first {
			ready <- err
			first = false
		}
		if err != nil {
			close(stop)
			select {
			case <-w.done:
				return
			case <-time.After(100 * time.Millisecond):
				continue
			}
		}
	recv:
		for {
			select {
			case u, ok := <-ch:
				if !ok {
					break recv // dropped (e.g. ENOBUFS): subscribe again
				}
				w.update(i, u, time.Now())
			case <-w.done:
				close(stop) // closes the socket
				return
			}
		}
		close(stop)
	}
}

func (w *addrWatch) update(node int, u netlink.AddrUpdate, at time.Time) {
	ip, ok := netip.AddrFromSlice(u.LinkAddress.IP)
	if !ok {
		return
	}
	ip = ip.Unmap()
	if !w.want[ip] {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	was := w.present[node][ip]
	if u.NewAddr == was {
		return
	}
	if u.NewAddr {
		w.present[node][ip] = true
		w.adds[ip] = append(w.adds[ip], appeared{node, at})
	} else {
		delete(w.present[node], ip)
	}
	close(w.changed)
	w.changed = make(chan struct{})
}

// arrivals returns, for each ip, the first time at or after since that it
// appeared on a node other than except, and on which node.
func (w *addrWatch) arrivals(ips []netip.Addr, except int, since time.Time) map[netip.Addr]appeared {
	w.mu.Lock()
	defer w.mu.Unlock()
	got := map[netip.Addr]appeared{}
	for _, ip := range ips {
		for _, a := range w.adds[ip] {
			if a.node != except && !a.at.Before(since) {
				got[ip] = a
				break
			}
		}
	}
	return got
}

// waitMoved waits until every ip has appeared on a node other than except
// since the moment since, and returns the arrivals (all of them, or what
// there is when ctx ends).
func (w *addrWatch) waitMoved(ctx context.Context, ips []netip.Addr, except int, since time.Time) (map[netip.Addr]appeared, error) {
	for {
		w.mu.Lock()
		ch := w.changed
		w.mu.Unlock()
		got := w.arrivals(ips, except, since)
		if len(got) == len(ips) {
			return got, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return got, fmt.Errorf("%d of %d addresses never configured on another node: %w", len(ips)-len(got), len(ips), ctx.Err())
		}
	}
}

// trim forgets arrivals before t, so a long scenario does not grow the
// record without bound.
func (w *addrWatch) trim(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ip, as := range w.adds {
		k := 0
		for k < len(as) && as[k].at.Before(t) {
			k++
		}
		w.adds[ip] = as[k:]
	}
}

// takeErrors returns and clears the subscription errors seen so far.
func (w *addrWatch) takeErrors() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.errs
	w.errs = nil
	return e
}

func (w *addrWatch) close() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	w.wg.Wait()
}
