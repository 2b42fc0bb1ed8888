package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/eventscript"
	"github.com/ctdb-go/ctdb-go/daemon/monitor"
	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
	"github.com/ctdb-go/ctdb-go/recoverd"
)

func (d *Daemon) setupEvents() error {
	env := []string{
		"CTDB_BASE=" + d.cfg.ConfigDir,
		"CTDB_PNN=" + fmt.Sprint(d.pnn),
		"CTDB_SOCKET=" + d.socketPath(),
		"CTDB_VARDIR=" + d.cfg.StateDir,
	}
	if self, err := os.Executable(); err == nil {
		// Scripts call `ctdb`: prefer the one installed beside ctdbd.
		env = append(env, "PATH="+filepath.Dir(self)+":"+os.Getenv("PATH"))
	}
	dir := filepath.Join(d.cfg.ConfigDir, "events.d")
	if _, err := os.Stat(dir); err != nil {
		// CTDB's layout.
		if _, err2 := os.Stat(filepath.Join(d.cfg.ConfigDir, "events", "legacy")); err2 == nil {
			dir = filepath.Join(d.cfg.ConfigDir, "events", "legacy")
		}
	}
	r, err := eventscript.New(eventscript.Config{
		Dir:         dir,
		Base:        d.cfg.ConfigDir,
		Env:         env,
		Timeout:     d.tun.EventScriptTimeout(),
		DebugScript: d.conf.Conf.Event.DebugScript,
		Store:       d.store,
		Logger:      d.cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("event scripts: %w", err)
	}
	d.ev = r
	d.eventsDir = dir
	return nil
}

func (d *Daemon) socketPath() string { return filepath.Join(d.cfg.RunDir, "ctdbd.socket") }

// startupAndMonitor runs the startup event until it succeeds (every 5 s,
// as CTDB), then the monitor; health changes go to the leader at once.
func (d *Daemon) startupAndMonitor(ctx context.Context) error {
	d.setRunState(recoverd.RunStateStartup)
	for {
		r := d.ev.Run(ctx, "startup")
		if r.OK() {
			break
		}
		d.log.Warn("startup event failed; retrying in 5s", "err", describe(r))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(5 * time.Second):
		}
	}
	d.setRunState(recoverd.RunStateRunning)
	mon, err := monitor.New(monitor.Config{
		Runner:       d.ev,
		Interval:     d.tun.MonitorInterval(),
		TimeoutCount: d.tun.MonitorTimeoutCount(),
		Debounce:     d.tun.LinkDebounce(),
		First:        d.firstMonitor,
		CanRun: func() bool {
			d.mu.Lock()
			defer d.mu.Unlock()
			return d.admin&(nodeflag.Stopped|nodeflag.Banned) == 0 && d.runstate == recoverd.RunStateRunning
		},
		Logger: d.cfg.Logger,
	})
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.mon = mon
	d.mu.Unlock()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case h, ok := <-mon.Health():
				if !ok {
					return
				}
				d.setHealthy(h)
			}
		}
	}()
	return mon.Run(ctx)
}

func (d *Daemon) setHealthy(h bool) {
	d.mu.Lock()
	was := d.healthy
	d.healthy = h
	d.mu.Unlock()
	if was == h {
		return
	}
	if h {
		d.log.Info("monitor event OK - node re-enabled")
	} else {
		d.log.Warn("monitor event failed - node unhealthy")
	}
	d.noteUrgent()
}

// watchLinks follows carrier changes of public interfaces: the interface's
// addresses become unavailable at once and the monitor runs now.
func (d *Daemon) watchLinks(ctx context.Context) error {
	ch, err := d.k.WatchLinks(ctx)
	if err != nil {
		return fmt.Errorf("watching links: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-ch:
			if !ok {
				return nil
			}
			if !d.publicIfaces()[ev.Iface] {
				continue
			}
			if !d.table.SetLink(ev.Iface, ev.Up) {
				continue
			}
			d.mu.Lock()
			mon := d.mon
			d.mu.Unlock()
			d.log.Info("link changed", "iface", ev.Iface, "up", ev.Up)
			d.noteChange()
			if mon != nil {
				mon.Trigger("link " + ev.Iface)
			}
		}
	}
}

// describe says why an event failed: the failing script, its state and
// the last line of its output.
func describe(r eventscript.Result) string {
	if r.Err != "" {
		return r.Err
	}
	for _, s := range r.Scripts {
		if s.State == eventscript.ScriptOK || s.State == eventscript.ScriptDisabled {
			continue
		}
		out := strings.TrimSpace(s.Output)
		if i := strings.LastIndexByte(out, '\n'); i >= 0 {
			out = out[i+1:]
		}
		return fmt.Sprintf("%s %s (exit %d): %s", s.Name, s.State, s.ExitCode, out)
	}
	return string(r.Status)
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
