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

// hasLease: the node renewed recently enough to have more than a second
// of lease left, so it can add an address with a lifetime of at least one
// whole second.
func (v *View) hasLease(pnn int, now time.Time) bool {
	e, ok := v.GrantEnd[pnn]
	return ok && e.Sub(now) > time.Second+100*time.Millisecond
}

// unknownGate says why a node whose holdings this leader does not know
// (it never reported) still blocks takes ("" if it no longer does). A
// reachable node will report soon; an unreachable one may hold any
// address until its lease, granted by an earlier leader, has run out —
// or, with fencing on, until it has been fenced.
func (d *decider) unknownGate(pnn int) string {
	if d.v.Alive[pnn] || !d.v.Fence {
		if d.now.Before(d.v.safeTime(pnn)) {
			return fmt.Sprintf("waiting for node %d to report what it holds", pnn)
		}
		return ""
	}
	return d.gate(pnn)
}

// deadGate says why addresses claimed by the unreachable nodes dead
// cannot move yet ("" if they can). It looks at the nodes in order and
// stops at the first that blocks: a later one is not fenced for this
// address.
func (d *decider) deadGate(dead []int) string {
	for _, x := range dead {
		if why := d.gate(x); why != "" {
			return why
		}
	}
	return ""
}

// gate is fenceGate, decided once per node and Decide call: a fence
// started for a node's first address is running for its next.
func (d *decider) gate(pnn int) string {
	if why, ok := d.gates[pnn]; ok {
		return why
	}
	why := d.fenceGate(pnn)
	d.gates[pnn] = why
	return why
}

// fenceGate says why addresses held by unreachable node pnn cannot move
// yet ("" if they can). With fencing off they can once its lease has run
// out. With fencing on only after a fence succeeded: a lease says the
// node's kernel dropped the address, but a fenced-off node whose kernel
// still runs may answer ARP, and users who turn fencing on want it waited
// for. It decides to start a fence when one is due.
func (d *decider) fenceGate(pnn int) string {
	v, now := d.v, d.now
	if !v.Fence {
		if now.Before(v.safeTime(pnn)) {
			return fmt.Sprintf("waiting for the lease of node %d to run out", pnn)
		}
		return ""
	}
	fs := v.Fencing[pnn]
	if fs.Loss != v.Loss[pnn] {
		// Made for an earlier loss: the node has been back since.
		fs = FenceState{Loss: v.Loss[pnn]}
	}
	d.out.FenceStates[pnn] = fs // tracked from now on, even if nothing else changes
	if fs.Done {
		return ""
	}
	if fs.Running {
		return fmt.Sprintf("fencing node %d (attempt %d)", pnn, fs.Tries)
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
	// victim was lost, and recently.
	if v.Quorum {
		confirmed := 1 // this node
		for _, p := range v.Nodes {
			g := v.LastGrant[p]
			if p != v.Self && p != pnn && g.After(start) && now.Sub(g) < 3*v.RenewInterval {
				confirmed++
			}
		}
		if confirmed*2 <= len(v.Nodes) {
			return fmt.Sprintf("not fencing node %d: only %d of %d nodes confirmed reachable", pnn, confirmed, len(v.Nodes))
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
	if !v.Seen[pnn] && now.Sub(v.Started) < v.FenceStartupGrace {
		return fmt.Sprintf("node %d not seen since start-up: fencing after %v grace", pnn, v.FenceStartupGrace)
	}
	if now.Before(start.Add(delay)) || now.Before(fs.NextTry) {
		if fs.LastErr != "" {
			return fmt.Sprintf("fencing node %d failed %d times, last: %s; retrying", pnn, fs.Tries, fs.LastErr)
		}
		return fmt.Sprintf("fencing node %d soon", pnn)
	}
	fs.Running = true
	fs.Tries++
	d.out.FenceStates[pnn] = fs
	d.out.Fence = append(d.out.Fence, pnn)
	return fmt.Sprintf("fencing node %d (attempt %d)", pnn, fs.Tries)
}
