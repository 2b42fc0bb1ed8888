package daemon

import (
	"context"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/control"
	"github.com/ctdb-go/ctdb-go/daemon/eventscript"
)

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
