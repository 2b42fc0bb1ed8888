package daemon

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/control"
	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
	"github.com/ctdb-go/ctdb-go/recoverd"
)

func (d *Daemon) status(ctx context.Context) control.Status {
	peers := map[int]recoverd.Peer{}
	for _, p := range (transport{d}).Peers() {
		peers[p.PNN] = p
	}
	leader, gen := d.rec.Leader()
	st := control.Status{PNN: d.pnn, Generation: uint32(gen), Leader: leader}
	partial := false
	for _, up := range d.table.Snapshot().Links {
		if !up {
			partial = true
		}
	}
	d.mu.Lock()
	self := d.flagsLocked()
	d.mu.Unlock()
	for _, n := range d.conf.Nodes {
		ns := control.NodeStatus{PNN: n.PNN, Address: n.Addr, ThisNode: n.PNN == d.pnn}
		switch p, ok := peers[n.PNN]; {
		case n.Deleted:
			ns.Flags = nodeflag.Deleted
		case n.PNN == d.pnn:
			ns.Flags = self
			ns.PartiallyOnline = partial && self == 0
		case !ok || !p.Alive:
			ns.Flags = nodeflag.Disconnected | nodeflag.Unhealthy
		default:
			ns.Flags = p.Flags
		}
		st.Nodes = append(st.Nodes, ns)
	}
	if leader < 0 {
		st.RecoveryMode = 1
	}
	// The leader knows each node's flags from its state reports, which
	// are what it acts on; memberlist's meta can lag a gossip round or
	// more. Prefer the leader's view for the other live nodes.
	var ls control.Status
	if leader == d.pnn {
		ls = d.leaderStatus()
	} else if leader >= 0 {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var err error
		if ls, err = call[none, control.Status](cctx, d.mem, leader, kindLeaderStatus, none{}); err != nil {
			ls = control.Status{}
		}
	}
	st.DuplicatesResolved, st.Fencing = ls.DuplicatesResolved, ls.Fencing
	for i, n := range st.Nodes {
		if n.ThisNode || n.Flags&(nodeflag.Disconnected|nodeflag.Deleted) != 0 {
			continue
		}
		for _, l := range ls.Nodes {
			if l.PNN == n.PNN {
				st.Nodes[i].Flags = l.Flags
			}
		}
	}
	return st
}

// ips lists public addresses with their holders. Holders come from every
// connected node's own report of what it holds, so the answer is the truth
// of the moment, not a belief.
func (d *Daemon) ips(ctx context.Context, all bool) control.IPs {
	holders := d.clusterHolders(ctx)
	out := control.IPs{PNN: d.pnn, All: all}
	sn := d.table.Snapshot()
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := map[netip.Addr]bool{}
	add := func(p netip.Prefix, configured []string) {
		a := p.Addr()
		if seen[a] {
			return
		}
		seen[a] = true
		ip := control.PublicIP{Addr: a, Bits: p.Bits(), PNN: -1, Configured: configured}
		if h, ok := holders[a]; ok {
			ip.PNN = h
		}
		if ifc, ok := sn.Held[a]; ok {
			ip.Active = ifc
		}
		for _, ifc := range configured {
			if sn.Links[ifc] {
				ip.Available = append(ip.Available, ifc)
			}
		}
		ip.ProbeAnswer = sn.Probed[a]
		out.IPs = append(out.IPs, ip)
	}
	for _, pa := range d.pubs {
		add(pa.Prefix, pa.Ifaces)
	}
	if all {
		for a := range holders {
			if !seen[a] {
				add(netip.PrefixFrom(a, a.BitLen()), nil)
			}
		}
	}
	slices.SortFunc(out.IPs, func(x, y control.PublicIP) int { return x.Addr.Compare(y.Addr) })
	return out
}

// clusterHolders asks every connected node what it holds.
func (d *Daemon) clusterHolders(ctx context.Context) map[netip.Addr]int {
	out := map[netip.Addr]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range (transport{d}).Peers() {
		if !p.Alive {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			var held []netip.Addr
			if p.PNN == d.pnn {
				held = d.nodeState().Held
			} else {
				var err error
				if held, err = call[none, []netip.Addr](cctx, d.mem, p.PNN, kindHeld, none{}); err != nil {
					return
				}
			}
			mu.Lock()
			for _, a := range held {
				if cur, ok := out[a]; !ok || p.PNN < cur {
					out[a] = p.PNN
				}
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func (d *Daemon) ifaces() []control.Iface {
	sn := d.table.Snapshot()
	d.mu.Lock()
	defer d.mu.Unlock()
	refs := map[string]int{}
	for _, ifc := range sn.Held {
		refs[ifc]++
	}
	var out []control.Iface
	ifcs := map[string]bool{}
	for _, pa := range d.pubs {
		for _, ifc := range pa.Ifaces {
			ifcs[ifc] = true
		}
	}
	for ifc := range ifcs {
		out = append(out, control.Iface{Name: ifc, LinkUp: sn.Links[ifc], References: refs[ifc]})
	}
	slices.SortFunc(out, func(a, b control.Iface) int { return strings.Compare(a.Name, b.Name) })
	return out
}
