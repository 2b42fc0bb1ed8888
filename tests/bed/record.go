package bed

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"
)

// This file is the checker's bookkeeping: pure functions of what the
// samples saw, so it is tested without namespaces.

// nodeRead is one node's public addresses as read at one moment.
type nodeRead struct {
	Node  int
	Addrs map[netip.Addr]bool
}

// sample is what one checker round saw.
type sample struct {
	At   time.Time     // when the round started
	Took time.Duration // how long the round took (reads, requests, window)
	// Reads are in the order they were made: every node once (pass 1),
	// then, when pass 1 found an address on two nodes, every node again
	// (pass 2).
	Reads []nodeRead
	Nodes int // reads per pass
	// ARP holds, per public address, the replies to this round's
	// request that arrived within the window.
	ARP map[netip.Addr][]arpReply
	// Asked is when each address's request was sent.
	Asked map[netip.Addr]time.Time
}

// verdict is what a sample says about one public address.
type verdict struct {
	Holders   []int    // nodes that had it in pass 1
	DupNodes  []int    // two nodes had it at once, proven by the reads (see confirmDup)
	Suspect   bool     // pass 1 saw two holders but the re-reads do not prove overlap
	MACs      []string // distinct MACs that answered, sorted
	FirstARP  time.Time
	Served    bool
	Why       string // when not served
	ARPDupMAC bool   // two or more MACs answered one request
}

// judge computes the verdict for ip.
func judge(s sample, ip netip.Addr) verdict {
	var v verdict
	for _, r := range s.Reads[:min(s.Nodes, len(s.Reads))] {
		if r.Addrs[ip] {
			v.Holders = append(v.Holders, r.Node)
		}
	}
	if len(v.Holders) > 1 {
		v.DupNodes = confirmDup(s.Reads, ip)
		v.Suspect = len(v.DupNodes) == 0
	}
	seen := map[string]bool{}
	for _, r := range s.ARP[ip] {
		if v.FirstARP.IsZero() || r.At.Before(v.FirstARP) {
			v.FirstARP = r.At
		}
		if m := r.MAC.String(); !seen[m] {
			seen[m] = true
			v.MACs = append(v.MACs, m)
		}
	}
	sort.Strings(v.MACs)
	v.ARPDupMAC = len(v.MACs) > 1
	switch {
	case len(v.Holders) == 0 && len(v.MACs) == 0:
		v.Why = "no holder, no ARP answer"
	case len(v.Holders) == 0:
		v.Why = "no holder"
	case len(v.MACs) == 0:
		v.Why = "no ARP answer"
	default:
		v.Served = true
	}
	return v
}

// confirmDup returns the nodes proven to have held ip at the same moment:
// node B had it at read j, and another node A had it at a read before j
// and again at a read after j. Reads are made one after another, so a
// single pass cannot tell an address that moved from A to B between the
// two reads from one on both; a read of A after B's settles it (unless it
// moved A→B→A within a fraction of a millisecond).
func confirmDup(reads []nodeRead, ip netip.Addr) []int {
	involved := map[int]bool{}
	for j, rb := range reads {
		if !rb.Addrs[ip] {
			continue
		}
		before := map[int]bool{}
		for _, ra := range reads[:j] {
			if ra.Node != rb.Node && ra.Addrs[ip] {
				before[ra.Node] = true
			}
		}
		for _, ra := range reads[j+1:] {
			if before[ra.Node] && ra.Addrs[ip] {
				involved[ra.Node] = true
				involved[rb.Node] = true
			}
		}
	}
	var nodes []int
	for n := range involved {
		nodes = append(nodes, n)
	}
	sort.Ints(nodes)
	return nodes
}

// Duplicate is one sample in which a public address was claimed twice.
type Duplicate struct {
	At   time.Time
	IP   netip.Addr
	Kind string   // DupAddress or DupARP
	Node []int    // the nodes involved (DupARP: the MACs' nodes, -1 for a stranger)
	MACs []string // DupARP: the MACs that answered
	// DupARP: when the client sent its request, and when each MAC's
	// first answer arrived (same order as MACs), kernel receive times:
	// to tell one request answered on both sides of a move from two
	// holders at once.
	Asked    time.Time
	Answered []time.Time
}

// Kinds of Duplicate.
const (
	DupAddress = "address on two nodes"
	DupARP     = "two MACs answered"
)

func (d Duplicate) String() string {
	s := fmt.Sprintf("%s %s: %s %v", d.At.Format("15:04:05.000"), d.IP, d.Kind, d.Node)
	if len(d.MACs) > 0 {
		s += " " + strings.Join(d.MACs, ",")
	}
	if !d.Asked.IsZero() {
		s += " asked " + d.Asked.Format("15:04:05.000000") + ", answered"
		for _, t := range d.Answered {
			s += " +" + t.Sub(d.Asked).Round(time.Microsecond).String()
		}
	}
	return s
}

// Span is a stretch of samples in which a public address was unserved:
// no node had it configured, or no MAC answered the client's ARP.
type Span struct {
	IP    netip.Addr
	Start time.Time // the first sample that found it unserved
	// End is the first sample that found it served again; for a span
	// still open when the checker stopped, the last sample, with Open set.
	End        time.Time
	Open       bool
	LastServed time.Time // the last sample before Start that found it served; zero: none
	Why        string    // what Start's sample found
}

// Duration is End - Start; the true outage lies between that and
// End - LastServed (the sampling interval blurs both ends).
func (s Span) Duration() time.Duration { return s.End.Sub(s.Start) }

// Event is a change, for one public address, of who holds it or which
// MACs answer the client's ARP for it.
type Event struct {
	At    time.Time // the sample that saw the change
	IP    netip.Addr
	Nodes []int     // holders (netlink), sorted
	MACs  []string  // answering MACs, sorted
	ARPAt time.Time // when the first answer of that sample arrived; zero: none
}

// Report is what a checker saw.
type Report struct {
	Start, End time.Time
	Interval   time.Duration
	Samples    int
	// DuplicateSamples counts samples with any duplicate: an address
	// proven on two nodes at once, or two MACs answering one request.
	DuplicateSamples int
	AddrDuplicates   int // samples with an address on two nodes
	ARPDuplicates    int // samples with two MACs answering one address
	// Unconfirmed counts samples where one pass of reads saw an address
	// on two nodes but the re-read did not prove an overlap (it moved
	// between the reads); they are not duplicates.
	Unconfirmed int
	Examples    []Duplicate // the first MaxExamples duplicates
	// Unserved lists, per public address, every span it was unserved,
	// including the ones before the cluster first served it; use
	// MaxUnserved to pick the ones that count.
	Unserved map[netip.Addr][]Span
	// LongestRound is the longest sampling round (reads, ARP requests and
	// the answer window): the checker's resolution at worst.
	LongestRound time.Duration
	// Errors counts rounds that could not read a node or send ARP; those
	// rounds are not samples.
	Errors     int
	FirstError string
}

// MaxExamples bounds Report.Examples.
const MaxExamples = 20

// MaxUnserved is the longest time any public address went unserved after
// the moment after: spans ending after it, clipped to start no earlier.
func (r Report) MaxUnserved(after time.Time) time.Duration {
	var longest time.Duration
	for _, spans := range r.Unserved {
		for _, s := range spans {
			if d := clipped(s, after); d > longest {
				longest = d
			}
		}
	}
	return longest
}

// UnservedAfter lists, sorted by start, the spans that end after the
// moment after (clipped to start no earlier).
func (r Report) UnservedAfter(after time.Time) []Span {
	var out []Span
	for _, spans := range r.Unserved {
		for _, s := range spans {
			if !s.End.After(after) {
				continue
			}
			if s.Start.Before(after) {
				s.Start = after
			}
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.Before(out[j].Start)
		}
		return out[i].IP.Less(out[j].IP)
	})
	return out
}

func clipped(s Span, after time.Time) time.Duration {
	if !s.End.After(after) {
		return 0
	}
	start := s.Start
	if start.Before(after) {
		start = after
	}
	return s.End.Sub(start)
}

// Err is non-nil when the checker saw a duplicate, naming the first.
func (r Report) Err() error {
	if r.DuplicateSamples == 0 {
		return nil
	}
	return fmt.Errorf("invariant broken: %d samples with a duplicate address (on two nodes: %d, two MACs: %d); first: %s",
		r.DuplicateSamples, r.AddrDuplicates, r.ARPDuplicates, r.Examples[0])
}

// String summarises the report for a log.
func (r Report) String() string {
	var s strings.Builder
	fmt.Fprintf(&s, "checker: %d samples every %v over %v (longest round %v); duplicate samples: %d (address on two nodes: %d, two MACs: %d); moved between reads: %d; rounds failed: %d",
		r.Samples, r.Interval, r.End.Sub(r.Start).Round(time.Millisecond), r.LongestRound.Round(100*time.Microsecond),
		r.DuplicateSamples, r.AddrDuplicates, r.ARPDuplicates, r.Unconfirmed, r.Errors)
	if r.FirstError != "" {
		fmt.Fprintf(&s, " (first: %s)", r.FirstError)
	}
	for _, d := range r.Examples {
		fmt.Fprintf(&s, "\n  duplicate: %s", d)
	}
	ips := make([]netip.Addr, 0, len(r.Unserved))
	for ip := range r.Unserved {
		ips = append(ips, ip)
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	for _, ip := range ips {
		spans := r.Unserved[ip]
		var longest Span
		for _, sp := range spans {
			if sp.Duration() >= longest.Duration() {
				longest = sp
			}
		}
		open := ""
		if longest.Open {
			open = ", still unserved at the end"
		}
		fmt.Fprintf(&s, "\n  unserved %s: %d spans, longest %v from %s (%s%s)",
			ip, len(spans), longest.Duration().Round(time.Millisecond), longest.Start.Format("15:04:05.000"), longest.Why, open)
	}
	return s.String()
}

// recorder accumulates samples into a Report and the event log.
type recorder struct {
	ips    []netip.Addr
	nodeOf func(net.HardwareAddr) int

	rep        Report
	open       map[netip.Addr]int // index of the open span in rep.Unserved[ip]
	lastServed map[netip.Addr]time.Time
	last       map[netip.Addr]Event
	events     []Event
	times      []time.Time // every sample's At
}

func newRecorder(ips []netip.Addr, interval time.Duration, nodeOf func(net.HardwareAddr) int) *recorder {
	return &recorder{
		ips:        ips,
		nodeOf:     nodeOf,
		rep:        Report{Interval: interval, Unserved: map[netip.Addr][]Span{}},
		open:       map[netip.Addr]int{},
		lastServed: map[netip.Addr]time.Time{},
		last:       map[netip.Addr]Event{},
	}
}

// fail records a round that produced no sample.
func (r *recorder) fail(err error) {
	r.rep.Errors++
	if r.rep.FirstError == "" {
		r.rep.FirstError = err.Error()
	}
}

// add records one sample.
func (r *recorder) add(s sample) {
	if r.rep.Samples == 0 {
		r.rep.Start = s.At
	}
	r.rep.Samples++
	r.rep.End = s.At
	r.rep.LongestRound = max(r.rep.LongestRound, s.Took)
	r.times = append(r.times, s.At)
	var addrDup, arpDup, suspect bool
	for _, ip := range r.ips {
		v := judge(s, ip)
		if len(v.DupNodes) > 0 {
			addrDup = true
			r.example(Duplicate{At: s.At, IP: ip, Kind: DupAddress, Node: v.DupNodes})
		}
		if v.Suspect {
			suspect = true
		}
		if v.ARPDupMAC {
			arpDup = true
			r.example(r.arpDuplicate(s, ip, v.MACs))
		}
		r.span(s.At, ip, v)
		r.event(s.At, ip, v)
	}
	if addrDup {
		r.rep.AddrDuplicates++
	}
	if arpDup {
		r.rep.ARPDuplicates++
	}
	if addrDup || arpDup {
		r.rep.DuplicateSamples++
	}
	if suspect {
		r.rep.Unconfirmed++
	}
}

// arpDuplicate names the MACs' nodes, both sorted by node.
func (r *recorder) arpDuplicate(s sample, ip netip.Addr, macs []string) Duplicate {
	type answer struct {
		node int
		mac  string
		at   time.Time
	}
	var as []answer
	for _, m := range macs {
		hw, _ := net.ParseMAC(m)
		a := answer{node: r.nodeOf(hw), mac: m}
		for _, rep := range s.ARP[ip] {
			if rep.MAC.String() == m && (a.at.IsZero() || rep.At.Before(a.at)) {
				a.at = rep.At
			}
		}
		as = append(as, a)
	}
	sort.Slice(as, func(i, j int) bool {
		if as[i].node != as[j].node {
			return as[i].node < as[j].node
		}
		return as[i].mac < as[j].mac
	})
	d := Duplicate{At: s.At, IP: ip, Kind: DupARP, Asked: s.Asked[ip]}
	for _, a := range as {
		d.Node = append(d.Node, a.node)
		d.MACs = append(d.MACs, a.mac)
		d.Answered = append(d.Answered, a.at)
	}
	return d
}

func (r *recorder) example(d Duplicate) {
	if len(r.rep.Examples) < MaxExamples {
		r.rep.Examples = append(r.rep.Examples, d)
	}
}

func (r *recorder) span(at time.Time, ip netip.Addr, v verdict) {
	i, isOpen := r.open[ip]
	switch {
	case !v.Served && !isOpen:
		r.rep.Unserved[ip] = append(r.rep.Unserved[ip], Span{IP: ip, Start: at, LastServed: r.lastServed[ip], Why: v.Why})
		r.open[ip] = len(r.rep.Unserved[ip]) - 1
	case v.Served && isOpen:
		r.rep.Unserved[ip][i].End = at
		delete(r.open, ip)
	}
	if v.Served {
		r.lastServed[ip] = at
	}
}

func (r *recorder) event(at time.Time, ip netip.Addr, v verdict) {
	e := Event{At: at, IP: ip, Nodes: v.Holders, MACs: v.MACs, ARPAt: v.FirstARP}
	prev, ok := r.last[ip]
	if ok && slices.Equal(prev.Nodes, e.Nodes) && slices.Equal(prev.MACs, e.MACs) {
		return
	}
	r.last[ip] = e
	r.events = append(r.events, e)
}

// report is a copy of the report so far; open spans end at the last
// sample, marked Open.
func (r *recorder) report() Report {
	rep := r.rep
	rep.Examples = slices.Clone(r.rep.Examples)
	rep.Unserved = make(map[netip.Addr][]Span, len(r.rep.Unserved))
	for ip, spans := range r.rep.Unserved {
		spans = slices.Clone(spans)
		if i, ok := r.open[ip]; ok {
			spans[i].End = r.rep.End
			spans[i].Open = true
		}
		rep.Unserved[ip] = spans
	}
	return rep
}

// servedBy is when ip was first seen answered by mac alone at or after
// since. If it already was at since, that is the first sample at or after
// since; otherwise it is the arrival of the first answer in the sample
// that saw the change. ok is false when no sample shows it yet.
func (r *recorder) servedBy(ip netip.Addr, mac string, since time.Time) (time.Time, bool) {
	want := []string{mac}
	var atSince *Event // the state at since: the last event at or before it
	for i := range r.events {
		e := &r.events[i]
		if e.IP != ip {
			continue
		}
		if !e.At.After(since) {
			atSince = e
			continue
		}
		if atSince != nil && slices.Equal(atSince.MACs, want) {
			break
		}
		if slices.Equal(e.MACs, want) {
			return e.ARPAt, true
		}
	}
	if atSince == nil || !slices.Equal(atSince.MACs, want) {
		return time.Time{}, false
	}
	i := sort.Search(len(r.times), func(i int) bool { return !r.times[i].Before(since) })
	if i == len(r.times) {
		return time.Time{}, false
	}
	return r.times[i], true
}

var (
	errStopped = errors.New("bed: checker stopped")
	errClosed  = errors.New("bed: closed")
)
