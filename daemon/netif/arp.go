package netif

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/mdlayher/socket"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// ARP and neighbour discovery go through raw AF_PACKET sockets: a public
// interface often has no IPv4 address of its own before the node adds the
// public one, which rules out an ARP client that needs one, and the probes
// need sender 0.0.0.0 anyway.
//
// The sockets are long-lived, one per EtherType (ARP, IPv6) for every
// interface of the namespace, opened on first use: closing a packet socket
// waits for an RCU grace period (synchronize_net in packet_release), which
// measured 4-28 ms (median 12 ms) on the project VM, so a socket per call
// would double the cost of a takeover. Frames are sent to an interface by
// index; received ones are handed to the probes waiting on that interface.
// While no probe waits, a filter drops everything in the kernel.

// arpLink is what Probe and Announce need from a link.
type arpLink struct {
	index int
	mac   net.HardwareAddr
	noARP bool // loopback or IFF_NOARP: nothing to resolve on it
}

func (l *Linux) arpLink(iface string) (arpLink, error) {
	index, err := l.ifIndex(iface)
	if err != nil {
		return arpLink{}, err
	}
	flags, err := l.ifFlags(iface)
	if err != nil {
		return arpLink{}, err
	}
	if flags&(unix.IFF_NOARP|unix.IFF_LOOPBACK) != 0 {
		return arpLink{index: index, noARP: true}, nil
	}
	hwType, mac, err := l.ifHardware(iface)
	if err != nil {
		return arpLink{}, err
	}
	if hwType != unix.ARPHRD_ETHER {
		return arpLink{}, fmt.Errorf("%s (hardware type %d): %w", iface, hwType, ErrUnsupportedLink)
	}
	return arpLink{index: index, mac: mac, noARP: false}, nil
}

// family returns the EtherType that resolves ip.
func family(ip netip.Addr) (uint16, bool) {
	switch {
	case ip.Is4():
		return unix.ETH_P_ARP, true
	case ip.Is6() && !ip.Is4In6() && ip.Zone() == "":
		return unix.ETH_P_IPV6, true
	}
	return 0, false
}

// claimFunc reads a received frame: the address it claims and the
// hardware address claiming it.
type claimFunc func(frame []byte) (netip.Addr, net.HardwareAddr, bool)

// pktSocket is one long-lived packet socket for one EtherType.
type pktSocket struct {
	proto  uint16
	conn   *socket.Conn
	accept []bpf.RawInstruction // the filter while probes wait
	claim  claimFunc

	dead chan struct{} // closed when the reader has stopped
	err  error         // why it stopped; set before dead is closed

	// mu guards waiters and nwait, and the filter that depends on nwait.
	mu      sync.Mutex
	waiters map[waitKey][]*probeWaiter
	nwait   int
}

// waitKey is what an answer must match: the interface it came in on and
// the address it claims.
type waitKey struct {
	index int
	ip    netip.Addr
}

// probeWaiter is one Probe waiting for an answer.
type probeWaiter struct {
	key waitKey
	own net.HardwareAddr      // our own frames answer nothing
	got chan net.HardwareAddr // capacity 1; the first answer
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// packetSocket returns the live socket for proto, opening it (in l's
// namespace) when there is none or the last one failed.
func (l *Linux) packetSocket(proto uint16) (*pktSocket, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return nil, ErrClosed
	}
	if s := l.socks[proto]; s != nil {
		select {
		case <-s.dead:
			l.log.Warn("packet socket failed, opening another", "err", s.err)
			s.conn.Close()
		default:
			return s, nil
		}
	}
	s := &pktSocket{proto: proto, dead: make(chan struct{}), waiters: map[waitKey][]*probeWaiter{}}
	if proto == unix.ETH_P_ARP {
		s.accept, s.claim = arpFilter, arpClaim // the bind already picks ARP only
	} else {
		s.accept, s.claim = naFilter, naClaim
	}
	err := l.inNS(func() error {
		c, err := socket.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0, "packet", nil)
		if err != nil {
			return err
		}
		// Filter before bind, so that nothing is queued unfiltered; a big
		// send buffer for bursts of announcements (SO_SNDBUFFORCE as root).
		err = c.SetBPF(dropAll)
		if err == nil {
			err = c.SetWriteBuffer(4 << 20)
		}
		if err == nil {
			err = c.SetReadBuffer(1 << 20)
		}
		if err == nil {
			// Ifindex 0: every interface of the namespace.
			err = c.Bind(&unix.SockaddrLinklayer{Protocol: htons(proto)})
		}
		if err != nil {
			c.Close()
			return err
		}
		s.conn = c
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("opening packet socket: %w", err)
	}
	if l.socks == nil {
		l.socks = map[uint16]*pktSocket{}
	}
	l.socks[proto] = s
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		s.read()
	}()
	return s, nil
}

// read hands received frames to the waiting probes until the socket is
// closed or fails.
func (s *pktSocket) read() {
	buf := make([]byte, 2048) // only headers matter; longer frames are cut
	for {
		n, from, err := s.conn.Recvfrom(buf, 0)
		if err != nil {
			s.err = err
			close(s.dead)
			return
		}
		sll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || sll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		s.dispatch(sll.Ifindex, buf[:n])
	}
}

// dispatch hands a frame received on the interface with index to the
// probes it answers.
func (s *pktSocket) dispatch(index int, frame []byte) {
	ip, mac, ok := s.claim(frame)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.waiters[waitKey{index, ip}] {
		if bytes.Equal(mac, w.own) {
			continue
		}
		select {
		case w.got <- slices.Clone(mac):
		default: // answered already
		}
	}
}

func (s *pktSocket) addWaiter(w *probeWaiter) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nwait == 0 {
		if err := s.conn.SetBPF(s.accept); err != nil {
			return fmt.Errorf("setting socket filter: %w", err)
		}
	}
	s.waiters[w.key] = append(s.waiters[w.key], w)
	s.nwait++
	return nil
}

func (s *pktSocket) removeWaiter(w *probeWaiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := slices.DeleteFunc(s.waiters[w.key], func(x *probeWaiter) bool { return x == w })
	if len(ws) == 0 {
		delete(s.waiters, w.key)
	} else {
		s.waiters[w.key] = ws
	}
	s.nwait--
	if s.nwait == 0 {
		// If this fails the reader just sees more frames than it needs.
		_ = s.conn.SetBPF(dropAll)
	}
}

// send writes one frame to the interface with index, waiting up to a
// second for room in the send buffer.
func (s *pktSocket) send(index int, frame []byte) error {
	to := &unix.SockaddrLinklayer{Ifindex: index, Protocol: htons(s.proto), Halen: 6}
	copy(to.Addr[:], frame[0:6])
	rc, err := s.conn.SyscallConn()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(time.Second)
	for {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = unix.Sendto(int(fd), frame, 0, to) }); err != nil {
			return err
		}
		if !errors.Is(serr, unix.EAGAIN) || time.Now().After(deadline) {
			return serr
		}
		time.Sleep(time.Millisecond)
	}
}

// Probe asks whether another host answers for ip on iface, without
// claiming ip: for IPv4 one ARP probe (broadcast request, sender hardware
// address = iface's, sender IP 0.0.0.0, target ip, target hardware 0), for
// IPv6 one duplicate-address-detection neighbour solicitation (from ::).
// It then waits up to wait and returns the first hardware address other
// than iface's own that claims ip (an ARP reply or request sent from ip; a
// neighbour advertisement for ip). nil, nil means nobody answered within
// wait; nil, ctx.Err() that ctx ended first.
//
// One probe is sent per call: the caller decides how often to retry. Only
// hosts whose kernel still runs can answer; a crashed one never does. On
// a loopback or NOARP interface nobody can answer: nil, nil at once.
// Concurrent probes, of the same or different addresses, are fine.
func (l *Linux) Probe(ctx context.Context, iface string, ip netip.Addr, wait time.Duration) (net.HardwareAddr, error) {
	if wait <= 0 {
		return nil, fmt.Errorf("probing %s on %s: wait %v is not positive", ip, iface, wait)
	}
	proto, ok := family(ip)
	if !ok {
		return nil, fmt.Errorf("probing %s on %s: not an IPv4 or IPv6 address", ip, iface)
	}
	lk, err := l.arpLink(iface)
	if err != nil {
		return nil, fmt.Errorf("probing %s on %s: %w", ip, iface, err)
	}
	if lk.noARP {
		return nil, nil
	}
	var frame []byte
	if proto == unix.ETH_P_ARP {
		if frame, err = arpProbeFrame(lk.mac, ip); err != nil {
			return nil, fmt.Errorf("probing %s on %s: %w", ip, iface, err)
		}
	} else {
		frame = nsProbeFrame(lk.mac, ip)
	}
	s, err := l.packetSocket(proto)
	if err != nil {
		return nil, fmt.Errorf("probing %s on %s: %w", ip, iface, err)
	}

	// Wait before sending: the answer comes within ~0.1 ms.
	w := &probeWaiter{key: waitKey{lk.index, ip}, own: lk.mac, got: make(chan net.HardwareAddr, 1)}
	if err := s.addWaiter(w); err != nil {
		return nil, fmt.Errorf("probing %s on %s: %w", ip, iface, err)
	}
	defer s.removeWaiter(w)
	if err := s.send(lk.index, frame); err != nil {
		return nil, fmt.Errorf("probing %s on %s: %w", ip, iface, err)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case mac := <-w.got:
		return mac, nil
	case <-t.C:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.dead:
		return nil, fmt.Errorf("probing %s on %s: reading answers: %w", ip, iface, s.err)
	}
}

// Announce tells the neighbours on iface that ip is now at iface's
// hardware address, as CTDB's ctdb_sys_send_arp does: for IPv4 two
// gratuitous ARPs, a request (sip = tip = ip, tha = 0) and a reply
// (tha = sha), both broadcast; for IPv6 one unsolicited neighbour
// advertisement to ff02::1 with the Override flag and a target link-layer
// option, hop limit 255. Neighbours update an entry they have; with the
// default arp_accept=0 they create none. One round per call: the caller
// repeats it (CTDB: 3 rounds, 1.1 s apart). On a loopback or NOARP
// interface it does nothing.
func (l *Linux) Announce(iface string, ip netip.Addr) error {
	proto, ok := family(ip)
	if !ok {
		return fmt.Errorf("announcing %s on %s: not an IPv4 or IPv6 address", ip, iface)
	}
	lk, err := l.arpLink(iface)
	if err != nil {
		return fmt.Errorf("announcing %s on %s: %w", ip, iface, err)
	}
	if lk.noARP {
		return nil
	}
	var frames [][]byte
	if proto == unix.ETH_P_ARP {
		if frames, err = garpFrames(lk.mac, ip); err != nil {
			return fmt.Errorf("announcing %s on %s: %w", ip, iface, err)
		}
	} else {
		frames = [][]byte{unsolicitedNAFrame(lk.mac, ip)}
	}
	s, err := l.packetSocket(proto)
	if err != nil {
		return fmt.Errorf("announcing %s on %s: %w", ip, iface, err)
	}
	for _, f := range frames {
		if err := s.send(lk.index, f); err != nil {
			return fmt.Errorf("announcing %s on %s: %w", ip, iface, err)
		}
	}
	return nil
}
