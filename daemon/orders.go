package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"

	"github.com/ctdb-go/ctdb-go/daemon/addrtable"
	"github.com/ctdb-go/ctdb-go/recoverd"
)

// onOrder serves the leader's take and release orders: it checks that the
// order may be obeyed, hands each address to the address table, and
// reports per address.
func (d *Daemon) onOrder(kind string) func(context.Context, int, []byte) ([]byte, error) {
	return func(ctx context.Context, from int, b []byte) ([]byte, error) {
		var o recoverd.Order
		if err := json.Unmarshal(b, &o); err != nil {
			return nil, err
		}
		rep := recoverd.OrderReply{Errors: make([]string, len(o.Addrs)), Faults: make([]bool, len(o.Addrs))}
		if why := d.refuseOrder(from, o); why != "" {
			d.log.Warn("refusing order", "from", from, "kind", kind, "err", why)
			for i := range rep.Errors {
				rep.Errors[i] = why
			}
			rep.Generation = d.rec.HighestGeneration()
			return json.Marshal(rep)
		}
		rep.Generation = d.rec.HighestGeneration()
		for i, a := range o.Addrs {
			var err error
			if kind == recoverd.KindTake {
				if err = d.take(ctx, a); err != nil {
					rep.ProbeAnswers = append(rep.ProbeAnswers, d.table.Snapshot().Probed[a])
				}
			} else {
				nh := -1
				if i < len(o.NewHolder) {
					nh = o.NewHolder[i]
				}
				err = d.table.Release(ctx, a, nh)
			}
			if err != nil {
				rep.Errors[i] = err.Error()
				rep.Faults[i] = addrtable.IsFault(err)
			}
		}
		// Reports from now on carry a version at least this one, so the
		// leader can tell them from reports older than this order.
		d.mu.Lock()
		d.version++
		rep.Boot, rep.Version = d.boot, d.version
		d.mu.Unlock()
		return json.Marshal(rep)
	}
}

// refuseOrder says why an order must not be obeyed, "" if it may: only
// the leader that sent it, in a generation no older than any this node
// has seen (persisted before it is obeyed).
func (d *Daemon) refuseOrder(from int, o recoverd.Order) string {
	if o.Leader != from {
		return fmt.Sprintf("order from node %d in the name of node %d", from, o.Leader)
	}
	if err := d.rec.ObserveGeneration(o.Generation); err != nil {
		return err.Error()
	}
	if cur := d.rec.HighestGeneration(); o.Generation < cur {
		return fmt.Sprintf("order from generation %d, but generation %d is current", o.Generation, cur)
	}
	return ""
}

// take takes an address if this node may host addresses now.
func (d *Daemon) take(ctx context.Context, a netip.Addr) error {
	d.mu.Lock()
	flags, rs := d.flagsLocked(), d.runstate
	d.mu.Unlock()
	if !flags.CanHost() || rs != recoverd.RunStateRunning {
		return fmt.Errorf("node %d cannot host addresses (%s, %s)", d.pnn, flags, rs)
	}
	return d.table.Take(ctx, a)
}

// nodeState is the report sent to the leader.
func (d *Daemon) nodeState() recoverd.NodeState {
	sn := d.table.Snapshot()
	d.mu.Lock()
	defer d.mu.Unlock()
	st := recoverd.NodeState{
		PNN: d.pnn, Boot: d.boot, Version: d.version,
		Flags: d.flagsLocked(), RunState: d.runstate,
	}
	for _, pa := range d.pubs {
		st.Known = append(st.Known, recoverd.PublicAddr{Prefix: pa.Prefix, Ifaces: pa.Ifaces})
		for _, ifc := range pa.Ifaces {
			if sn.Links[ifc] {
				st.Available = append(st.Available, pa.Prefix.Addr())
				break
			}
		}
	}
	for a := range sn.Held {
		st.Held = append(st.Held, a)
	}
	for a := range sn.Foreign {
		st.Held = append(st.Held, a)
	}
	slices.SortFunc(st.Held, func(a, b netip.Addr) int { return a.Compare(b) })
	return st
}
