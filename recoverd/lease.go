package recoverd

// HandleLease answers a node's lease request on the leader. ok is false
// when no grant may be given: this node does not lead, has no quorum, has
// not re-checked its lock recently, or the requester is not a live member
// (a node the leader has declared failed gets nothing until it rejoins).
//
// The grant's LeaseTime is the shorter of the leader's and the
// requester's, and the leader records, per node, the lease end it granted
// (see View.safeTime): a LeaseTime changed on one node, or on the leader
// between two grants, never lets a node hold an address past the time the
// leader waits for. A requester that has seen a higher generation than the
// leader's makes the leader step up above it first.
func (r *Recoverd) HandleLease(req LeaseRequest) (LeaseGrant, bool) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.leader || !r.quorumOK || !now.Before(r.validUntil) {
		return LeaseGrant{}, false
	}
	if p, ok := r.peers[req.PNN]; !ok || !p.Alive {
		return LeaseGrant{}, false
	}
	if req.Generation > MaxGeneration {
		r.log.Warn("lease request with an out-of-range generation", "pnn", req.PNN, "generation", req.Generation)
		return LeaseGrant{}, false
	}
	if req.Generation > r.gen {
		if err := r.raiseLocked(req.Generation, true); err != nil {
			r.log.Error("stepping the generation up", "err", err)
			return LeaseGrant{}, false
		}
	}
	lt := r.leaseTimeLocked()
	if req.LeaseTime > 0 && req.LeaseTime != lt {
		r.log.Warn("node uses another LeaseTime; granting the shorter", "pnn", req.PNN,
			"node_lease", req.LeaseTime, "leader_lease", lt)
		r.maxLease = max(r.maxLease, req.LeaseTime)
		lt = min(lt, req.LeaseTime)
	}
	r.maxLease = max(r.maxLease, lt)
	r.lastGrant[req.PNN] = now
	if e := r.grantEnd[req.PNN]; e.Sub(now) <= minHostLease {
		// The node could not host before this grant (a new leader, a
		// node back from a lapse): place addresses now, not at the next
		// RecoverInterval.
		r.runAt = now
		r.wake()
	}
	if end := now.Add(lt); end.After(r.grantEnd[req.PNN]) {
		r.grantEnd[req.PNN] = end
	}
	st, ok := r.states[req.PNN]
	want := !ok || st.Boot != req.StateBoot || st.Version < req.StateVersion || r.askState[req.PNN]
	return LeaseGrant{
		Seq:        req.Seq,
		Generation: r.gen,
		Leader:     r.cfg.PNN,
		LeaseTime:  lt,
		WantState:  want,
	}, true
}

// UpdateState records a node's state on the leader and starts a takeover
// run when something that matters for placement changed.
func (r *Recoverd) UpdateState(st NodeState) {
	r.mu.Lock()
	old, had := r.states[st.PNN]
	if !r.leader || had && old.Boot == st.Boot && old.Version >= st.Version {
		r.mu.Unlock()
		return
	}
	r.states[st.PNN] = st
	// Orders this report already reflects need no override any more.
	for a, m := range r.override {
		if o, ok := m[st.PNN]; ok && (o.Boot != st.Boot || o.Version <= st.Version) {
			delete(m, st.PNN)
			if len(m) == 0 {
				delete(r.override, a)
			}
		}
	}
	// A fresh report supersedes doubts about takes whose result was
	// unknown: the node says what it holds.
	delete(r.askState, st.PNN)
	cleared := false
	for a, m := range r.suspect {
		if _, ok := m[st.PNN]; ok {
			delete(m, st.PNN)
			cleared = true
		}
		if len(m) == 0 {
			delete(r.suspect, a)
		}
	}
	changed := cleared || !had || old.Flags != st.Flags || old.RunState != st.RunState ||
		!equalAddrs(old.Available, st.Available) || !equalAddrs(old.Held, st.Held) ||
		len(old.Known) != len(st.Known)
	if changed {
		r.runAt = r.now()
	}
	r.mu.Unlock()
	if changed {
		r.wake()
	}
}

// States returns the node states the leader knows, by PNN.
func (r *Recoverd) States() map[int]NodeState {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[int]NodeState, len(r.states))
	for p, s := range r.states {
		m[p] = s
	}
	return m
}

func equalAddrs[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
