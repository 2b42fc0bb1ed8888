package recoverd

import (
	"fmt"
	"time"
)

// safeTime is when pnn can hold nothing any more, once this leader grants
// it nothing: the end of the lease this leader granted it, and no earlier
// than the longest lease an earlier leader could have granted (MaxLease
// from this leader's start), plus LeaseMargin for the kernel.
func (v *View) safeTime(pnn int) time.Time {
	t := v.LeaderSince.Add(v.MaxLease)
	if e := v.GrantEnd[pnn]; e.After(t) {
		t = e
	}
	return t.Add(LeaseMargin)
}

// minHostLease is the least lease a node must have left to be given an
// address: a kernel lifetime is whole seconds, so it needs a second, and a
// little more for the order to arrive.
const minHostLease = time.Second + 100*time.Millisecond

// hasLease: the node renewed recently enough to have more than a second
// of lease left, so it can add an address with a lifetime of at least one
// whole second.
func (v *View) hasLease(pnn int, now time.Time) bool {
	e, ok := v.GrantEnd[pnn]
	return ok && e.Sub(now) > minHostLease
}

// block says why a node keeps an address from moving, and when that may
// change: the time to decide again. A zero wake means an event wakes the
// loop (a fence ends, a report arrives) or RecoverInterval does.
type block struct {
	why  string
	wake time.Time
}

// unknownGate says why a node whose holdings this leader does not know
// (it never reported) still blocks takes (why "" if it no longer does).
// A reachable node will report soon; an unreachable one may hold any
// address until its lease, granted by an earlier leader, has run out —
// or, with fencing on, until it has been fenced.
func (d *decider) unknownGate(pnn int) block {
	if d.v.Alive[pnn] || !d.v.Fence {
		if t := d.v.safeTime(pnn); d.now.Before(t) {
			return block{fmt.Sprintf("waiting for node %d to report what it holds", pnn), t}
		}
		return block{}
	}
	return d.gate(pnn)
}

// deadGate says why addresses claimed by the unreachable nodes dead
// cannot move yet (why "" if they can). It looks at the nodes in order
// and stops at the first that blocks: a later one is not fenced for this
// address.
func (d *decider) deadGate(dead []int) block {
	for _, x := range dead {
		if b := d.gate(x); b.why != "" {
			return b
		}
	}
	return block{}
}

// gate is fenceGate, decided once per node and Decide call: a fence
// started for a node's first address is running for its next.
func (d *decider) gate(pnn int) block {
	if b, ok := d.gates[pnn]; ok {
		return b
	}
	b := d.fenceGate(pnn)
	d.gates[pnn] = b
	return b
}

// fenceGate says why addresses held by unreachable node pnn cannot move
// yet (why "" if they can), and when to look again. With fencing off they
// can once its lease has run out. With fencing on only after a fence of
// this loss succeeded: a lease says the node's kernel dropped the address,
// but a fenced-off node whose kernel still runs may answer ARP, and users
// who turn fencing on want it waited for. It decides to start a fence
// when one is due.
func (d *decider) fenceGate(pnn int) block {
	v, now := d.v, d.now
	if !v.Fence {
		if t := v.safeTime(pnn); now.Before(t) {
			return block{fmt.Sprintf("waiting for the lease of node %d to run out", pnn), t}
		}
		return block{}
	}
	fs := v.Fencing[pnn]
	if fs.Loss != v.Loss[pnn] {
		// Made for an earlier loss: the node has been back since.
		fs = FenceState{Loss: v.Loss[pnn]}
	}
	d.out.FenceStates[pnn] = fs // tracked from now on, even if nothing else changes
	if fs.Done {
		return block{}
	}
	if fs.Running {
		// Its end, success or failure, wakes the loop.
		return block{why: fmt.Sprintf("fencing node %d (attempt %d)", pnn, fs.Tries)}
	}
	start := v.LostAt[pnn]
	if start.IsZero() {
		start = now
		d.out.LostAt[pnn] = now
	}
	// Fence only with a majority that is confirmed, not just believed:
	// a leader cut off from the others still sees them alive for a moment
	// (memberlist marks them dead one by one) and would fence a healthy
	// node. A node counts when its lease renewal reached us after the
	// victim was lost, and recently. Renewals do not wake the loop: look
	// again in fenceWake.
	if v.Quorum {
		confirmed := 1 // this node
		for _, p := range v.Nodes {
			g := v.LastGrant[p]
			if p != v.Self && p != pnn && g.After(start) && now.Sub(g) < 3*v.RenewInterval {
				confirmed++
			}
		}
		if confirmed*2 <= len(v.Nodes) {
			return block{fmt.Sprintf("not fencing node %d: only %d of %d nodes confirmed reachable", pnn, confirmed, len(v.Nodes)),
				now.Add(fenceWake)}
		}
	}
	// Nodes without quorum (two-node clusters) that lose each other must
	// not fence each other at the same moment: wait FenceDelay × PNN. A
	// node not seen since this daemon started is given a start-up grace
	// (it may still be booting).
	delay := time.Duration(0)
	if !v.Quorum {
		delay = v.FenceDelay * time.Duration(v.Self)
	}
	if graceEnd := v.Started.Add(v.FenceStartupGrace); !v.Seen[pnn] && now.Before(graceEnd) {
		return block{fmt.Sprintf("node %d not seen since start-up: fencing after %v grace", pnn, v.FenceStartupGrace), graceEnd}
	}
	if due := later(start.Add(delay), fs.NextTry); now.Before(due) {
		if fs.LastErr != "" {
			return block{fmt.Sprintf("fencing node %d failed %d times, last: %s; retrying", pnn, fs.Tries, fs.LastErr), due}
		}
		return block{fmt.Sprintf("fencing node %d soon", pnn), due}
	}
	fs.Running = true
	fs.Tries++
	d.out.FenceStates[pnn] = fs
	d.out.Fence = append(d.out.Fence, pnn)
	return block{why: fmt.Sprintf("fencing node %d (attempt %d)", pnn, fs.Tries)}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
