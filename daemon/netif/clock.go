package netif

import (
	"time"

	"golang.org/x/sys/unix"
)

// SuspendGap is CLOCK_BOOTTIME minus CLOCK_MONOTONIC: the time this host
// has spent suspended since it booted. Both clocks stop for nothing else,
// so a growth between two readings is a suspend (a VM paused and resumed,
// a laptop lid) during which Go's monotonic time and the kernel's address
// lifetimes stood still while the rest of the cluster moved on.
func SuspendGap() (time.Duration, error) {
	var boot, mono unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot); err != nil {
		return 0, err
	}
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono); err != nil {
		return 0, err
	}
	return time.Duration(boot.Nano() - mono.Nano()), nil
}
