package netif

import (
	"errors"
	"fmt"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Interface lookups by ioctl on a datagram socket of l's namespace: one
// syscall each and always current, where a netlink RTM_GETLINK answers
// with every attribute and counter of the link. Takeover runs add, refresh
// and remove addresses by the hundred, and those need only the index; the
// ARP probes and announcements need the MAC and the flags too.

// ifreqHW is struct ifreq holding ifr_hwaddr, a struct sockaddr whose
// family is the ARPHRD_* type.
type ifreqHW struct {
	name   [unix.IFNAMSIZ]byte
	family uint16
	data   [14]byte
	_      [8]byte // the rest of the union: sizeof(struct ifreq) is 40
}

// openIoctlSocket opens the socket ifIndex and friends use, in the
// calling thread's namespace.
func openIoctlSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening ioctl socket: %w", err)
	}
	return fd, nil
}

// ioctlErr turns ENODEV into ErrNoLink.
func ioctlErr(iface string, err error) error {
	if errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("%w: %s", ErrNoLink, iface)
	}
	return fmt.Errorf("looking up %s: %w", iface, err)
}

// ifIndex is iface's index.
func (l *Linux) ifIndex(iface string) (int, error) {
	if l.closed.Load() {
		return 0, ErrClosed
	}
	ifr, err := unix.NewIfreq(iface)
	if err != nil {
		return 0, fmt.Errorf("looking up %s: %w", iface, err)
	}
	if err := unix.IoctlIfreq(l.ioctlFD, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, ioctlErr(iface, err)
	}
	return int(ifr.Uint32()), nil
}

// ifFlags is iface's IFF_* flags (the low 16 bits, which hold IFF_NOARP
// and IFF_LOOPBACK).
func (l *Linux) ifFlags(iface string) (uint16, error) {
	ifr, err := unix.NewIfreq(iface)
	if err != nil {
		return 0, fmt.Errorf("looking up %s: %w", iface, err)
	}
	if err := unix.IoctlIfreq(l.ioctlFD, unix.SIOCGIFFLAGS, ifr); err != nil {
		return 0, ioctlErr(iface, err)
	}
	return ifr.Uint16(), nil
}

// ifHardware is iface's ARPHRD_* type and hardware address; the address
// is 6 bytes for Ethernet (the kernel passes at most 14 here, so longer
// ones, as InfiniBand's, come back cut: only Ethernet is used).
func (l *Linux) ifHardware(iface string) (uint16, net.HardwareAddr, error) {
	var r ifreqHW
	if len(iface) >= len(r.name) {
		return 0, nil, fmt.Errorf("looking up %s: name too long", iface)
	}
	copy(r.name[:], iface)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(l.ioctlFD), unix.SIOCGIFHWADDR, uintptr(unsafe.Pointer(&r)))
	if errno != 0 {
		return 0, nil, ioctlErr(iface, errno)
	}
	n := 0
	if r.family == unix.ARPHRD_ETHER {
		n = 6
	}
	return r.family, net.HardwareAddr(append([]byte(nil), r.data[:n]...)), nil
}
