package bed

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ghostSeq numbers the ghosts of this process, for unique names.
var ghostSeq atomic.Int64

// Ghost is a stranger on the public network that answers ARP for one
// address from its own MAC, as the NIC of a fenced or crashed holder can
// for a moment after `ipmitool power reset` returned: a namespace of its
// own (<bed id>-gh<n>) whose eth0 is on br-pub, with no address
// configured; a responder in the harness answers every ARP request for
// the address (duplicate-address probes with sender 0.0.0.0 included)
// until its time is up. Close, or the bed's Close, removes it.
type Ghost struct {
	NS  string
	IP  netip.Addr
	MAC net.HardwareAddr

	b     *Bed
	port  string // its switch-side veth end
	p     *packet.Conn
	until time.Time // zero: until Close
	done  chan struct{}
	once  sync.Once
	err   error

	// mu guards answers.
	mu      sync.Mutex
	answers []GhostAnswer
}

// GhostAnswer is one ARP request a ghost answered.
type GhostAnswer struct {
	At       time.Time        // when the reply was sent
	From     net.HardwareAddr // the requester's MAC
	SenderIP netip.Addr       // the requester's IP; 0.0.0.0 for a probe
}

// AddGhost starts a ghost answering ARP for ip for d from now (d <= 0:
// until Close). ip must lie in the test network.
func (b *Bed) AddGhost(ip netip.Addr, d time.Duration) (*Ghost, error) {
	if !ip.Is4() || !TestNet.Contains(ip) {
		return nil, fmt.Errorf("bed: ghost for %s: want IPv4 inside %s", ip, TestNet)
	}
	n := ghostSeq.Add(1)
	g := &Ghost{
		NS:   fmt.Sprintf("%s-gh%d", b.id, n),
		IP:   ip,
		b:    b,
		port: fmt.Sprintf("gh%d-pub", n),
		done: make(chan struct{}),
	}
	if err := b.ipBatch("", []string{"netns add " + g.NS}); err != nil {
		return nil, err
	}
	if err := b.addCloser(g.Close); err != nil {
		_ = deleteNS(g.NS)
		return nil, err
	}
	if err := g.build(); err != nil {
		return nil, errors.Join(err, g.Close())
	}
	if d > 0 {
		g.until = time.Now().Add(d)
	}
	go g.serve()
	b.logf("ghost %s (%s) answers ARP for %s for %v", g.NS, g.MAC, ip, d)
	return g, nil
}

func (g *Ghost) build() error {
	b := g.b
	if err := b.ipBatch(b.sw, []string{
		fmt.Sprintf("link add %s type veth peer name eth0 netns %s", g.port, g.NS),
		fmt.Sprintf("link set %s master br-pub up", g.port),
	}); err != nil {
		return err
	}
	if err := b.ipBatch(g.NS, []string{"link set lo up", "link set eth0 up"}); err != nil {
		return err
	}
	h, err := netns.GetFromName(g.NS)
	if err != nil {
		return fmt.Errorf("bed: opening namespace %s: %w", g.NS, err)
	}
	defer h.Close()
	return inNS(h, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return fmt.Errorf("bed: ghost %s: %w", g.NS, err)
		}
		g.MAC = ifi.HardwareAddr
		p, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, nil)
		if err != nil {
			return fmt.Errorf("bed: ghost %s: ARP socket: %w", g.NS, err)
		}
		g.p = p
		return nil
	})
}

// serve answers requests for g.IP until g.until or Close.
func (g *Ghost) serve() {
	defer close(g.done)
	buf := make([]byte, 256)
	ip4 := g.IP.As4()
	for {
		now := time.Now()
		if !g.until.IsZero() && !now.Before(g.until) {
			return
		}
		dl := now.Add(100 * time.Millisecond)
		if !g.until.IsZero() && g.until.Before(dl) {
			dl = g.until
		}
		if err := g.p.SetReadDeadline(dl); err != nil {
			return
		}
		n, _, err := g.p.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed
		}
		f := buf[:n]
		// Ethernet (14) + ARP for IPv4 over Ethernet (28).
		if len(f) < 42 || f[12] != 0x08 || f[13] != 0x06 ||
			!bytes.Equal(f[14:20], []byte{0, 1, 8, 0, 6, 4}) || f[20] != 0 || f[21] != 1 ||
			!bytes.Equal(f[38:42], ip4[:]) {
			continue
		}
		if !g.until.IsZero() && !time.Now().Before(g.until) {
			return
		}
		sha := net.HardwareAddr(bytes.Clone(f[22:28]))
		spa := netip.AddrFrom4([4]byte(f[28:32]))
		reply := make([]byte, 42)
		copy(reply[0:6], sha)
		copy(reply[6:12], g.MAC)
		copy(reply[12:14], []byte{0x08, 0x06})
		copy(reply[14:20], []byte{0, 1, 8, 0, 6, 4})
		reply[21] = 2 // reply
		copy(reply[22:28], g.MAC)
		copy(reply[28:32], ip4[:])
		copy(reply[32:38], sha)
		copy(reply[38:42], f[28:32])
		if _, err := g.p.WriteTo(reply, &packet.Addr{HardwareAddr: sha}); err != nil {
			continue
		}
		g.mu.Lock()
		g.answers = append(g.answers, GhostAnswer{At: time.Now(), From: sha, SenderIP: spa})
		g.mu.Unlock()
	}
}

// Until is when the ghost stops answering (zero: at Close).
func (g *Ghost) Until() time.Time { return g.until }

// Done is closed when the ghost has stopped answering.
func (g *Ghost) Done() <-chan struct{} { return g.done }

// Answers lists the requests answered so far, in order.
func (g *Ghost) Answers() []GhostAnswer {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]GhostAnswer(nil), g.answers...)
}

// Close stops the responder and deletes the ghost's namespace (its veth
// goes with it). It is idempotent.
func (g *Ghost) Close() error {
	g.once.Do(func() {
		if g.p != nil {
			g.p.Close()
			<-g.done
		}
		if _, err := os.Stat(filepath.Join(netnsDir, g.NS)); err == nil {
			g.err = deleteNS(g.NS)
		}
		g.b.logf("ghost %s: removed", g.NS)
	})
	return g.err
}

// addCloser has the bed's Close run fn before it kills processes and
// deletes the namespaces (newest first).
func (b *Bed) addCloser(fn func() error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errClosed
	}
	b.closers = append(b.closers, fn)
	return nil
}
