//go:build integration

package tests

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ctdb-go/ctdb-go/tests/bed"
)

// postgresBed builds a cluster whose nodes each run PostgreSQL and
// 50.postgres, starts PostgreSQL, then ctdbd, and waits until healthy.
func postgresBed(t *testing.T, nodes int) (*bed.Bed, []*bed.Postgres) {
	t.Helper()
	bin, err := bed.PostgresBinDir()
	if err != nil {
		t.Fatal(err) // .ci/run installs postgresql
	}
	b := newBed(t, bed.Config{
		Nodes:          nodes,
		InstallShipped: []string{"50.postgres"},
		ScriptOptions:  bed.PostgresScriptOptions(bin),
		Logf:           quietLogf(t),
	})
	dumpLogsOnFailure(t, b)
	measureSummary(t)
	pgs := make([]*bed.Postgres, nodes)
	for i := range nodes {
		if pgs[i], err = b.StartPostgres(i); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i := range nodes {
				t.Logf("--- node %d PostgreSQL log (%s)", i, pgs[i].Log)
			}
		}
	})
	if err := b.StartAll(); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitHealthy(ctx(t, 60*time.Second)); err != nil {
		t.Fatal(err)
	}
	return b, pgs
}

// clusterName asks PostgreSQL, through host from the client, which
// node's server answered (each runs with cluster_name n<i>).
func clusterName(ctx context.Context, b *bed.Bed, host netip.Addr) (string, error) {
	out, err := b.PSQL(ctx, b.ClientNS(), host.String(), time.Second, "SHOW cluster_name")
	if err != nil {
		return "", err
	}
	if out.Code != 0 {
		return "", fmt.Errorf("psql -h %s: %s", host, out)
	}
	return strings.TrimSpace(out.Stdout), nil
}

// PostgreSQL stops on the node holding a public address: 50.postgres
// fails the node's monitor, the node turns UNHEALTHY, its addresses move,
// and a client reconnecting through the address gets a query answered by
// another node's PostgreSQL. PostgreSQL back: the node is healthy again
// and gets addresses back.
func TestPostgresStoppedMovesAddress(t *testing.T) {
	b, pgs := postgresBed(t, 3)
	startChecker(t, b)

	held := holders(t, b)
	ip := b.PublicAddrs()[0].Addr()
	if len(held[ip]) != 1 {
		t.Fatalf("%s held by %v", ip, held[ip])
	}
	victim := held[ip][0]
	var vips []netip.Addr
	for _, p := range b.PublicAddrs() {
		if slices.Equal(held[p.Addr()], []int{victim}) {
			vips = append(vips, p.Addr())
		}
	}
	name, err := clusterName(ctx(t, 10*time.Second), b, ip)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("n%d", victim); name != want {
		t.Fatalf("through %s the client reached %q, want %q (node %d holds it)", ip, name, want, victim)
	}
	t.Logf("node %d holds %v; the client's query through %s reaches %s; stopping node %d's PostgreSQL",
		victim, vips, ip, name, victim)

	// From the stop on: when the node is seen unhealthy, when another
	// node answers ARP for ip, when the client's query through ip works.
	w := moveWatch(t, b, victim, []netip.Addr{ip})
	unhealthy := make(chan time.Time, 1)
	wctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		_ = poll(wctx, 20*time.Millisecond, func() string {
			st, err := b.Status(wctx, victim)
			if err != nil {
				return err.Error()
			}
			for _, n := range st {
				if n.PNN == victim && !n.OK() {
					unhealthy <- time.Now()
					return ""
				}
			}
			return "healthy"
		})
	}()

	t0 := time.Now()
	if err := pgs[victim].Stop(); err != nil {
		t.Fatal(err)
	}
	var tq time.Time
	attempts := 0
	var answeredBy string
	if err := poll(wctx, 50*time.Millisecond, func() string {
		attempts++
		ts := time.Now()
		n, err := clusterName(wctx, b, ip)
		if took := time.Since(ts); took > 500*time.Millisecond {
			// A connection attempt that lands while the address moves
			// loses its SYN and waits for the retransmission (1 s).
			t.Logf("attempt %d at +%v took %v (err: %v)", attempts, ts.Sub(t0).Round(time.Millisecond), took.Round(time.Millisecond), err)
		}
		if err != nil {
			return err.Error()
		}
		tq = time.Now()
		answeredBy = n
		return ""
	}); err != nil {
		t.Fatalf("the client's query through %s never succeeded after PostgreSQL stopped on node %d: %v", ip, victim, err)
	}
	stopToQuery := tq.Sub(t0)
	t.Logf("query through %s answered by %s %v after the stop (%d attempts)", ip, answeredBy, stopToQuery.Round(time.Millisecond), attempts)
	if answeredBy == fmt.Sprintf("n%d", victim) {
		t.Fatalf("query answered by the stopped node's cluster %s", answeredBy)
	}
	measure(t, "postgres_stop_to_query_ms", stopToQuery.Milliseconds())
	select {
	case tu := <-unhealthy:
		measure(t, "postgres_stop_to_unhealthy_ms", tu.Sub(t0).Milliseconds())
	case <-time.After(5 * time.Second):
		t.Errorf("node %d never seen UNHEALTHY in its own ctdb status", victim)
	}
	if got, err := w.Wait(ctx(t, 5*time.Second)); err == nil {
		measure(t, "postgres_stop_to_arp_moved_ms", got[ip].At.Sub(t0).Milliseconds())
	} else {
		t.Errorf("ARP for %s never answered by another node: %v", ip, err)
	}

	// The monitor failure names PostgreSQL, on the node itself.
	out, err := b.Ctdb(victim, "event", "status", "monitor")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.Stdout, "50.postgres") || !strings.Contains(out.Stdout, "not accepting connections") {
		t.Errorf("ctdb event status monitor on node %d does not show 50.postgres failing:\n%s", victim, out)
	}
	if err := b.WaitFor(ctx(t, 15*time.Second), "the stopped node's addresses on other nodes", func(context.Context) string {
		return offNode(b, victim, vips)
	}); err != nil {
		t.Error(err)
	}

	// PostgreSQL back: the node passes monitor again and hosts again.
	tb := time.Now()
	if err := pgs[victim].Start(); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFor(ctx(t, 40*time.Second), "the node healthy and the addresses balanced", func(ctx context.Context) string {
		return balancedOK(ctx, b, victim)
	}); err != nil {
		t.Fatal(err)
	}
	measure(t, "postgres_start_to_balanced_ms", time.Since(tb).Milliseconds())
	// The client reaches every address's PostgreSQL through it.
	held = holders(t, b)
	for _, p := range b.PublicAddrs() {
		n, err := clusterName(ctx(t, 10*time.Second), b, p.Addr())
		if err != nil {
			t.Errorf("query through %s: %v", p.Addr(), err)
			continue
		}
		if want := fmt.Sprintf("n%d", held[p.Addr()][0]); n != want {
			t.Errorf("query through %s answered by %s, want %s (the holder)", p.Addr(), n, want)
		}
	}
}
