package lease

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ctdb-go/ctdb-go/recoverd"
)

// fakeLeader is the election as the keeper sees it: node 0 leads.
type fakeLeader struct {
	mu        sync.Mutex
	leader    int
	gen       uint64
	suspected []int
}

func (f *fakeLeader) Leader() (int, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader, f.gen
}

func (f *fakeLeader) ObserveGeneration(g uint64) error {
	if g > recoverd.MaxGeneration {
		return recoverd.ErrBadGeneration
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen = max(f.gen, g)
	return nil
}

func (f *fakeLeader) HighestGeneration() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gen
}

func (f *fakeLeader) SuspectLeader(pnn int, _ time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.suspected = append(f.suspected, pnn)
}

// harness runs a Keeper for node 1 in the current synctest bubble.
type harness struct {
	k      *Keeper
	leader *fakeLeader
	mu     sync.Mutex
	reqs   []recoverd.LeaseRequest
	lt     time.Duration
	gap    time.Duration
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{leader: &fakeLeader{leader: 0, gen: 5}, lt: 2 * time.Second}
	k, err := New(Config{
		PNN:    1,
		Leader: h.leader,
		Send: func(_ int, req recoverd.LeaseRequest) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.reqs = append(h.reqs, req)
			return nil
		},
		LeaseTime: func() time.Duration {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.lt
		},
		SuspendGap: func() (time.Duration, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.gap, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.k = k
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { k.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

// lastReq waits for the next request and returns it.
func (h *harness) lastReq(t *testing.T) recoverd.LeaseRequest {
	t.Helper()
	time.Sleep(DefaultRenewInterval)
	synctest.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.reqs) == 0 {
		t.Fatal("no lease request sent")
	}
	return h.reqs[len(h.reqs)-1]
}

// grant answers req from node from and lets the keeper take it.
func (h *harness) grant(from int, g recoverd.LeaseGrant) {
	h.k.Grant(from, g)
	synctest.Wait()
}

func TestGrantExtendsFromSendTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		req := h.lastReq(t)
		sent := time.Now()
		if req.PNN != 1 || req.Generation != 5 || req.LeaseTime != 2*time.Second {
			t.Errorf("request = %+v, want PNN 1, generation 5, LeaseTime 2s", req)
		}
		time.Sleep(30 * time.Millisecond) // the grant's way back
		h.grant(0, recoverd.LeaseGrant{Seq: req.Seq, Generation: 5, Leader: 0, LeaseTime: 2 * time.Second})
		if got, want := h.k.Term().End, sent.Add(2*time.Second); !got.Equal(want) {
			t.Errorf("lease end = %v after send, want %v", got.Sub(sent), want.Sub(sent))
		}
	})
}

func TestGrantOnlyFromTheLeaderAsked(t *testing.T) {
	tests := []struct {
		name string
		from int
		g    func(seq uint64) recoverd.LeaseGrant
		want time.Duration // lease left after the grant; 0: none
	}{
		{"from a node not asked", 2, func(seq uint64) recoverd.LeaseGrant {
			return recoverd.LeaseGrant{Seq: seq, Generation: 5, Leader: 2, LeaseTime: time.Hour}
		}, 0},
		{"in another leader's name", 0, func(seq uint64) recoverd.LeaseGrant {
			return recoverd.LeaseGrant{Seq: seq, Generation: 5, Leader: 2, LeaseTime: time.Hour}
		}, 0},
		{"for a request never sent", 0, func(uint64) recoverd.LeaseGrant {
			return recoverd.LeaseGrant{Seq: 1 << 40, Generation: 5, Leader: 0, LeaseTime: time.Hour}
		}, 0},
		{"with a forged huge generation", 0, func(seq uint64) recoverd.LeaseGrant {
			return recoverd.LeaseGrant{Seq: seq, Generation: 1<<64 - 1, Leader: 0, LeaseTime: time.Hour}
		}, 0},
		{"from an older generation", 0, func(seq uint64) recoverd.LeaseGrant {
			return recoverd.LeaseGrant{Seq: seq, Generation: 4, Leader: 0, LeaseTime: time.Hour}
		}, 0},
		{"for an hour: capped at the local LeaseTime", 0, func(seq uint64) recoverd.LeaseGrant {
			return recoverd.LeaseGrant{Seq: seq, Generation: 5, Leader: 0, LeaseTime: time.Hour}
		}, 2 * time.Second},
		{"shorter than the local LeaseTime", 0, func(seq uint64) recoverd.LeaseGrant {
			return recoverd.LeaseGrant{Seq: seq, Generation: 5, Leader: 0, LeaseTime: time.Second}
		}, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t)
				req := h.lastReq(t)
				h.grant(tt.from, tt.g(req.Seq))
				if got := time.Until(h.k.Term().End); max(got, 0) != tt.want {
					t.Errorf("lease left = %v, want %v", got, tt.want)
				}
				if g := h.leader.HighestGeneration(); g != 5 {
					t.Errorf("highest generation = %d, want 5", g)
				}
			})
		})
	}
}

func TestLapseStartsNewTerm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		req := h.lastReq(t)
		h.grant(0, recoverd.LeaseGrant{Seq: req.Seq, Generation: 5, Leader: 0, LeaseTime: 2 * time.Second})
		first := h.k.Term()
		if !first.Valid(time.Now()) {
			t.Fatal("no lease after a grant")
		}
		// No more grants (the leader froze): the lease lapses and the
		// table is told at once.
		time.Sleep(2*time.Second + checkInterval)
		synctest.Wait()
		select {
		case <-h.k.Changed():
		default:
			t.Error("Changed not signalled on a lapse")
		}
		lapsed := h.k.Term()
		if lapsed.Valid(time.Now()) || lapsed.ID == first.ID {
			t.Errorf("term after the lapse = %+v, first was %+v: want a new ID and no lease", lapsed, first)
		}
		// The grant that follows starts a lease, in the new term.
		req = h.lastReq(t)
		h.grant(0, recoverd.LeaseGrant{Seq: req.Seq, Generation: 5, Leader: 0, LeaseTime: 2 * time.Second})
		if t2 := h.k.Term(); t2.ID != lapsed.ID || !t2.Valid(time.Now()) {
			t.Errorf("term after a new grant = %+v, want ID %d and a lease", t2, lapsed.ID)
		}
		if h.k.Lapses() != 1 {
			t.Errorf("lapses = %d, want 1", h.k.Lapses())
		}
	})
}

func TestLoweredLeaseTimeShortensLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		h.mu.Lock()
		h.lt = 30 * time.Second
		h.mu.Unlock()
		req := h.lastReq(t)
		sent := time.Now()
		h.grant(0, recoverd.LeaseGrant{Seq: req.Seq, Generation: 5, Leader: 0, LeaseTime: 30 * time.Second})
		// setvar LeaseTime 2: stop granting and see the lease end 2 s
		// after the send time, not 30.
		h.mu.Lock()
		h.lt = 2 * time.Second
		h.leader.leader = -1
		h.mu.Unlock()
		time.Sleep(checkInterval)
		synctest.Wait()
		if got := h.k.Term().End.Sub(sent); got != 2*time.Second {
			t.Errorf("lease end after lowering LeaseTime = send + %v, want send + 2s", got)
		}
	})
}

func TestSuspendEndsTerm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		req := h.lastReq(t)
		h.grant(0, recoverd.LeaseGrant{Seq: req.Seq, Generation: 5, Leader: 0, LeaseTime: 2 * time.Second})
		before := h.k.Term()
		// CLOCK_BOOTTIME ran 30 s ahead: the host slept with our lease.
		h.mu.Lock()
		h.gap += 30 * time.Second
		h.mu.Unlock()
		time.Sleep(checkInterval)
		synctest.Wait()
		after := h.k.Term()
		if after.ID == before.ID || after.Valid(time.Now()) {
			t.Errorf("term after a suspend = %+v (before %+v): want a new ID, no lease", after, before)
		}
		// A request sent before the suspend never extends the lease.
		h.grant(0, recoverd.LeaseGrant{Seq: req.Seq, Generation: 5, Leader: 0, LeaseTime: 2 * time.Second})
		if h.k.Term().Valid(time.Now()) {
			t.Error("a grant for a request sent before the suspend extended the lease")
		}
	})
}

func TestSilentLeaderSuspected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		req := h.lastReq(t)
		h.grant(0, recoverd.LeaseGrant{Seq: req.Seq, Generation: 5, Leader: 0, LeaseTime: 2 * time.Second})
		time.Sleep(5 * DefaultRenewInterval)
		synctest.Wait()
		h.leader.mu.Lock()
		defer h.leader.mu.Unlock()
		if len(h.leader.suspected) == 0 || h.leader.suspected[0] != 0 {
			t.Errorf("suspected leaders = %v, want [0 …] after it stopped answering", h.leader.suspected)
		}
	})
}

func TestNewNeedsItsSeams(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Errorf("New(Config{}) = %v, want an error", err)
	}
}
