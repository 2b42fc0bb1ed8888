package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ctdb-go/ctdb-go/daemon/config"
	"github.com/ctdb-go/ctdb-go/daemon/eventscript"
)

// fenceFunc runs the fence event for an unreachable node, when fencing is
// on ([failover] fence): `fence PNN ADDRESS`, waited for up to FenceTimeout.
func (d *Daemon) fenceFunc() func(context.Context, int) error {
	if !d.conf.Conf.Failover.Fence {
		return nil
	}
	return func(ctx context.Context, pnn int) error {
		addr := ""
		for _, n := range d.conf.Nodes {
			if n.PNN == pnn {
				addr = n.Addr.String()
			}
		}
		r := d.ev.RunTimeout(ctx, d.tun.FenceTimeout(), "fence", fmt.Sprint(pnn), addr)
		if !r.OK() {
			return fmt.Errorf("fence event: %s", describe(r))
		}
		return fenceConfirmed(d.eventsDir, r)
	}
}

// fenceConfirmed: a fence counts only when a script that handles fencing
// (config.FenceMarker) ran and succeeded. Scripts that do not handle the
// event exit 0 for it too; with the fence script disabled or removed, the
// event would "succeed" without fencing anything (fail closed).
func fenceConfirmed(eventsDir string, r eventscript.Result) error {
	handlers, err := config.FenceScripts(eventsDir)
	if err != nil {
		return fmt.Errorf("fence event: %w", err)
	}
	for _, s := range r.Scripts {
		if s.State != eventscript.ScriptOK {
			continue
		}
		for _, h := range handlers {
			if strings.TrimSuffix(filepath.Base(h), ".script") == s.Name {
				return nil
			}
		}
	}
	return fmt.Errorf("fence event: no enabled script that handles fencing (a %q line) ran and succeeded", config.FenceMarker)
}
