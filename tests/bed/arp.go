package bed

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// arpReply is an ARP reply to the client, stamped by the kernel when it
// reached the client's socket.
type arpReply struct {
	At  time.Time
	IP  netip.Addr
	MAC net.HardwareAddr
}

// arpConn is a raw ARP socket on the client's eth0. A reader goroutine
// puts every reply to its own sender address (self) on Replies; only one consumer
// may read them. The client's own requests are not seen (the socket
// ignores outgoing frames), nor gratuitous ARPs (their target is not the
// client). Replies carry the kernel's receive time (SO_TIMESTAMPNS), so a
// harness that is short of CPU still times them, and tells a late reply
// to an earlier request from a fresh one, correctly.
type arpConn struct {
	p       *packet.Conn
	hw      net.HardwareAddr
	frames  map[netip.Addr][]byte // requests built once, by target
	rc      syscall.RawConn
	self    netip.Addr
	Replies chan arpReply
	done    chan struct{}
	once    sync.Once
	closing atomic.Bool
	release func() // gives self back to the bed
}

// dialARP opens an arpConn inside the client's namespace, asking with a
// sender address no other open arpConn uses (see ClientARPAddrs).
func (b *Bed) dialARP() (*arpConn, error) {
	b.mu.Lock()
	if len(b.arpFree) == 0 {
		b.mu.Unlock()
		return nil, fmt.Errorf("bed: more than %d ARP sockets open at once", len(arpSenders()))
	}
	self := b.arpFree[0]
	b.arpFree = b.arpFree[1:]
	b.mu.Unlock()
	release := func() {
		b.mu.Lock()
		b.arpFree = append(b.arpFree, self)
		b.mu.Unlock()
	}
	var p *packet.Conn
	var hw net.HardwareAddr
	var rc syscall.RawConn
	err := inNS(b.nsh[b.cl], func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		hw = ifi.HardwareAddr
		p, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, nil)
		if err != nil {
			return err
		}
		if rc, err = tuneARPSocket(p); err != nil {
			p.Close()
			return err
		}
		return nil
	})
	if err != nil {
		release()
		return nil, fmt.Errorf("bed: opening an ARP socket in the client: %w", err)
	}
	a := &arpConn{p: p, hw: hw, frames: map[netip.Addr][]byte{}, rc: rc, self: self,
		Replies: make(chan arpReply, 8192), done: make(chan struct{}), release: release}
	go a.read()
	return a, nil
}

// tuneARPSocket drops the socket's copies of outgoing frames, gives it
// room for a burst of replies (one per public address per sample) and
// asks for receive timestamps.
func tuneARPSocket(p *packet.Conn) (syscall.RawConn, error) {
	rc, err := p.SyscallConn()
	if err != nil {
		return nil, err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		for _, o := range []struct {
			level, opt, v int
			name          string
		}{
			{unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING"},
			{unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8 << 20, "SO_RCVBUFFORCE"},
			{unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1, "SO_TIMESTAMPNS"},
		} {
			if e := unix.SetsockoptInt(int(fd), o.level, o.opt, o.v); e != nil {
				serr = fmt.Errorf("%s: %w", o.name, e)
				return
			}
		}
	})
	if err = errors.Join(err, serr); err != nil {
		return nil, err
	}
	return rc, nil
}

func (a *arpConn) read() {
	defer close(a.done)
	buf := make([]byte, 256)
	oob := make([]byte, 128)
	for {
		var n, oobn int
		var rerr error
		err := a.rc.Read(func(fd uintptr) bool {
			n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
			return rerr != unix.EAGAIN
		})
		if err != nil || rerr != nil {
			if a.closing.Load() {
				return
			}
			time.Sleep(time.Millisecond) // e.g. ENETDOWN while the link is down
			continue
		}
		r, ok := parseReply(buf[:n], oob[:oobn], a.self)
		if !ok {
			continue
		}
		select {
		case a.Replies <- r:
		default: // the consumer is not keeping up; it sees the loss as silence
		}
	}
}

// parseReply decodes an Ethernet frame holding an ARP reply to self, with
// its receive time from the control message (now, if there is none).
func parseReply(frame, oob []byte, self netip.Addr) (arpReply, bool) {
	const ethHeader = 14
	if len(frame) < ethHeader || binary.BigEndian.Uint16(frame[12:14]) != unix.ETH_P_ARP {
		return arpReply{}, false
	}
	var p arp.Packet
	if err := p.UnmarshalBinary(frame[ethHeader:]); err != nil {
		return arpReply{}, false
	}
	if p.Operation != arp.OperationReply || p.TargetIP != self {
		return arpReply{}, false
	}
	return arpReply{At: rxTime(oob), IP: p.SenderIP, MAC: append(net.HardwareAddr(nil), p.SenderHardwareAddr...)}, true
}

// rxTime reads SCM_TIMESTAMPNS (a struct timespec: two native int64s on
// the 64-bit platforms the tests run on) from oob.
func rxTime(oob []byte) time.Time {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err == nil {
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
				sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
				nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
				return time.Unix(sec, nsec)
			}
		}
	}
	return time.Now()
}

var broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// Request broadcasts one ARP request for ip from the client. Not safe for
// concurrent use.
func (a *arpConn) Request(ip netip.Addr) error {
	f, ok := a.frames[ip]
	if !ok {
		pkt, err := arp.NewPacket(arp.OperationRequest, a.hw, a.self, broadcast, ip)
		if err != nil {
			return fmt.Errorf("bed: ARP request for %s: %w", ip, err)
		}
		body, err := pkt.MarshalBinary()
		if err != nil {
			return fmt.Errorf("bed: ARP request for %s: %w", ip, err)
		}
		f = slices.Concat(broadcast, a.hw, []byte{0x08, 0x06}, body)
		a.frames[ip] = f
	}
	if _, err := a.p.WriteTo(f, &packet.Addr{HardwareAddr: broadcast}); err != nil {
		return fmt.Errorf("bed: ARP request for %s: %w", ip, err)
	}
	return nil
}

func (a *arpConn) Close() {
	a.once.Do(func() {
		a.closing.Store(true)
		a.p.Close()
		<-a.done
		a.release()
	})
}

// ARP asks from the client who has ip, repeating the request every 10 ms,
// and returns the first MAC that answers. It fails when ctx ends first.
func (b *Bed) ARP(ctx context.Context, ip netip.Addr) (net.HardwareAddr, error) {
	_, mac, err := b.waitARP(ctx, ip, nil, 10*time.Millisecond)
	return mac, err
}

// WaitARP asks from the client who has ip every millisecond until a MAC
// that match accepts (nil: any) answers, and returns when that answer
// reached the client and the MAC. To time a fault, arm a WatchARP before
// injecting it instead.
func (b *Bed) WaitARP(ctx context.Context, ip netip.Addr, match func(net.HardwareAddr) bool) (time.Time, net.HardwareAddr, error) {
	return b.waitARP(ctx, ip, match, time.Millisecond)
}

func (b *Bed) waitARP(ctx context.Context, ip netip.Addr, match func(net.HardwareAddr) bool, every time.Duration) (time.Time, net.HardwareAddr, error) {
	w, err := b.WatchARP([]netip.Addr{ip}, every, func(_ netip.Addr, hw net.HardwareAddr) bool {
		return match == nil || match(hw)
	})
	if err != nil {
		return time.Time{}, nil, err
	}
	defer w.Close()
	got, err := w.Wait(ctx)
	if err != nil {
		return time.Time{}, nil, err
	}
	return got[ip].At, got[ip].MAC, nil
}

// ARPAnswer is the first accepted answer for an address: when it reached
// the client (kernel timestamp) and from which MAC.
type ARPAnswer struct {
	At  time.Time
	MAC net.HardwareAddr
}

// ARPWatch probes public addresses from the client until each has been
// answered by a MAC its match accepts. It is the benchmark's "ARP answered
// by the new holder": arm it, inject the fault, Wait.
type ARPWatch struct {
	conn  *arpConn
	ips   []netip.Addr
	match func(netip.Addr, net.HardwareAddr) bool
	every time.Duration
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once

	// mu guards got.
	mu  sync.Mutex
	got map[netip.Addr]ARPAnswer
}

// WatchARP starts probing ips from the client, one request per address
// not yet answered every 'every' (0 means 1 ms; keep len(ips)/every in the
// low thousands per second), recording for each the first answer that
// match accepts. Close it when done.
func (b *Bed) WatchARP(ips []netip.Addr, every time.Duration, match func(ip netip.Addr, mac net.HardwareAddr) bool) (*ARPWatch, error) {
	if every == 0 {
		every = time.Millisecond
	}
	a, err := b.dialARP()
	if err != nil {
		return nil, err
	}
	w := &ARPWatch{conn: a, ips: slices.Clone(ips), match: match, every: every,
		stop: make(chan struct{}), done: make(chan struct{}), got: map[netip.Addr]ARPAnswer{}}
	go w.run()
	return w, nil
}

func (w *ARPWatch) run() {
	defer close(w.done)
	want := map[netip.Addr]bool{}
	for _, ip := range w.ips {
		want[ip] = true
	}
	t := time.NewTicker(w.every)
	defer t.Stop()
	for len(want) > 0 {
		for ip := range want {
			if err := w.conn.Request(ip); err != nil {
				// The client's link is up for the bed's life;
				// a send error means the bed is closing.
				return
			}
		}
	wait:
		for {
			select {
			case <-w.stop:
				return
			case r := <-w.conn.Replies:
				if want[r.IP] && w.match(r.IP, r.MAC) {
					delete(want, r.IP)
					w.mu.Lock()
					w.got[r.IP] = ARPAnswer{At: r.At, MAC: r.MAC}
					w.mu.Unlock()
				}
			case <-t.C:
				break wait
			}
		}
	}
}

// Wait waits until every address has its answer, and returns them. When
// ctx ends first it returns what it has and an error naming the rest.
func (w *ARPWatch) Wait(ctx context.Context) (map[netip.Addr]ARPAnswer, error) {
	select {
	case <-w.done:
	case <-ctx.Done():
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	got := maps.Clone(w.got)
	var missing []string
	for _, ip := range w.ips {
		if _, ok := got[ip]; !ok {
			missing = append(missing, ip.String())
		}
	}
	if len(missing) > 0 {
		err := ctx.Err()
		if err == nil {
			err = errClosed
		}
		return got, fmt.Errorf("bed: waiting for an ARP answer for %s: %w", strings.Join(missing, ", "), err)
	}
	return got, nil
}

// Close stops probing and closes the socket. It is idempotent.
func (w *ARPWatch) Close() {
	w.once.Do(func() {
		close(w.stop)
		<-w.done
		w.conn.Close()
	})
}

// ARPAll sends one ARP request for ip from the client and returns every
// distinct MAC that answered within window, sorted; none is an empty
// result, not an error. Two MACs mean two hosts claim ip.
func (b *Bed) ARPAll(ctx context.Context, ip netip.Addr, window time.Duration) ([]net.HardwareAddr, error) {
	a, err := b.dialARP()
	if err != nil {
		return nil, err
	}
	defer a.Close()
	if err := a.Request(ip); err != nil {
		return nil, err
	}
	seen := map[string]net.HardwareAddr{}
	deadline := time.NewTimer(window)
	defer deadline.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bed: ARP for %s: %w", ip, ctx.Err())
		case r := <-a.Replies:
			if r.IP == ip {
				seen[r.MAC.String()] = r.MAC
			}
		case <-deadline.C:
			return sortedMACs(seen), nil
		}
	}
}

func sortedMACs(m map[string]net.HardwareAddr) []net.HardwareAddr {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]net.HardwareAddr, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}
