//go:build integration

package tests

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ctdb-go/ctdb-go/tests/soak"
)

// TestSoak runs the randomized fault injector (tests/soak, `make soak`)
// for CTDB_SOAK_DURATION (default 3m) on 5 nodes; CTDB_SOAK_SEED replays a
// seed. The seed is logged first: a failure names it.
func TestSoak(t *testing.T) {
	needRoot(t)
	cfg := soak.Config{Duration: 3 * time.Minute, Nodes: 5, Logf: t.Logf}
	if s := os.Getenv("CTDB_SOAK_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("CTDB_SOAK_DURATION: %v", err)
		}
		cfg.Duration = d
	}
	if s := os.Getenv("CTDB_SOAK_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CTDB_SOAK_SEED: %v", err)
		}
		cfg.Seed = n
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	t.Logf("soak seed %d (replay: CTDB_SOAK_SEED=%d)", cfg.Seed, cfg.Seed)
	sum, err := soak.Run(context.Background(), cfg)
	if err != nil {
		t.Errorf("soak with seed %d: %v\n%s", cfg.Seed, err, sum)
	}
	assertRootClean(t, "after the soak")
}
