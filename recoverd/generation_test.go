package recoverd

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/config"
)

// memStore is a GenerationStore in memory that records every write.
type memStore struct {
	mu     sync.Mutex
	gen    uint64
	writes []uint64
}

func (m *memStore) Generation() (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gen, nil
}

func (m *memStore) SetGeneration(g uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen = g
	m.writes = append(m.writes, g)
	return nil
}

// TestNewLeaderStartsAboveEveryGeneration is the double crash: A led
// generation 3 and is gone with B; B restarts with a stored generation of
// 0 and leads. C, which followed A, gossips 3, so B must start above it,
// or C refuses every order of B's.
func TestNewLeaderStartsAboveEveryGeneration(t *testing.T) {
	tests := []struct {
		name   string
		stored uint64
		gossip map[int]uint64
		want   uint64
	}{
		{"fresh cluster", 0, nil, 1},
		{"stored is highest", 9, map[int]uint64{1: 3}, 10},
		{"a follower saw more than was stored", 0, map[int]uint64{1: 3}, 4},
		{"forged huge value ignored", 2, map[int]uint64{1: 1<<64 - 1}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &memStore{gen: tt.stored}
			r, f, now := newTestLeaderWith(t, 3, mapTunables{"LeaseTime": 2}, st)
			for p, g := range tt.gossip {
				f.gens[p] = g
			}
			step(t, r, f, now, 0, addrs(3), 1)
			if !r.IsLeader() {
				t.Fatal("node 0 did not become leader")
			}
			if _, gen := r.Leader(); gen != tt.want {
				t.Errorf("generation = %d, want %d", gen, tt.want)
			}
			if g, _ := st.Generation(); g != tt.want {
				t.Errorf("stored generation = %d, want %d (persisted before leading)", g, tt.want)
			}
		})
	}
}

// TestLeaderStepsUpPastHigherGeneration: a node that refuses an order as
// stale says which generation it follows; a lease request says the same.
// Either makes the leader step up above it, persisted.
func TestLeaderStepsUpPastHigherGeneration(t *testing.T) {
	st := &memStore{}
	r, f, now := newTestLeaderWith(t, 3, mapTunables{"LeaseTime": 2}, st)
	step(t, r, f, now, 0, addrs(3), 1)
	if _, gen := r.Leader(); gen != 1 {
		t.Fatalf("generation = %d, want 1", gen)
	}

	// An order reply reveals generation 7.
	f.replyGen = 7
	rep, err := r.order(context.Background(), 1, KindTake, addrs(1)[0], -1, 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Generation != 7 {
		t.Fatalf("reply generation = %d", rep.Generation)
	}
	if _, gen := r.Leader(); gen != 8 {
		t.Errorf("after a reply with generation 7: generation = %d, want 8", gen)
	}

	// A lease request reveals 20: the grant is already in 21.
	now.Advance(100 * time.Millisecond)
	r.tick(context.Background())
	g, ok := r.HandleLease(LeaseRequest{PNN: 1, Seq: 1, Generation: 20})
	if !ok || g.Generation != 21 {
		t.Errorf("HandleLease(gen 20) = %+v, %v; want a grant in generation 21", g, ok)
	}
	if got, _ := st.Generation(); got != 21 {
		t.Errorf("stored generation = %d, want 21", got)
	}
	// Generations written only ever grow.
	for i := 1; i < len(st.writes); i++ {
		if st.writes[i] <= st.writes[i-1] {
			t.Errorf("stored generations went %v", st.writes)
		}
	}
}

// TestOutOfRangeGeneration: values above MaxGeneration can only be forged
// or corrupt; they are refused and never wrap the counter.
func TestOutOfRangeGeneration(t *testing.T) {
	r, f, now := newTestLeader(t, 3)
	step(t, r, f, now, 0, addrs(3), 1)
	if err := r.ObserveGeneration(1<<64 - 1); !errors.Is(err, ErrBadGeneration) {
		t.Errorf("ObserveGeneration(2^64-1) = %v, want ErrBadGeneration", err)
	}
	if _, ok := r.HandleLease(LeaseRequest{PNN: 1, Generation: MaxGeneration + 1}); ok {
		t.Error("lease granted to a request with an out-of-range generation")
	}
	if _, gen := r.Leader(); gen != 1 {
		t.Errorf("generation = %d after forged values, want 1", gen)
	}
	if err := r.ObserveGeneration(MaxGeneration); err != nil {
		t.Fatal(err)
	}
	if _, gen := r.Leader(); gen != MaxGeneration+1 {
		t.Errorf("generation = %d, want MaxGeneration+1", gen)
	}
}

// TestSafeTimeUsesGrantedLease: the leader granted 30 s leases, then its
// LeaseTime was set to 2. A node cut off after that keeps its 30 s lease:
// its addresses must not move before the granted lease ends.
func TestSafeTimeUsesGrantedLease(t *testing.T) {
	tun := mapTunables{"LeaseTime": 30}
	r, f, now := newTestLeaderWith(t, 3, tun, nil)
	ips := addrs(6)
	for v := uint64(1); v <= 4; v++ {
		step(t, r, f, now, 100*time.Millisecond, ips, v)
	}
	if got := f.counts(); got[2] == 0 {
		t.Fatalf("node 2 holds nothing: %v", got)
	}
	if _, err := r.cfg.Tunables.(*config.Tunables).Set("LeaseTime", 2); err != nil {
		t.Fatal(err)
	}
	cut := now.Now()
	f.mu.Lock()
	f.alive[2] = false
	f.leaseEnd[2] = cut.Add(30 * time.Second)
	f.mu.Unlock()
	v := uint64(5)
	for now.Sub(cut) < 30*time.Second {
		step(t, r, f, now, 500*time.Millisecond, ips, v)
		v++
		f.mu.Lock()
		n := len(f.held[0]) + len(f.held[1])
		f.mu.Unlock()
		if n > 4 {
			t.Fatalf("node 2's addresses moved %v after it was cut off, before its 30 s lease ended", now.Sub(cut))
		}
	}
	for range 4 {
		step(t, r, f, now, 500*time.Millisecond, ips, v)
		v++
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.held[0]) + len(f.held[1]); n != 6 {
		t.Errorf("after the lease ended %d of 6 addresses are served", n)
	}
	for _, l := range f.log {
		if len(l) > 9 && l[:9] == "DUPLICATE" {
			t.Error(l)
		}
	}
}

// TestUnansweredTakeAsksForState: a take that got no answer leaves the
// node a possible holder; only its report settles that, and a node
// reports only what changes, so the leader asks for one with the next
// grant. Without it the address stayed unserved until something else
// changed on that node (a soak liveness miss).
func TestUnansweredTakeAsksForState(t *testing.T) {
	r, f, now := newTestLeader(t, 2)
	ips := addrs(2)
	step(t, r, f, now, 0, ips, 1)
	step(t, r, f, now, 100*time.Millisecond, ips, 2)
	f.mu.Lock()
	var a netip.Addr
	for x := range f.held[1] {
		a = x
	}
	delete(f.held[1], a) // node 1 lost its link and the address, and
	f.unavail[1] = true
	f.lostOnce[0] = true // the take on node 0 goes unanswered
	f.mu.Unlock()
	if !a.IsValid() {
		t.Fatal("node 1 holds nothing")
	}
	// Node 1 reports the loss; the leader orders the take on node 0,
	// which is lost.
	step(t, r, f, now, 100*time.Millisecond, ips, 3)
	g, ok := r.HandleLease(LeaseRequest{PNN: 0, Seq: 9, StateBoot: 1, StateVersion: 3})
	if !ok || !g.WantState {
		t.Fatalf("grant after an unanswered take = %+v, %v; want WantState", g, ok)
	}
	// The report comes (node 0 does not hold it) and the address is placed.
	for v := uint64(4); v < 8; v++ {
		step(t, r, f, now, 100*time.Millisecond, ips, v)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.held[0][a] && !f.held[1][a] {
		t.Errorf("%s not served after node 0's report", a)
	}
}
