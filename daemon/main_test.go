package daemon

import (
	"flag"
	"os"
	"runtime"
	"strconv"
	"testing"
)

// TestMain lets more daemon tests run at once than the machine has cores
// (go test's default for -parallel): each spends its time waiting on
// timers and event scripts, not on the CPU. An explicit -parallel wins.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.parallel"); f != nil && f.Value.String() == strconv.Itoa(runtime.GOMAXPROCS(0)) {
		_ = f.Value.Set("8")
	}
	os.Exit(m.Run())
}
