package recoverd

import (
	"net/netip"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
)

// Message kinds exchanged between nodes (memberlist user messages).
const (
	KindLease         = "lease"         // node → leader, best effort: LeaseRequest
	KindGrant         = "grant"         // leader → node, best effort: LeaseGrant
	KindState         = "state"         // node → leader, reliable: NodeState
	KindTake          = "take"          // leader → node, request: Order → OrderReply
	KindRelease       = "release"       // leader → node, request: Order → OrderReply
	KindIPReallocated = "ipreallocated" // leader → node, one-way: Order (no addrs)
	KindTrigger       = "trigger"       // node → leader, one-way: Trigger
)

// Runstates, as CTDB's.
const (
	RunStateInit          = "INIT"
	RunStateSetup         = "SETUP"
	RunStateFirstRecovery = "FIRST_RECOVERY"
	RunStateStartup       = "STARTUP"
	RunStateRunning       = "RUNNING"
	RunStateShutdown      = "SHUTDOWN"
)

// PublicAddr is a public address as a node configures it.
type PublicAddr struct {
	Prefix netip.Prefix `json:"prefix"`
	Ifaces []string     `json:"ifaces"`
}

// NodeState is what a node tells the leader about itself: sent whenever it
// changes and on a new leader. Version only grows within one daemon run;
// Boot tells daemon runs apart.
type NodeState struct {
	PNN      int            `json:"pnn"`
	Boot     int64          `json:"boot"`
	Version  uint64         `json:"version"`
	Flags    nodeflag.Flags `json:"flags"` // UNHEALTHY and the admin flags
	RunState string         `json:"runstate"`
	// Known is the node's public_addresses; Available the addresses it
	// can host now (an interface with link up).
	Known     []PublicAddr `json:"known"`
	Available []netip.Addr `json:"available"`
	// Held is every public address configured on the node's interfaces.
	Held []netip.Addr `json:"held"`
}

// LeaseRequest asks the leader to extend the sender's lease. The sender
// keeps its own send time by Seq: no clocks are compared across nodes.
// Generation is the highest the sender has seen; LeaseTime its own
// LeaseTime, the longest lease it will take.
type LeaseRequest struct {
	PNN          int           `json:"pnn"`
	Seq          uint64        `json:"seq"`
	Generation   uint64        `json:"gen"`
	StateBoot    int64         `json:"boot"`
	StateVersion uint64        `json:"ver"`
	LeaseTime    time.Duration `json:"lease,omitempty"`
}

// LeaseGrant answers a LeaseRequest. WantState asks for a full NodeState
// because the leader's copy is older than StateVersion.
type LeaseGrant struct {
	Seq        uint64        `json:"seq"`
	Generation uint64        `json:"gen"`
	Leader     int           `json:"leader"`
	LeaseTime  time.Duration `json:"lease"`
	WantState  bool          `json:"want_state,omitempty"`
}

// Order tells a node to take or release addresses.
type Order struct {
	Generation uint64       `json:"gen"`
	Leader     int          `json:"leader"`
	Addrs      []netip.Addr `json:"addrs"`
	// NewHolder, for releases: the node that will get each address (-1
	// nobody); shown by `ctdb ip` on the releasing node.
	NewHolder []int `json:"new_holder,omitempty"`
}

// OrderReply reports per address: an empty string is success.
type OrderReply struct {
	// Generation is the highest the node has seen: above the order's, it
	// refused the order as stale, and the leader steps up above it.
	Generation uint64   `json:"gen,omitempty"`
	Errors     []string `json:"errors"`
	// Faults marks errors that are the node's own (an event script or the
	// kernel failed), which count towards banning it; other errors (the
	// address still answered elsewhere, the node cannot host, a stale
	// generation) are not its fault.
	Faults []bool `json:"faults,omitempty"`
	// Boot and Version: every state report from this daemon run with a
	// version at least Version reflects this order.
	Boot    int64  `json:"boot"`
	Version uint64 `json:"version"`
	// ProbeAnswers: the MAC that answered the duplicate-address probe
	// for an address that could not be taken.
	ProbeAnswers []string `json:"probe_answers,omitempty"`
}

// Trigger asks the leader for a takeover run.
type Trigger struct {
	PNN    int    `json:"pnn"`
	Reason string `json:"reason"`
}
