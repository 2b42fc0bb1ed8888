package recoverd

// HandleLease answers a node's lease request on the leader. ok is false
// when no grant may be given: this node does not lead, has no quorum, has
// not re-checked its lock recently, or the requester is not a live member
// (a node the leader has declared failed gets nothing until it rejoins).
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
	r.lastGrant[req.PNN] = now
	st := r.states[req.PNN]
	want := st == nil || st.Boot != req.StateBoot || st.Version < req.StateVersion
	return LeaseGrant{
		Seq:        req.Seq,
		Generation: r.gen,
		Leader:     r.cfg.PNN,
		LeaseTime:  r.LeaseTime(),
		WantState:  want,
	}, true
}

// UpdateState records a node's state on the leader and starts a takeover
// run when something that matters for placement changed.
func (r *Recoverd) UpdateState(st NodeState) {
	r.mu.Lock()
	old := r.states[st.PNN]
	if !r.leader || old != nil && old.Boot == st.Boot && old.Version >= st.Version {
		r.mu.Unlock()
		return
	}
	r.states[st.PNN] = &st
	// Orders this report already reflects need no override any more.
	for a, m := range r.override {
		if o, ok := m[st.PNN]; ok && (o.boot != st.Boot || o.version <= st.Version) {
			delete(m, st.PNN)
			if len(m) == 0 {
				delete(r.override, a)
			}
		}
	}
	// A fresh report supersedes doubts about takes whose result was
	// unknown: the node says what it holds.
	for a, m := range r.suspect {
		delete(m, st.PNN)
		if len(m) == 0 {
			delete(r.suspect, a)
		}
	}
	changed := old == nil || old.Flags != st.Flags || old.RunState != st.RunState ||
		!equalAddrs(old.Available, st.Available) || !equalAddrs(old.Held, st.Held) ||
		len(old.Known) != len(st.Known)
	if changed {
		r.runAt = r.now()
	}
	r.mu.Unlock()
	if changed {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

// States returns the node states the leader knows, by PNN.
func (r *Recoverd) States() map[int]NodeState {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[int]NodeState, len(r.states))
	for p, s := range r.states {
		m[p] = *s
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
