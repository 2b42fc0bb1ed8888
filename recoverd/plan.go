package recoverd

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/ctdb-go/ctdb-go/ipalloc"
)

// AllocateFunc computes a placement: ipalloc.Allocate in ctdbd, a simpler
// stand-in in some tests.
type AllocateFunc func(ipalloc.Input) ipalloc.Result

// IPAlloc is the AllocateFunc of ctdbd: ipalloc, with the algorithm the
// IPAllocAlgorithm tunable names.
func IPAlloc(in ipalloc.Input) ipalloc.Result { return ipalloc.Allocate(in) }

// StartupHold is how long a new leader waits for every live node to be
// able to host before its first placement.
const StartupHold = 5 * time.Second

// fenceWake is how soon the leader looks again at a fence that waits for
// a confirmed majority: lease renewals confirm it, and they do not wake
// the loop.
const fenceWake = 250 * time.Millisecond

// claims is what the view says of one address.
type claims struct {
	known, avail []int // nodes that list it, and that could host it now
	alive, dead  []int // live and unreachable nodes that may hold it
}

// decider is one Decide call: the view, and the fence decisions made so
// far (an unreachable node is looked at once, however many addresses it
// claims).
type decider struct {
	v     *View
	now   time.Time
	out   Decision
	gates map[int]block
}

// Decide is the leader's takeover decision: where every public address is
// to be, and what must happen first. It changes nothing and starts
// nothing; the state updates it implies are in the Decision.
//
// An address moves only when no other node can still hold it: every live
// claimant releases it first, and an unreachable claimant must have had
// its lease run out (or, with fencing on, have been fenced). Nodes that
// have not reported to this leader block takes on other nodes until they
// report or until a lease of an earlier leader would have run out.
func Decide(v View, now time.Time) Decision {
	d := &decider{v: &v, now: now, gates: map[int]block{}, out: Decision{
		Keep:        map[netip.Addr]int{},
		Blocked:     map[netip.Addr]string{},
		FenceStates: map[int]FenceState{},
		LostAt:      map[int]time.Time{},
	}}
	in, allCan := d.nodes()
	if v.FailoverDisabled {
		// CTDB's `[failover] disabled`: no allocation, and no address
		// is released or taken either (its takeover run then only sends
		// ipreallocated); addresses are someone else's business.
		return d.out
	}
	ips := d.claims()
	addrs := make([]netip.Addr, 0, len(ips))
	for a := range ips {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	for _, a := range addrs {
		i := ips[a]
		if len(i.known) == 0 {
			// Held but configured nowhere (removed by reloadips, or added
			// by hand): not placed, so it is released below.
			continue
		}
		in.IPs = append(in.IPs, ipalloc.IP{Addr: a, Current: v.current(a, i.alive), KnownOn: i.known, AvailableOn: i.avail})
	}
	// Nodes whose holdings this leader does not know yet (no state
	// report) may hold anything until their lease, granted by an earlier
	// leader, has run out: nothing is taken before they report or then.
	var unknown []int
	unknownWhy := map[int]block{}
	for _, pnn := range v.Nodes {
		if _, ok := v.States[pnn]; ok {
			continue
		}
		if b := d.unknownGate(pnn); b.why != "" {
			unknown = append(unknown, pnn)
			unknownWhy[pnn] = b
		}
	}

	// Right after a leader starts, nodes become healthy one after another
	// (each runs its first monitor 2 s after it starts). Placing addresses
	// on the first healthy node only to move them again is churn, and LCP2
	// never rebalances onto a node that already got one: wait until every
	// live node can host, or StartupHold has passed.
	hold := !allCan && now.Sub(v.LeaderSince) < StartupHold && len(v.Assigned) == 0
	target := map[netip.Addr]int{}
	switch {
	case hold:
		d.out.Wake = v.LeaderSince.Add(StartupHold)
		for _, ip := range in.IPs {
			if ip.Current >= 0 {
				target[ip.Addr] = ip.Current
			} else {
				d.out.Blocked[ip.Addr] = "waiting for the nodes to become healthy after start-up"
			}
		}
	case len(in.IPs) > 0:
		alloc := v.Allocate
		if alloc == nil {
			alloc = ipalloc.Allocate
		}
		res := alloc(in)
		for _, as := range res.Assignments {
			target[as.Addr] = as.PNN
		}
		d.out.Notes = res.Notes
	}

	// An administrator's wish (ctdb moveip) wins over the placement when
	// the node can host the address now. It changes only the target: the
	// move passes the same gates as any other (every possible holder
	// releases first, unreachable and unknown nodes block).
	for a, p := range v.Prefer {
		if i := ips[a]; i != nil && slices.Contains(i.avail, p) {
			target[a] = p
			delete(d.out.Blocked, a)
		}
	}

	for _, a := range addrs {
		if v.Moving[a] {
			continue
		}
		i := ips[a]
		t, ok := target[a]
		if !ok || len(i.known) == 0 {
			t = -1
		}
		if b := d.deadGate(i.dead); b.why != "" {
			// An unreachable node may still hold it: nobody else gets it
			// before its lease has run out, or it has been fenced.
			d.out.Blocked[a] = b.why
			d.wake(b.wake)
			continue
		}
		var others []int
		for _, c := range i.alive {
			if c != t {
				others = append(others, c)
			}
		}
		holds := slices.Contains(i.alive, t)
		var op *Op
		switch {
		case t < 0 && len(i.alive) == 0:
		case holds && len(others) == 0:
			d.out.Keep[a] = t
		case t < 0:
			op = &Op{Addr: a, Release: others, Take: -1}
		case holds:
			op = &Op{Addr: a, Release: others, Take: -1}
			d.out.Keep[a] = t
		default:
			if u := slices.DeleteFunc(slices.Clone(unknown), func(x int) bool { return x == t }); len(u) > 0 {
				d.out.Blocked[a] = unknownWhy[u[0]].why
				d.wake(unknownWhy[u[0]].wake)
				continue
			}
			op = &Op{Addr: a, Release: others, Take: t}
		}
		if op == nil {
			continue
		}
		// More than one live node may hold it: the op releases it on all
		// but at most one, which resolves the duplicate.
		if len(i.alive) > 1 {
			op.Duplicate = true
			d.out.Duplicates = append(d.out.Duplicates, fmt.Sprintf("%s held by %v", a, i.alive))
		}
		d.out.Ops = append(d.out.Ops, *op)
	}
	return d.out
}

// wake makes the decision wake by t at the latest (zero: no time).
func (d *decider) wake(t time.Time) {
	if t.IsZero() {
		return
	}
	if d.out.Wake.IsZero() || t.Before(d.out.Wake) {
		d.out.Wake = t
	}
}

// nodes fills CanHost and starts ipalloc's input with the nodes; allCan
// says whether every live node can host.
func (d *decider) nodes() (in ipalloc.Input, allCan bool) {
	v := d.v
	in = ipalloc.Input{Algorithm: v.Algorithm, NoIPTakeover: v.NoIPTakeover, NoIPFailback: v.NoIPFailback}
	d.out.CanHost = map[int]bool{}
	allCan = true
	for _, pnn := range v.Nodes {
		st, reported := v.States[pnn]
		ok := v.Alive[pnn] && reported && st.RunState == RunStateRunning &&
			st.Flags.CanHost() && v.hasLease(pnn, d.now)
		d.out.CanHost[pnn] = ok
		in.Nodes = append(in.Nodes, ipalloc.Node{PNN: pnn, CanHost: ok})
		// Force only a node this leader saw unable before: after a
		// leader change nothing is known, and forcing every node would
		// move addresses between healthy nodes.
		if was, known := v.CouldHost[pnn]; ok && known && !was {
			in.ForceRebalance = append(in.ForceRebalance, pnn)
		}
		if v.Alive[pnn] && !ok {
			allCan = false
		}
	}
	for _, pnn := range v.Deleted {
		in.Nodes = append(in.Nodes, ipalloc.Node{PNN: pnn})
	}
	slices.SortFunc(in.Nodes, func(a, b ipalloc.Node) int { return a.PNN - b.PNN })
	return in, allCan
}

// claims gathers, per address, who lists it, who could host it and who
// may hold it (reports corrected by acknowledged orders, and takes whose
// result is unknown).
func (d *decider) claims() map[netip.Addr]*claims {
	v := d.v
	ips := map[netip.Addr]*claims{}
	get := func(a netip.Addr) *claims {
		if ips[a] == nil {
			ips[a] = &claims{}
		}
		return ips[a]
	}
	claim := func(a netip.Addr, pnn int) {
		i := get(a)
		if v.Alive[pnn] {
			if !slices.Contains(i.alive, pnn) {
				i.alive = append(i.alive, pnn)
			}
		} else if !slices.Contains(i.dead, pnn) {
			i.dead = append(i.dead, pnn)
		}
	}
	for _, pnn := range v.Nodes {
		st, ok := v.States[pnn]
		if !ok {
			continue
		}
		avail := make(map[netip.Addr]bool, len(st.Available))
		for _, a := range st.Available {
			avail[a] = true
		}
		for _, k := range st.Known {
			i := get(k.Prefix.Addr())
			i.known = append(i.known, pnn)
			if d.out.CanHost[pnn] && avail[k.Prefix.Addr()] {
				i.avail = append(i.avail, pnn)
			}
		}
		for _, a := range v.held(pnn) {
			claim(a, pnn)
		}
	}
	for a, pnns := range v.Suspect {
		for _, pnn := range pnns {
			claim(a, pnn)
		}
	}
	for _, i := range ips {
		slices.Sort(i.alive)
		slices.Sort(i.dead)
	}
	return ips
}

// current is the holder ipalloc starts from: where a move in flight
// lands (otherwise every run during a big move sees the old holders
// still loaded and sends yet more addresses to the nodes that gain them),
// else the holder this leader assigned if it still holds it, else the
// lowest live claimant.
func (v *View) current(a netip.Addr, alive []int) int {
	if to, ok := v.MovingTo[a]; ok && v.Moving[a] {
		return to
	}
	if h, ok := v.Assigned[a]; ok && slices.Contains(alive, h) {
		return h
	}
	if len(alive) > 0 {
		return alive[0]
	}
	return -1
}

// held is what node pnn holds: its last report, corrected by the orders
// it acknowledged after that report was made.
func (v *View) held(pnn int) []netip.Addr {
	st := v.States[pnn]
	newer := func(o Override) bool { return o.Boot == st.Boot && o.Version > st.Version }
	out := make([]netip.Addr, 0, len(st.Held))
	reported := make(map[netip.Addr]bool, len(st.Held))
	for _, a := range st.Held {
		reported[a] = true
		if o, ok := v.Overrides[a][pnn]; ok && newer(o) && !o.Held {
			continue
		}
		out = append(out, a)
	}
	for a, m := range v.Overrides {
		if o, ok := m[pnn]; ok && newer(o) && o.Held && !reported[a] {
			out = append(out, a)
		}
	}
	return out
}
