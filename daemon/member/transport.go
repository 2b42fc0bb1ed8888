package member

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// frameMagic is the first byte of our frames on the gossip port, a UDP
// datagram or a TCP stream. memberlist v0.7.0 starts its packets and
// streams with a message type (net.go: 0 to 13), the version byte of an
// encrypted stream (security.go: 0 or 1) or its label header (label.go:
// 244); 0xC7 is none of them and far from both ranges, so the transport
// below can tell our frames from memberlist's by that one byte.
//
// On UDP a frame is: frameMagic, then the sealed frame (seal.go), the rest
// of the datagram. On TCP it is: frameMagic, a 4-byte big-endian length,
// the sealed frame; the receiver answers one byte, ackAccepted or
// ackRefused, and both sides close: one frame per connection, as
// memberlist's SendReliable.
const frameMagic = 0xc7

const (
	ackAccepted = 0
	ackRefused  = 1
)

// maxSealed bounds a sealed frame on a stream.
const maxSealed = maxReliable + sealOverhead

// errRefused is a reliable send that the peer received and refused.
var errRefused = errors.New("refused by the peer (another key, or it restarted; see its log)")

// frameTransport wraps memberlist's transport and multiplexes our frames
// on it. memberlist's own packets and streams pass through unchanged;
// ours are taken out of PacketCh and StreamCh and handed, with their
// source address, to receive. It owns two pump goroutines from
// newFrameTransport to Shutdown, and one per incoming stream while that
// stream's first bytes are read.
type frameTransport struct {
	inner memberlist.NodeAwareTransport
	// receive takes a sealed frame (it owns it) and its source; nil means
	// accepted. stream says it came over TCP.
	receive func(src netip.AddrPort, stream bool, sealed []byte) error
	log     *slog.Logger

	packets chan *memberlist.Packet
	streams chan net.Conn
	shut    chan struct{} // closed by Shutdown once inner is down
	once    sync.Once
	wg      sync.WaitGroup

	// mu guards reading: our incoming streams being read, closed by Shutdown.
	mu      sync.Mutex
	reading map[net.Conn]bool
	down    bool
}

var _ memberlist.NodeAwareTransport = (*frameTransport)(nil)

func newFrameTransport(inner memberlist.Transport, receive func(netip.AddrPort, bool, []byte) error, log *slog.Logger) *frameTransport {
	na, ok := inner.(memberlist.NodeAwareTransport)
	if !ok {
		na = nodeAwareShim{inner}
	}
	t := &frameTransport{
		inner:   na,
		receive: receive,
		log:     log,
		packets: make(chan *memberlist.Packet),
		streams: make(chan net.Conn),
		shut:    make(chan struct{}),
		reading: make(map[net.Conn]bool),
	}
	t.wg.Add(2)
	go t.pumpPackets()
	go t.pumpStreams()
	return t
}

// nodeAwareShim makes a plain Transport node-aware, as memberlist does.
type nodeAwareShim struct{ memberlist.Transport }

func (s nodeAwareShim) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return s.WriteTo(b, a.Addr)
}

func (s nodeAwareShim) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return s.DialTimeout(a.Addr, timeout)
}

func (t *frameTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.inner.FinalAdvertiseAddr(ip, port)
}

func (t *frameTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.inner.WriteTo(b, addr)
}

func (t *frameTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.inner.WriteToAddress(b, a)
}

func (t *frameTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.inner.DialTimeout(addr, timeout)
}

func (t *frameTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.inner.DialAddressTimeout(a, timeout)
}

func (t *frameTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }
func (t *frameTransport) StreamCh() <-chan net.Conn           { return t.streams }

// Shutdown shuts the inner transport down (memberlist still reads while it
// does, as memberlist's Shutdown expects), then stops the pumps, closes
// our streams being read and waits for every goroutine of t. It may be
// called more than once.
func (t *frameTransport) Shutdown() error {
	var err error
	t.once.Do(func() {
		err = t.inner.Shutdown()
		close(t.shut)
		t.mu.Lock()
		t.down = true
		for c := range t.reading {
			c.Close()
		}
		t.mu.Unlock()
		t.wg.Wait()
	})
	return err
}

// sendPacket sends a sealed frame as one datagram.
func (t *frameTransport) sendPacket(a memberlist.Address, sealed []byte) error {
	b := make([]byte, 0, 1+len(sealed))
	b = append(b, frameMagic)
	b = append(b, sealed...)
	_, err := t.inner.WriteToAddress(b, a)
	return err
}

// sendStream sends a sealed frame over a new connection and waits for the
// peer's verdict.
func (t *frameTransport) sendStream(a memberlist.Address, sealed []byte) error {
	conn, err := t.inner.DialAddressTimeout(a, tcpTimeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(tcpTimeout)); err != nil {
		return err
	}
	b := make([]byte, 5, 5+len(sealed))
	b[0] = frameMagic
	binary.BigEndian.PutUint32(b[1:], uint32(len(sealed)))
	// One Write: a frame on the wire is easy to tell (and, in tests, to capture).
	if _, err := conn.Write(append(b, sealed...)); err != nil {
		return err
	}
	var ack [1]byte
	if _, err := io.ReadFull(conn, ack[:]); err != nil {
		return fmt.Errorf("waiting for the peer to take the message: %w", err)
	}
	if ack[0] != ackAccepted {
		return errRefused
	}
	return nil
}

func (t *frameTransport) pumpPackets() {
	defer t.wg.Done()
	in := t.inner.PacketCh()
	for {
		select {
		case p := <-in:
			if len(p.Buf) > 0 && p.Buf[0] == frameMagic {
				src, _ := addrPortOf(p.From)
				_ = t.receive(src, false, p.Buf[1:]) // it logs why it refuses
				continue
			}
			select {
			case t.packets <- p:
			case <-t.shut:
				return
			}
		case <-t.shut:
			return
		}
	}
}

func (t *frameTransport) pumpStreams() {
	defer t.wg.Done()
	in := t.inner.StreamCh()
	for {
		select {
		case c := <-in:
			t.mu.Lock()
			if t.down {
				t.mu.Unlock()
				c.Close()
				continue
			}
			t.reading[c] = true
			t.mu.Unlock()
			t.wg.Add(1)
			go t.sortStream(c)
		case <-t.shut:
			return
		}
	}
}

// sortStream reads a stream's first byte: ours is read to its end here,
// memberlist's goes to memberlist with that byte put back.
func (t *frameTransport) sortStream(c net.Conn) {
	defer t.wg.Done()
	ours := false
	defer func() {
		t.mu.Lock()
		delete(t.reading, c)
		t.mu.Unlock()
		if ours {
			c.Close()
		}
	}()
	_ = c.SetDeadline(time.Now().Add(tcpTimeout))
	var first [1]byte
	if _, err := io.ReadFull(c, first[:]); err != nil {
		ours = true // nothing to pass on
		return
	}
	if first[0] != frameMagic {
		_ = c.SetDeadline(time.Time{}) // memberlist sets its own
		select {
		case t.streams <- &peekedConn{Conn: c, first: first[:]}:
		case <-t.shut:
			c.Close()
		}
		return
	}
	ours = true
	var n [4]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxSealed {
		t.log.Warn("dropping message: too long", "from", c.RemoteAddr(), "bytes", size)
		return
	}
	// Grow the buffer as bytes arrive: a length alone costs no memory.
	var buf bytes.Buffer
	if _, err := io.CopyN(&buf, c, int64(size)); err != nil {
		t.log.Debug("dropping message: truncated", "from", c.RemoteAddr(), "err", err)
		return
	}
	src, _ := addrPortOf(c.RemoteAddr())
	ack := byte(ackAccepted)
	if err := t.receive(src, true, buf.Bytes()); err != nil {
		ack = ackRefused
	}
	_, _ = c.Write([]byte{ack})
}

// peekedConn is a conn whose first bytes were read, and are read again.
type peekedConn struct {
	net.Conn
	first []byte
}

func (c *peekedConn) Read(p []byte) (int, error) {
	if len(c.first) > 0 {
		n := copy(p, c.first)
		c.first = c.first[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// addrPortOf is a net.Addr's IP and port: *net.UDPAddr and *net.TCPAddr
// from the real transport, "ip:port" from others (memberlist's
// MockAddress). Anything else (a net.Pipe's "pipe") has no source address,
// and a frame from it is refused.
func addrPortOf(a net.Addr) (netip.AddrPort, bool) {
	switch a := a.(type) {
	case *net.UDPAddr:
		return unmap(a.AddrPort()), true
	case *net.TCPAddr:
		return unmap(a.AddrPort()), true
	case nil:
		return netip.AddrPort{}, false
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}, false
	}
	return unmap(ap), true
}
