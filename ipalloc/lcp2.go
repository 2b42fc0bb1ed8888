package ipalloc

import (
	"cmp"
	"slices"
	"strconv"
)

// LCP2 (CTDB's ipalloc_lcp2.c). The cost of address x on node n is the sum
// of distance² from x to every other address on n; a node's imbalance is
// the sum of distance² over the pairs of addresses it holds. Unassigned
// addresses are placed one at a time, cheapest (address, node) pair first;
// then failback moves one address at a time from the most imbalanced node
// while that lowers the imbalance.
//
// CTDB recomputes the sums over all addresses for every candidate, which is
// O(U²·N·I) to place U addresses. Here cost[p*I+x] (node-major, so that
// one node's column is contiguous) holds the cost of address x on node p
// for every address and node, and is updated in O(I) when an address is
// placed or moved. To place the unassigned addresses, each node keeps a
// tournament tree of the unassigned addresses it may take; placing x on p
// rebuilds p's tree in O(U) and removes x from the others, usually in
// O(1). That is about O(U·(I+U+N)) instead of O(U²·N·I). Ties are broken
// exactly as CTDB's loops do: first address in order, then lowest PNN.
// Sums are 64-bit, so they do not wrap as CTDB's 32-bit ones do.

// lcp2 runs LCP2. rebalanceAll lets failback move addresses onto every
// node (LCP2Rebalance) instead of only onto nodes that held none after the
// unsuitable addresses were unassigned, plus the force list.
func (s *state) lcp2(rebalanceAll bool, force []int, noFailback bool) {
	s.unassignUnsuitable()

	// Rebalance candidates: the nodes holding nothing now. A node that
	// holds an address was healthy before and is left alone, so failback
	// does not move addresses for minor gains (CTDB's reasoning).
	candidate := make([]bool, s.n)
	for p := range candidate {
		candidate[p] = true
	}
	if !rebalanceAll {
		for _, h := range s.holder {
			if h != -1 {
				candidate[h] = false
			}
		}
	}
	for _, p := range force {
		if p < 0 || p >= s.n {
			s.note("force-rebalance node " + strconv.Itoa(p) + " ignored: no such node")
			continue
		}
		s.note("forcing rebalancing of addresses to node " + strconv.Itoa(p))
		candidate[p] = true
	}
	failback := !noFailback && slices.Contains(candidate, true)
	if !failback && !slices.Contains(s.holder, -1) {
		// Nothing to place or move: the usual takeover run of a settled
		// cluster ends here, before the O(N·I) costs are computed.
		return
	}

	ni := len(s.ips)
	cost := make([]uint64, s.n*ni)
	for j, h := range s.holder {
		if h != -1 {
			s.addCost(cost[h*ni:(h+1)*ni], j)
		}
	}
	// Every pair on a node was counted from both ends.
	imb := make([]uint64, s.n)
	for i, h := range s.holder {
		if h != -1 {
			imb[h] += cost[h*ni+i]
		}
	}
	for p := range imb {
		imb[p] /= 2
	}

	s.lcp2AllocateUnassigned(cost, imb)
	if failback {
		s.lcp2Failback(cost, imb, candidate)
	}
}

// addCost adds distance² to address x to every other address's cost in
// col, one node's column of the cost matrix: x joins that node.
func (s *state) addCost(col []uint64, x int) {
	kx := &s.ips[x].key
	for i := range col {
		if i != x {
			col[i] += distance2(&s.ips[i].key, kx)
		}
	}
}

// moveCost updates two columns for address x leaving one node (from) and
// joining another (to).
func (s *state) moveCost(from, to []uint64, x int) {
	kx := &s.ips[x].key
	for i := range from {
		if i != x {
			d := distance2(&s.ips[i].key, kx)
			from[i] -= d
			to[i] += d
		}
	}
}

// lcp2AllocateUnassigned places unassigned addresses one at a time: the
// (address, node) pair of least cost over all unassigned addresses and the
// nodes that may take them, ties to the first address in order, then the
// lowest PNN; until none is left or none can be placed.
func (s *state) lcp2AllocateUnassigned(cost, imb []uint64) {
	ni := len(s.ips)
	var un []int32 // the unassigned addresses, in order; k indexes un
	for i, h := range s.holder {
		if h == -1 {
			un = append(un, int32(i))
		}
	}
	if len(un) == 0 || s.n == 0 {
		return
	}

	// Each node p has a tournament tree over un: win[p*size+j] is the
	// winner of tree node j (1..size-1): the k of the cheapest address
	// under it that is still unassigned and that p may take, the lowest
	// k among equals (the left subtree holds the lower ones); -1 for
	// none. Leaves size..2*size-1 stand for k = 0..size-1 and are not
	// stored. Placing x on p raises all of p's costs, so p's tree is
	// rebuilt; the other trees only lose x, which touches the path above
	// x's leaf as far as x was winning.
	size := 2
	for size < len(un) {
		size *= 2
	}
	win := make([]int32, s.n*size)
	placed := make([]bool, len(un))
	leaf := func(p, k int) int32 {
		if k < len(un) && !placed[k] && s.canTakeover(p, int(un[k])) {
			return int32(k)
		}
		return -1
	}
	fix := func(p int, tree []int32, col []uint64, j int) {
		var a, b int32
		if c := 2 * j; c >= size {
			a, b = leaf(p, c-size), leaf(p, c+1-size)
		} else {
			a, b = tree[c], tree[c+1]
		}
		switch {
		case a < 0:
			tree[j] = b
		case b < 0 || col[un[a]] <= col[un[b]]:
			tree[j] = a
		default:
			tree[j] = b
		}
	}
	build := func(p int) {
		tree, col := win[p*size:(p+1)*size], cost[p*ni:(p+1)*ni]
		for j := size - 1; j >= 1; j-- {
			fix(p, tree, col, j)
		}
	}
	for p := range s.n {
		build(p)
	}

	for {
		best, bestNode := int32(-1), -1
		var bestCost uint64
		for p := range s.n {
			k := win[p*size+1]
			if k < 0 {
				continue
			}
			// Lower k is the earlier address, as CTDB's loop finds it.
			if c := cost[p*ni+int(un[k])]; best == -1 || c < bestCost || c == bestCost && k < best {
				best, bestNode, bestCost = k, p, c
			}
		}
		if best == -1 {
			return // no address left that any node may take
		}
		x, p := int(un[best]), bestNode
		s.holder[x] = p
		placed[best] = true
		imb[p] += bestCost
		s.addCost(cost[p*ni:(p+1)*ni], x)

		build(p)
		for q := range s.n {
			if q == p {
				continue
			}
			tree, col := win[q*size:(q+1)*size], cost[q*ni:(q+1)*ni]
			for j := (size + int(best)) / 2; j >= 1 && tree[j] == best; j /= 2 {
				fix(q, tree, col, j)
			}
		}
	}
}

// lcp2Failback repeatedly takes the nodes in order of imbalance (highest
// first, equal ones by PNN) and applies the best move from the first one
// that has one, until no node has.
func (s *state) lcp2Failback(cost, imb []uint64, candidate []bool) {
	var cands []int
	for p, ok := range candidate {
		if ok {
			cands = append(cands, p)
		}
	}
	order := make([]int, s.n)
	for {
		for p := range order {
			order[p] = p
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(imb[b], imb[a]) })
		moved := false
		for _, src := range order {
			if imb[src] == 0 {
				break // every node left holds at most one address
			}
			if s.lcp2FailbackFrom(src, cost, imb, cands) {
				moved = true
				break
			}
		}
		if !moved {
			return
		}
	}
}

// lcp2FailbackFrom finds and applies the best move of one address from
// src to a candidate node, reporting whether there was one. A move must
// leave the destination less imbalanced than src is now and cost the
// destination less than the address costs src; the best move minimises
// src's plus the destination's resulting imbalance (the first one found,
// in address then PNN order, among equals).
func (s *state) lcp2FailbackFrom(src int, cost, imb []uint64, cands []int) bool {
	ni := len(s.ips)
	bestIP, bestDst := -1, -1
	var bestSrcImb, bestDstImb uint64
	for i, h := range s.holder {
		if h != src {
			continue
		}
		srcCost := cost[src*ni+i]
		srcImb := imb[src] - srcCost
		for _, dst := range cands {
			if !s.canTakeover(dst, i) {
				continue
			}
			dstCost := cost[dst*ni+i]
			dstImb := imb[dst] + dstCost
			if dstImb < imb[src] && dstCost < srcCost &&
				(bestDst == -1 || srcImb+dstImb < bestSrcImb+bestDstImb) {
				bestIP, bestDst = i, dst
				bestSrcImb, bestDstImb = srcImb, dstImb
			}
		}
	}
	if bestDst == -1 {
		return false
	}
	imb[src], imb[bestDst] = bestSrcImb, bestDstImb
	s.holder[bestIP] = bestDst
	s.moveCost(cost[src*ni:(src+1)*ni], cost[bestDst*ni:(bestDst+1)*ni], bestIP)
	return true
}
