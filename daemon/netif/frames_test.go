package netif

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"golang.org/x/net/bpf"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

var (
	ownMAC   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	otherMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	vip4     = netip.MustParseAddr("198.18.1.5")
	vip6     = netip.MustParseAddr("2001:2::10")
)

func decodeARP(t *testing.T, frame []byte) (ethernet.Frame, arp.Packet) {
	t.Helper()
	var f ethernet.Frame
	if err := f.UnmarshalBinary(frame); err != nil {
		t.Fatalf("ethernet: %v", err)
	}
	var p arp.Packet
	if err := p.UnmarshalBinary(f.Payload); err != nil {
		t.Fatalf("arp: %v", err)
	}
	return f, p
}

// arpView is what matters in an ARP frame, comparable as text.
type arpView struct {
	EthDst, EthSrc string
	EtherType      ethernet.EtherType
	Op             arp.Operation
	SHA, THA       string
	SIP, TIP       netip.Addr
	Len            int
}

func viewARP(t *testing.T, frame []byte) arpView {
	f, p := decodeARP(t, frame)
	return arpView{f.Destination.String(), f.Source.String(), f.EtherType, p.Operation,
		p.SenderHardwareAddr.String(), p.TargetHardwareAddr.String(), p.SenderIP, p.TargetIP, len(frame)}
}

func TestARPFrames(t *testing.T) {
	probe, err := arpProbeFrame(ownMAC, vip4)
	if err != nil {
		t.Fatal(err)
	}
	garps, err := garpFrames(ownMAC, vip4)
	if err != nil {
		t.Fatal(err)
	}
	if len(garps) != 2 {
		t.Fatalf("garpFrames gave %d frames, want 2", len(garps))
	}
	const bcast, own, zero = "ff:ff:ff:ff:ff:ff", "02:00:00:00:00:01", "00:00:00:00:00:00"
	tests := []struct {
		name  string
		frame []byte
		want  arpView
	}{
		{"probe: request from 0.0.0.0", probe,
			arpView{bcast, own, ethernet.EtherTypeARP, arp.OperationRequest, own, zero, netip.IPv4Unspecified(), vip4, 60}},
		{"gratuitous request: sip=tip, tha=0", garps[0],
			arpView{bcast, own, ethernet.EtherTypeARP, arp.OperationRequest, own, zero, vip4, vip4, 60}},
		{"gratuitous reply: sip=tip, tha=sha", garps[1],
			arpView{bcast, own, ethernet.EtherTypeARP, arp.OperationReply, own, own, vip4, vip4, 60}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, viewARP(t, tt.frame), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("frame mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func mustARP(t *testing.T, op arp.Operation, sha net.HardwareAddr, sip netip.Addr, tha net.HardwareAddr, tip netip.Addr) []byte {
	t.Helper()
	b, err := arpFrame(op, sha, sip, tha, tip)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// claim is what a claimFunc returns, comparable.
type claim struct {
	IP  netip.Addr
	MAC string
	OK  bool
}

func claimOf(f claimFunc, frame []byte) claim {
	ip, mac, ok := f(frame)
	if !ok {
		return claim{}
	}
	return claim{ip, mac.String(), true}
}

var cmpAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func TestARPClaim(t *testing.T) {
	other4 := netip.MustParseAddr("198.18.1.6")
	tests := []struct {
		name  string
		frame []byte
		want  claim
	}{
		{"reply from the holder", mustARP(t, arp.OperationReply, otherMAC, vip4, ownMAC, netip.IPv4Unspecified()), claim{vip4, otherMAC.String(), true}},
		{"holder's gratuitous request", mustARP(t, arp.OperationRequest, otherMAC, vip4, zeroMAC, vip4), claim{vip4, otherMAC.String(), true}},
		{"holder resolving someone", mustARP(t, arp.OperationRequest, otherMAC, vip4, zeroMAC, other4), claim{vip4, otherMAC.String(), true}},
		{"someone else probing", mustARP(t, arp.OperationRequest, otherMAC, netip.IPv4Unspecified(), zeroMAC, vip4), claim{}},
		{"an IPv6 frame", unsolicitedNAFrame(otherMAC, vip6), claim{}},
		{"garbage", []byte{1, 2, 3}, claim{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, claimOf(arpClaim, tt.frame), cmpAddr); diff != "" {
				t.Errorf("arpClaim mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// ip6View is what matters in a neighbour discovery frame.
type ip6View struct {
	EthDst, EthSrc string
	Src, Dst       netip.Addr
	HopLimit       int
	ICMP           []byte // the whole ICMPv6 message
}

func viewIP6(t *testing.T, frame []byte) ip6View {
	t.Helper()
	var f ethernet.Frame
	if err := f.UnmarshalBinary(frame); err != nil {
		t.Fatal(err)
	}
	if f.EtherType != ethernet.EtherTypeIPv6 {
		t.Fatalf("EtherType %v, want IPv6", f.EtherType)
	}
	b := f.Payload
	if b[0]>>4 != 6 || b[6] != 58 {
		t.Fatalf("not IPv6/ICMPv6: % x", b[:8])
	}
	plen := int(b[4])<<8 | int(b[5])
	return ip6View{f.Destination.String(), f.Source.String(),
		netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40])), int(b[7]), b[40 : 40+plen]}
}

// marshalICMP6 builds the message with x/net/icmp, an independent
// implementation of the checksum.
func marshalICMP6(t *testing.T, typ ipv6.ICMPType, body []byte, src, dst netip.Addr) []byte {
	t.Helper()
	m := icmp.Message{Type: typ, Body: &icmp.RawBody{Data: body}}
	b, err := m.Marshal(icmp.IPv6PseudoHeader(src.AsSlice(), dst.AsSlice()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNDFrames(t *testing.T) {
	target := vip6.As16()
	group := netip.MustParseAddr("ff02::1:ff00:10")

	nsBody := append(make([]byte, 4), target[:]...)
	naBody := append([]byte{0x20, 0, 0, 0}, target[:]...)
	naBody = append(naBody, 2, 1)
	naBody = append(naBody, ownMAC...)

	tests := []struct {
		name  string
		frame []byte
		want  ip6View
	}{
		{"DAD solicitation", nsProbeFrame(ownMAC, vip6), ip6View{
			"33:33:ff:00:00:10", "02:00:00:00:00:01", netip.IPv6Unspecified(), group, 255,
			marshalICMP6(t, ipv6.ICMPTypeNeighborSolicitation, nsBody, netip.IPv6Unspecified(), group)}},
		{"unsolicited advertisement", unsolicitedNAFrame(ownMAC, vip6), ip6View{
			"33:33:00:00:00:01", "02:00:00:00:00:01", vip6, ip6AllNodes, 255,
			marshalICMP6(t, ipv6.ICMPTypeNeighborAdvertisement, naBody, vip6, ip6AllNodes)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, viewIP6(t, tt.frame), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("frame mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNAClaim(t *testing.T) {
	withoutOption := unsolicitedNAFrame(otherMAC, vip6)
	// Drop the target link-layer option: the claim is the frame's source.
	withoutOption = append([]byte(nil), withoutOption[:14+40+24]...)
	withoutOption[14+5] = 24
	lowHop := append([]byte(nil), unsolicitedNAFrame(otherMAC, vip6)...)
	lowHop[14+7] = 64
	tests := []struct {
		name  string
		frame []byte
		want  claim
	}{
		{"advertisement from the holder", unsolicitedNAFrame(otherMAC, vip6), claim{vip6, otherMAC.String(), true}},
		{"no target link-layer option", withoutOption, claim{vip6, otherMAC.String(), true}},
		{"hop limit not 255", lowHop, claim{}},
		{"a solicitation", nsProbeFrame(otherMAC, vip6), claim{}},
		{"an ARP frame", mustARP(t, arp.OperationReply, otherMAC, vip4, ownMAC, vip4), claim{}},
		{"garbage", make([]byte, 70), claim{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, claimOf(naClaim, tt.frame), cmpAddr); diff != "" {
				t.Errorf("naClaim mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDispatch(t *testing.T) {
	// Probes waiting on interfaces 2 and 3; frames arriving on them.
	s := &pktSocket{claim: arpClaim, waiters: map[waitKey][]*probeWaiter{}}
	other4 := netip.MustParseAddr("198.18.1.6")
	mk := func(index int, ip netip.Addr) *probeWaiter {
		w := &probeWaiter{key: waitKey{index, ip}, own: ownMAC, got: make(chan net.HardwareAddr, 1)}
		s.waiters[w.key] = append(s.waiters[w.key], w)
		return w
	}
	a, b, c, d := mk(2, vip4), mk(2, vip4), mk(3, vip4), mk(2, other4)
	thirdMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x03}

	s.dispatch(2, mustARP(t, arp.OperationReply, ownMAC, vip4, ownMAC, vip4))                         // ours: nobody
	s.dispatch(2, mustARP(t, arp.OperationRequest, otherMAC, netip.IPv4Unspecified(), zeroMAC, vip4)) // a probe: nobody
	s.dispatch(2, mustARP(t, arp.OperationReply, otherMAC, vip4, ownMAC, netip.IPv4Unspecified()))    // a and b
	s.dispatch(2, mustARP(t, arp.OperationReply, thirdMAC, vip4, ownMAC, netip.IPv4Unspecified()))    // later: dropped

	got := func(w *probeWaiter) string {
		select {
		case mac := <-w.got:
			return mac.String()
		default:
			return ""
		}
	}
	want := map[string]string{"a": otherMAC.String(), "b": otherMAC.String(), "c": "", "d": ""}
	gotAll := map[string]string{"a": got(a), "b": got(b), "c": got(c), "d": got(d)}
	if diff := cmp.Diff(want, gotAll); diff != "" {
		t.Errorf("answers mismatch (-want +got):\n%s", diff)
	}
}

func TestFilters(t *testing.T) {
	run := func(raw []bpf.RawInstruction, frame []byte) int {
		t.Helper()
		prog, ok := bpf.Disassemble(raw)
		if !ok {
			t.Fatal("filter does not disassemble")
		}
		vm, err := bpf.NewVM(prog)
		if err != nil {
			t.Fatal(err)
		}
		n, err := vm.Run(frame)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	na := unsolicitedNAFrame(otherMAC, vip6)
	tests := []struct {
		name   string
		filter []bpf.RawInstruction
		frame  []byte
		pass   bool
	}{
		{"NA filter passes an advertisement", naFilter, na, true},
		{"NA filter drops a solicitation", naFilter, nsProbeFrame(otherMAC, vip6), false},
		{"NA filter drops ARP", naFilter, mustARP(t, arp.OperationReply, otherMAC, vip4, ownMAC, vip4), false},
		{"drop-all drops an advertisement", dropAll, na, false},
		{"ARP filter passes a reply", arpFilter, mustARP(t, arp.OperationReply, otherMAC, vip4, ownMAC, netip.IPv4Unspecified()), true},
		{"ARP filter passes an announcement", arpFilter, mustARP(t, arp.OperationRequest, otherMAC, vip4, ethernet.Broadcast, vip4), true},
		{"ARP filter drops a client's request", arpFilter, mustARP(t, arp.OperationRequest, otherMAC, netip.MustParseAddr("198.18.1.200"), ethernet.Broadcast, vip4), false},
		{"ARP filter drops a probe", arpFilter, mustARP(t, arp.OperationRequest, otherMAC, netip.IPv4Unspecified(), ethernet.Broadcast, vip4), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(tt.filter, tt.frame) > 0; got != tt.pass {
				t.Errorf("passes = %v, want %v", got, tt.pass)
			}
		})
	}
}

func TestSolicitedNode(t *testing.T) {
	tests := []struct{ ip, want string }{
		{"2001:2::10", "ff02::1:ff00:10"},
		{"fe80::1234:5678:9abc:def0", "ff02::1:ffbc:def0"},
	}
	for _, tt := range tests {
		if got := solicitedNode(netip.MustParseAddr(tt.ip)); got != netip.MustParseAddr(tt.want) {
			t.Errorf("solicitedNode(%s) = %s, want %s", tt.ip, got, tt.want)
		}
	}
}
