package bed

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	ip1 = netip.MustParseAddr("198.18.1.1")
	ip2 = netip.MustParseAddr("198.18.1.2")
	t0  = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
)

// cmpAddr compares netip.Addr (unexported fields) by value.
var cmpAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func mac(n int) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 0, byte(n)} }

func nodeOfMAC(hw net.HardwareAddr) int {
	if len(hw) == 6 && hw[0] == 2 && hw[5] < 10 {
		return int(hw[5])
	}
	return -1
}

// reads builds reads from "node:ips" words; ips is "1", "12" (ip1, ip2) or "-".
func reads(words ...string) []nodeRead {
	var rs []nodeRead
	for _, w := range words {
		n, ips, _ := strings.Cut(w, ":")
		r := nodeRead{Node: int(n[0] - '0'), Addrs: map[netip.Addr]bool{}}
		for _, c := range ips {
			switch c {
			case '1':
				r.Addrs[ip1] = true
			case '2':
				r.Addrs[ip2] = true
			}
		}
		rs = append(rs, r)
	}
	return rs
}

func TestConfirmDup(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reads []nodeRead
		want  []int
	}{
		{"one holder", reads("0:1", "1:-"), nil},
		{"on both, both passes", reads("0:1", "1:1", "0:1", "1:1"), []int{0, 1}},
		{"moved 0 to 1 between reads", reads("0:1", "1:1", "0:-", "1:1"), nil},
		{"moved 0 to 2, node 1 between", reads("0:1", "1:-", "2:1", "0:-", "1:-", "2:1"), nil},
		{"node 0 before and after node 2", reads("0:1", "1:-", "2:1", "0:1", "1:-", "2:-"), []int{0, 2}},
		{"node 2 bracketing node 0's second read", reads("0:-", "1:-", "2:1", "0:1", "1:-", "2:1"), []int{0, 2}},
		{"three at once", reads("0:1", "1:1", "2:1", "0:1", "1:1", "2:1"), []int{0, 1, 2}},
		{"other address", reads("0:2", "1:2", "0:2", "1:2"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, confirmDup(tc.reads, ip1)); diff != "" {
				t.Errorf("confirmDup (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJudge(t *testing.T) {
	reply := func(n int) arpReply {
		return arpReply{At: t0.Add(time.Duration(n) * time.Millisecond), IP: ip1, MAC: mac(n)}
	}
	for _, tc := range []struct {
		name string
		s    sample
		want verdict
	}{
		{"served", sample{Nodes: 2, Reads: reads("0:-", "1:1"), ARP: map[netip.Addr][]arpReply{ip1: {reply(1)}}},
			verdict{Holders: []int{1}, MACs: []string{mac(1).String()}, FirstARP: reply(1).At, Served: true}},
		{"nobody", sample{Nodes: 2, Reads: reads("0:-", "1:-")},
			verdict{Why: "no holder, no ARP answer"}},
		{"held but silent", sample{Nodes: 2, Reads: reads("0:1", "1:-")},
			verdict{Holders: []int{0}, Why: "no ARP answer"}},
		{"answered, not held", sample{Nodes: 2, Reads: reads("0:-", "1:-"), ARP: map[netip.Addr][]arpReply{ip1: {reply(1)}}},
			verdict{MACs: []string{mac(1).String()}, FirstARP: reply(1).At, Why: "no holder"}},
		{"two MACs, one of them twice", sample{Nodes: 2, Reads: reads("0:1", "1:1", "0:1", "1:1"), ARP: map[netip.Addr][]arpReply{ip1: {reply(2), reply(1), reply(2)}}},
			verdict{Holders: []int{0, 1}, DupNodes: []int{0, 1}, MACs: []string{mac(1).String(), mac(2).String()}, FirstARP: reply(1).At, Served: true, ARPDupMAC: true}},
		{"moved between reads", sample{Nodes: 2, Reads: reads("0:1", "1:1", "0:-", "1:1"), ARP: map[netip.Addr][]arpReply{ip1: {reply(1)}}},
			verdict{Holders: []int{0, 1}, Suspect: true, MACs: []string{mac(1).String()}, FirstARP: reply(1).At, Served: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, judge(tc.s, ip1)); diff != "" {
				t.Errorf("judge (-want +got):\n%s", diff)
			}
		})
	}
}

// at is t0 plus n intervals of 50 ms.
func at(n int) time.Time { return t0.Add(time.Duration(n) * 50 * time.Millisecond) }

// smp is a sample at(n): holders of ip1 and the MACs (node numbers) that
// answered for it; ip2 is always on node 0 and answered.
func smp(n int, holders []int, answered ...int) sample {
	s := sample{At: at(n), Nodes: 3, ARP: map[netip.Addr][]arpReply{},
		Asked: map[netip.Addr]time.Time{ip1: at(n), ip2: at(n)}}
	pass := func() {
		for i := range 3 {
			r := nodeRead{Node: i, Addrs: map[netip.Addr]bool{}}
			for _, h := range holders {
				if h == i {
					r.Addrs[ip1] = true
				}
			}
			if i == 0 {
				r.Addrs[ip2] = true
			}
			s.Reads = append(s.Reads, r)
		}
	}
	pass()
	if len(holders) > 1 {
		pass()
	}
	for i, a := range answered {
		s.ARP[ip1] = append(s.ARP[ip1], arpReply{At: at(n).Add(time.Duration(i+1) * time.Millisecond), IP: ip1, MAC: mac(a)})
	}
	s.ARP[ip2] = []arpReply{{At: at(n).Add(time.Millisecond), IP: ip2, MAC: mac(0)}}
	return s
}

func TestRecorder(t *testing.T) {
	r := newRecorder([]netip.Addr{ip1, ip2}, 50*time.Millisecond, nodeOfMAC)
	for _, s := range []sample{
		smp(0, nil),               // not yet served
		smp(1, []int{1}, 1),       // node 1
		smp(2, []int{1}, 1),       //
		smp(3, []int{1, 2}, 1, 2), // duplicate, both ways
		smp(4, nil),               // gone
		smp(5, []int{2}),          // configured, not answering yet
		smp(6, []int{2}, 2),       // node 2
	} {
		r.add(s)
	}
	r.fail(errStopped)
	rep := r.report()

	want := Report{
		Start: at(0), End: at(6), Interval: 50 * time.Millisecond, Samples: 7,
		DuplicateSamples: 1, AddrDuplicates: 1, ARPDuplicates: 1,
		Examples: []Duplicate{
			{At: at(3), IP: ip1, Kind: DupAddress, Node: []int{1, 2}},
			{At: at(3), IP: ip1, Kind: DupARP, Node: []int{1, 2}, MACs: []string{mac(1).String(), mac(2).String()},
				Asked: at(3), Answered: []time.Time{at(3).Add(time.Millisecond), at(3).Add(2 * time.Millisecond)}},
		},
		Unserved: map[netip.Addr][]Span{ip1: {
			{IP: ip1, Start: at(0), End: at(1), Why: "no holder, no ARP answer"},
			{IP: ip1, Start: at(4), End: at(6), LastServed: at(3), Why: "no holder, no ARP answer"},
		}},
		Errors: 1, FirstError: errStopped.Error(),
	}
	if diff := cmp.Diff(want, rep, cmpAddr); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	if err := rep.Err(); err == nil || !strings.Contains(err.Error(), "address on two nodes [1 2]") {
		t.Errorf("Err() = %v, want the first duplicate named", err)
	}
	if s := rep.String(); !strings.Contains(s, "duplicate samples: 1") || !strings.Contains(s, "unserved 198.18.1.1: 2 spans, longest 100ms") {
		t.Errorf("String() =\n%s", s)
	}

	for _, tc := range []struct {
		after time.Time
		want  time.Duration
	}{
		{time.Time{}, 100 * time.Millisecond},
		{at(1), 100 * time.Millisecond},
		{at(5), 50 * time.Millisecond}, // clipped
		{at(6), 0},
	} {
		if got := rep.MaxUnserved(tc.after); got != tc.want {
			t.Errorf("MaxUnserved(%v) = %v, want %v", tc.after.Sub(t0), got, tc.want)
		}
	}
	if diff := cmp.Diff([]Span{{IP: ip1, Start: at(5), End: at(6), LastServed: at(3), Why: "no holder, no ARP answer"}}, rep.UnservedAfter(at(5)), cmpAddr); diff != "" {
		t.Errorf("UnservedAfter (-want +got):\n%s", diff)
	}

	var got []string
	for _, e := range r.events {
		var macs []string
		for _, m := range e.MACs {
			hw, _ := net.ParseMAC(m)
			macs = append(macs, fmt.Sprintf("m%d", nodeOfMAC(hw)))
		}
		got = append(got, fmt.Sprintf("%v %s %s %v", e.At.Sub(t0), e.IP, strings.Join(macs, ","), e.Nodes))
	}
	wantEvents := []string{
		"0s 198.18.1.1  []",
		"0s 198.18.1.2 m0 [0]",
		"50ms 198.18.1.1 m1 [1]",
		"150ms 198.18.1.1 m1,m2 [1 2]",
		"200ms 198.18.1.1  []",
		"250ms 198.18.1.1  [2]",
		"300ms 198.18.1.1 m2 [2]",
	}
	if diff := cmp.Diff(wantEvents, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name   string
		mac    net.HardwareAddr
		since  time.Time
		want   time.Time
		wantOK bool
	}{
		{"node 1 from the start", mac(1), time.Time{}, at(1).Add(time.Millisecond), true},
		{"node 1 already answering at since", mac(1), at(2).Add(-time.Millisecond), at(2), true},
		{"node 2 after the gap", mac(2), at(4), at(6).Add(time.Millisecond), true},
		{"node 2 still answering after the last sample", mac(2), at(7), time.Time{}, false},
		{"node 0 never", mac(0), time.Time{}, time.Time{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := r.servedBy(ip1, tc.mac.String(), tc.since)
			if ok != tc.wantOK || !got.Equal(tc.want) {
				t.Errorf("servedBy(%v, %v) = %v, %v; want %v, %v", tc.mac, tc.since.Sub(t0), got.Sub(t0), ok, tc.want.Sub(t0), tc.wantOK)
			}
		})
	}
}

func TestRecorderSuspectIsNoDuplicate(t *testing.T) {
	r := newRecorder([]netip.Addr{ip1}, 50*time.Millisecond, nodeOfMAC)
	r.add(sample{At: at(0), Nodes: 2, Reads: reads("0:1", "1:1", "0:-", "1:1"),
		ARP: map[netip.Addr][]arpReply{ip1: {{At: at(0), IP: ip1, MAC: mac(1)}}}})
	rep := r.report()
	if rep.DuplicateSamples != 0 || rep.Unconfirmed != 1 || rep.Err() != nil {
		t.Errorf("a move between reads: %d duplicates, %d unconfirmed, Err %v; want 0, 1, nil", rep.DuplicateSamples, rep.Unconfirmed, rep.Err())
	}
}

func TestParseReply(t *testing.T) {
	self := netip.MustParseAddr("198.18.1.200")
	frame := func(op byte, sender, target netip.Addr) []byte {
		f := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06,
			0, 1, 0x08, 0, 6, 4, 0, op}
		f = append(f, mac(1)...)
		f = append(f, sender.AsSlice()...)
		f = append(f, 2, 0, 0, 0, 0, 9)
		f = append(f, target.AsSlice()...)
		return append(f, make([]byte, 18)...) // Ethernet padding
	}
	if r, ok := parseReply(frame(2, ip1, self), nil, self); !ok || r.IP != ip1 || r.MAC.String() != mac(1).String() {
		t.Errorf("reply to self = %+v, %v", r, ok)
	}
	if _, ok := parseReply(frame(1, ip1, self), nil, self); ok {
		t.Error("a request was taken for a reply")
	}
	if _, ok := parseReply(frame(2, ip1, ip1), nil, self); ok {
		t.Error("a gratuitous ARP reply (target = sender) was taken for an answer")
	}
	if _, ok := parseReply(frame(2, ip1, self)[:20], nil, self); ok {
		t.Error("a short frame parsed")
	}
}
