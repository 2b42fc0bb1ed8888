package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// serveMetrics serves Prometheus text metrics on addr ([logging] metrics
// address) until ctx ends.
func (d *Daemon) serveMetrics(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, d.metricsText())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	d.log.Info("serving metrics", "addr", l.Addr().String())
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// metricsText renders the metrics in Prometheus' text format.
func (d *Daemon) metricsText() string {
	var b strings.Builder
	metric := func(name, typ, help string, v any, labels ...string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		l := ""
		if len(labels) > 0 {
			l = "{" + strings.Join(labels, ",") + "}"
		}
		fmt.Fprintf(&b, "%s%s %v\n", name, l, v)
	}
	sn := d.table.Snapshot()
	held, foreign := len(sn.Held), len(sn.Foreign)
	leaseLeft := time.Until(d.lease.Term().End).Seconds()
	c := d.table.Counters()
	d.mu.Lock()
	flags := d.flagsLocked()
	runstate := d.runstate
	d.mu.Unlock()
	if leaseLeft < 0 {
		leaseLeft = 0
	}
	leader, gen := d.rec.Leader()
	rs := d.rec.Status()
	pnn := fmt.Sprintf("pnn=\"%d\"", d.pnn)
	metric("ctdb_node_flags", "gauge", "This node's CTDB flag word (0 = OK).", uint32(flags), pnn)
	metric("ctdb_node_running", "gauge", "1 when the run state is RUNNING.", boolNum(runstate == "RUNNING"), pnn)
	metric("ctdb_public_addresses_held", "gauge", "Public addresses held by this node.", held, pnn)
	metric("ctdb_public_addresses_foreign", "gauge", "Public addresses on this node's interfaces that it was not given.", foreign, pnn)
	metric("ctdb_lease_seconds_left", "gauge", "Seconds left on this node's lease.", fmt.Sprintf("%.3f", leaseLeft), pnn)
	metric("ctdb_leader", "gauge", "PNN of the leader (-1: none).", leader, pnn)
	metric("ctdb_generation", "gauge", "Leader generation.", gen, pnn)
	metric("ctdb_is_leader", "gauge", "1 on the leader.", boolNum(leader == d.pnn), pnn)
	metric("ctdb_lease_grants_total", "counter", "Lease grants received.", d.lease.Grants(), pnn)
	metric("ctdb_takes_total", "counter", "Addresses taken.", c.Takes, pnn)
	metric("ctdb_take_failures_total", "counter", "Takes that failed.", c.TakeFailures, pnn)
	metric("ctdb_releases_total", "counter", "Addresses released.", c.Releases, pnn)
	metric("ctdb_lease_drops_total", "counter", "Addresses dropped because the lease ran out.", c.LeaseDrops, pnn)
	metric("ctdb_probe_answered_total", "counter", "Duplicate-address probes another host answered.", c.ProbeAnswered, pnn)
	if leader == d.pnn {
		metric("ctdb_takeover_runs_total", "counter", "Takeover runs that moved addresses (leader).", rs.Runs, pnn)
		metric("ctdb_takeover_run_last_seconds", "gauge", "Duration of the last takeover run (leader).",
			fmt.Sprintf("%.6f", rs.LastRunTook.Seconds()), pnn)
		metric("ctdb_duplicates_resolved_total", "counter", "Addresses released on a node that held them without being given them (leader).", rs.DuplicatesResolved, pnn)
		metric("ctdb_addresses_blocked", "gauge", "Addresses waiting for a lease to run out or a fence (leader).", len(rs.Blocked), pnn)
	}
	for _, s := range []string{"monitor", "takeip", "releaseip", "ipreallocated"} {
		if r, ok := d.ev.Status(s); ok {
			metric("ctdb_event_last_seconds", "gauge", "Duration of the last run of an event.",
				fmt.Sprintf("%.6f", r.Duration.Seconds()), pnn, fmt.Sprintf("event=%q", s))
			metric("ctdb_event_last_ok", "gauge", "1 when the last run of an event succeeded.", boolNum(r.OK()), pnn, fmt.Sprintf("event=%q", s))
		}
	}
	return b.String()
}

func boolNum(b bool) int {
	if b {
		return 1
	}
	return 0
}
