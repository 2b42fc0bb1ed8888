package netif

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// linkState is what a watch remembers of a link, by index.
type linkState struct {
	name string
	up   bool
}

// linkChange applies one kernel report about the link with index to known
// and returns what a watcher must hear: nothing when neither the carrier
// nor the existence changed; a removal of the old name and an appearance of
// the new one on a rename.
func linkChange(known map[int]linkState, index int, name string, up, exists bool) []LinkEvent {
	prev, had := known[index]
	if !exists {
		if !had {
			return nil
		}
		delete(known, index)
		return []LinkEvent{{Iface: prev.name}}
	}
	known[index] = linkState{name: name, up: up}
	switch {
	case had && prev.name == name:
		if prev.up == up {
			return nil
		}
		return []LinkEvent{{Iface: name, Up: up, Exists: true}}
	case had:
		return []LinkEvent{{Iface: prev.name}, {Iface: name, Up: up, Exists: true}}
	default:
		return []LinkEvent{{Iface: name, Up: up, Exists: true}}
	}
}

// linkResync brings known to now (a fresh dump) and returns the changes,
// removals first, each part sorted by name.
func linkResync(known, now map[int]linkState) []LinkEvent {
	var gone, rest []LinkEvent
	for idx := range known {
		if _, ok := now[idx]; !ok {
			gone = append(gone, linkChange(known, idx, "", false, false)...)
		}
	}
	idxs := make([]int, 0, len(now))
	for idx := range now {
		idxs = append(idxs, idx)
	}
	slices.SortFunc(idxs, func(a, b int) int { return cmp.Compare(now[a].name, now[b].name) })
	for _, idx := range idxs {
		rest = append(rest, linkChange(known, idx, now[idx].name, now[idx].up, true)...)
	}
	byName := func(a, b LinkEvent) int { return cmp.Compare(a.Iface, b.Iface) }
	slices.SortStableFunc(gone, byName)
	slices.SortStableFunc(rest, byName)
	return append(gone, rest...)
}

func (l *Linux) linkSnapshot() (map[int]linkState, error) {
	links, err := l.nl.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing links: %w", err)
	}
	m := make(map[int]linkState, len(links))
	for _, lk := range links {
		a := lk.Attrs()
		m[a.Index] = linkState{name: a.Name, up: carrier(a.RawFlags)}
	}
	return m, nil
}

// linkSub is one netlink link subscription.
type linkSub struct {
	updates chan netlink.LinkUpdate // closed by netlink when the subscription ends
	done    chan struct{}           // closed by stop; makes netlink close its socket

	mu  sync.Mutex
	err error // the last error netlink reported
}

func (l *Linux) subscribe() (*linkSub, error) {
	s := &linkSub{updates: make(chan netlink.LinkUpdate, 64), done: make(chan struct{})}
	err := l.inNS(func() error {
		return netlink.LinkSubscribeWithOptions(s.updates, s.done, netlink.LinkSubscribeOptions{
			ReceiveBufferSize:      l.subRcvBuf,
			ReceiveBufferForceSize: l.subRcvBuf != 0,
			ErrorCallback: func(err error) {
				s.mu.Lock()
				s.err = err
				s.mu.Unlock()
			},
		})
	})
	if err != nil {
		close(s.done)
		return nil, fmt.Errorf("subscribing to link events: %w", err)
	}
	return s, nil
}

func (s *linkSub) lastErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// stop ends the subscription and waits for netlink's goroutine, which may
// be blocked sending to updates.
func (s *linkSub) stop() {
	close(s.done)
	for range s.updates {
	}
}

// WatchLinks reports changes of carrier (IFF_LOWER_UP) and existence of
// every interface, from kernel link events, on the returned channel, which
// is closed when ctx ends or l is closed. Other changes (MTU, addresses,
// flags that leave the carrier alone) are not reported.
//
// The baseline is the state when WatchLinks returns, so read the state you
// start from (LinkUp) after calling it. If the subscription fails, or
// events were lost because the kernel's queue overflowed, it subscribes
// again (after 0.1 s, doubling to 5 s) and reports what changed meanwhile.
// Events are never dropped: the channel holds a few, then the watch waits
// for the reader (and the kernel queues for it, up to the overflow above).
func (l *Linux) WatchLinks(ctx context.Context) (<-chan LinkEvent, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	sub, err := l.subscribe()
	if err != nil {
		return nil, err
	}
	known, err := l.linkSnapshot()
	if err != nil {
		sub.stop()
		return nil, err
	}
	out := make(chan LinkEvent, 16)
	l.mu.Lock()
	if l.closed.Load() {
		l.mu.Unlock()
		sub.stop()
		return nil, ErrClosed
	}
	l.wg.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.wg.Done()
		defer close(out)
		l.watch(ctx, sub, known, out)
	}()
	return out, nil
}

func (l *Linux) watch(ctx context.Context, sub *linkSub, known map[int]linkState, out chan<- LinkEvent) {
	send := func(evs []LinkEvent) bool {
		for _, ev := range evs {
			select {
			case out <- ev:
			case <-ctx.Done():
				return false
			case <-l.done:
				return false
			}
		}
		return true
	}
	for {
		select {
		case <-ctx.Done():
			sub.stop()
			return
		case <-l.done:
			sub.stop()
			return
		case u, ok := <-sub.updates:
			if ok {
				exists := u.Header.Type != unix.RTM_DELLINK
				if !send(linkChange(known, int(u.Index), u.Attrs().Name, carrier(u.Flags), exists)) {
					sub.stop()
					return
				}
				continue
			}
			l.log.Warn("link event subscription ended, subscribing again", "err", sub.lastErr())
			sub.stop()
			var evs []LinkEvent
			if sub, evs = l.resubscribe(ctx, known); sub == nil {
				return
			}
			if !send(evs) {
				sub.stop()
				return
			}
		}
	}
}

// resubscribe subscribes again until it works or the watch ends (nil),
// then resyncs known.
func (l *Linux) resubscribe(ctx context.Context, known map[int]linkState) (*linkSub, []LinkEvent) {
	delay := 100 * time.Millisecond
	for {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil
		case <-l.done:
			t.Stop()
			return nil, nil
		case <-t.C:
		}
		sub, err := l.subscribe()
		if err == nil {
			now, serr := l.linkSnapshot()
			if serr == nil {
				return sub, linkResync(known, now)
			}
			sub.stop()
			err = serr
		}
		l.log.Warn("link event subscription failed", "err", err, "retry_in", delay)
		delay = min(2*delay, 5*time.Second)
	}
}
