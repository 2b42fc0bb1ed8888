package recoverd

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"
)

// fenceRetry is the pause between failed fence attempts.
const fenceRetry = 2 * time.Second

// fence runs the fence step for a node and records the result, if the
// node has not been seen alive since: loss is the loss it was started for.
func (r *Recoverd) fence(ctx context.Context, pnn int, loss uint64) {
	timeout := r.cfg.Tunables.FenceTimeout()
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r.log.Warn("fencing node", "pnn", pnn)
	err := r.cfg.Fence(fctx, pnn)
	r.mu.Lock()
	fs, ok := r.fencing[pnn]
	if !ok || fs.Loss != loss || r.loss[pnn] != loss {
		// The node came back meanwhile (forgetFencingLocked), and may
		// have been lost again: this result is not for that loss.
		r.mu.Unlock()
		r.log.Info("fence result for an earlier loss of the node ignored", "pnn", pnn, "err", err)
		return
	}
	fs.Running = false
	if err != nil {
		fs.LastErr = err.Error()
		fs.NextTry = r.now().Add(fenceRetry)
		r.fencing[pnn] = fs
		if fs.NextTry.Before(r.runAt) {
			r.runAt = fs.NextTry // the retry is decided then
		}
		r.mu.Unlock()
		r.log.Error("fencing failed; the node's addresses stay down", "pnn", pnn, "err", err)
		return
	}
	fs.Done = true
	fs.LastErr = ""
	r.fencing[pnn] = fs
	r.runAt = r.now()
	r.mu.Unlock()
	r.log.Warn("node fenced; moving its addresses", "pnn", pnn)
	r.wake()
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

// Fencing says which nodes are being fenced and why they are not yet,
// by PNN.
func (r *Recoverd) Fencing() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := ""
	for _, pnn := range slices.Sorted(maps.Keys(r.fencing)) {
		fs := r.fencing[pnn]
		if fs.Done {
			continue
		}
		s := fmt.Sprintf("node %d", pnn)
		if fs.Running {
			s += " (fence running)"
		}
		if fs.LastErr != "" {
			s += fmt.Sprintf(" (failed %d times: %s)", fs.Tries, fs.LastErr)
		}
		if out != "" {
			out += "; "
		}
		out += s
	}
	return out
}
