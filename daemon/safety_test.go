package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/lease"
	"github.com/ctdb-go/ctdb-go/daemon/netif"
	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
	"github.com/ctdb-go/ctdb-go/recoverd"
)

// TestOrderOnlyFromItsLeader: an order in another node's name, or from an
// older generation, is refused and changes nothing.
func TestOrderOnlyFromItsLeader(t *testing.T) {
	d, k, _, _, _ := oneNode(t)
	eventually(t, "addresses taken", func() bool { return len(held(k)) == 2 })
	gen := d.rec.HighestGeneration()
	a := netip.MustParseAddr("198.18.1.1")
	tests := []struct {
		name string
		from int
		o    recoverd.Order
		want string
	}{
		{"in another node's name", 1, recoverd.Order{Generation: gen, Leader: 0, Addrs: []netip.Addr{a}}, "in the name of node 0"},
		{"older generation", 0, recoverd.Order{Generation: gen - 1, Leader: 0, Addrs: []netip.Addr{a}}, "but generation"},
		{"forged generation", 0, recoverd.Order{Generation: 1<<64 - 1, Leader: 0, Addrs: []netip.Addr{a}}, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := json.Marshal(tt.o)
			out, err := d.onOrder(recoverd.KindRelease)(context.Background(), tt.from, b)
			if err != nil {
				t.Fatal(err)
			}
			var rep recoverd.OrderReply
			if err := json.Unmarshal(out, &rep); err != nil {
				t.Fatal(err)
			}
			if len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0], tt.want) {
				t.Errorf("reply errors = %q, want one containing %q", rep.Errors, tt.want)
			}
			if rep.Generation != gen {
				t.Errorf("reply generation = %d, want %d", rep.Generation, gen)
			}
			if len(held(k)) != 2 {
				t.Errorf("addresses after a refused release: %v", held(k))
			}
		})
	}
}

// slowKernel freezes (sleeps) inside AddAddr once armed, as a process
// stopped between computing a lifetime and the netlink call would.
type slowKernel struct {
	*netif.Fake
	mu    sync.Mutex
	pause time.Duration
}

func (s *slowKernel) AddAddr(iface string, p netip.Prefix, lft time.Duration) error {
	s.mu.Lock()
	pause := s.pause
	s.pause = 0
	s.mu.Unlock()
	time.Sleep(pause)
	return s.Fake.AddAddr(iface, p, lft)
}

// TestSlowAddNeverOutlivesLease: an add that returns after the lease has
// less than its lifetime left is set again, or the address removed.
func TestSlowAddNeverOutlivesLease(t *testing.T) {
	d, k := idleNode(t)
	sk := &slowKernel{Fake: k, pause: time.Second} // frozen for a second
	d.k = sk
	ft := &fakeTerm{t: lease.Term{End: time.Now().Add(1500 * time.Millisecond), ID: 1}} // lifetime 1 s; 0.5 s left after the freeze
	d.term = ft
	a := netip.MustParseAddr("198.18.1.1")
	h := &heldAddr{prefix: netip.MustParsePrefix("198.18.1.1/24"), iface: "eth1", term: 1}
	d.mu.Lock()
	d.held[a] = h
	d.mu.Unlock()
	l := d.addrLock(a)
	l.Lock()
	err := d.addWithinLease(a, h, time.Second)
	l.Unlock()
	if !errors.Is(err, errLeaseEnded) {
		t.Errorf("addWithinLease after a freeze = %v, want errLeaseEnded", err)
	}
	for _, p := range held(k) {
		if p == "198.18.1.1/24" {
			t.Error("198.18.1.1 still on eth1 with a lifetime past the lease")
		}
	}
	d.mu.Lock()
	_, still := d.held[a]
	d.mu.Unlock()
	if still {
		t.Error("198.18.1.1 still counted as held")
	}

	// A shorter freeze leaves a whole second: the lifetime is set again,
	// within the lease.
	k.Reset()
	d.mu.Lock()
	d.held[a] = h
	d.mu.Unlock()
	ft.mu.Lock()
	ft.t.End = time.Now().Add(2500 * time.Millisecond)
	ft.mu.Unlock()
	sk.pause = 800 * time.Millisecond
	l.Lock()
	err = d.addWithinLease(a, h, 2*time.Second)
	l.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"addr add 198.18.1.1/24 dev eth1 valid_lft 2", "addr add 198.18.1.1/24 dev eth1 valid_lft 1"}
	if got := k.Transcript(); !slices.Equal(got, want) {
		t.Errorf("kernel calls = %q, want %q", got, want)
	}
}

// TestBanAlwaysEnds: a ban ends when its period is over, also one
// restored at start or whose store write failed (no timer of its own).
func TestBanAlwaysEnds(t *testing.T) {
	d, _, _, _, _ := oneNode(t)
	d.mu.Lock()
	d.admin |= nodeflag.Banned
	d.banUntil = time.Now().Add(200 * time.Millisecond)
	d.mu.Unlock()
	eventually(t, "ban lifted", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.admin&nodeflag.Banned == 0
	})
	if f, _, err := d.store.AdminFlags(); err != nil || f&nodeflag.Banned != 0 {
		t.Errorf("stored flags after the ban = %v, %v; want not banned", f, err)
	}
}
