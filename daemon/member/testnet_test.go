package member

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// testNet is memberlist's MockNetwork with two things memberlist's tests do
// not need: a transport whose memberlist has shut down (or never started)
// swallows what is sent to it, as a dead host would, instead of blocking
// the sender forever on MockTransport's unbuffered channels; and
// partitions. MockNetwork is not safe for a NewTransport while others send,
// so a test makes all its transports before it starts any node.
type testNet struct {
	mock memberlist.MockNetwork
	done chan struct{} // closed at the end of the test: the pumps stop
	wg   sync.WaitGroup

	// mu guards group: transports talk only within one group.
	mu    sync.Mutex
	group map[string]int
}

func newTestNet(t *testing.T) *testNet {
	n := &testNet{done: make(chan struct{}), group: make(map[string]int)}
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
		shut:    make(chan struct{}),
	}
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
		select {
		case p := <-tr.inner.PacketCh():
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
		case <-tr.net.done:
			return
		}
	}
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
	return tr.inner.WriteTo(b, addr)
}

func (tr *testTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if tr.net.blocked(tr.addr, addr) {
		return nil, errPartitioned
	}
	return tr.inner.DialTimeout(addr, timeout)
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
