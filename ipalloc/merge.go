package ipalloc

import (
	"net/netip"
	"slices"
)

// View is one node's report of the public addresses it is configured for.
type View struct {
	PNN int
	// Known lists the addresses in the node's public_addresses, each with
	// the holder the node believes it has (-1 for none).
	Known []Claim
	// Available lists the known addresses the node could host now.
	Available []netip.Addr
}

// Claim is one node's belief about who holds an address.
type Claim struct {
	Addr netip.Addr
	PNN  int
}

// Merge builds the allocation's address list from every node's view, as
// CTDB's create_merged_ip_list does: the union of the known addresses, in
// CTDB's order. A node's claim counts only if it claims the address for
// itself (what it says of other nodes may be stale); when several nodes
// claim one address the highest PNN wins; an address nobody claims is
// unassigned. KnownOn and AvailableOn are the views' PNNs, ascending;
// available addresses no view knows are dropped. Views are taken in PNN
// order whatever their order in views.
func Merge(views []View) []IP {
	vs := slices.Clone(views)
	slices.SortStableFunc(vs, func(a, b View) int { return a.PNN - b.PNN })

	index := map[netip.Addr]int{} // lookup only; the order comes from the sort below
	var ips []IP
	for _, v := range vs {
		for _, c := range v.Known {
			i, ok := index[c.Addr]
			if !ok {
				i = len(ips)
				index[c.Addr] = i
				ips = append(ips, IP{Addr: c.Addr, Current: -1})
			}
			ips[i].KnownOn = appendPNN(ips[i].KnownOn, v.PNN)
			if c.PNN == v.PNN {
				ips[i].Current = v.PNN
			}
		}
	}
	for _, v := range vs {
		for _, a := range v.Available {
			if i, ok := index[a]; ok {
				ips[i].AvailableOn = appendPNN(ips[i].AvailableOn, v.PNN)
			}
		}
	}
	slices.SortFunc(ips, func(a, b IP) int { return Compare(a.Addr, b.Addr) })
	return ips
}

// appendPNN adds p to a list built in ascending PNN order, once.
func appendPNN(l []int, p int) []int {
	if len(l) > 0 && l[len(l)-1] == p {
		return l
	}
	return append(l, p)
}
