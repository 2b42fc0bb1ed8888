package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/config"
	"github.com/ctdb-go/ctdb-go/daemon/control"
	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
)

// Handle serves one control (control.Handler).
func (d *Daemon) Handle(ctx context.Context, req control.Request) control.Response {
	if !d.running.Load() {
		// The socket opens only once every part is built; this is for
		// a caller that comes too early (or after the end).
		return fail(1, "ctdbd is not running (starting or stopping)")
	}
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

// canonicalName spells a tunable's name as CTDB lists it.
func canonicalName(list []control.Tunable, name string) string {
	for _, t := range list {
		if strings.EqualFold(t.Name, name) {
			return t.Name
		}
	}
	return name
}

// forward sends a control to another node and returns its answer.
func (d *Daemon) forward(ctx context.Context, req control.Request) control.Response {
	pnn := req.Target
	req.Target = control.ThisNode
	if pnn == d.pnn {
		return d.Handle(ctx, req)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := call[control.Request, control.Response](ctx, d.mem, pnn, kindControl, req)
	if err != nil {
		return control.Response{ExitCode: 1, Error: fmt.Sprintf("node %d: %v", pnn, err)}
	}
	return resp
}

// serveForwarded serves the controls other nodes forward here
// (`ctdb -n PNN …` run on another node), as if from this node's CLI.
func (d *Daemon) serveForwarded() {
	handle(d.mem, kindControl, func(ctx context.Context, _ int, req control.Request) (control.Response, error) {
		req.Target = control.ThisNode
		return d.Handle(ctx, req), nil
	})
}
