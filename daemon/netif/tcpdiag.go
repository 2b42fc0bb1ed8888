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

// TCPConnections counts the established TCP connections whose local
// address is ip, as `ss -tn state established "src [IP]"` lists them:
// IPv4 ones on AF_INET sockets and on dual-stack AF_INET6 sockets (as
// v4-mapped addresses). One sock_diag dump per family, filtered in the
// kernel, without starting a process: releaseip runs by the hundred in a
// takeover run, and its scripts need not list connections when there are
// none (see CTDB_TCP_CONNECTIONS in events.d/README.md).
func (l *Linux) TCPConnections(ip netip.Addr) (int, error) {
	if l.closed.Load() {
		return 0, ErrClosed
	}
	ip = ip.Unmap()
	if !ip.IsValid() {
		return 0, errors.New("counting TCP connections: no address")
	}
	families := []uint8{unix.AF_INET6}
	if ip.Is4() {
		families = []uint8{unix.AF_INET, unix.AF_INET6}
	}
	n := 0
	for _, fam := range families {
		c, err := l.diagCount(fam, ip)
		if err != nil {
			return 0, fmt.Errorf("counting TCP connections to %s: %w", ip, err)
		}
		n += c
	}
	return n, nil
}

// Bytecode operations and attributes of linux/inet_diag.h.
const (
	inetDiagBCSCond        = 7 // INET_DIAG_BC_S_COND
	inetDiagReqBytecode    = 1 // INET_DIAG_REQ_BYTECODE
	tcpEstablishedStateBit = 1 << 1
	sizeofInetDiagReqV2    = 56
)

var diagSeq atomic.Uint32

// diagRequest builds a SOCK_DIAG_BY_FAMILY dump request for established
// TCP sockets of family fam whose source address is ip.
func diagRequest(fam uint8, ip netip.Addr, seq uint32) []byte {
	addr := ip.AsSlice()
	// inet_diag_bc_op {code, yes, no} + inet_diag_hostcond {family,
	// prefix_len, port} + the address. "yes" lands exactly on the end
	// (accept), "no" 4 bytes past it (reject), as ss builds it.
	condLen := 4 + 8 + len(addr)
	bc := make([]byte, condLen)
	bc[0] = inetDiagBCSCond
	bc[1] = byte(condLen)
	binary.NativeEndian.PutUint16(bc[2:], uint16(condLen+4))
	bc[4] = unix.AF_INET
	if ip.Is6() {
		bc[4] = unix.AF_INET6
	}
	bc[5] = byte(len(addr) * 8)
	binary.NativeEndian.PutUint32(bc[8:], 0xffffffff) // port -1: any
	copy(bc[12:], addr)

	attrLen := unix.SizeofRtAttr + len(bc)
	total := unix.SizeofNlMsghdr + sizeofInetDiagReqV2 + attrLen
	b := make([]byte, total)
	binary.NativeEndian.PutUint32(b[0:], uint32(total))
	binary.NativeEndian.PutUint16(b[4:], unix.SOCK_DIAG_BY_FAMILY)
	binary.NativeEndian.PutUint16(b[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(b[8:], seq)
	r := b[unix.SizeofNlMsghdr:]
	r[0] = fam
	r[1] = unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(r[4:], tcpEstablishedStateBit)
	a := r[sizeofInetDiagReqV2:]
	binary.NativeEndian.PutUint16(a[0:], uint16(attrLen))
	binary.NativeEndian.PutUint16(a[2:], inetDiagReqBytecode)
	copy(a[unix.SizeofRtAttr:], bc)
	return b
}

// openDiagSocket opens the sock_diag socket TCPConnections uses, in the
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

// diagCount runs one dump and counts the sockets it lists; one dump at a
// time on l's socket.
func (l *Linux) diagCount(fam uint8, ip netip.Addr) (int, error) {
	l.diagMu.Lock()
	defer l.diagMu.Unlock()
	fd := l.diagFD
	if fd < 0 {
		return 0, ErrClosed
	}
	seq := diagSeq.Add(1)
	if err := unix.Sendto(fd, diagRequest(fam, ip, seq), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("sending sock_diag request: %w", err)
	}
	buf := make([]byte, 32<<10)
	n := 0
	for {
		m, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue // a receive timeout makes it unrestartable
		}
		if err != nil {
			return 0, fmt.Errorf("reading sock_diag answer: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:m])
		if err != nil {
			return 0, fmt.Errorf("parsing sock_diag answer: %w", err)
		}
		for _, msg := range msgs {
			if msg.Header.Seq != seq {
				continue
			}
			switch msg.Header.Type {
			case unix.NLMSG_DONE:
				return n, nil
			case unix.NLMSG_ERROR:
				if len(msg.Data) >= 4 {
					if e := int32(binary.NativeEndian.Uint32(msg.Data)); e != 0 {
						return 0, fmt.Errorf("sock_diag: %w", unix.Errno(-e))
					}
				}
				return n, nil
			case unix.SOCK_DIAG_BY_FAMILY:
				n++
			}
		}
	}
}
