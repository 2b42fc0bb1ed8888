package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/config"
	"github.com/ctdb-go/ctdb-go/daemon/control"
	"github.com/ctdb-go/ctdb-go/daemon/lease"
	"github.com/ctdb-go/ctdb-go/daemon/member"
	"github.com/ctdb-go/ctdb-go/daemon/netif"
	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
	"github.com/ctdb-go/ctdb-go/recoverd"
	"github.com/ctdb-go/ctdb-go/recoverd/clusterlock"
)

func (d *Daemon) setupCluster() error {
	port := d.conf.Conf.Cluster.GossipPort
	var self netip.Addr
	members := map[int]netip.AddrPort{}
	var nodes, deleted []int
	for _, n := range d.conf.Nodes {
		if n.Deleted {
			deleted = append(deleted, n.PNN)
			continue
		}
		nodes = append(nodes, n.PNN)
		members[n.PNN] = netip.AddrPortFrom(n.Addr, uint16(port))
		if n.PNN == d.pnn {
			self = n.Addr
		}
	}
	keys := d.conf.Conf.Cluster.GossipKeys
	var key []byte
	if len(keys) > 0 {
		key = keys[0]
	}
	var err error
	d.mem, err = member.New(member.Config{
		Cluster:        d.conf.Conf.Cluster.Name,
		PNN:            d.pnn,
		Bind:           netip.AddrPortFrom(self, uint16(port)),
		Nodes:          members,
		Key:            key,
		Insecure:       d.conf.Conf.Cluster.InsecureGossip,
		ProbeInterval:  d.tun.ProbeInterval(),
		ProbeTimeout:   d.tun.ProbeTimeout(),
		SuspicionMult:  d.tun.SuspicionMult(),
		GossipInterval: d.tun.GossipInterval(),
		Transport:      d.cfg.MemberTransport,
		Logger:         d.cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("starting membership: %w", err)
	}
	if len(keys) > 1 {
		// Keys being rotated: seal with the first, accept them all.
		if err := d.mem.SetKeys(keys[0], keys[1:]...); err != nil {
			return fmt.Errorf("installing gossip keys: %w", err)
		}
	}
	var lock recoverd.Lock
	if spec := d.conf.Conf.Cluster.ClusterLock; spec != "" {
		if exe, err := os.Executable(); err == nil && d.cfg.LockHelper {
			spec = clusterlock.SelfHelperSpec(spec, exe)
		}
		l, err := clusterlock.New(spec, clusterlock.Options{PNN: d.pnn, Logger: d.cfg.Logger})
		if err != nil {
			return fmt.Errorf("cluster lock %q: %w", spec, err)
		}
		lock = func(ctx context.Context) (<-chan struct{}, func() error, error) {
			h, err := l.TryLock(ctx)
			if err != nil {
				return nil, nil, err
			}
			return h.Lost(), h.Release, nil
		}
	} else {
		d.log.Warn("no cluster lock configured: leadership relies on quorum alone")
	}
	d.rec, err = recoverd.New(recoverd.Config{
		PNN:              d.pnn,
		Nodes:            nodes,
		Deleted:          deleted,
		Lock:             lock,
		Quorum:           d.conf.Conf.Cluster.Quorum == config.QuorumMajority,
		FailoverDisabled: d.conf.Conf.Failover.Disabled,
		Tunables:         d.tun,
		Transport:        transport{d},
		Store:            d.store,
		Ban:              d.banRemote,
		Fence:            d.fenceFunc(),
		Allocate:         recoverd.IPAlloc,
		Logger:           d.cfg.Logger,
	})
	if err != nil {
		return err
	}
	d.lease, err = lease.New(lease.Config{
		PNN:           d.pnn,
		Leader:        d.rec,
		Send:          d.sendLeaseRequest,
		LeaseTime:     d.tun.LeaseTime,
		RenewInterval: d.tun.LeaseRenewInterval,
		Report: func() (int64, uint64) {
			d.mu.Lock()
			defer d.mu.Unlock()
			return d.boot, d.version
		},
		WantState:  d.forceReport,
		SuspendGap: netif.SuspendGap,
		Logger:     d.cfg.Logger,
	})
	if err != nil {
		return err
	}
	handle(d.mem, recoverd.KindLease, d.onLease)
	handle(d.mem, recoverd.KindGrant, func(_ context.Context, from int, g recoverd.LeaseGrant) (none, error) {
		d.lease.Grant(from, g)
		return none{}, nil
	})
	handle(d.mem, recoverd.KindState, d.onState)
	d.mem.Handle(recoverd.KindTake, d.onOrder(recoverd.KindTake))
	d.mem.Handle(recoverd.KindRelease, d.onOrder(recoverd.KindRelease))
	d.mem.Handle(recoverd.KindIPReallocated, func(ctx context.Context, from int, _ []byte) ([]byte, error) {
		if leader, _ := d.rec.Leader(); from != leader {
			return nil, fmt.Errorf("ipreallocated from node %d, which does not lead", from)
		}
		d.ipreallocated(ctx)
		return nil, nil
	})
	handle(d.mem, kindBan, d.onBan)
	handle(d.mem, recoverd.KindTrigger, func(_ context.Context, from int, t recoverd.Trigger) (none, error) {
		d.rec.Trigger(fmt.Sprintf("node %d: %s", from, t.Reason))
		return none{}, nil
	})
	d.setupPeers()
	return nil
}

// onLease answers a lease request on the leader. It speaks for its
// sender only: the PNN inside must be the node the message came from
// (member binds that to the sender's address), or a node could renew for
// another and, say, fake the majority a fence needs.
func (d *Daemon) onLease(_ context.Context, from int, req recoverd.LeaseRequest) (none, error) {
	if req.PNN != from {
		return none{}, fmt.Errorf("lease request from node %d for node %d", from, req.PNN)
	}
	if g, ok := d.rec.HandleLease(req); ok {
		return none{}, send(d.mem, from, recoverd.KindGrant, g, false)
	}
	return none{}, nil
}

// onState records a node's state report on the leader; as onLease, only
// from the node it describes (a node reporting for another could make
// the leader give away addresses that node still holds).
func (d *Daemon) onState(_ context.Context, from int, st recoverd.NodeState) (none, error) {
	if st.PNN != from {
		return none{}, fmt.Errorf("state report from node %d for node %d", from, st.PNN)
	}
	d.rec.UpdateState(st)
	return none{}, nil
}

// sendLeaseRequest sends this node's lease request to its leader; this
// node's own recoverd answers it at once when it leads.
func (d *Daemon) sendLeaseRequest(leader int, req recoverd.LeaseRequest) error {
	if leader == d.pnn {
		if g, ok := d.rec.HandleLease(req); ok {
			d.lease.Grant(d.pnn, g)
		}
		return nil
	}
	return send(d.mem, leader, recoverd.KindLease, req, false)
}

// ipreallocated runs the ipreallocated event after a takeover run.
func (d *Daemon) ipreallocated(ctx context.Context) {
	d.mu.Lock()
	d.lastRecovery = time.Now()
	d.mu.Unlock()
	start := time.Now()
	if r := d.ev.Run(ctx, "ipreallocated"); !r.OK() {
		d.log.Warn("ipreallocated event failed", "err", describe(r))
	}
	d.mu.Lock()
	d.lastRecTook = time.Since(start)
	d.mu.Unlock()
}

// reportLoop tells the leader this node's state whenever it changes, and
// keeps the memberlist meta (flags, leader, generation) current.
func (d *Daemon) reportLoop(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastMeta member.Meta
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.changed:
		case <-tick.C:
		}
		leader, _ := d.rec.Leader()
		gen := d.rec.HighestGeneration()
		d.expireBan()
		st := d.nodeState()
		d.mu.Lock()
		fp := fingerprint(st)
		if fp != d.lastTold {
			d.version++
			st.Version = d.version
		}
		flags := st.Flags
		d.mu.Unlock()
		meta := member.Meta{PNN: d.pnn, Flags: flags, Generation: gen, Leader: -1}
		if leader == d.pnn {
			meta.Leader = d.pnn
		}
		if meta != lastMeta {
			if err := d.mem.SetMeta(meta); err != nil {
				d.log.Debug("updating member meta", "err", err)
			} else {
				lastMeta = meta
			}
		}
		if fp != d.lastTold && leader >= 0 {
			if d.sendState(leader, st) {
				d.mu.Lock()
				d.lastTold = fp
				d.mu.Unlock()
			}
			// During a takeover run every address taken or released is a
			// change; one report per reportGap carries them all. A change
			// of flags or health does not wait.
			gap := time.NewTimer(reportGap)
			select {
			case <-ctx.Done():
				gap.Stop()
				return
			case <-gap.C:
			case <-d.urgent:
				gap.Stop()
			}
		}
	}
}

// reportGap is the least time between two state reports to the leader.
const reportGap = 100 * time.Millisecond

// forceReport sends the full state to the leader at the next tick.
func (d *Daemon) forceReport() {
	d.mu.Lock()
	d.lastTold = ""
	d.mu.Unlock()
	d.noteChange()
}

func (d *Daemon) sendState(leader int, st recoverd.NodeState) bool {
	if leader == d.pnn {
		d.rec.UpdateState(st)
		return true
	}
	if err := send(d.mem, leader, recoverd.KindState, st, true); err != nil {
		d.log.Debug("sending state to leader", "leader", leader, "err", err)
		return false
	}
	return true
}

func fingerprint(st recoverd.NodeState) string {
	st.Version = 0
	b, _ := json.Marshal(st)
	return string(b)
}

// banRemote is the leader's ban of a node whose takes or releases keep
// failing: here directly, elsewhere through a ban order. Neither waits
// for a takeover run (the leader is in the middle of one).
func (d *Daemon) banRemote(ctx context.Context, pnn int, period time.Duration) error {
	if pnn == d.pnn {
		d.changeAdmin(ctx, nodeflag.Banned, true, "banned", period)
		return nil
	}
	_, err := call[banOrder, none](ctx, d.mem, pnn, kindBan, banOrder{Seconds: int(period.Seconds())})
	return err
}

// onBan serves the leader's ban order. It does not wait for the
// takeover run that follows: the leader is in the middle of one.
func (d *Daemon) onBan(ctx context.Context, from int, o banOrder) (none, error) {
	if leader, _ := d.rec.Leader(); from != leader {
		return none{}, fmt.Errorf("ban from node %d, which does not lead", from)
	}
	if o.Seconds <= 0 {
		return none{}, fmt.Errorf("ban of %d s", o.Seconds)
	}
	d.log.Warn("banned by the leader", "leader", from, "seconds", o.Seconds)
	d.changeAdmin(ctx, nodeflag.Banned, true, "banned", time.Duration(o.Seconds)*time.Second)
	return none{}, nil
}

// transport adapts member to recoverd, delivering to this node locally.
type transport struct{ d *Daemon }

func (t transport) Peers() []recoverd.Peer {
	var out []recoverd.Peer
	for _, p := range t.d.mem.Members() {
		out = append(out, recoverd.Peer{PNN: p.PNN, Alive: p.Alive, Flags: p.Meta.Flags,
			Leader: p.Meta.Leader, Generation: p.Meta.Generation})
	}
	if !slices.ContainsFunc(out, func(p recoverd.Peer) bool { return p.PNN == t.d.pnn }) {
		t.d.mu.Lock()
		f := t.d.flagsLocked()
		t.d.mu.Unlock()
		out = append(out, recoverd.Peer{PNN: t.d.pnn, Alive: true, Flags: f, Leader: -1})
	}
	return out
}

func (t transport) Request(ctx context.Context, pnn int, kind string, payload []byte) ([]byte, error) {
	if pnn == t.d.pnn {
		switch kind {
		case recoverd.KindTake, recoverd.KindRelease:
			return t.d.onOrder(kind)(ctx, pnn, payload)
		}
		return nil, fmt.Errorf("local request of kind %q", kind)
	}
	return t.d.mem.Request(ctx, pnn, kind, payload)
}

func (t transport) Send(pnn int, kind string, payload []byte, reliable bool) error {
	if pnn == t.d.pnn {
		if kind == recoverd.KindIPReallocated {
			go t.d.ipreallocated(context.Background())
		}
		return nil
	}
	return t.d.mem.Send(pnn, kind, payload, reliable)
}

// leaderStatus is the leader's view: counters, fencing, and each reporting
// node's flags.
func (d *Daemon) leaderStatus() control.Status {
	st := control.Status{DuplicatesResolved: d.rec.Status().DuplicatesResolved, Fencing: d.rec.Fencing()}
	for pnn, ns := range d.rec.States() {
		st.Nodes = append(st.Nodes, control.NodeStatus{PNN: pnn, Flags: ns.Flags})
	}
	return st
}

// setupPeers registers the handlers of the daemon's own kinds.
func (d *Daemon) setupPeers() {
	handle(d.mem, kindHeld, func(context.Context, int, none) ([]netip.Addr, error) {
		return d.nodeState().Held, nil
	})
	handle(d.mem, kindLeaderStatus, func(context.Context, int, none) (control.Status, error) {
		if !d.rec.IsLeader() {
			return control.Status{}, recoverd.ErrNotLeader
		}
		return d.leaderStatus(), nil
	})
	handle(d.mem, kindMoveIP, func(ctx context.Context, _ int, m moveIP) (none, error) {
		return none{}, d.rec.MoveIP(ctx, m.Addr, m.PNN)
	})
	handle(d.mem, kindReallocate, func(ctx context.Context, _ int, r reallocate) (control.Plan, error) {
		return d.onReallocate(ctx, r)
	})
}
