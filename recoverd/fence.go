package recoverd

import (
	"context"
	"fmt"
	"time"
)

// fenceState is the leader's knowledge of fencing one unreachable node.
type fenceState struct {
	running bool
	done    bool      // fenced: its addresses may move now
	lastErr string    // why the last attempt failed
	tries   int       // attempts so far
	nextTry time.Time // no attempt before this
}

// fenceRetry is the pause between failed fence attempts.
const fenceRetry = 2 * time.Second

// fenceGateLocked reports whether addresses held by unreachable node pnn
// may move now. With fencing off that is when its lease has run out. With
// fencing on it is only after a fence succeeded: a lease says the node's
// kernel dropped the address, but a fenced-off node whose kernel still
// runs may answer ARP, and users who turn fencing on want it waited for.
// It starts a fence attempt when one is due.
func (r *Recoverd) fenceGateLocked(ctx context.Context, pnn int, now time.Time) (ok bool, why string) {
	if r.cfg.Fence == nil {
		if now.Before(r.safeTimeLocked(pnn)) {
			return false, fmt.Sprintf("waiting for the lease of node %d to run out", pnn)
		}
		return true, ""
	}
	fs := r.fencing[pnn]
	if fs == nil {
		fs = &fenceState{}
		r.fencing[pnn] = fs
	}
	if fs.done {
		return true, ""
	}
	if fs.running {
		return false, fmt.Sprintf("fencing node %d (attempt %d)", pnn, fs.tries)
	}
	start := r.lostAt[pnn]
	if start.IsZero() {
		start = now
		r.lostAt[pnn] = now
	}
	// Fence only with a majority that is confirmed, not just believed:
	// a leader cut off from the others still sees them alive for a moment
	// (memberlist marks them dead one by one) and would fence a healthy
	// node. A node counts when its lease renewal reached us after the
	// victim was lost, and recently.
	if r.cfg.Quorum {
		renew := time.Duration(r.tunable("LeaseRenewIntervalMs", 250)) * time.Millisecond
		confirmed := 1 // this node
		for _, p := range r.cfg.Nodes {
			g := r.lastGrant[p]
			if p != r.cfg.PNN && p != pnn && g.After(start) && now.Sub(g) < 3*renew {
				confirmed++
			}
		}
		if confirmed*2 <= len(r.cfg.Nodes) {
			return false, fmt.Sprintf("not fencing node %d: only %d of %d nodes confirmed reachable", pnn, confirmed, len(r.cfg.Nodes))
		}
	}
	// Nodes without quorum (two-node clusters) that lose each other must
	// not fence each other at the same moment: wait FenceDelay × PNN. A node not seen
	// since this daemon started is given a start-up grace (it may still
	// be booting).
	delay := time.Duration(0)
	if !r.cfg.Quorum {
		delay = time.Duration(r.tunable("FenceDelayMs", 2000)) * time.Millisecond * time.Duration(r.cfg.PNN)
	}
	grace := time.Duration(r.tunable("FenceStartupGrace", 10)) * time.Second
	if !r.seen[pnn] && now.Sub(r.started) < grace {
		return false, fmt.Sprintf("node %d not seen since start-up: fencing after %v grace", pnn, grace)
	}
	if now.Before(start.Add(delay)) || now.Before(fs.nextTry) {
		why := fmt.Sprintf("fencing node %d soon", pnn)
		if fs.lastErr != "" {
			why = fmt.Sprintf("fencing node %d failed %d times, last: %s; retrying", pnn, fs.tries, fs.lastErr)
		}
		return false, why
	}
	fs.running = true
	fs.tries++
	go r.fence(ctx, pnn)
	return false, fmt.Sprintf("fencing node %d (attempt %d)", pnn, fs.tries)
}

// fence runs the fence step for a node and records the result.
func (r *Recoverd) fence(ctx context.Context, pnn int) {
	timeout := time.Duration(r.tunable("FenceTimeout", 60)) * time.Second
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r.log.Warn("fencing node", "pnn", pnn)
	err := r.cfg.Fence(fctx, pnn)
	r.mu.Lock()
	fs := r.fencing[pnn]
	if fs == nil {
		r.mu.Unlock()
		return
	}
	fs.running = false
	if err != nil {
		fs.lastErr = err.Error()
		fs.nextTry = r.now().Add(fenceRetry)
		r.mu.Unlock()
		r.log.Error("fencing failed; the node's addresses stay down", "pnn", pnn, "err", err)
		return
	}
	fs.done = true
	fs.lastErr = ""
	r.runAt = r.now()
	r.mu.Unlock()
	r.log.Warn("node fenced; moving its addresses", "pnn", pnn)
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// forgetFencingLocked clears fencing state for nodes that are reachable.
func (r *Recoverd) forgetFencingLocked() {
	for pnn := range r.fencing {
		if r.peers[pnn].Alive {
			delete(r.fencing, pnn)
			delete(r.lostAt, pnn)
		}
	}
	for pnn := range r.lostAt {
		if r.peers[pnn].Alive {
			delete(r.lostAt, pnn)
		}
	}
}

// Fencing says which nodes are being fenced and why they are not yet.
func (r *Recoverd) Fencing() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := ""
	for pnn, fs := range r.fencing {
		if fs.done {
			continue
		}
		s := fmt.Sprintf("node %d", pnn)
		if fs.running {
			s += " (fence running)"
		}
		if fs.lastErr != "" {
			s += fmt.Sprintf(" (failed %d times: %s)", fs.tries, fs.lastErr)
		}
		if out != "" {
			out += "; "
		}
		out += s
	}
	return out
}
