package member

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// testNet is memberlist's MockNetwork with what memberlist's tests do
// not need: a transport whose memberlist has shut down (or never started)
// swallows what is sent to it, as a dead host would, instead of blocking
// the sender forever on MockTransport's unbuffered channels; partitions;
// streams whose RemoteAddr is the dialer's address (a MockTransport's are
// net.Pipe's, with none, and our frames need one); a tap that sees our
// frames on the wire; and packets injected with any source address.
// MockNetwork is not safe for a NewTransport while others send, so a test
// makes all its transports before it starts any node.
type testNet struct {
	mock   memberlist.MockNetwork
	byAddr map[string]*testTransport // written only by newTransport
	done   chan struct{}             // closed at the end of the test: the pumps stop
	wg     sync.WaitGroup

	// mu guards group and tap: transports talk only within one group.
	mu    sync.Mutex
	group map[string]int
	tap   func(w wire)
}

// wire is one of our frames as sent: a datagram, or a stream's bytes.
type wire struct {
	from, to string
	stream   bool
	b        []byte
}

// newTestNet makes a network for t. Call it from t's goroutine before any
// node starts: its cleanup waits for the goroutines t started.
func newTestNet(t *testing.T) *testNet {
	labelTest(t)
	n := &testNet{done: make(chan struct{}), group: make(map[string]int), byAddr: make(map[string]*testTransport)}
	t.Cleanup(func() {
		// memberlist's Shutdown does not wait for a probe or gossip round
		// in flight; keep delivering until those have ended too.
		waitGoroutines(t, "(*testTransport).pump")
		close(n.done)
		n.wg.Wait()
	})
	return n
}

// testTransport wraps a MockTransport. It implements only
// memberlist.Transport, so memberlist addresses peers by address, never by
// name, and two clusters with the same node names can share one testNet.
type testTransport struct {
	net     *testNet
	inner   *memberlist.MockTransport
	addr    string
	packets chan *memberlist.Packet
	streams chan net.Conn
	inject  chan *memberlist.Packet // delivered as if from the wire

	mu   sync.Mutex
	up   bool          // a memberlist is reading packets and streams
	shut chan struct{} // closed by Shutdown
}

func (n *testNet) newTransport(name string) *testTransport {
	inner := n.mock.NewTransport(name)
	ip, port, err := inner.FinalAdvertiseAddr("", 0)
	if err != nil {
		panic(err)
	}
	tr := &testTransport{
		net:     n,
		inner:   inner,
		addr:    net.JoinHostPort(ip.String(), strconv.Itoa(port)),
		packets: make(chan *memberlist.Packet),
		streams: make(chan net.Conn),
		inject:  make(chan *memberlist.Packet),
		shut:    make(chan struct{}),
	}
	n.byAddr[tr.addr] = tr
	n.wg.Add(2)
	go tr.pumpPackets()
	go tr.pumpStreams()
	return tr
}

// addrPort is the transport's address, as peers configure it.
func (tr *testTransport) addrPort() netip.AddrPort { return netip.MustParseAddrPort(tr.addr) }

// open reports the shutdown channel if a memberlist reads from tr.
func (tr *testTransport) open() (chan struct{}, bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.shut, tr.up
}

func (tr *testTransport) pumpPackets() {
	defer tr.net.wg.Done()
	for {
		var p *memberlist.Packet
		select {
		case p = <-tr.inner.PacketCh():
		case p = <-tr.inject:
		case <-tr.net.done:
			return
		}
		shut, up := tr.open()
		if !up {
			continue
		}
		select {
		case tr.packets <- p:
		case <-shut:
		case <-tr.net.done:
			return
		}
	}
}

// injectPacket delivers b to tr as a datagram from from.
func (tr *testTransport) injectPacket(from netip.AddrPort, b []byte) {
	tr.inject <- &memberlist.Packet{Buf: b, From: testAddr(from.String()), Timestamp: time.Now()}
}

// setTap has f called with each of our frames sent (nil: none).
func (n *testNet) setTap(f func(w wire)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.tap = f
}

func (n *testNet) tapped(w wire) {
	n.mu.Lock()
	f := n.tap
	n.mu.Unlock()
	if f != nil && len(w.b) > 0 && w.b[0] == frameMagic {
		w.b = slices.Clone(w.b)
		f(w)
	}
}

// testAddr is a net.Addr "ip:port".
type testAddr string

func (a testAddr) Network() string { return "test" }
func (a testAddr) String() string  { return string(a) }

// addrConn is one end of a net.Pipe with addresses, and a tap on writes.
type addrConn struct {
	net.Conn
	local, remote testAddr
	tap           func(b []byte) // nil: none
}

func (c *addrConn) LocalAddr() net.Addr  { return c.local }
func (c *addrConn) RemoteAddr() net.Addr { return c.remote }

func (c *addrConn) Write(b []byte) (int, error) {
	if c.tap != nil {
		c.tap(b)
	}
	return c.Conn.Write(b)
}

func (tr *testTransport) pumpStreams() {
	defer tr.net.wg.Done()
	for {
		select {
		case c := <-tr.inner.StreamCh():
			shut, up := tr.open()
			if !up {
				c.Close()
				continue
			}
			select {
			case tr.streams <- c:
			case <-shut:
				c.Close()
			case <-tr.net.done:
				c.Close()
				return
			}
		case <-tr.net.done:
			return
		}
	}
}

// partition puts the transports at addrs in their own group.
func (n *testNet) partition(group int, trs ...*testTransport) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, tr := range trs {
		n.group[tr.addr] = group
	}
}

func (n *testNet) blocked(from, to string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.group[from] != n.group[to]
}

var errPartitioned = errors.New("test network: partitioned")

func (tr *testTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	// memberlist calls this when it starts: from now on it reads.
	tr.mu.Lock()
	if !tr.up {
		tr.up = true
		tr.shut = make(chan struct{})
	}
	tr.mu.Unlock()
	return tr.inner.FinalAdvertiseAddr(ip, port)
}

func (tr *testTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if tr.net.blocked(tr.addr, addr) {
		return time.Now(), nil // lost on the wire
	}
	tr.net.tapped(wire{from: tr.addr, to: addr, b: b})
	return tr.inner.WriteTo(b, addr)
}

// DialTimeout hands the far end of a pipe to the transport at addr, as
// MockTransport does, but with addresses: the listener sees this
// transport's address as the stream's source.
func (tr *testTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if tr.net.blocked(tr.addr, addr) {
		return nil, errPartitioned
	}
	dest := tr.net.byAddr[addr]
	if dest == nil {
		return nil, fmt.Errorf("test network: no route to %s", addr)
	}
	near, far := net.Pipe()
	first := true
	c := &addrConn{Conn: near, local: testAddr(tr.addr), remote: testAddr(addr), tap: func(b []byte) {
		if first {
			first = false
			tr.net.tapped(wire{from: tr.addr, to: addr, stream: true, b: b})
		}
	}}
	if err := dest.inner.IngestStream(&addrConn{Conn: far, local: testAddr(addr), remote: testAddr(tr.addr)}); err != nil {
		return nil, err
	}
	return c, nil
}

func (tr *testTransport) PacketCh() <-chan *memberlist.Packet { return tr.packets }
func (tr *testTransport) StreamCh() <-chan net.Conn           { return tr.streams }

func (tr *testTransport) Shutdown() error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.up {
		tr.up = false
		close(tr.shut)
	}
	return nil
}
