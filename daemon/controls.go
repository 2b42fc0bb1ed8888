package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/config"
	"github.com/ctdb-go/ctdb-go/daemon/control"
	"github.com/ctdb-go/ctdb-go/daemon/eventscript"
	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
	"github.com/ctdb-go/ctdb-go/recoverd"
)

func ok(v any) control.Response {
	if v == nil {
		return control.Response{}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fail(1, "encoding answer: %v", err)
	}
	return control.Response{Data: b}
}

func fail(code int, format string, args ...any) control.Response {
	return control.Response{ExitCode: code, Error: fmt.Sprintf(format, args...)}
}

// Handle serves one control (control.Handler).
func (d *Daemon) Handle(ctx context.Context, req control.Request) control.Response {
	if req.Target != control.ThisNode && req.Target != d.pnn {
		if !slices.ContainsFunc(d.conf.Nodes, func(n config.Node) bool { return n.PNN == req.Target && !n.Deleted }) {
			return fail(1, "node %d does not exist", req.Target)
		}
		return d.forward(ctx, req)
	}
	a := req.Args
	switch req.Command {
	case control.CmdPNN:
		return ok(control.PNN{PNN: d.pnn})
	case control.CmdStatus, control.CmdNodeStatus:
		return ok(d.status(ctx))
	case control.CmdLeader:
		l, _ := d.rec.Leader()
		return ok(control.Leader{PNN: l})
	case control.CmdListNodes:
		var out []control.NodeAddr
		for _, n := range d.conf.Nodes {
			out = append(out, control.NodeAddr{PNN: n.PNN, Address: n.Addr, Deleted: n.Deleted})
		}
		return ok(out)
	case control.CmdIP:
		all := slices.Contains(a, "all")
		return ok(d.ips(ctx, all))
	case control.CmdIfaces:
		return ok(d.ifaces())
	case control.CmdUptime:
		d.mu.Lock()
		defer d.mu.Unlock()
		return ok(control.Uptime{PNN: d.pnn, Now: time.Now(), Started: d.started,
			LastRecovery: d.lastRecovery, LastRecoveryDuration: d.lastRecTook})
	case control.CmdListVars:
		return ok(d.tun.List())
	case control.CmdGetVar:
		if len(a) != 1 {
			return fail(2, "usage: getvar NAME")
		}
		v, found := d.tun.Get(a[0])
		if !found {
			return fail(1, "No such tunable %s", a[0])
		}
		return ok(control.Tunable{Name: canonicalName(d.tun.List(), a[0]), Value: v})
	case control.CmdSetVar:
		if len(a) != 2 {
			return fail(2, "usage: setvar NAME VALUE")
		}
		v, err := strconv.ParseUint(a[1], 10, 32)
		if err != nil {
			return fail(1, "invalid value %q for %s: want a non-negative integer", a[1], a[0])
		}
		if _, found := d.tun.Get(a[0]); found && !config.TunableLive(a[0]) {
			return fail(1, "%s is read when ctdbd starts: set it in %s and restart ctdbd",
				canonicalName(d.tun.List(), a[0]), filepath.Join(d.cfg.ConfigDir, "ctdb.tunables"))
		}
		warn, err := d.tun.Set(a[0], uint32(v))
		if err != nil {
			return fail(1, "%v", err)
		}
		d.applyTunable(a[0])
		return control.Response{Notice: warn}
	case control.CmdDisable:
		return d.setAdmin(ctx, nodeflag.PermanentlyDisabled, true, "disabled", 0)
	case control.CmdEnable:
		return d.setAdmin(ctx, nodeflag.PermanentlyDisabled, false, "disabled", 0)
	case control.CmdStop:
		return d.setAdmin(ctx, nodeflag.Stopped, true, "stopped", 0)
	case control.CmdContinue:
		return d.setAdmin(ctx, nodeflag.Stopped, false, "stopped", 0)
	case control.CmdBan:
		if len(a) != 1 {
			return fail(2, "usage: ban BANTIME")
		}
		secs, err := strconv.ParseUint(a[0], 10, 32)
		if err != nil || secs == 0 {
			return fail(1, "Ban time cannot be zero")
		}
		return d.setAdmin(ctx, nodeflag.Banned, true, "banned", time.Duration(secs)*time.Second)
	case control.CmdUnban:
		return d.setAdmin(ctx, nodeflag.Banned, false, "banned", 0)
	case control.CmdIPReallocate, "sync":
		p, err := d.reallocateNow(ctx, req.DryRun, false)
		if err != nil {
			return fail(1, "%v", err)
		}
		return ok(p)
	case control.CmdMoveIP:
		if len(a) != 2 {
			return fail(2, "usage: moveip IP PNN")
		}
		ip, err := netip.ParseAddr(a[0])
		if err != nil {
			return fail(1, "invalid IP address %q", a[0])
		}
		pnn, err := strconv.Atoi(a[1])
		if err != nil {
			return fail(1, "invalid PNN %q", a[1])
		}
		_, err = toLeader(ctx, d, kindMoveIP, moveIP{Addr: ip, PNN: pnn}, func(ctx context.Context, m moveIP) (none, error) {
			return none{}, d.rec.MoveIP(ctx, m.Addr, m.PNN)
		})
		if err != nil {
			return fail(1, "%v", err)
		}
		return ok(nil)
	case control.CmdReloadIPs:
		return d.reloadIPs(ctx)
	case control.CmdEvent:
		return d.event(ctx, a, req.EventTimeout)
	case control.CmdGratARP:
		if len(a) != 2 {
			return fail(2, "usage: gratarp IP IFACE")
		}
		ip, err := netip.ParseAddr(a[0])
		if err != nil {
			return fail(1, "invalid IP address %q", a[0])
		}
		if err := d.k.Announce(a[1], ip); err != nil {
			return fail(1, "%v", err)
		}
		return ok(nil)
	case control.CmdRunState:
		d.mu.Lock()
		rs := d.runstate
		d.mu.Unlock()
		if len(a) > 0 && !slices.ContainsFunc(a, func(s string) bool { return strings.EqualFold(s, rs) }) {
			return fail(1, "CTDB not in required run state (got %s)", rs)
		}
		return ok(control.RunState{State: rs})
	case control.CmdShutdown:
		select {
		case d.shutdownReq <- struct{}{}:
		default:
		}
		return ok(nil)
	}
	return fail(2, "unknown control %q", req.Command)
}

// setAdmin sets or clears an admin flag, persists it, and waits for the
// leader's takeover run, as CTDB's CLI does.
func (d *Daemon) setAdmin(ctx context.Context, bit nodeflag.Flags, set bool, word string, period time.Duration) control.Response {
	d.mu.Lock()
	has := d.admin&bit != 0
	if has == set {
		d.mu.Unlock()
		notice := fmt.Sprintf("Node %d is already %s", d.pnn, word)
		if !set {
			notice = fmt.Sprintf("Node %d is not %s", d.pnn, word)
		}
		return control.Response{Notice: notice}
	}
	if set {
		d.admin |= bit
	} else {
		d.admin &^= bit
	}
	if bit == nodeflag.Banned {
		if set {
			d.banUntil = time.Now().Add(period)
		} else {
			d.banUntil = time.Time{}
		}
	}
	flags, until := d.admin, d.banUntil
	d.mu.Unlock()
	if err := d.store.SetAdminFlags(flags, until); err != nil {
		// The flag holds in memory (a ban still ends: see expireBan);
		// a restart forgets it.
		d.log.Error("persisting admin flags; they hold until ctdbd restarts", "flags", flags.String(), "err", err)
	}
	d.log.Info("admin flags changed", "flags", flags.String())
	d.noteUrgent()
	if set && bit&(nodeflag.Stopped|nodeflag.Banned) != 0 {
		// An inactive node drops its addresses itself, leader or not.
		d.table.ReleaseAll(ctx, word)
	}
	// The leader runs with this node's new state and answers when done.
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := d.reallocateNow(wctx, false, true); err != nil {
		return control.Response{Notice: "takeover run not confirmed: " + err.Error()}
	}
	return ok(nil)
}

// applyTunable hands a changed tunable to the part that keeps its own
// copy; every other live tunable is read where it is used.
func (d *Daemon) applyTunable(name string) {
	d.mu.Lock()
	mon := d.mon
	d.mu.Unlock()
	switch strings.ToLower(name) {
	case "monitorinterval":
		if mon != nil {
			mon.SetInterval(d.tun.MonitorInterval())
		}
	case "monitortimeoutcount":
		if mon != nil {
			mon.SetTimeoutCount(d.tun.MonitorTimeoutCount())
		}
	case "eventscripttimeout":
		d.ev.SetTimeout(d.tun.EventScriptTimeout())
	}
}

// expireBan lifts a ban whose period is over: a ban always ends, whether
// it was set in this run or restored from state.db, and whether or not
// persisting it worked.
func (d *Daemon) expireBan() {
	d.mu.Lock()
	if d.admin&nodeflag.Banned == 0 || time.Now().Before(d.banUntil) {
		d.mu.Unlock()
		return
	}
	d.admin &^= nodeflag.Banned
	d.banUntil = time.Time{}
	flags := d.admin
	d.mu.Unlock()
	d.log.Info("ban period over", "flags", flags.String())
	if err := d.store.SetAdminFlags(flags, time.Time{}); err != nil {
		d.log.Error("persisting admin flags after the ban", "err", err)
	}
	d.noteUrgent()
}

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
			held := d.nodeState().Held
			if p.PNN != d.pnn {
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

// reloadIPs rereads public_addresses: new addresses become available,
// removed ones are released here first, then the leader reallocates.
func (d *Daemon) reloadIPs(ctx context.Context) control.Response {
	pas, err := d.conf.ReloadPublicAddresses()
	if err != nil {
		return fail(1, "%v", err)
	}
	for _, pa := range pas {
		for _, ifc := range pa.Ifaces {
			if !d.k.LinkExists(ifc) {
				return fail(1, "%s: unknown interface %s for public address %s", d.conf.PublicAddressesFile, ifc, pa.Prefix)
			}
		}
	}
	keep := map[netip.Addr]bool{}
	for _, pa := range pas {
		keep[pa.Prefix.Addr()] = true
	}
	var gone []netip.Addr
	d.mu.Lock()
	for a := range d.public {
		if !keep[a] {
			gone = append(gone, a)
		}
	}
	d.mu.Unlock()
	known := d.table.Snapshot().Links
	for ifc := range publicIfacesOf(pas) {
		if _, ok := known[ifc]; !ok {
			up, _ := d.k.LinkUp(ifc)
			_ = d.k.PromoteSecondaries(ifc)
			d.table.SetLink(ifc, up)
		}
	}
	for _, a := range gone {
		if err := d.table.Release(ctx, a, -1); err != nil {
			d.log.Warn("releasing removed public address", "ip", a, "err", err)
		}
	}
	d.setPublic(pas)
	if err := d.table.SetPublic(pas); err != nil {
		return fail(1, "%v", err)
	}
	d.log.Info("public addresses reloaded", "count", len(pas), "removed", len(gone))
	d.noteChange()
	if _, err := d.reallocateNow(ctx, false, true); err != nil {
		return control.Response{Notice: "takeover run not confirmed: " + err.Error()}
	}
	return ok(nil)
}

// publicIfacesOf lists every interface named in pas.
func publicIfacesOf(pas []config.PublicAddress) map[string]bool {
	m := map[string]bool{}
	for _, pa := range pas {
		for _, ifc := range pa.Ifaces {
			m[ifc] = true
		}
	}
	return m
}

// event serves `ctdb event ...`.
func (d *Daemon) event(ctx context.Context, a []string, timeout time.Duration) control.Response {
	if len(a) > 1 && a[1] == "legacy" {
		a = append([]string{a[0]}, a[2:]...)
	}
	if len(a) == 0 {
		return fail(2, "usage: event run|status|script ...")
	}
	switch a[0] {
	case "status":
		ev := "monitor"
		if len(a) > 1 {
			ev = a[1]
		}
		r, found := d.ev.Status(ev)
		if !found {
			return fail(22, "Event %s has never run in legacy", ev)
		}
		st := r.Control()
		resp := ok(st)
		resp.ExitCode = st.Summary
		return resp
	case "run":
		if len(a) < 2 {
			return fail(2, "usage: event run EVENT [ARGS...]")
		}
		var r eventscript.Result
		if timeout > 0 {
			r = d.ev.RunTimeout(ctx, timeout, a[1], a[2:]...)
		} else {
			r = d.ev.Run(ctx, a[1], a[2:]...)
		}
		st := r.Control()
		resp := ok(st)
		resp.ExitCode = st.Summary
		return resp
	case "script":
		if len(a) < 2 {
			return fail(2, "usage: event script list|enable|disable [SCRIPT]")
		}
		switch a[1] {
		case "list":
			s, err := d.ev.Scripts()
			if err != nil {
				return fail(1, "%v", err)
			}
			return ok(s)
		case "enable", "disable":
			if len(a) != 3 {
				return fail(2, "usage: event script %s SCRIPT", a[1])
			}
			var err error
			if a[1] == "enable" {
				err = d.ev.Enable(a[2])
			} else {
				err = d.ev.Disable(a[2])
			}
			if err != nil {
				return fail(1, "%v", err)
			}
			return ok(nil)
		}
	}
	return fail(2, "unknown event command %q", a[0])
}

// canonicalName spells a tunable's name as CTDB lists it.
func canonicalName(list []control.Tunable, name string) string {
	for _, t := range list {
		if strings.EqualFold(t.Name, name) {
			return t.Name
		}
	}
	return name
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
