package casefile

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ctdb-go/ctdb-go/ipalloc"
)

var cmpAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func TestParse(t *testing.T) {
	a1, a2 := netip.MustParseAddr("198.18.1.1"), netip.MustParseAddr("198.18.1.2")
	tests := []struct {
		name string
		json string
		want *Case
	}{{
		// can_host_ips missing: derived from flags and run state as CTDB's
		// test program does; known_on missing: every node; available_on
		// missing: the known nodes that can host.
		name: "derived fields",
		json: `{"name": "x", "description": "d", "algorithm": "nondet",
			"tunables": {"NoIPTakeover": 1, "NoIPFailback": 1}, "force_rebalance_nodes": [2],
			"nodes": [{"pnn": 0, "flags": 0}, {"pnn": 1, "flags": 2}, {"pnn": 2, "flags": 0, "runstate": 4}, {"flags": 0, "runstate": 5}],
			"ips": [{"ip": "198.18.1.1", "current_pnn": 1}, {"ip": "198.18.1.2", "current_pnn": -1, "known_on": [1, 3]}],
			"expected": [{"ip": "198.18.1.2", "pnn": 3}, {"ip": "198.18.1.1", "pnn": -1}]}`,
		want: &Case{Name: "x", Description: "d", Steps: []Step{{
			Input: ipalloc.Input{
				Algorithm: ipalloc.NonDeterministic, NoIPTakeover: true, NoIPFailback: true, ForceRebalance: []int{2},
				Nodes: []ipalloc.Node{{PNN: 0, CanHost: true}, {PNN: 1}, {PNN: 2}, {PNN: 3, CanHost: true}},
				IPs: []ipalloc.IP{
					{Addr: a1, Current: 1, KnownOn: []int{0, 1, 2, 3}, AvailableOn: []int{0, 3}},
					{Addr: a2, Current: -1, KnownOn: []int{1, 3}, AvailableOn: []int{3}},
				},
			},
			Expected: []ipalloc.Assignment{{Addr: a2, PNN: 3}, {Addr: a1, PNN: -1}},
		}}},
	}, {
		// Steps take the case's tunables unless they have their own; home
		// nodes go to the deterministic algorithm; the algorithm may be
		// given as the tunable's value only.
		name: "steps",
		json: `{"algorithm_tunable_value": 0, "tunables": {"NoIPTakeover": 0, "NoIPFailback": 1},
			"home_nodes": [{"ip": "198.18.1.2", "pnn": 7}],
			"steps": [
				{"step_label": "one", "nodes": [{"pnn": 0, "can_host_ips": true}], "ips": [{"ip": "198.18.1.1", "current_pnn": 0, "available_on": []}]},
				{"step_label": "two", "tunables": {"NoIPTakeover": 1, "NoIPFailback": 0}, "nodes": [{"pnn": 0, "can_host_ips": false}], "ips": [{"ip": "198.18.1.1", "current_pnn": -1}]}]}`,
		want: &Case{Steps: []Step{{
			Label: "one",
			Input: ipalloc.Input{NoIPFailback: true, HomeNodes: map[netip.Addr]int{a2: 7},
				Nodes: []ipalloc.Node{{PNN: 0, CanHost: true}},
				IPs:   []ipalloc.IP{{Addr: a1, Current: 0, KnownOn: []int{0}, AvailableOn: []int{}}}},
		}, {
			Label: "two",
			Input: ipalloc.Input{NoIPTakeover: true, HomeNodes: map[netip.Addr]int{a2: 7},
				Nodes: []ipalloc.Node{{PNN: 0}},
				IPs:   []ipalloc.IP{{Addr: a1, Current: -1, KnownOn: []int{0}, AvailableOn: []int{}}}},
		}}},
	}, {
		// Multi mode without a derived list: the per-node views are merged
		// (only self-claims count, the higher PNN wins).
		name: "multi",
		json: `{"algorithm": "lcp2", "multi": true,
			"nodes": [{"pnn": 0, "can_host_ips": true}, {"pnn": 1, "can_host_ips": false}],
			"per_node_view": [
				{"pnn": 0, "ips": [{"ip": "198.18.1.1", "current_pnn": 0}, {"ip": "198.18.1.2", "current_pnn": 1}]},
				{"pnn": 1, "ips": [{"ip": "198.18.1.1", "current_pnn": 1}, {"ip": "198.18.1.2", "current_pnn": 0}]}]}`,
		want: &Case{Steps: []Step{{
			Input: ipalloc.Input{Algorithm: ipalloc.LCP2,
				Nodes: []ipalloc.Node{{PNN: 0, CanHost: true}, {PNN: 1}},
				IPs: []ipalloc.IP{
					{Addr: a2, Current: -1, KnownOn: []int{0, 1}, AvailableOn: []int{0}},
					{Addr: a1, Current: 1, KnownOn: []int{0, 1}, AvailableOn: []int{0}},
				}},
		}}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.json))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpAddr); diff != "" {
				t.Errorf("Parse() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const nodes = `"nodes": [{"pnn": 0, "can_host_ips": true}]`
	tests := []struct{ name, json, want string }{
		{"empty", ``, "not a JSON case: unexpected end of JSON input"},
		{"array", `[1]`, "not a JSON case: want an object"},
		{"type", `{"algorithm": "lcp2", ` + nodes + `, "ips": [{"ip": "198.18.1.1", "current_pnn": "0"}]}`,
			"not a JSON case: ips.current_pnn: got a JSON string, want int"},
		{"no algorithm", `{` + nodes + `}`, "no algorithm"},
		{"nodes out of order", `{"algorithm": "lcp2", "nodes": [{"pnn": 1}], "ips": [{"ip": "198.18.1.1"}]}`,
			"nodes[0]: pnn 1, want 0 (nodes are listed in PNN order)"},
		{"no ips", `{"algorithm": "lcp2", ` + nodes + `}`, "no ips"},
		{"expected out of range", `{"algorithm": "lcp2", ` + nodes + `, "ips": [{"ip": "198.18.1.1"}], "expected": [{"ip": "198.18.1.1", "pnn": 4}]}`,
			"expected[0] 198.18.1.1: pnn 4 out of range (1 nodes)"},
		{"home node address", `{"algorithm": "det", "home_nodes": [{"ip": "x", "pnn": 0}], ` + nodes + `, "ips": [{"ip": "198.18.1.1"}]}`,
			`home_nodes[0]: bad address "x"`},
		{"multi without views", `{"algorithm": "lcp2", "multi": true, ` + nodes + `}`, "multi mode without per_node_view"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.json))
			if err == nil || err.Error() != tt.want {
				t.Errorf("Parse() error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	got := Format([]ipalloc.Assignment{
		{Addr: netip.MustParseAddr("2001:db8::1"), PNN: 3},
		{Addr: netip.MustParseAddr("198.18.1.1"), PNN: -1},
	})
	if want := "2001:db8::1 3\n198.18.1.1 -1\n"; got != want {
		t.Errorf("Format() = %q, want %q", got, want)
	}
}
