package ipalloc_test

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ctdb-go/ctdb-go/ipalloc"
)

func TestCheck(t *testing.T) {
	a1, a2 := netip.MustParseAddr("198.18.1.1"), netip.MustParseAddr("198.18.1.2")
	two := []ipalloc.Node{{PNN: 0, CanHost: true}, {PNN: 1, CanHost: true}}
	tests := []struct {
		name string
		in   ipalloc.Input
		want string // "" for no error
	}{
		{"valid", ipalloc.Input{Nodes: two, IPs: []ipalloc.IP{{Addr: a1, Current: 1, KnownOn: []int{0, 1}, AvailableOn: []int{1}}}}, ""},
		{"nodes in any order, with a gap", ipalloc.Input{Nodes: []ipalloc.Node{{PNN: 2}, {PNN: 0}}, IPs: []ipalloc.IP{{Addr: a1, Current: 2}}}, ""},
		{"negative node", ipalloc.Input{Nodes: []ipalloc.Node{{PNN: -1}}}, "ipalloc: node PNN -1 is negative"},
		{"node twice", ipalloc.Input{Nodes: []ipalloc.Node{{PNN: 0}, {PNN: 0, CanHost: true}}}, "ipalloc: node 0 listed twice"},
		{"unset address", ipalloc.Input{Nodes: two, IPs: []ipalloc.IP{{Current: -1}}}, "ipalloc: address #0 is not set"},
		{"address twice", ipalloc.Input{Nodes: two, IPs: []ipalloc.IP{{Addr: a1, Current: -1}, {Addr: a2, Current: -1}, {Addr: a1, Current: 0}}}, "ipalloc: address 198.18.1.1 listed twice"},
		{"holder too big", ipalloc.Input{Nodes: two, IPs: []ipalloc.IP{{Addr: a1, Current: 2}}}, "ipalloc: 198.18.1.1: holder node 2 does not exist (2 nodes)"},
		{"holder below -1", ipalloc.Input{Nodes: two, IPs: []ipalloc.IP{{Addr: a1, Current: -2}}}, "ipalloc: 198.18.1.1: holder node -2 does not exist (2 nodes)"},
		{"available on no node", ipalloc.Input{Nodes: two, IPs: []ipalloc.IP{{Addr: a1, Current: -1, AvailableOn: []int{5}}}}, "ipalloc: 198.18.1.1: available-on node 5 does not exist (2 nodes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if err := ipalloc.Check(tt.in); err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("Check() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestAllocateRepairs: Allocate answers inconsistent input, noting what it
// repaired.
func TestAllocateRepairs(t *testing.T) {
	a1, a2 := netip.MustParseAddr("198.18.1.1"), netip.MustParseAddr("198.18.1.2")
	in := ipalloc.Input{
		Nodes: []ipalloc.Node{{PNN: 0, CanHost: true}, {PNN: 0, CanHost: false}, {PNN: -3, CanHost: true}, {PNN: 2, CanHost: true}},
		IPs: []ipalloc.IP{
			{Addr: a1, Current: 9, AvailableOn: []int{0, 1, 2, 7}},
			{Addr: a2, Current: 1, AvailableOn: []int{0, 2}},
			{Addr: a1, Current: 0},
		},
	}
	want := ipalloc.Result{
		// Node 1 is not listed, so it cannot host: a2 leaves it; a1's
		// holder 9 does not exist, so a1 is unassigned and placed.
		Assignments: []ipalloc.Assignment{{Addr: a2, PNN: 0}, {Addr: a1, PNN: 2}},
		Moves:       []ipalloc.Move{{Addr: a2, From: 1, To: 0}, {Addr: a1, From: 9, To: 2}},
		Notes: []string{
			"input: node 0 listed twice",
			"input: node PNN -3 is negative",
			"input: address 198.18.1.1 listed twice",
			"input: 198.18.1.1: holder node 9 does not exist (3 nodes)",
			"input: 198.18.1.1: available-on node 7 does not exist (3 nodes)",
		},
	}
	got := ipalloc.Allocate(in)
	if diff := cmp.Diff(want, got, cmpAddr); diff != "" {
		t.Errorf("Allocate() mismatch (-want +got):\n%s", diff)
	}
}

// TestAllocateKeepsInput: Allocate does not modify its input.
func TestAllocateKeepsInput(t *testing.T) {
	a1, a2 := netip.MustParseAddr("198.18.1.1"), netip.MustParseAddr("198.18.1.2")
	mk := func() ipalloc.Input {
		return ipalloc.Input{
			Nodes: []ipalloc.Node{{PNN: 1, CanHost: true}, {PNN: 0, CanHost: true}},
			IPs: []ipalloc.IP{
				{Addr: a1, Current: 0, KnownOn: []int{1, 0}, AvailableOn: []int{1, 0}},
				{Addr: a2, Current: 0, KnownOn: []int{1, 0}, AvailableOn: []int{1, 0}},
			},
		}
	}
	in := mk()
	ipalloc.Allocate(in)
	if diff := cmp.Diff(mk(), in, cmpAddr); diff != "" {
		t.Errorf("Allocate() changed its input (-before +after):\n%s", diff)
	}
}

func TestCompare(t *testing.T) {
	addrs := []string{"2001:db8::2", "2001:db8::1", "::c612:102", "::1", "198.18.1.2", "198.18.1.1", "10.0.0.1", "0.0.0.1"}
	for i, a := range addrs {
		for j, b := range addrs {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := ipalloc.Compare(netip.MustParseAddr(a), netip.MustParseAddr(b)); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", a, b, got, want)
			}
		}
	}
}

func TestMerge(t *testing.T) {
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	views := []ipalloc.View{
		{PNN: 2, Known: []ipalloc.Claim{{a("198.18.1.1"), 2}, {a("198.18.1.2"), 0}}, Available: []netip.Addr{a("198.18.1.1"), a("198.18.1.2")}},
		{PNN: 0, Known: []ipalloc.Claim{{a("198.18.1.1"), 0}, {a("198.18.1.3"), 1}}, Available: []netip.Addr{a("198.18.1.3"), a("198.18.9.9")}},
		{PNN: 1, Known: []ipalloc.Claim{{a("198.18.1.3"), 0}, {a("198.18.1.2"), -1}}},
	}
	want := []ipalloc.IP{
		// Node 0 claims .3 for node 1, node 1 for node 0: neither counts.
		{Addr: a("198.18.1.3"), Current: -1, KnownOn: []int{0, 1}, AvailableOn: []int{0}},
		// Only node 2 lists .2 as available; node 2's claim of it for
		// node 0 does not count.
		{Addr: a("198.18.1.2"), Current: -1, KnownOn: []int{1, 2}, AvailableOn: []int{2}},
		// Nodes 0 and 2 both claim .1 for themselves: the higher PNN wins.
		{Addr: a("198.18.1.1"), Current: 2, KnownOn: []int{0, 2}, AvailableOn: []int{2}},
	}
	if diff := cmp.Diff(want, ipalloc.Merge(views), cmpAddr); diff != "" {
		t.Errorf("Merge() mismatch (-want +got):\n%s", diff)
	}
}
