package daemon

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

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
