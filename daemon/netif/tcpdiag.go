package netif

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// EstablishedTCP counts the established TCP connections by local
// address, as `ss -tn state established` lists them: IPv4 ones on
// AF_INET sockets and on dual-stack AF_INET6 sockets (v4-mapped, counted
// under the IPv4 address). One sock_diag dump per family, without
// starting a process: releaseip runs by the hundred in a takeover run, and
// its scripts need not list connections when there are none (see
// CTDB_TCP_CONNECTIONS in events.d/README.md).
func (l *Linux) EstablishedTCP() (map[netip.Addr]int, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	counts := map[netip.Addr]int{}
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		if err := l.diagDump(fam, counts); err != nil {
			return nil, fmt.Errorf("listing TCP connections: %w", err)
		}
	}
	return counts, nil
}

// From linux/inet_diag.h.
const (
	tcpEstablishedStateBit = 1 << 1 // 1 << TCP_ESTABLISHED
	sizeofInetDiagReqV2    = 56
)

// diagSeq numbers the dumps, so a late answer to an abandoned one is
// skipped.
var diagSeq atomic.Uint32

// diagRequest builds a SOCK_DIAG_BY_FAMILY dump request for the
// established TCP sockets of family fam.
func diagRequest(fam uint8, seq uint32) []byte {
	total := unix.SizeofNlMsghdr + sizeofInetDiagReqV2
	b := make([]byte, total)
	binary.NativeEndian.PutUint32(b[0:], uint32(total))
	binary.NativeEndian.PutUint16(b[4:], unix.SOCK_DIAG_BY_FAMILY)
	binary.NativeEndian.PutUint16(b[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(b[8:], seq)
	r := b[unix.SizeofNlMsghdr:]
	r[0] = fam
	r[1] = unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(r[4:], tcpEstablishedStateBit)
	return b
}

// diagSource is the local address of an inet_diag_msg: family at 0,
// inet_diag_sockid from 4 (sport, dport, then src at 8).
func diagSource(msg []byte) (netip.Addr, bool) {
	if len(msg) < 8+16 {
		return netip.Addr{}, false
	}
	switch msg[0] {
	case unix.AF_INET:
		return netip.AddrFrom4([4]byte(msg[8:12])), true
	case unix.AF_INET6:
		return netip.AddrFrom16([16]byte(msg[8:24])).Unmap(), true
	}
	return netip.Addr{}, false
}

// openDiagSocket opens the sock_diag socket EstablishedTCP uses, in the
// calling thread's namespace.
func openDiagSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return -1, fmt.Errorf("opening sock_diag socket: %w", err)
	}
	// A dump never takes long; this bounds a wedged one.
	tv := unix.NsecToTimeval((5 * time.Second).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("setting sock_diag timeout: %w", err)
	}
	return fd, nil
}

// diagDump runs one dump and adds the sockets it lists to counts by
// local address; one dump at a time on l's socket.
func (l *Linux) diagDump(fam uint8, counts map[netip.Addr]int) error {
	l.diagMu.Lock()
	defer l.diagMu.Unlock()
	fd := l.diagFD
	if fd < 0 {
		return ErrClosed
	}
	seq := diagSeq.Add(1)
	if err := unix.Sendto(fd, diagRequest(fam, seq), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("sending sock_diag request: %w", err)
	}
	buf := make([]byte, 32<<10)
	for {
		m, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue // a receive timeout makes it unrestartable
		}
		if err != nil {
			return fmt.Errorf("reading sock_diag answer: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:m])
		if err != nil {
			return fmt.Errorf("parsing sock_diag answer: %w", err)
		}
		for _, msg := range msgs {
			if msg.Header.Seq != seq {
				continue
			}
			switch msg.Header.Type {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if len(msg.Data) >= 4 {
					if e := int32(binary.NativeEndian.Uint32(msg.Data)); e != 0 {
						return fmt.Errorf("sock_diag: %w", unix.Errno(-e))
					}
				}
				return nil
			case unix.SOCK_DIAG_BY_FAMILY:
				if a, ok := diagSource(msg.Data); ok {
					counts[a]++
				}
			}
		}
	}
}
