//go:build integration

package tests

import (
	"fmt"
	"os"
	"testing"

	"github.com/ctdb-go/ctdb-go/tests/bed"
)

func TestMain(m *testing.M) {
	if os.Geteuid() == 0 {
		// Leftovers of a run that crashed or was killed (never a live run's).
		removed, err := bed.Sweep(bed.DefaultPrefix)
		if err != nil {
			fmt.Fprintf(os.Stderr, "tests: sweeping old test beds: %v\n", err)
		}
		for _, r := range removed {
			fmt.Fprintf(os.Stderr, "tests: removed leftover %s\n", r)
		}
		// Ctrl-C or a kill closes the beds before the process goes.
		bed.HandleSignals()
	}
	os.Exit(m.Run())
}
