package state

import (
	"os"
	"syscall"
	"testing"
)

// TestMain caps the test process's address space: a damaged file that
// gets past checkFormat and makes bbolt allocate without bound then fails
// this package's tests instead of bringing the OOM killer to the machine.
func TestMain(m *testing.M) {
	const limit = 8 << 30
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_AS, &rl) == nil && rl.Cur > limit {
		rl.Cur = limit
		_ = syscall.Setrlimit(syscall.RLIMIT_AS, &rl)
	}
	os.Exit(m.Run())
}
