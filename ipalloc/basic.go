package ipalloc

import (
	"net/netip"
	"strconv"
)

// The deterministic and non-deterministic algorithms (CTDB's
// ipalloc_deterministic.c, ipalloc_nondeterministic.c and the shared
// helpers of ipalloc_common.c). They balance address counts, not prefixes.

// counts returns how many addresses each node holds.
func (s *state) counts() []int {
	c := make([]int, s.n)
	for _, h := range s.holder {
		if h != -1 {
			c[h]++
		}
	}
	return c
}

// findTakeoverNode returns the node that may take address i and holds the
// fewest addresses (the lowest PNN among equals), -1 if none may take it
// (CTDB's find_takeover_node).
func (s *state) findTakeoverNode(i int, count []int) int {
	best := -1
	for p := range s.n {
		if s.canTakeover(p, i) && (best == -1 || count[p] < count[best]) {
			best = p
		}
	}
	return best
}

// basicAllocateUnassigned gives each unassigned address, in order, to
// findTakeoverNode's choice.
func (s *state) basicAllocateUnassigned(count []int) {
	for i, h := range s.holder {
		if h != -1 {
			continue
		}
		if p := s.findTakeoverNode(i, count); p != -1 {
			s.holder[i] = p
			count[p]++
		}
	}
}

// deterministic is CTDB's algorithm 0. Address i (in order) goes to its
// home node if it has one, else to node i mod n; the addresses of nodes
// that cannot host them go to the least loaded node.
func (s *state) deterministic(home map[netip.Addr]int, noFailback bool) {
	if noFailback {
		s.note("NoIPFailback ignored: the deterministic algorithm always fails back")
	}
	// NoIPTakeover means no node gains an address, so the reset to home
	// nodes is skipped (CTDB would still do it).
	if !s.noTakeover && s.n > 0 {
		for i, e := range s.ips {
			p := i % s.n
			if h, ok := home[e.addr]; ok {
				if h >= 0 && h < s.n {
					p = h
				} else {
					s.note("home node " + strconv.Itoa(h) + " of " + e.addr.String() + " ignored: no such node")
				}
			}
			s.holder[i] = p
		}
	}
	s.unassignUnsuitable()
	s.basicAllocateUnassigned(s.counts())
}

// nonDeterministic is CTDB's algorithm 1: unhosted addresses go to the
// least loaded node, then, unless noFailback, while some address could be
// served by two nodes whose counts differ by more than one, the first
// address of the fuller node is moved to the least loaded node that may
// take it (at most len(ips)+5 times, as CTDB).
func (s *state) nonDeterministic(noFailback bool) {
	s.unassignUnsuitable()
	count := s.counts()
	s.basicAllocateUnassigned(count)
	if noFailback {
		return
	}

	// Within one pass counts do not change, and the nodes that may take an
	// address depend only on its availability row, so the max/min scan is
	// done once per distinct row and pass instead of once per address.
	group := make([]int, len(s.ips))
	rows := map[string]int{}
	var b []byte
	for i := range s.ips {
		b = b[:0]
		for _, w := range s.avail[i*s.words : (i+1)*s.words] {
			b = strconv.AppendUint(b, w, 36)
			b = append(b, ',')
		}
		g, ok := rows[string(b)]
		if !ok {
			g = len(rows)
			rows[string(b)] = g
		}
		group[i] = g
	}
	type spread struct {
		done           bool
		maxNode        int
		maxNum, minNum int
	}
	spreads := make([]spread, len(rows))

	retries := 0
	for moved := true; moved; {
		moved = false
		clear(spreads)
		for i, h := range s.holder {
			if h == -1 {
				continue
			}
			sp := &spreads[group[i]]
			if !sp.done {
				sp.done, sp.maxNode = true, -1
				minNode := -1
				for p := range s.n {
					if !s.canTakeover(p, i) {
						continue
					}
					if sp.maxNode == -1 || count[p] > sp.maxNum {
						sp.maxNode, sp.maxNum = p, count[p]
					}
					if minNode == -1 || count[p] < sp.minNum {
						minNode, sp.minNum = p, count[p]
					}
				}
			}
			if sp.maxNode == -1 || sp.maxNum <= sp.minNum+1 || retries >= len(s.ips)+5 {
				continue
			}
			// Re-home the first address of the fullest node. Its count
			// still includes that address while the new node is chosen,
			// as in CTDB.
			for t, th := range s.holder {
				if th != sp.maxNode {
					continue
				}
				if p := s.findTakeoverNode(t, count); p != -1 {
					count[th]--
					count[p]++
					s.holder[t] = p
				}
				break
			}
			retries++
			moved = true
			break
		}
	}
}
