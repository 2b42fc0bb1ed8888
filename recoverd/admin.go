package recoverd

import (
	"context"
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
	select {
	case r.kick <- struct{}{}:
	default:
	}
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

// MoveIP moves one address to a node now (`ctdb moveip`).
func (r *Recoverd) MoveIP(ctx context.Context, a netip.Addr, to int) error {
	r.mu.Lock()
	if !r.leader {
		r.mu.Unlock()
		return ErrNotLeader
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
	if r.inflight[a] {
		r.mu.Unlock()
		return fmt.Errorf("address %s is moving already; try again", a)
	}
	var release []int
	holds := false
	for pnn, s := range r.states {
		if slices.Contains(s.Held, a) {
			if pnn == to {
				holds = true
			} else {
				release = append(release, pnn)
			}
		}
	}
	slices.Sort(release)
	o := Op{Addr: a, Release: release, Take: to}
	if holds {
		o.Take = -1
	}
	r.inflight[a] = true
	gen := r.gen
	r.mu.Unlock()
	if !r.execute(ctx, o, gen) {
		return fmt.Errorf("moving %s to node %d failed; see the leader's log", a, to)
	}
	r.mu.Lock()
	r.assigned[a] = to
	r.mu.Unlock()
	return nil
}
