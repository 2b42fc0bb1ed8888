//go:build integration

package tests

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctdb-go/ctdb-go/tests/bed"
)

// The bed's ghost and PostgreSQL helpers on their own, with no ctdbd.

func TestBedGhost(t *testing.T) {
	b := newBed(t, bed.Config{Nodes: 1})
	if _, err := b.AddGhost(netip.MustParseAddr("10.0.0.1"), time.Second); err == nil {
		t.Errorf("AddGhost outside the test network: no error")
	}
	ip := netip.MustParseAddr("198.18.1.77")
	g, err := b.AddGhost(ip, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("/run/netns", g.NS)); err != nil {
		t.Fatalf("ghost namespace: %v", err)
	}
	hw, err := b.ARP(ctx(t, 5*time.Second), ip)
	if err != nil {
		t.Fatal(err)
	}
	if hw.String() != g.MAC.String() || b.NodeByMAC(hw) != -1 {
		t.Errorf("ARP for %s answered by %s, want the ghost's %s", ip, hw, g.MAC)
	}
	<-g.Done()
	macs, err := b.ARPAll(ctx(t, 5*time.Second), ip, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(macs) != 0 {
		t.Errorf("after its time the ghost still answers: %v", macs)
	}
	as := g.Answers()
	if len(as) == 0 || as[0].From.String() != b.ClientMAC().String() || !bed.IsClientAddr(as[0].SenderIP) {
		t.Errorf("ghost answers %v, want the client's request first", as)
	}
	for _, a := range as {
		if a.At.After(g.Until()) {
			t.Errorf("answered at %s, after its time %s", a.At, g.Until())
		}
	}
	// One that lasts until the bed closes: Close removes it.
	g2, err := b.AddGhost(ip, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{g.NS, g2.NS} {
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after Close: ghost namespace %s: %v", ns, err)
		}
	}
}

func TestBedPostgres(t *testing.T) {
	b := newBed(t, bed.Config{Nodes: 1})
	pg, err := b.StartPostgres(0)
	if err != nil {
		t.Fatal(err)
	}
	query := func(ns, host string) (string, int) {
		t.Helper()
		out, err := b.PSQL(ctx(t, 20*time.Second), ns, host, time.Second, "SHOW cluster_name")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out.Stdout), out.Code
	}
	if got, code := query(b.NodeNS(0), pg.Dir); got != "n0" || code != 0 {
		t.Errorf("over the socket: %q, exit %d", got, code)
	}
	if got, code := query(b.NodeNS(0), "127.0.0.1"); got != "n0" || code != 0 {
		t.Errorf("over 127.0.0.1: %q, exit %d", got, code)
	}
	// It listens on every address: one added later is reachable from the
	// client.
	vip := netip.MustParsePrefix("198.18.1.9/24")
	if err := b.AddAddr(0, vip); err != nil {
		t.Fatal(err)
	}
	if got, code := query(b.ClientNS(), vip.Addr().String()); got != "n0" || code != 0 {
		t.Errorf("from the client over %s: %q, exit %d", vip.Addr(), got, code)
	}
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	if pg.Running() {
		t.Errorf("running after Stop")
	}
	if _, code := query(b.ClientNS(), vip.Addr().String()); code == 0 {
		t.Errorf("query answered after Stop")
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	if got, code := query(b.ClientNS(), vip.Addr().String()); got != "n0" || code != 0 {
		t.Errorf("after Start: %q, exit %d", got, code)
	}
	// Close stops it and removes its directory with the run directory.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if pg.Running() {
		t.Errorf("PostgreSQL runs after the bed closed")
	}
	if os.Getenv("KEEP_BED") != "1" {
		if _, err := os.Stat(pg.Dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after Close: %s: %v", pg.Dir, err)
		}
	}
}
