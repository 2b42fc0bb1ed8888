package netif

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"golang.org/x/net/bpf"
)

// Frames for ARP and IPv6 neighbour discovery, built and read as bytes so
// that they can be tested without a socket. All are whole Ethernet frames
// for an AF_PACKET SOCK_RAW socket.

var zeroMAC = net.HardwareAddr{0, 0, 0, 0, 0, 0}

const (
	icmp6NS = 135 // neighbour solicitation
	icmp6NA = 136 // neighbour advertisement

	ndOptTargetLLA = 2 // target link-layer address option

	naFlagOverride = 0x20
)

var ip6AllNodes = netip.MustParseAddr("ff02::1")

func ethFrame(dst, src net.HardwareAddr, typ ethernet.EtherType, payload []byte) []byte {
	f := ethernet.Frame{Destination: dst, Source: src, EtherType: typ, Payload: payload}
	b, _ := f.MarshalBinary() // never fails; pads to the 60-byte minimum
	return b
}

func arpFrame(op arp.Operation, sha net.HardwareAddr, sip netip.Addr, tha net.HardwareAddr, tip netip.Addr) ([]byte, error) {
	p, err := arp.NewPacket(op, sha, sip, tha, tip)
	if err != nil {
		return nil, err
	}
	b, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return ethFrame(ethernet.Broadcast, sha, ethernet.EtherTypeARP, b), nil
}

// arpProbeFrame is a duplicate-address probe (RFC 5227, `arping -D`):
// a broadcast request from sender 0.0.0.0 for ip, so that it asks without
// claiming ip and without touching anyone's ARP cache. A host holding ip
// answers with a unicast reply.
func arpProbeFrame(mac net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	return arpFrame(arp.OperationRequest, mac, netip.IPv4Unspecified(), zeroMAC, ip)
}

// garpFrames are the two gratuitous ARPs CTDB sends (ctdb_sys_send_arp),
// both broadcast: a request with sip = tip = ip and tha = 0, and a reply
// with sip = tip = ip and tha = sha. The kernel's arp_is_garp accepts both
// as gratuitous, so either updates an existing entry even within its
// locktime (a plain broadcast reply with tha = ff:ff:… would not).
func garpFrames(mac net.HardwareAddr, ip netip.Addr) ([][]byte, error) {
	req, err := arpFrame(arp.OperationRequest, mac, ip, zeroMAC, ip)
	if err != nil {
		return nil, err
	}
	rep, err := arpFrame(arp.OperationReply, mac, ip, mac, ip)
	if err != nil {
		return nil, err
	}
	return [][]byte{req, rep}, nil
}

// arpClaim reads frame as an ARP packet and returns the address its
// sender claims and the sender's hardware address: a reply from ip, or a
// request sent from ip (its owner announcing or resolving). Probes (sender
// 0.0.0.0) claim nothing.
func arpClaim(frame []byte) (netip.Addr, net.HardwareAddr, bool) {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(frame); err != nil || f.EtherType != ethernet.EtherTypeARP {
		return netip.Addr{}, nil, false
	}
	var p arp.Packet
	if err := p.UnmarshalBinary(f.Payload); err != nil {
		return netip.Addr{}, nil, false
	}
	if p.Operation != arp.OperationReply && p.Operation != arp.OperationRequest {
		return netip.Addr{}, nil, false
	}
	if !p.SenderIP.Is4() || p.SenderIP.IsUnspecified() {
		return netip.Addr{}, nil, false
	}
	return p.SenderIP, p.SenderHardwareAddr, true
}

// solicitedNode is ip's solicited-node multicast address (ff02::1:ffXX:XXXX).
func solicitedNode(ip netip.Addr) netip.Addr {
	a := ip.As16()
	return netip.AddrFrom16([16]byte{0xff, 0x02, 10: 0, 11: 1, 12: 0xff, 13: a[13], 14: a[14], 15: a[15]})
}

// multicastMAC is the Ethernet group address of an IPv6 multicast address.
func multicastMAC(group netip.Addr) net.HardwareAddr {
	a := group.As16()
	return net.HardwareAddr{0x33, 0x33, a[12], a[13], a[14], a[15]}
}

// ip6Frame wraps an ICMPv6 message (checksum field zero) in IPv6 with hop
// limit 255, as neighbour discovery requires, fills the checksum and
// frames it.
func ip6Frame(dstMAC, srcMAC net.HardwareAddr, src, dst netip.Addr, icmp []byte) []byte {
	binary.BigEndian.PutUint16(icmp[2:4], icmp6Checksum(src, dst, icmp))
	b := make([]byte, 40+len(icmp))
	b[0] = 6 << 4
	binary.BigEndian.PutUint16(b[4:6], uint16(len(icmp)))
	b[6] = 58 // ICMPv6
	b[7] = 255
	s, d := src.As16(), dst.As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
	copy(b[40:], icmp)
	return ethFrame(dstMAC, srcMAC, ethernet.EtherTypeIPv6, b)
}

// icmp6Checksum is the ICMPv6 checksum of msg (whose checksum field is
// zero) over the IPv6 pseudo-header (RFC 4443 §2.3).
func icmp6Checksum(src, dst netip.Addr, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	s, d := src.As16(), dst.As16()
	add(s[:])
	add(d[:])
	var l [8]byte
	binary.BigEndian.PutUint32(l[0:4], uint32(len(msg)))
	l[7] = 58
	add(l[:])
	add(msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// nsProbeFrame is IPv6 duplicate-address detection (RFC 4862 §5.4.2): a
// neighbour solicitation for ip from the unspecified address to ip's
// solicited-node group, without a source link-layer option. A host that
// holds ip answers with an advertisement to all nodes.
func nsProbeFrame(mac net.HardwareAddr, ip netip.Addr) []byte {
	icmp := make([]byte, 24)
	icmp[0] = icmp6NS
	t := ip.As16()
	copy(icmp[8:24], t[:])
	group := solicitedNode(ip)
	return ip6Frame(multicastMAC(group), mac, netip.IPv6Unspecified(), group, icmp)
}

// unsolicitedNAFrame is CTDB's IPv6 "gratuitous ARP": a neighbour
// advertisement for ip, from ip to all nodes (ff02::1), with the Override
// flag and a target link-layer option carrying mac. Neighbours that have an
// entry for ip switch it to mac; others ignore it.
func unsolicitedNAFrame(mac net.HardwareAddr, ip netip.Addr) []byte {
	icmp := make([]byte, 32)
	icmp[0] = icmp6NA
	icmp[4] = naFlagOverride
	t := ip.As16()
	copy(icmp[8:24], t[:])
	icmp[24] = ndOptTargetLLA
	icmp[25] = 1 // length in units of 8 bytes
	copy(icmp[26:32], mac)
	return ip6Frame(multicastMAC(ip6AllNodes), mac, ip, ip6AllNodes, icmp)
}

// naClaim reads frame as a neighbour advertisement and returns its target
// and the advertised hardware address (the target link-layer option, else
// the frame's source).
func naClaim(frame []byte) (netip.Addr, net.HardwareAddr, bool) {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(frame); err != nil || f.EtherType != ethernet.EtherTypeIPv6 {
		return netip.Addr{}, nil, false
	}
	b := f.Payload
	// No extension headers: neighbour discovery never carries any.
	if len(b) < 40+24 || b[0]>>4 != 6 || b[6] != 58 || b[7] != 255 {
		return netip.Addr{}, nil, false
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	if plen < 24 || 40+plen > len(b) {
		return netip.Addr{}, nil, false
	}
	icmp := b[40 : 40+plen]
	if icmp[0] != icmp6NA || icmp[1] != 0 {
		return netip.Addr{}, nil, false
	}
	target := netip.AddrFrom16([16]byte(icmp[8:24]))
	if target.IsMulticast() {
		return netip.Addr{}, nil, false
	}
	mac := f.Source
	for opts := icmp[24:]; len(opts) >= 8; {
		n := int(opts[1]) * 8
		if n == 0 || n > len(opts) {
			break
		}
		if opts[0] == ndOptTargetLLA {
			mac = opts[2:8]
		}
		opts = opts[n:]
	}
	return target, mac, true
}

// arpFilter passes ARP replies, and requests whose sender and target
// address are the same (announcements), to a probe socket. Ordinary
// requests, which a busy LAN sends by the thousand (the test bed's
// invariant checker sends ~18,000 a second), never wake it: an owner
// answering a probe replies, and one announcing itself sends SPA = TPA.
var arpFilter = mustAssemble([]bpf.Instruction{
	bpf.LoadAbsolute{Off: 14 + 6, Size: 2},                  // ARP operation
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: 2, SkipTrue: 5},    // reply: pass
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 1, SkipTrue: 5}, // not a request: drop
	bpf.LoadAbsolute{Off: 14 + 24, Size: 4},                 // target IP
	bpf.TAX{},
	bpf.LoadAbsolute{Off: 14 + 14, Size: 4},                     // sender IP
	bpf.JumpIfX{Cond: bpf.JumpEqual, SkipTrue: 0, SkipFalse: 1}, // SPA == TPA: pass
	bpf.RetConstant{Val: 0xffff},
	bpf.RetConstant{Val: 0},
})

// naFilter passes only IPv6 ICMPv6 neighbour advertisements without
// extension headers, so a probe socket bound to all of IPv6 wakes only for
// those.
var naFilter = mustAssemble([]bpf.Instruction{
	bpf.LoadAbsolute{Off: 12, Size: 2},                            // EtherType
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0x86dd, SkipTrue: 5},  // not IPv6: drop
	bpf.LoadAbsolute{Off: 14 + 6, Size: 1},                        // next header
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 58, SkipTrue: 3},      // not ICMPv6: drop
	bpf.LoadAbsolute{Off: 14 + 40, Size: 1},                       // ICMPv6 type
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: icmp6NA, SkipTrue: 1}, // not NA: drop
	bpf.RetConstant{Val: 0xffff},
	bpf.RetConstant{Val: 0},
})

// dropAll keeps a socket from queueing any received frame while no probe
// waits.
var dropAll = mustAssemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})

func mustAssemble(prog []bpf.Instruction) []bpf.RawInstruction {
	raw, err := bpf.Assemble(prog)
	if err != nil {
		panic(err)
	}
	return raw
}
