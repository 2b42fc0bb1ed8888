package recoverd

import (
	"net/netip"
	"time"

	"github.com/ctdb-go/ctdb-go/ipalloc"
)

// Op moves one address: every node in Release releases it, and only then
// Take takes it (-1: only release). Duplicate says more than one live
// node may hold it, so that the op, done, resolves a duplicate.
type Op struct {
	Addr      netip.Addr
	Release   []int
	Take      int
	Duplicate bool
}

// Override is what an acknowledged order did to one node's holding of
// one address, valid until a state report from the same daemon run
// (Boot) with a version of at least Version says so itself: reports are
// asynchronous, and an older one must not undo an order.
type Override struct {
	Held    bool
	Boot    int64
	Version uint64
}

// FenceState is the leader's knowledge of fencing one unreachable node,
// for one loss of it: a fence of an earlier loss (the node came back and
// was lost again) says nothing about this one.
type FenceState struct {
	Loss    uint64 // the loss it is for: View.Loss when it was made
	Running bool
	Done    bool      // fenced: its addresses may move now
	LastErr string    // why the last attempt failed
	Tries   int       // attempts so far
	NextTry time.Time // no attempt before this
}

// View is everything one takeover decision reads: the leader's knowledge
// at one moment as plain values. Decide only reads it, so the leader's
// loop may hand it its own maps while it holds its lock. A missing map
// entry means what the zero value says (not alive, no report, no grant).
type View struct {
	Self    int   // the leader's PNN: without quorum its fences wait FenceDelay × Self
	Nodes   []int // every PNN that is not DELETED
	Deleted []int // DELETED nodes: they host nothing, but the deterministic algorithm counts them

	Alive  map[int]bool      // membership's view of each node
	States map[int]NodeState // each node's last report to this leader; missing: none yet
	// Overrides corrects States by orders acknowledged after a report
	// was made: address → node → effect.
	Overrides map[netip.Addr]map[int]Override
	// Assigned is where this leader put each address (kept or taken).
	Assigned map[netip.Addr]int
	// Moving are addresses with orders in flight: Decide leaves them
	// alone. MovingTo is where a takeover run's move takes each (-1:
	// nowhere); MoveIP's moves are Moving without a MovingTo.
	Moving   map[netip.Addr]bool
	MovingTo map[netip.Addr]int
	// Suspect lists, per address, the nodes sent a take whose result is
	// unknown (no answer): they may hold it.
	Suspect map[netip.Addr][]int
	// Prefer are an administrator's wishes (`ctdb moveip`): address →
	// the node to put it on, over the placement ipalloc computes. A wish
	// the node cannot host now is ignored.
	Prefer map[netip.Addr]int
	// CouldHost is, per node, whether it could host in this leader's
	// previous run; empty after a leader change.
	CouldHost map[int]bool

	// GrantEnd is, per node, the end of the last lease this leader
	// granted it; LastGrant when it granted it.
	GrantEnd  map[int]time.Time
	LastGrant map[int]time.Time
	// LeaderSince is when this node became leader; MaxLease the longest
	// lease an earlier leader may have granted (see safeTime).
	LeaderSince time.Time
	MaxLease    time.Duration

	// LostAt is when each unreachable node was first seen gone, Fencing
	// each one's fence state (fencing on only).
	LostAt  map[int]time.Time
	Fencing map[int]FenceState
	// Loss counts, per node, the times it was seen alive again: it
	// names the current loss, and a fence state with another is void.
	Loss map[int]uint64
	// Seen are the nodes seen alive since this daemon started, at
	// Started: an unseen node gets FenceStartupGrace before a fence.
	Seen    map[int]bool
	Started time.Time

	// Configuration and tunables.
	FailoverDisabled  bool // `[failover] disabled`: nothing is placed, taken or released
	Fence             bool // fencing on: unreachable nodes' addresses wait for a fence, not their lease
	Quorum            bool // majority quorum: fence only with a confirmed majority
	Algorithm         ipalloc.Algorithm
	NoIPTakeover      bool
	NoIPFailback      bool
	RenewInterval     time.Duration // LeaseRenewIntervalMs
	FenceDelay        time.Duration // FenceDelayMs, per PNN, without quorum
	FenceStartupGrace time.Duration
	Allocate          AllocateFunc // nil means ipalloc.Allocate
}

// Decision is one takeover run's outcome: the actions to take and the
// state updates the decision implies, for the leader's loop to carry out.
type Decision struct {
	// Ops are the moves, by address: each releases before it takes.
	Ops []Op
	// Keep are addresses that stay where they are: the loop records them
	// as assigned.
	Keep map[netip.Addr]int
	// Blocked are addresses not served as planned, and why.
	Blocked map[netip.Addr]string
	// Wake is when to decide again at the latest (a lease runs out, the
	// start-up hold ends); zero: at the next RecoverInterval.
	Wake time.Time
	// Duplicates describes the addresses more than one live node may
	// hold, each with an op that releases it on all but at most one.
	Duplicates []string
	// CanHost is which nodes could host in this run.
	CanHost map[int]bool
	// Fence lists the nodes whose fence to start now.
	Fence []int
	// FenceStates is the new fence state of each node the decision
	// waited on a fence for (Fence ones marked running, one try more).
	FenceStates map[int]FenceState
	// LostAt are unreachable nodes first seen gone now.
	LostAt map[int]time.Time
	// Notes are ipalloc's remarks on its input.
	Notes []string
}
