package recoverd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/config"

	"github.com/ctdb-go/ctdb-go/ipalloc"
)

// fakeCluster is a Transport over simulated nodes: it applies take and
// release orders to each node's held set and records them in order.
type fakeCluster struct {
	mu    sync.Mutex
	alive map[int]bool
	held  map[int]map[netip.Addr]bool
	log   []string
	r     *Recoverd
	now   *fakeClock
	// leaseEnd: when an unreachable node's kernel has dropped its
	// addresses (its lease ran out).
	leaseEnd map[int]time.Time
	unavail  map[int]bool   // node's interfaces are down
	ver      uint64         // order replies' versions (1000+ver): newer than any report
	gens     map[int]uint64 // generation each node gossips
	lostOnce map[int]bool   // the next order to this node gets no answer
	replyGen uint64         // generation order replies report
}

func (f *fakeCluster) Peers() []Peer {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ps []Peer
	for p, a := range f.alive {
		ps = append(ps, Peer{PNN: p, Alive: a, Leader: -1, Generation: f.gens[p]})
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].PNN < ps[j].PNN })
	return ps
}

func (f *fakeCluster) Request(_ context.Context, pnn int, kind string, payload []byte) ([]byte, error) {
	var o Order
	if err := json.Unmarshal(payload, &o); err != nil {
		return nil, err
	}
	f.mu.Lock()
	if !f.alive[pnn] || f.lostOnce[pnn] {
		delete(f.lostOnce, pnn)
		f.mu.Unlock()
		return nil, fmt.Errorf("node %d unreachable", pnn)
	}
	a := o.Addrs[0]
	if kind == KindTake {
		for q, h := range f.held {
			gone := !f.alive[q] && !f.now.Before(f.leaseEnd[q])
			if q != pnn && h[a] && !gone {
				f.log = append(f.log, fmt.Sprintf("DUPLICATE %s on %d and %d", a, q, pnn))
			}
		}
		f.held[pnn][a] = true
	} else {
		delete(f.held[pnn], a)
	}
	f.log = append(f.log, fmt.Sprintf("%s %s on %d", kind, a, pnn))
	f.ver++
	v := f.ver
	f.mu.Unlock()
	return json.Marshal(OrderReply{Errors: []string{""}, Boot: 1, Version: 1000 + v, Generation: f.replyGen})
}

func (f *fakeCluster) Send(int, string, []byte, bool) error { return nil }

// report pushes every alive node's state to the leader, as daemons do.
func (f *fakeCluster) report(addrs []netip.Addr, version uint64) {
	f.mu.Lock()
	var states []NodeState
	for p, a := range f.alive {
		if !a {
			continue
		}
		st := NodeState{PNN: p, Boot: 1, Version: version, RunState: RunStateRunning}
		if !f.unavail[p] {
			st.Available = addrs
		}
		for _, x := range addrs {
			st.Known = append(st.Known, PublicAddr{Prefix: netip.PrefixFrom(x, 24), Ifaces: []string{"eth1"}})
			if f.held[p][x] {
				st.Held = append(st.Held, x)
			}
		}
		states = append(states, st)
	}
	f.mu.Unlock()
	for _, st := range states {
		f.r.UpdateState(st)
	}
}

func (f *fakeCluster) counts() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := make([]int, len(f.held))
	for p, h := range f.held {
		c[p] = len(h)
	}
	return c
}

// fakeClock is the tests' clock. The leader's goroutines (fences, moves)
// read it while a test advances it, so it has a lock.
type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Add, Sub and Before read the clock as time.Time's methods would.
func (c *fakeClock) Add(d time.Duration) time.Time { return c.Now().Add(d) }
func (c *fakeClock) Sub(t time.Time) time.Duration { return c.Now().Sub(t) }
func (c *fakeClock) Before(t time.Time) bool       { return c.Now().Before(t) }

// mapTunables are tunables by name; the rest keep their defaults.
type mapTunables map[string]uint32

// tunables returns config.Tunables with m's values set; a tunable the
// test changes later goes through set.
func (m mapTunables) tunables(t *testing.T) *config.Tunables {
	t.Helper()
	tun := config.DefaultTunables()
	for n, v := range m {
		if _, err := tun.Set(n, v); err != nil {
			t.Fatal(err)
		}
	}
	return tun
}

// roundRobin is a stand-in allocator: keep current holders that can host,
// place the rest on the least loaded node that can host.
func roundRobin(in ipalloc.Input) ipalloc.Result {
	can := map[int]bool{}
	load := map[int]int{}
	for _, n := range in.Nodes {
		can[n.PNN] = n.CanHost
	}
	out := map[netip.Addr]int{}
	for _, ip := range in.IPs {
		if ip.Current >= 0 && can[ip.Current] && slices.Contains(ip.AvailableOn, ip.Current) {
			out[ip.Addr] = ip.Current
			load[ip.Current]++
		}
	}
	var res ipalloc.Result
	for _, ip := range in.IPs {
		if p, ok := out[ip.Addr]; ok {
			res.Assignments = append(res.Assignments, ipalloc.Assignment{Addr: ip.Addr, PNN: p})
			continue
		}
		best := -1
		for _, p := range ip.AvailableOn {
			if best < 0 || load[p] < load[best] {
				best = p
			}
		}
		res.Assignments = append(res.Assignments, ipalloc.Assignment{Addr: ip.Addr, PNN: best})
		if best >= 0 {
			load[best]++
		}
	}
	return res
}

func newTestLeader(t *testing.T, nodes int) (*Recoverd, *fakeCluster, *fakeClock) {
	t.Helper()
	return newTestLeaderWith(t, nodes, mapTunables{"LeaseTime": 2}, nil)
}

// newTestLeaderWith is newTestLeader with the given tunables and
// generation store (nil: none).
func newTestLeaderWith(t *testing.T, nodes int, tun mapTunables, store GenerationStore) (*Recoverd, *fakeCluster, *fakeClock) {
	t.Helper()
	now := &fakeClock{t: time.Unix(1000, 0)}
	f := &fakeCluster{alive: map[int]bool{}, held: map[int]map[netip.Addr]bool{},
		leaseEnd: map[int]time.Time{}, unavail: map[int]bool{}, gens: map[int]uint64{}, lostOnce: map[int]bool{}}
	var pnns []int
	for i := range nodes {
		f.alive[i] = true
		f.held[i] = map[netip.Addr]bool{}
		pnns = append(pnns, i)
	}
	r, err := New(Config{
		PNN: 0, Nodes: pnns, Quorum: true, Transport: f,
		Tunables: tun.tunables(t), Allocate: roundRobin, Store: store,
		Now: now.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.r = r
	f.now = now
	return r, f, now
}

// step advances the fake clock, renews the leases of alive nodes, and runs
// the leader's loop once, waiting for launched moves to finish.
func step(t *testing.T, r *Recoverd, f *fakeCluster, now *fakeClock, d time.Duration, addrs []netip.Addr, v uint64) {
	t.Helper()
	now.Advance(d)
	ctx := context.Background()
	r.tick(ctx)
	for _, p := range f.Peers() {
		if p.Alive {
			r.HandleLease(LeaseRequest{PNN: p.PNN, Seq: v, StateBoot: 1, StateVersion: v})
		}
	}
	f.report(addrs, v)
	r.maybeRun(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		n := r.opsRunning
		r.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("moves did not finish")
		}
		time.Sleep(time.Millisecond)
	}
}

func addrs(n int) []netip.Addr {
	var out []netip.Addr
	for i := 1; i <= n; i++ {
		out = append(out, netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}))
	}
	return out
}

func TestLeaderPlacesAndWaitsForLeases(t *testing.T) {
	r, f, now := newTestLeader(t, 3)
	ips := addrs(6)
	var v uint64 = 1
	step(t, r, f, now, 0, ips, v)
	if !r.IsLeader() {
		t.Fatal("node 0 did not become leader (no lock, lowest PNN, quorum)")
	}
	for range 3 {
		v++
		step(t, r, f, now, 100*time.Millisecond, ips, v)
	}
	if got, want := f.counts(), []int{2, 2, 2}; !slices.Equal(got, want) {
		t.Fatalf("held counts = %v, want %v", got, want)
	}

	// Node 2 becomes unreachable: its addresses must not move before its
	// last grant + LeaseTime + LeaseMargin.
	f.mu.Lock()
	f.alive[2] = false
	f.leaseEnd[2] = now.Add(2 * time.Second)
	lost := []netip.Addr{}
	for a := range f.held[2] {
		lost = append(lost, a)
	}
	f.mu.Unlock()
	lastGrant := now.Now()
	for now.Sub(lastGrant) < 2*time.Second+LeaseMargin-100*time.Millisecond {
		v++
		step(t, r, f, now, 200*time.Millisecond, ips, v)
		f.mu.Lock()
		for _, a := range lost {
			if f.held[0][a] || f.held[1][a] {
				t.Fatalf("%s moved %v after node 2 was lost, before its lease ran out", a, now.Sub(lastGrant))
			}
		}
		f.mu.Unlock()
	}
	for range 5 {
		v++
		step(t, r, f, now, 200*time.Millisecond, ips, v)
	}
	f.mu.Lock()
	for _, a := range lost {
		if !f.held[0][a] && !f.held[1][a] {
			t.Errorf("%s not served after node 2's lease ran out", a)
		}
	}
	for _, l := range f.log {
		if len(l) > 9 && l[:9] == "DUPLICATE" {
			t.Error(l)
		}
	}
	f.mu.Unlock()
}

func TestReleaseBeforeTake(t *testing.T) {
	r, f, now := newTestLeader(t, 2)
	ips := addrs(2)
	// Node 1 holds both addresses and loses its link: both move to node 0,
	// each released before it is taken.
	f.held[1][ips[0]] = true
	f.held[1][ips[1]] = true
	f.unavail[1] = true
	step(t, r, f, now, 0, ips, 1)
	step(t, r, f, now, 100*time.Millisecond, ips, 2)
	step(t, r, f, now, 100*time.Millisecond, ips, 3)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range ips {
		rel := slices.Index(f.log, fmt.Sprintf("release %s on 1", a))
		take := slices.Index(f.log, fmt.Sprintf("take %s on 0", a))
		if rel < 0 || take < 0 || rel > take {
			t.Errorf("orders = %v, want release of %s on node 1 before its take on node 0", f.log, a)
		}
	}
}

func TestNoQuorumNoGrant(t *testing.T) {
	r, f, now := newTestLeader(t, 3)
	step(t, r, f, now, 0, addrs(3), 1)
	if !r.IsLeader() {
		t.Fatal("no leader")
	}
	f.mu.Lock()
	f.alive[1], f.alive[2] = false, false
	f.mu.Unlock()
	now.Advance(100 * time.Millisecond)
	r.tick(context.Background())
	if r.IsLeader() {
		t.Error("leader kept leading with 1 of 3 nodes")
	}
	if _, ok := r.HandleLease(LeaseRequest{PNN: 0}); ok {
		t.Error("lease granted without quorum")
	}
}

func TestFrozenLeaderGrantsNothing(t *testing.T) {
	r, f, now := newTestLeader(t, 1)
	step(t, r, f, now, 0, addrs(1), 1)
	if _, ok := r.HandleLease(LeaseRequest{PNN: 0}); !ok {
		t.Fatal("no grant from a healthy leader")
	}
	// As after SIGSTOP/SIGCONT: time jumped and the loop has not run yet.
	now.Advance(3 * time.Second)
	if _, ok := r.HandleLease(LeaseRequest{PNN: 0}); ok {
		t.Error("grant given by a leader that has not re-checked its lock after a pause")
	}
}

func TestNewLeaderWaitsForUnknownNodes(t *testing.T) {
	r, f, now := newTestLeader(t, 3)
	ips := addrs(3)
	// Node 2 is alive but has not reported yet (it may hold addresses
	// granted by an earlier leader): nothing may be taken.
	step(t, r, f, now, 0, ips, 1)
	r.mu.Lock()
	delete(r.states, 2)
	r.mu.Unlock()
	f.mu.Lock()
	f.log = nil
	f.mu.Unlock()
	r.mu.Lock()
	p := Decide(r.viewLocked(), now.Now())
	r.mu.Unlock()
	for _, o := range p.Ops {
		if o.Take >= 0 {
			t.Errorf("take of %s on %d planned before node 2 reported", o.Addr, o.Take)
		}
	}
	if len(p.Blocked) == 0 {
		t.Error("no address reported as blocked while node 2 is unknown")
	}
}

func TestLeaderChangeMovesNothingOnHealthyNodes(t *testing.T) {
	r, f, now := newTestLeader(t, 3)
	r.cfg.Allocate = IPAlloc
	ips := addrs(6)
	// As after a leader change: the nodes hold 3/2/1, which CTDB's LCP2
	// leaves alone (no node is empty); the new leader must too.
	for i, a := range ips {
		f.held[[]int{0, 0, 0, 1, 1, 2}[i]][a] = true
	}
	var v uint64
	for range 5 {
		v++
		step(t, r, f, now, 200*time.Millisecond, ips, v)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.log {
		t.Errorf("order after a leader change on a balanced cluster: %s", l)
	}
}

func TestSilentLeaderStartsElection(t *testing.T) {
	// Node 1's view: node 0 leads (announces itself), all alive.
	now := &fakeClock{t: time.Unix(1000, 0)}
	f := &fakeCluster{alive: map[int]bool{0: true, 1: true, 2: true}, held: map[int]map[netip.Addr]bool{},
		leaseEnd: map[int]time.Time{}, unavail: map[int]bool{}, now: now}
	tr := &leaderPeers{fakeCluster: f, leader: 0}
	r, err := New(Config{PNN: 1, Nodes: []int{0, 1, 2}, Quorum: true, Transport: tr,
		Tunables: config.DefaultTunables(), Allocate: roundRobin, Now: now.Now})
	if err != nil {
		t.Fatal(err)
	}
	r.tick(context.Background())
	if r.IsLeader() {
		t.Fatal("node 1 leads while node 0 announces itself and answers")
	}
	if l, _ := r.Leader(); l != 0 {
		t.Fatalf("Leader() = %d, want 0", l)
	}
	r.SuspectLeader(0, now.Add(time.Second))
	if l, _ := r.Leader(); l != 0 {
		t.Errorf("Leader() while node 0 is suspected = %d, want 0 (lease requests still go to it)", l)
	}
	now.Advance(300 * time.Millisecond)
	r.tick(context.Background())
	if !r.IsLeader() {
		t.Error("node 1 did not take over from a silent leader (no lock configured)")
	}
}

// leaderPeers makes one node announce itself as leader.
type leaderPeers struct {
	*fakeCluster
	leader int
}

func (l *leaderPeers) Peers() []Peer {
	ps := l.fakeCluster.Peers()
	for i := range ps {
		if ps[i].PNN == l.leader {
			ps[i].Leader, ps[i].Generation = l.leader, 1
		}
	}
	return ps
}

// TestStaleReportDoesNotUndoTake: a state report made before a take was
// acknowledged must not make the leader think the address is free.
func TestStaleReportDoesNotUndoTake(t *testing.T) {
	r, f, now := newTestLeader(t, 2)
	ips := addrs(2)
	for v := uint64(1); v <= 3; v++ {
		step(t, r, f, now, 100*time.Millisecond, ips, v)
	}
	f.mu.Lock()
	takes := len(f.log)
	f.mu.Unlock()
	if takes != 2 {
		t.Fatalf("orders = %v, want two takes", f.log)
	}
	// Reports that predate the takes (versions below the replies').
	for pnn := range 2 {
		st := NodeState{PNN: pnn, Boot: 1, Version: 4, RunState: RunStateRunning, Available: ips}
		for _, a := range ips {
			st.Known = append(st.Known, PublicAddr{Prefix: netip.PrefixFrom(a, 24), Ifaces: []string{"eth1"}})
		}
		r.UpdateState(st)
	}
	r.mu.Lock()
	p := Decide(r.viewLocked(), now.Add(200*time.Millisecond))
	r.mu.Unlock()
	for _, o := range p.Ops {
		t.Errorf("planned %+v after stale reports; the acknowledged takes must stand", o)
	}
}

// TestFenceBeforeTakingFromUnknownNode: with fencing on, a node this
// leader never heard from but that was in the cluster may hold any
// address: nothing is taken until a fence of it succeeds, however long
// its lease would have run.
func TestFenceBeforeTakingFromUnknownNode(t *testing.T) {
	r, f, now := newTestLeader(t, 2)
	r.cfg.Quorum = false // two-node clusters run without quorum, on the lock and fencing
	var mu sync.Mutex
	fenceOK := false
	calls := 0
	r.cfg.Fence = func(ctx context.Context, pnn int) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if !fenceOK {
			return fmt.Errorf("ipmi: no answer")
		}
		return nil
	}
	r.seen[1] = true // node 1 was in the cluster, then became unreachable
	f.mu.Lock()
	f.alive[1] = false
	f.mu.Unlock()
	ips := addrs(2)
	var v uint64
	for range 40 { // 8 s of fake time: far past any lease
		v++
		step(t, r, f, now, 200*time.Millisecond, ips, v)
		time.Sleep(2 * time.Millisecond) // let the fence goroutine report
	}
	f.mu.Lock()
	if len(f.log) != 0 {
		t.Errorf("orders while node 1 is not fenced: %v", f.log)
	}
	f.mu.Unlock()
	mu.Lock()
	if calls < 2 {
		t.Errorf("fence attempts = %d, want retries", calls)
	}
	fenceOK = true
	mu.Unlock()
	if s := r.Fencing(); !strings.Contains(s, "node 1") {
		t.Errorf("Fencing() = %q, want it to name node 1", s)
	}
	for range 30 {
		v++
		step(t, r, f, now, 200*time.Millisecond, ips, v)
		time.Sleep(2 * time.Millisecond)
	}
	if got := f.counts(); got[0] != 2 {
		t.Errorf("held counts after a successful fence = %v, want both on node 0", got)
	}
}

// TestNoFenceWithoutConfirmedMajority: a leader whose peers stopped
// renewing (it is the one cut off) must not fence, even while memberlist
// still shows one of them alive.
func TestNoFenceWithoutConfirmedMajority(t *testing.T) {
	r, f, now := newTestLeader(t, 3)
	fenced := make(chan int, 10)
	r.cfg.Fence = func(ctx context.Context, pnn int) error { fenced <- pnn; return nil }
	ips := addrs(3)
	for v := uint64(1); v <= 5; v++ {
		step(t, r, f, now, 200*time.Millisecond, ips, v)
	}
	// Cut off: node 1 is declared dead, node 2 still looks alive but its
	// renewals no longer arrive.
	f.mu.Lock()
	f.alive[1] = false
	f.mu.Unlock()
	ctx := context.Background()
	for range 5 {
		now.Advance(200 * time.Millisecond)
		r.tick(ctx)
		r.HandleLease(LeaseRequest{PNN: 0, StateBoot: 1, StateVersion: 99})
		r.maybeRun(ctx)
	}
	time.Sleep(20 * time.Millisecond)
	select {
	case p := <-fenced:
		t.Fatalf("fenced node %d without a confirmed majority", p)
	default:
	}
	// On the healthy side node 2 keeps renewing: now the fence runs.
	for range 3 {
		now.Advance(200 * time.Millisecond)
		r.tick(ctx)
		r.HandleLease(LeaseRequest{PNN: 0, StateBoot: 1, StateVersion: 99})
		r.HandleLease(LeaseRequest{PNN: 2, StateBoot: 1, StateVersion: 99})
		r.maybeRun(ctx)
	}
	select {
	case p := <-fenced:
		if p != 1 {
			t.Errorf("fenced node %d, want 1", p)
		}
	case <-time.After(2 * time.Second):
		t.Error("no fence of node 1 although node 2 confirms the majority")
	}
}

// TestOldFenceDoesNotCountForNewLoss: node 1 is lost and fenced; before
// the fence ends it comes back and is lost again. The first fence's
// success is not a fence of the second loss: its address waits for a
// fence started for that loss.
func TestOldFenceDoesNotCountForNewLoss(t *testing.T) {
	r, f, now := newTestLeader(t, 2)
	r.cfg.Quorum = false // two nodes: the lock and fencing
	type call struct {
		pnn    int
		result chan error
	}
	calls := make(chan call, 10)
	r.cfg.Fence = func(ctx context.Context, pnn int) error {
		c := call{pnn: pnn, result: make(chan error)}
		calls <- c
		select {
		case err := <-c.result:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ips := addrs(2)
	v := uint64(1)
	// nextFence runs the loop until a fence starts (the next run may be
	// up to RecoverInterval away).
	nextFence := func() call {
		t.Helper()
		for range 30 {
			step(t, r, f, now, 100*time.Millisecond, ips, v)
			v++
			select {
			case c := <-calls:
				return c
			case <-time.After(2 * time.Millisecond):
			}
		}
		t.Fatal("no fence started")
		return call{}
	}
	for ; v <= 3; v++ {
		step(t, r, f, now, 100*time.Millisecond, ips, v)
	}
	a := heldBy(t, f, 1)
	lose := func() {
		f.mu.Lock()
		f.alive[1] = false
		f.leaseEnd[1] = now.Add(time.Hour) // not fenced: it still holds a
		f.mu.Unlock()
	}

	lose()
	first := nextFence()
	// Back, and lost again while the first fence still runs.
	f.mu.Lock()
	f.alive[1] = true
	f.mu.Unlock()
	step(t, r, f, now, 100*time.Millisecond, ips, v)
	v++
	lose()
	second := nextFence()

	first.result <- nil
	for range 10 {
		step(t, r, f, now, 100*time.Millisecond, ips, v)
		v++
		time.Sleep(2 * time.Millisecond) // let the first fence's result land
	}
	f.mu.Lock()
	if f.held[0][a] {
		t.Errorf("%s taken on node 0 after the fence of an earlier loss of node 1; orders %v", a, f.log)
	}
	f.leaseEnd[1] = now.Now() // the second fence cuts node 1 off
	f.mu.Unlock()

	second.result <- nil
	for range 10 {
		step(t, r, f, now, 100*time.Millisecond, ips, v)
		v++
		time.Sleep(2 * time.Millisecond)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.held[0][a] {
		t.Errorf("%s not on node 0 after node 1 was fenced; orders %v", a, f.log)
	}
	for _, l := range f.log {
		if strings.HasPrefix(l, "DUPLICATE") {
			t.Error(l)
		}
	}
}

// TestDuplicatesResolvedCountsReleases: DuplicatesResolved counts
// addresses released on all but one of several holders, once the release
// is done; a single holder that is not the node the leader gave the
// address to is no duplicate.
func TestDuplicatesResolvedCountsReleases(t *testing.T) {
	r, f, now := newTestLeader(t, 3)
	ips := addrs(3)
	v := uint64(1)
	for ; v <= 3; v++ {
		step(t, r, f, now, 100*time.Millisecond, ips, v)
	}
	// Node 2 dropped its address and node 0 holds it instead (the
	// leader still has it assigned to node 2).
	a := heldBy(t, f, 2)
	f.mu.Lock()
	delete(f.held[2], a)
	f.held[0][a] = true
	f.mu.Unlock()
	v = 2000 // reports newer than the acknowledged orders (1000+)
	for range 3 {
		step(t, r, f, now, 100*time.Millisecond, ips, v)
		v++
	}
	if got := r.Status().DuplicatesResolved; got != 0 {
		t.Errorf("DuplicatesResolved = %d after a single holder moved, want 0", got)
	}
	// Node 1 holds it too: a duplicate, released on one of them.
	f.mu.Lock()
	f.held[1][a] = true
	f.mu.Unlock()
	for range 3 {
		step(t, r, f, now, 100*time.Millisecond, ips, v)
		v++
	}
	if got := r.Status().DuplicatesResolved; got != 1 {
		t.Errorf("DuplicatesResolved = %d after one duplicate was released, want 1", got)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.held[0][a] == f.held[1][a] {
		t.Errorf("%s on node 0: %v, node 1: %v; want exactly one", a, f.held[0][a], f.held[1][a])
	}
}

// TestFencingSorted: Fencing lists nodes by PNN, whatever the map order.
func TestFencingSorted(t *testing.T) {
	r, _, _ := newTestLeader(t, 1)
	r.mu.Lock()
	for _, pnn := range []int{7, 3, 5, 1, 6, 2, 4} {
		r.fencing[pnn] = FenceState{Running: pnn%2 == 0, Tries: 1}
	}
	r.fencing[8] = FenceState{Done: true, Tries: 1}
	r.mu.Unlock()
	want := "node 1; node 2 (fence running); node 3; node 4 (fence running); node 5; node 6 (fence running); node 7"
	for range 20 {
		if got := r.Fencing(); got != want {
			t.Fatalf("Fencing() = %q, want %q", got, want)
		}
	}
}
