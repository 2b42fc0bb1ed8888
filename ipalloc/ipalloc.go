package ipalloc

import (
	"errors"
	"net/netip"
	"slices"
	"strconv"
)

// Algorithm is CTDB's IPAllocAlgorithm tunable.
type Algorithm int

const (
	// Deterministic gives address number i (in CTDB's order) to node
	// i mod the number of nodes, or to its home node, then moves the
	// addresses of nodes that cannot host them to the least loaded
	// node. It never fails back: the modulo does.
	Deterministic Algorithm = 0
	// NonDeterministic moves unhosted addresses to the least loaded node,
	// then evens out address counts.
	NonDeterministic Algorithm = 1
	// LCP2 (the default) places addresses so that the addresses on one node
	// share as little prefix as possible; failback moves addresses only onto
	// nodes that held none before the run (or are forced).
	LCP2 Algorithm = 2
	// LCP2Rebalance is ctdb-go's own: LCP2 whose failback may move
	// addresses onto every node, not only onto nodes that held none.
	// Not a CTDB value.
	LCP2Rebalance Algorithm = 3
)

// String returns the algorithm's name as the reference cases spell it.
func (a Algorithm) String() string {
	switch a {
	case Deterministic:
		return "det"
	case NonDeterministic:
		return "nondet"
	case LCP2:
		return "lcp2"
	case LCP2Rebalance:
		return "lcp2-rebalance"
	}
	return "lcp2 (IPAllocAlgorithm=" + strconv.Itoa(int(a)) + ")"
}

// effective maps a tunable value to the algorithm that runs: any value
// CTDB does not know means LCP2, as in CTDB's takeover helper.
func (a Algorithm) effective() Algorithm {
	switch a {
	case Deterministic, NonDeterministic, LCP2, LCP2Rebalance:
		return a
	}
	return LCP2
}

// Node is one node of the cluster as the allocation sees it.
type Node struct {
	PNN int
	// CanHost is false when the node may hold no address at all: CTDB's
	// NOIPHOST, i.e. not RUNNING, or INACTIVE (disconnected, banned,
	// stopped, deleted), or DISABLED (unhealthy or administratively
	// disabled) unless every node is disabled and NoIPHostOnAllDisabled
	// is 0. The caller applies those rules.
	CanHost bool
}

// IP is one public address: who holds it now and who could host it.
type IP struct {
	Addr netip.Addr
	// Current is the node holding the address now, -1 for none. (In CTDB
	// a node's claim counts only when it claims the address for itself;
	// Merge applies that rule.)
	Current int
	// KnownOn lists the nodes whose public_addresses contain the address.
	// The algorithms do not use it (AvailableOn decides); it is checked and
	// kept for callers, e.g. to know who must release an address.
	KnownOn []int
	// AvailableOn lists the nodes that could host the address now: they
	// know it and it has a usable interface there. A node also needs
	// CanHost.
	AvailableOn []int
}

// Input is everything one allocation depends on.
type Input struct {
	// Algorithm is IPAllocAlgorithm; unknown values mean LCP2.
	Algorithm Algorithm
	// NoIPTakeover: no node gains an address. Addresses stay where they
	// are if their holder can still host them, otherwise they are
	// unassigned.
	NoIPTakeover bool
	// NoIPFailback: no rebalancing after the unassigned addresses are
	// placed (LCP2, NonDeterministic; Deterministic ignores it).
	NoIPFailback bool
	// ForceRebalance lists nodes LCP2's failback may move addresses onto
	// even though they already hold some (CTDB's force-rebalance list).
	// Unknown PNNs are ignored with a note.
	ForceRebalance []int
	// HomeNodes maps an address to its home node for Deterministic
	// (CTDB's home_nodes file). Entries naming no node are ignored with a
	// note; entries for addresses not in IPs are unused.
	HomeNodes map[netip.Addr]int
	// Nodes lists the cluster's nodes, in any order, each PNN once. The
	// cluster has nodes 0..max PNN; a PNN not listed is a node that cannot
	// host. List deleted nodes too (CanHost false), as CTDB's node map
	// does: the deterministic algorithm's modulo counts them.
	Nodes []Node
	// IPs holds each address once, in any order.
	IPs []IP
}

// Assignment is one address and the node that is to hold it, -1 for
// none.
type Assignment struct {
	Addr netip.Addr
	PNN  int
}

// Move is one address whose holder changes: From is the holder in the
// input (-1 for none), To the new one (-1 for none).
type Move struct {
	Addr     netip.Addr
	From, To int
}

// Result is the plan.
type Result struct {
	// Assignments holds every input address once, in CTDB's order (see
	// Compare).
	Assignments []Assignment
	// Moves lists the addresses whose holder differs from the input's, in
	// the same order.
	Moves []Move
	// Notes are the warnings CTDB would log (an ignored home node, an
	// ignored tunable), for the caller to log.
	Notes []string
}

// Compare orders addresses as CTDB lists them: descending by a 128-bit
// key, IPv4 a.b.c.d being a.b.c.d in the low 32 bits; unlike CTDB, every
// IPv6 address comes before every IPv4 address (see the package comment).
// It returns -1 when a comes first, 0 when a == b, +1 otherwise; zones are
// not compared.
func Compare(a, b netip.Addr) int {
	return keyOf(a).compare(keyOf(b))
}

// Allocate computes the plan for in. It does not modify in and it always
// answers: inconsistent input (see Check) is made consistent first, each
// repair noted in Result.Notes: a node listed with a negative PNN is
// dropped, a PNN listed twice keeps its first entry, an invalid or zoned
// address is left out of the plan, an address listed twice keeps its
// first entry, a reference to a node that does not exist is ignored (a
// holder that does not exist means none). The plan for such input may
// depend on its order.
func Allocate(in Input) Result {
	s := newState(in)
	switch in.Algorithm.effective() {
	case Deterministic:
		s.deterministic(in.HomeNodes, in.NoIPFailback)
	case NonDeterministic:
		s.nonDeterministic(in.NoIPFailback)
	case LCP2:
		s.lcp2(false, in.ForceRebalance, in.NoIPFailback)
	case LCP2Rebalance:
		s.lcp2(true, in.ForceRebalance, in.NoIPFailback)
	}
	return s.result()
}

// Check reports the first inconsistency in in, nil if there is none:
// a negative or repeated node PNN, an invalid, zoned or repeated address,
// or an address naming a node that does not exist as its holder or in its
// node lists. Allocate repairs these; callers that would rather refuse
// such input (the `ctdb ipalloc` simulator) call Check first.
func Check(in Input) error {
	if p := newState(in).problems; len(p) > 0 {
		return errors.New("ipalloc: " + p[0])
	}
	return nil
}

// state is one allocation in progress. Nodes are their PNNs 0..n-1;
// addresses are their indices in ips, which is in CTDB's order.
type state struct {
	n          int
	ips        []entry
	holder     []int    // per address: current node or -1
	from       []int    // per address: the input's holder, for Moves
	words      int      // uint64 words per address in avail
	avail      []uint64 // len(ips)*words bits: node may host the address
	noTakeover bool
	problems   []string // inconsistencies in the input, repaired
	notes      []string
}

// entry is one address with its sort and distance key.
type entry struct {
	addr netip.Addr
	key  key
}

func newState(in Input) *state {
	s := &state{noTakeover: in.NoIPTakeover}
	for _, nd := range in.Nodes {
		s.n = max(s.n, nd.PNN+1)
	}
	canHost := make([]bool, s.n)
	listed := make([]bool, s.n)
	for _, nd := range in.Nodes {
		switch {
		case nd.PNN < 0:
			s.problem("node PNN " + strconv.Itoa(nd.PNN) + " is negative")
		case listed[nd.PNN]:
			s.problem("node " + strconv.Itoa(nd.PNN) + " listed twice")
		default:
			listed[nd.PNN] = true
			canHost[nd.PNN] = nd.CanHost
		}
	}

	// Valid addresses in CTDB's order, first entry of each.
	var order []int
	keys := make([]key, len(in.IPs))
	for i, ip := range in.IPs {
		switch {
		case !ip.Addr.IsValid():
			s.problem("address #" + strconv.Itoa(i) + " is not set")
		case ip.Addr.Zone() != "":
			s.problem("address " + ip.Addr.String() + " has a zone")
		default:
			keys[i] = keyOf(ip.Addr)
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return keys[a].compare(keys[b]) })
	order = slices.CompactFunc(order, func(a, b int) bool {
		if keys[a] == keys[b] {
			s.problem("address " + in.IPs[b].Addr.String() + " listed twice")
			return true
		}
		return false
	})

	s.words = (s.n + 63) / 64
	s.ips = make([]entry, len(order))
	s.holder = make([]int, len(order))
	s.from = make([]int, len(order))
	s.avail = make([]uint64, len(order)*s.words)
	for i, j := range order {
		ip := in.IPs[j]
		exists := func(what string, p int) bool {
			if p >= 0 && p < s.n {
				return true
			}
			s.problem(ip.Addr.String() + ": " + what + " node " + strconv.Itoa(p) +
				" does not exist (" + strconv.Itoa(s.n) + " nodes)")
			return false
		}
		s.ips[i] = entry{addr: ip.Addr, key: keys[j]}
		s.from[i] = ip.Current
		s.holder[i] = -1
		if ip.Current != -1 && exists("holder", ip.Current) {
			s.holder[i] = ip.Current
		}
		for _, p := range ip.KnownOn {
			exists("known-on", p)
		}
		row := s.avail[i*s.words : (i+1)*s.words]
		for _, p := range ip.AvailableOn {
			if exists("available-on", p) && canHost[p] {
				row[p/64] |= 1 << (p % 64)
			}
		}
	}
	return s
}

// problem records an inconsistency in the input; Allocate notes it.
func (s *state) problem(msg string) {
	s.problems = append(s.problems, msg)
	s.note("input: " + msg)
}

// canHost reports whether node p may hold address i (CTDB's
// can_node_host_ip).
func (s *state) canHost(p, i int) bool {
	return s.avail[i*s.words+p/64]&(1<<(p%64)) != 0
}

// canTakeover reports whether node p may gain address i (CTDB's
// can_node_takeover_ip).
func (s *state) canTakeover(p, i int) bool {
	return !s.noTakeover && s.canHost(p, i)
}

// unassignUnsuitable unassigns every address whose holder cannot host it.
func (s *state) unassignUnsuitable() {
	for i, h := range s.holder {
		if h != -1 && !s.canHost(h, i) {
			s.holder[i] = -1
		}
	}
}

func (s *state) note(msg string) { s.notes = append(s.notes, msg) }

func (s *state) result() Result {
	r := Result{Assignments: make([]Assignment, len(s.ips)), Notes: s.notes}
	for i, e := range s.ips {
		r.Assignments[i] = Assignment{Addr: e.addr, PNN: s.holder[i]}
		if s.from[i] != s.holder[i] {
			r.Moves = append(r.Moves, Move{Addr: e.addr, From: s.from[i], To: s.holder[i]})
		}
	}
	return r
}
