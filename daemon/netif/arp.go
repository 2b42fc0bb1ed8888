package netif

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// ARP and neighbour discovery go through raw AF_PACKET sockets, one opened
// per call (measured at a few tens of µs, see the package tests): a
// public interface often has no IPv4 address of its own before the node
// adds the public one, which rules out an ARP client that needs one, and
// the probes need sender 0.0.0.0 anyway.

// arpLink is what Probe and Announce need from a link.
type arpLink struct {
	ifi   *net.Interface
	noARP bool // loopback or IFF_NOARP: nothing to resolve on it
}

func (l *Linux) arpLink(iface string) (arpLink, error) {
	lk, err := l.link(iface)
	if err != nil {
		return arpLink{}, err
	}
	a := lk.Attrs()
	ifi := &net.Interface{Index: a.Index, MTU: a.MTU, Name: a.Name, HardwareAddr: a.HardwareAddr, Flags: a.Flags}
	noARP := a.RawFlags&(unix.IFF_NOARP|unix.IFF_LOOPBACK) != 0
	if !noARP && len(a.HardwareAddr) != 6 {
		return arpLink{}, fmt.Errorf("%s (%s, %d-byte address): %w", iface, lk.Type(), len(a.HardwareAddr), ErrUnsupportedLink)
	}
	return arpLink{ifi: ifi, noARP: noARP}, nil
}

// listen opens a raw packet socket on ifi in l's namespace, bound to the
// EtherType proto, with filter applied before the bind.
func (l *Linux) listen(ifi *net.Interface, proto int, filter []bpf.RawInstruction) (*packet.Conn, error) {
	var c *packet.Conn
	err := l.inNS(func() error {
		var err error
		c, err = packet.Listen(ifi, packet.Raw, proto, &packet.Config{Filter: filter})
		return err
	})
	return c, err
}

func family(ip netip.Addr) (int, bool) {
	switch {
	case ip.Is4():
		return unix.ETH_P_ARP, true
	case ip.Is6() && !ip.Is4In6() && ip.Zone() == "":
		return unix.ETH_P_IPV6, true
	}
	return 0, false
}

// Probe asks whether another host answers for ip on iface, without
// claiming ip: for IPv4 one ARP probe (broadcast request, sender hardware
// address = iface's, sender IP 0.0.0.0, target ip, target hardware 0), for
// IPv6 one duplicate-address-detection neighbour solicitation (from ::).
// It then reads answers for up to wait and returns the first hardware
// address other than iface's own that claims ip (an ARP reply or request
// sent from ip; a neighbour advertisement for ip). nil, nil means nobody
// answered within wait; nil, ctx.Err() that ctx ended first.
//
// One probe is sent per call: the caller decides how often to retry. Only
// hosts whose kernel still runs can answer; a crashed one never does. On
// a loopback or NOARP interface nobody can answer: nil, nil at once.
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
	own := lk.ifi.HardwareAddr

	var frame []byte
	var filter []bpf.RawInstruction
	answer := arpAnswer
	if proto == unix.ETH_P_ARP {
		if frame, err = arpProbeFrame(own, ip); err != nil {
			return nil, fmt.Errorf("probing %s on %s: %w", ip, iface, err)
		}
	} else {
		frame, filter, answer = nsProbeFrame(own, ip), naFilter, naAnswer
	}

	// Listen before sending: the answer comes within ~0.1 ms.
	c, err := l.listen(lk.ifi, proto, filter)
	if err != nil {
		return nil, fmt.Errorf("probing %s on %s: %w", ip, iface, err)
	}
	defer c.Close()
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return nil, fmt.Errorf("probing %s on %s: %w", ip, iface, err)
	}
	// A deadline in the past wakes the read below when ctx ends.
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.WriteTo(frame, &packet.Addr{HardwareAddr: frame[0:6]}); err != nil {
		return nil, fmt.Errorf("probing %s on %s: %w", ip, iface, err)
	}
	buf := make([]byte, 2048) // only headers matter; longer frames are cut
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, nil
			}
			return nil, fmt.Errorf("probing %s on %s: %w", ip, iface, err)
		}
		if mac, ok := answer(buf[:n], ip, own); ok {
			return mac, nil
		}
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
		if frames, err = garpFrames(lk.ifi.HardwareAddr, ip); err != nil {
			return fmt.Errorf("announcing %s on %s: %w", ip, iface, err)
		}
	} else {
		frames = [][]byte{unsolicitedNAFrame(lk.ifi.HardwareAddr, ip)}
	}
	c, err := l.listen(lk.ifi, proto, dropAll)
	if err != nil {
		return fmt.Errorf("announcing %s on %s: %w", ip, iface, err)
	}
	defer c.Close()
	for _, f := range frames {
		if _, err := c.WriteTo(f, &packet.Addr{HardwareAddr: f[0:6]}); err != nil {
			return fmt.Errorf("announcing %s on %s: %w", ip, iface, err)
		}
	}
	return nil
}
