package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ctdb-go/ctdb-go/daemon/addrtable"
	"github.com/ctdb-go/ctdb-go/daemon/control"
	"github.com/ctdb-go/ctdb-go/recoverd"
)

// Run runs the node until ctx ends, then shuts it down in CTDB's order:
// hand the addresses over, run the shutdown event, leave the cluster.
func (d *Daemon) Run(ctx context.Context) error {
	defer func() {
		if d.ev != nil {
			d.ev.Flush() // event results still on their way to the store
			d.ev.Close()
		}
		d.store.Close()
	}()
	if c, ok := d.k.(io.Closer); ok {
		defer c.Close()
	}
	if err := d.restoreAdmin(); err != nil {
		return err
	}
	d.cleanStale()
	links := map[string]bool{}
	for ifc := range d.publicIfaces() {
		if err := d.k.PromoteSecondaries(ifc); err != nil {
			d.log.Warn("setting promote_secondaries", "iface", ifc, "err", err)
		}
		up, err := d.k.LinkUp(ifc)
		if err != nil {
			d.log.Warn("reading link state", "iface", ifc, "err", err)
		}
		links[ifc] = up
	}
	if err := d.setupEvents(); err != nil {
		return err
	}
	if r := d.ev.Run(ctx, "init"); !r.OK() {
		return fmt.Errorf("init event failed: %s", describe(r))
	}
	d.setRunState(recoverd.RunStateSetup)
	if r := d.ev.Run(ctx, "setup"); !r.OK() {
		return fmt.Errorf("setup event failed: %s", describe(r))
	}
	if err := d.setupCluster(); err != nil {
		return err
	}
	d.serveForwarded()
	if err := d.setupTable(links); err != nil {
		return err
	}
	ctl, err := d.setupControl()
	if err != nil {
		return err
	}
	// The address table outlives the other parts: at the end it releases
	// what is left.
	tableCtx, stopTable := context.WithCancel(context.Background())
	tableDone := make(chan error, 1)
	go func() { tableDone <- d.table.Run(tableCtx) }()
	defer func() { stopTable(); <-tableDone }()
	d.running.Store(true)
	defer d.running.Store(false)

	// Everything below stops when run is cancelled; ctx ending starts
	// the shutdown sequence first.
	run, stop := context.WithCancel(context.Background())
	defer stop()
	g, gctx := errgroup.WithContext(run)
	g.Go(func() error { return d.mem.Run(gctx) })
	g.Go(func() error { return d.rec.Run(gctx) })
	g.Go(func() error { return ctl.Run(gctx) })
	g.Go(func() error { return d.lease.Run(gctx) })
	g.Go(func() error { d.reportLoop(gctx); return nil })
	g.Go(func() error { return d.watchLinks(gctx) })
	g.Go(func() error { return d.startupAndMonitor(gctx) })
	if addr := d.conf.Conf.Logging.MetricsAddress; addr != "" {
		g.Go(func() error { return d.serveMetrics(gctx, addr) })
	}

	select {
	case <-ctx.Done():
	case <-gctx.Done():
	case <-d.shutdownReq:
	}
	if run.Err() == nil && gctx.Err() != nil {
		// A component failed.
		stop()
		err := g.Wait()
		d.table.ReleaseAll(context.Background(), "daemon failed")
		return err
	}
	d.shutdown(gctx)
	stop()
	err = g.Wait()
	d.table.ReleaseAll(context.Background(), "shutdown")
	d.ev.Run(context.Background(), "shutdown")
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// shutdown hands this node's addresses to others: it says it is shutting
// down and waits up to `shutdown failover timeout` for them to move.
func (d *Daemon) shutdown(ctx context.Context) {
	d.log.Info("shutting down")
	d.setRunState(recoverd.RunStateShutdown)
	deadline := time.Now().Add(d.conf.Conf.Failover.ShutdownFailoverTimeout)
	for time.Now().Before(deadline) {
		if len(d.table.Snapshot().Held) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	if extra := d.conf.Conf.Failover.ShutdownExtraTimeout; extra > 0 {
		time.Sleep(extra)
	}
}

// setupControl opens the control socket; the server starts in Run.
func (d *Daemon) setupControl() (*control.Server, error) {
	l, err := control.Listen(d.socketPath())
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return control.NewServer(control.ServerConfig{Listener: l, Handler: d, Logger: d.cfg.Logger})
}

// setupTable builds the address table, with the carrier of each public
// interface as read at start.
func (d *Daemon) setupTable(links map[string]bool) error {
	var err error
	d.table, err = addrtable.New(addrtable.Config{
		PNN:          d.pnn,
		Kernel:       d.k,
		Events:       d.ev,
		Lease:        d.lease,
		Store:        d.store,
		ProbeWait:    d.tun.ARPProbeWait,
		ProbeTimeout: d.tun.TakeIPProbeTimeout,
		Changed:      d.noteChange,
		Describe:     describe,
		Public:       d.publicAddrs(),
		Links:        links,
		Logger:       d.cfg.Logger,
	})
	return err
}
