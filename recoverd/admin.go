package recoverd

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

// RunNow starts a takeover run and waits until its addresses have moved.
func (r *Recoverd) RunNow(ctx context.Context) error {
	w := make(chan struct{})
	r.mu.Lock()
	if !r.leader {
		r.mu.Unlock()
		return ErrNotLeader
	}
	r.waiters = append(r.waiters, w)
	r.runAt = r.now()
	r.mu.Unlock()
	r.wake()
	select {
	case <-w:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// DryRun reports what a takeover run would move now, moving nothing.
func (r *Recoverd) DryRun() (control.Plan, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.leader {
		return control.Plan{}, ErrNotLeader
	}
	// Only the moves: the fences and state updates Decide asks for are
	// left to the next real run.
	d := Decide(r.viewLocked(), r.now())
	var out control.Plan
	for _, o := range d.Ops {
		from := -1
		if len(o.Release) > 0 {
			from = o.Release[0]
		}
		out.Moves = append(out.Moves, control.Move{Addr: o.Addr, From: from, To: o.Take})
	}
	return out, nil
}

// moveWish is one pending `ctdb moveip`: where the address is to go,
// whether an op for it is under way, and where its answer goes (buffered:
// answered once, without waiting).
type moveWish struct {
	to   int
	op   bool
	done chan error
}

// MoveIP moves one address to a node now (`ctdb moveip`) and waits until
// it is there. It does not move the address itself: it records the wish
// (View.Prefer) and asks the loop for a takeover run, so the move passes the same
// checks as any other — every node that may hold the address (by its
// report, an acknowledged order since, or a take with an unknown result)
// releases it first, and an unreachable or silent holder blocks it until
// its lease has run out or it has been fenced. As in CTDB, a later run
// may move the address back unless NoIPFailback is set.
func (r *Recoverd) MoveIP(ctx context.Context, a netip.Addr, to int) error {
	r.mu.Lock()
	if !r.leader {
		r.mu.Unlock()
		return ErrNotLeader
	}
	if r.cfg.FailoverDisabled {
		r.mu.Unlock()
		return errors.New("failover is disabled ([failover] disabled): addresses are not moved")
	}
	st, ok := r.states[to]
	if !ok || !slices.ContainsFunc(st.Known, func(k PublicAddr) bool { return k.Prefix.Addr() == a }) {
		r.mu.Unlock()
		return fmt.Errorf("node %d cannot host IP address %s", to, a)
	}
	if !st.Flags.CanHost() || !r.peers[to].Alive {
		r.mu.Unlock()
		return fmt.Errorf("node %d cannot host addresses now (%v)", to, st.Flags)
	}
	if r.inflight[a] || r.moves[a] != nil {
		r.mu.Unlock()
		return fmt.Errorf("address %s is moving already; try again", a)
	}
	w := &moveWish{to: to, done: make(chan error, 1)}
	r.moves[a] = w
	r.runAt = r.now()
	r.mu.Unlock()
	r.wake()
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		r.mu.Lock()
		if r.moves[a] == w {
			delete(r.moves, a)
		}
		r.mu.Unlock()
		return ctx.Err()
	}
}

// settleMovesLocked answers the moveip wishes decision d settles: kept on
// their node, blocked, or not honoured; a wish with an op is answered when
// the op ends (launch).
func (r *Recoverd) settleMovesLocked(d Decision) {
	ops := make(map[netip.Addr]Op, len(d.Ops))
	for _, o := range d.Ops {
		ops[o.Addr] = o
	}
	for a, w := range r.moves {
		if w.op {
			continue
		}
		kept, isKept := d.Keep[a]
		o, hasOp := ops[a]
		switch {
		case hasOp && (o.Take == w.to || o.Take < 0 && isKept && kept == w.to):
			w.op = true
		case isKept && kept == w.to:
			r.answerMoveLocked(a, nil)
		case d.Blocked[a] != "":
			r.answerMoveLocked(a, fmt.Errorf("%s cannot move to node %d now: %s", a, w.to, d.Blocked[a]))
		case r.inflight[a]:
			// Moving since an earlier run: decided again after it.
		default:
			r.answerMoveLocked(a, fmt.Errorf("node %d cannot host %s now", w.to, a))
		}
	}
}

// answerMoveLocked answers the moveip wish for a, if any, with err.
func (r *Recoverd) answerMoveLocked(a netip.Addr, err error) {
	if w := r.moves[a]; w != nil {
		w.done <- err
		delete(r.moves, a)
	}
}
