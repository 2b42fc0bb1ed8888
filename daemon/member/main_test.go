package member

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain lets more tests run at once than the machine has cores (go
// test's default for -parallel): each spends its time waiting for gossip
// and probe rounds, not on the CPU. An explicit -parallel wins.
//
// It then fails the package when a goroutine of memberlist or of this
// package outlives every test: checkLeaks catches a test's own, this
// catches those no test started (memberlist's timer callbacks) and those
// of tests that do not call checkLeaks.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.parallel"); f != nil && f.Value.String() == strconv.Itoa(runtime.GOMAXPROCS(0)) {
		_ = f.Value.Set("8")
	}
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(waitTimeout)
		leaked := leakedGoroutines()
		for len(leaked) > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			leaked = leakedGoroutines()
		}
		if len(leaked) > 0 {
			fmt.Fprintf(os.Stderr, "%d goroutines leaked:\n%s\n", len(leaked), strings.Join(leaked, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}
