package recoverd

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
)

// Leader reports the leader this node knows and its generation; -1 if none.
func (r *Recoverd) Leader() (int, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.leader {
		return r.cfg.PNN, r.gen
	}
	return r.knownLeaderLocked()
}

// IsLeader reports whether this node leads now.
func (r *Recoverd) IsLeader() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leader
}

// SuspectLeader says the leader pnn has stopped answering lease requests:
// until the given time the election treats it as gone, without waiting
// for memberlist to declare it dead. Its cluster lock still decides.
func (r *Recoverd) SuspectLeader(pnn int, until time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if pnn != r.cfg.PNN {
		r.silent[pnn] = until
	}
}

func (r *Recoverd) silentLocked(pnn int) bool {
	return r.now().Before(r.silent[pnn])
}

// knownLeaderLocked is the leader other nodes announce: the live one with
// the highest generation. Lease requests go to it even while it is
// suspected (a slow leader must not lose its followers' leases).
func (r *Recoverd) knownLeaderLocked() (int, uint64) {
	return r.announcedLeaderLocked(false)
}

// announcedLeaderLocked finds the leader; with skipSilent, leaders that
// stopped answering count as gone (for the election only).
func (r *Recoverd) announcedLeaderLocked(skipSilent bool) (int, uint64) {
	best, bestGen := -1, uint64(0)
	for _, p := range r.peers {
		if skipSilent && r.silentLocked(p.PNN) {
			continue
		}
		if p.Alive && p.Leader == p.PNN && p.PNN != r.cfg.PNN && (best < 0 || p.Generation > bestGen) {
			best, bestGen = p.PNN, p.Generation
		}
	}
	return best, bestGen
}

// tick refreshes membership, checks quorum and the lock, and elects.
func (r *Recoverd) tick(ctx context.Context) {
	peers := r.cfg.Transport.Peers()
	now := r.now()

	r.mu.Lock()
	prev := r.peers
	r.peers = map[int]Peer{}
	alive := 0
	for _, p := range peers {
		if p.Generation > MaxGeneration {
			// Forged or corrupt: such a node leads nobody.
			r.log.Debug("ignoring out-of-range generation", "pnn", p.PNN, "generation", p.Generation)
			p.Generation, p.Leader = 0, -1
		}
		if p.Generation > r.maxSeen || r.leader && p.Generation > r.gen && p.Leader != p.PNN {
			if err := r.raiseLocked(p.Generation, p.Leader != p.PNN); err != nil {
				r.log.Error("recording generation", "err", err)
			}
		}
		r.peers[p.PNN] = p
		if p.Alive && !prev[p.PNN].Alive {
			r.loss[p.PNN]++ // any earlier loss is over
		}
		if was, known := prev[p.PNN]; r.leader && known && was.Alive != p.Alive {
			r.runAt = now // membership changed: decide now, not at RecoverInterval
		}
		if p.Alive && slices.Contains(r.cfg.Nodes, p.PNN) {
			alive++
			r.seen[p.PNN] = true
		}
	}
	r.quorumOK = !r.cfg.Quorum || alive*2 > len(r.cfg.Nodes)
	r.forgetFencingLocked()
	self := r.peers[r.cfg.PNN]
	mayLead := self.Flags&(nodeflag.Banned|nodeflag.Stopped) == 0

	if r.leader {
		reason := ""
		select {
		case <-r.lockLost:
			reason = "cluster lock lost"
		default:
		}
		if !r.quorumOK {
			reason = fmt.Sprintf("lost quorum: %d of %d nodes reachable", alive, len(r.cfg.Nodes))
		}
		if !mayLead {
			reason = "node is " + self.Flags.String()
		}
		if reason == "" && r.cfg.Lock == nil {
			// Without a lock two leaders can meet after a partition
			// heals: the one with the older generation, or the higher
			// PNN on a tie, gives way.
			if o, g := r.knownLeaderLocked(); o >= 0 && (g > r.gen || g == r.gen && o < r.cfg.PNN) {
				reason = fmt.Sprintf("node %d leads with generation %d", o, g)
			}
		}
		if reason != "" {
			r.mu.Unlock()
			r.stepDown(reason)
			return
		}
		// Grants are valid only a short while past this check, so a
		// leader that was frozen (SIGSTOP) grants nothing after it
		// wakes until it has checked its lock and quorum again.
		r.validUntil = now.Add(500 * time.Millisecond)
		r.mu.Unlock()
		return
	}

	known, _ := r.announcedLeaderLocked(true)
	lowest := true
	for _, p := range peers {
		if p.Alive && p.PNN < r.cfg.PNN && p.Flags&(nodeflag.Banned|nodeflag.Stopped) == 0 &&
			slices.Contains(r.cfg.Nodes, p.PNN) && !r.silentLocked(p.PNN) {
			lowest = false
		}
	}
	try := r.quorumOK && mayLead && known < 0 && lowest && now.Sub(r.lastTry) >= 250*time.Millisecond
	if try {
		r.lastTry = now
	}
	r.mu.Unlock()
	if !try {
		return
	}
	var lost <-chan struct{}
	release := func() error { return nil }
	if r.cfg.Lock != nil {
		l, rel, err := r.cfg.Lock(ctx)
		if err != nil {
			r.log.Debug("cluster lock not taken", "err", err)
			return
		}
		lost, release = l, rel
	}
	r.becomeLeader(lost, release)
}

func (r *Recoverd) becomeLeader(lost <-chan struct{}, release func() error) {
	// Above every generation this node has seen or stored, and every one
	// its peers gossip (each gossips the highest it has seen).
	r.mu.Lock()
	defer r.mu.Unlock()
	gen := r.maxSeen
	for _, p := range r.peers {
		gen = max(gen, p.Generation)
	}
	gen++
	if r.cfg.Store != nil {
		if err := r.cfg.Store.SetGeneration(gen); err != nil {
			r.log.Error("persisting generation; not leading", "err", err)
			_ = release()
			return
		}
	}
	r.maxSeen = gen
	now := r.now()
	r.leader = true
	r.gen = gen
	r.leaderSince = now
	r.validUntil = now.Add(500 * time.Millisecond)
	r.lockLost = lost
	r.release = release
	r.states = map[int]NodeState{}
	r.lastGrant = map[int]time.Time{}
	r.grantEnd = map[int]time.Time{}
	r.maxLease = r.leaseTimeLocked()
	r.assigned = map[netip.Addr]int{}
	r.suspect = map[netip.Addr]map[int]time.Time{}
	r.askState = map[int]bool{}
	r.failures = map[int][]time.Time{}
	r.fencing = map[int]FenceState{}
	r.lostAt = map[int]time.Time{}
	r.canHost = map[int]bool{}
	r.override = map[netip.Addr]map[int]Override{}
	r.moves = map[netip.Addr]*moveWish{}
	r.runAt = now
	r.log.Info("this node is now the leader", "pnn", r.cfg.PNN, "generation", gen)
}

func (r *Recoverd) stepDown(reason string) {
	r.mu.Lock()
	if !r.leader {
		r.mu.Unlock()
		return
	}
	r.leader = false
	release := r.release
	r.release = nil
	r.lockLost = nil
	r.validUntil = time.Time{}
	for a := range r.moves {
		r.answerMoveLocked(a, ErrNotLeader)
	}
	r.mu.Unlock()
	r.log.Warn("no longer the leader", "reason", reason)
	if release != nil {
		if err := release(); err != nil {
			r.log.Warn("releasing cluster lock", "err", err)
		}
	}
}
