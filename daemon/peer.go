package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/ctdb-go/ctdb-go/daemon/control"
	"github.com/ctdb-go/ctdb-go/daemon/member"
	"github.com/ctdb-go/ctdb-go/recoverd"
)

// The node-to-node protocol, in one place. Every message one ctdbd sends
// another is one of these kinds, carried by member (sealed, bound to its
// sender, never replayed) as JSON. A request is sent reliably and answered
// (or fails); a one-way message is either reliable (a nil error means the
// peer took it) or best effort (one UDP datagram, which may be lost).
//
//	kind            direction        mode         payload → answer
//	lease           node → leader    best effort  recoverd.LeaseRequest
//	grant           leader → node    best effort  recoverd.LeaseGrant
//	state           node → leader    reliable     recoverd.NodeState
//	take, release   leader → node    request      recoverd.Order → recoverd.OrderReply
//	ipreallocated   leader → node    reliable     (none)
//	trigger         node → leader    reliable     recoverd.Trigger
//	held            node → node      request      (none) → []netip.Addr
//	leader-status   node → leader    request      (none) → control.Status
//	moveip          node → leader    request      moveIP → (none)
//	reallocate      node → leader    request      reallocate → control.Plan
//	ban             leader → node    request      banOrder → (none)
//	control         node → node      request      control.Request → control.Response
//
// recoverd sends and receives its kinds (the first six) through the
// transport adapter in cluster.go; the rest are the daemon's own. The
// control socket serves the CLI only: none of these reach it.
const (
	kindHeld         = "held"
	kindLeaderStatus = "leader-status"
	kindMoveIP       = "moveip"
	kindReallocate   = "reallocate"
	kindBan          = "ban"
	kindControl      = "control"
)

// banOrder bans the node it is sent to (the leader, for a node whose
// takes or releases keep failing).
type banOrder struct {
	Seconds int `json:"seconds"`
}

// moveIP asks the leader to move an address (`ctdb moveip`).
type moveIP struct {
	Addr netip.Addr `json:"addr"`
	PNN  int        `json:"pnn"`
}

// reallocate asks the leader for a takeover run (`ctdb ipreallocate`) or
// its plan (DryRun). State, when set, is the asking node's state report:
// the leader records it first, so the run sees a change the node just
// made (disable, stop, reloadips) without waiting for the report to
// arrive on its own.
type reallocate struct {
	DryRun bool                `json:"dry_run,omitempty"`
	State  *recoverd.NodeState `json:"state,omitempty"`
}

// none is the payload or answer of a message that carries nothing.
type none struct{}

// handle registers fn for requests (and one-way messages) of kind:
// payloads and answers are JSON of the types given.
func handle[Req, Rep any](m *member.Member, kind string, fn func(ctx context.Context, from int, req Req) (Rep, error)) {
	m.Handle(kind, func(ctx context.Context, from int, b []byte) ([]byte, error) {
		var req Req
		if len(b) > 0 {
			if err := json.Unmarshal(b, &req); err != nil {
				return nil, fmt.Errorf("decoding %s: %w", kind, err)
			}
		}
		rep, err := fn(ctx, from, req)
		if err != nil {
			return nil, err
		}
		return json.Marshal(rep)
	})
}

// call sends a request of kind to pnn and decodes its answer.
func call[Req, Rep any](ctx context.Context, m *member.Member, pnn int, kind string, req Req) (Rep, error) {
	var rep Rep
	b, err := json.Marshal(req)
	if err != nil {
		return rep, err
	}
	out, err := m.Request(ctx, pnn, kind, b)
	if err != nil {
		return rep, err
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		return rep, fmt.Errorf("decoding %s answer from node %d: %w", kind, pnn, err)
	}
	return rep, nil
}

// send sends a one-way message of kind to pnn.
func send[Req any](m *member.Member, pnn int, kind string, req Req, reliable bool) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	return m.Send(pnn, kind, b, reliable)
}

// onReallocate serves a reallocate request on the leader.
func (d *Daemon) onReallocate(ctx context.Context, r reallocate) (control.Plan, error) {
	if !d.rec.IsLeader() {
		return control.Plan{}, recoverd.ErrNotLeader
	}
	if r.State != nil {
		d.rec.UpdateState(*r.State)
	}
	if r.DryRun {
		return d.rec.DryRun()
	}
	return control.Plan{}, d.rec.RunNow(ctx)
}

// toLeader sends a request to the leader, or serves it here when this
// node leads.
func toLeader[Req, Rep any](ctx context.Context, d *Daemon, kind string, req Req, local func(context.Context, Req) (Rep, error)) (Rep, error) {
	var rep Rep
	leader, _ := d.rec.Leader()
	if leader < 0 {
		return rep, fmt.Errorf("no leader (recovery master) elected")
	}
	if leader == d.pnn {
		return local(ctx, req)
	}
	return call[Req, Rep](ctx, d.mem, leader, kind, req)
}

// reallocateNow asks the leader for a takeover run and waits for it. With
// report, this node's current state goes with the request, so the run
// sees what just changed here.
func (d *Daemon) reallocateNow(ctx context.Context, dry, report bool) (control.Plan, error) {
	r := reallocate{DryRun: dry}
	if report {
		st := d.freshState()
		r.State = &st
	}
	return toLeader(ctx, d, kindReallocate, r, d.onReallocate)
}

// freshState is this node's state report with a new version, so the
// leader takes it over any report it has.
func (d *Daemon) freshState() recoverd.NodeState {
	st := d.nodeState()
	d.mu.Lock()
	d.version++
	st.Version = d.version
	d.mu.Unlock()
	return st
}
