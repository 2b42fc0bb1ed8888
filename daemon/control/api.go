// Package control is ctdbd's local API: a root-only unix socket that speaks
// one JSON request and one JSON response per connection. tools/ctdb is its
// client; the daemon implements Handler. This file is the contract between
// the two: command names and the data each returns.
package control

import (
	"context"
	"encoding/json"
	"net/netip"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
)

// ThisNode as a Request's Target means the node whose socket was dialled.
const ThisNode = -1

// SocketName is the socket's file name inside the run dir.
const SocketName = "ctdbd.socket"

// Request is one control. Command is a name below; Args are its words as
// the CLI took them (e.g. ["198.18.1.1", "2"] for moveip). A Target other
// than ThisNode makes the receiving daemon forward the request to that node
// over the private network and relay the answer.
type Request struct {
	Command string   `json:"command"`
	Args    []string `json:"args,omitempty"`
	Target  int      `json:"target"`
	// DryRun asks for a plan without acting (ipreallocate --dry-run).
	DryRun bool `json:"dry_run,omitempty"`
	// Timeout is how long the client waits for the answer (the CLI's -t,
	// or -T for commands that wait for a takeover run or an event); the
	// server bounds the handler's context by it, so work the client gave
	// up on stops. 0 means the server's own limit.
	Timeout time.Duration `json:"timeout,omitempty"`
	// EventTimeout is `ctdb event run TIMEOUT ...`: the whole event's
	// time limit; 0 means the daemon's EventScriptTimeout.
	EventTimeout time.Duration `json:"event_timeout,omitempty"`
}

// Response is the answer. ExitCode is what the CLI exits with (0 on
// success); Error, when set, is printed on stderr as "ctdb: <Error>";
// Notice is printed on stderr but is not an error (e.g. "Node 1 is already
// disabled"). Data holds the command's result type, below.
type Response struct {
	ExitCode int             `json:"exit_code"`
	Error    string          `json:"error,omitempty"`
	Notice   string          `json:"notice,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
}

// Handler serves controls; the daemon implements it.
type Handler interface {
	Handle(ctx context.Context, req Request) Response
}

// Commands and their Data:
//
//	status                 Status
//	nodestatus             Status (node lines only)
//	pnn                    PNN
//	leader                 Leader
//	listnodes              []NodeAddr
//	ip [all]               IPs          ("all": every node's claims merged)
//	ifaces                 []Iface
//	uptime                 Uptime
//	listvars               []Tunable
//	getvar NAME            Tunable
//	setvar NAME VALUE      (none)
//	disable|enable|stop|continue|unban      (none)
//	ban SECONDS            (none)
//	moveip IP PNN          (none)
//	reloadips              (none)
//	ipreallocate           Plan (DryRun: what would move; else what moved)
//	event status EVENT     EventStatus
//	event run EVENT ARGS…  EventStatus (of that run)
//	event script list      []Script
//	event script enable|disable NAME   (none)
//	gratarp IP IFACE       (none)
//	runstate               RunState
//	shutdown               (none)
const (
	CmdStatus       = "status"
	CmdNodeStatus   = "nodestatus"
	CmdPNN          = "pnn"
	CmdLeader       = "leader"
	CmdListNodes    = "listnodes"
	CmdIP           = "ip"
	CmdIfaces       = "ifaces"
	CmdUptime       = "uptime"
	CmdListVars     = "listvars"
	CmdGetVar       = "getvar"
	CmdSetVar       = "setvar"
	CmdDisable      = "disable"
	CmdEnable       = "enable"
	CmdStop         = "stop"
	CmdContinue     = "continue"
	CmdBan          = "ban"
	CmdUnban        = "unban"
	CmdMoveIP       = "moveip"
	CmdReloadIPs    = "reloadips"
	CmdIPReallocate = "ipreallocate"
	CmdEvent        = "event"
	CmdGratARP      = "gratarp"
	CmdRunState     = "runstate"
	CmdShutdown     = "shutdown"
)

// Status is `ctdb status`.
type Status struct {
	PNN          int          `json:"pnn"` // the answering node
	Nodes        []NodeStatus `json:"nodes"`
	Generation   uint32       `json:"generation"`    // 0: none yet (shown INVALID)
	RecoveryMode int          `json:"recovery_mode"` // 0 NORMAL, 1 RECOVERY
	Leader       int          `json:"leader"`        // -1: unknown
	// VNNMap is the lmaster list `ctdb status` prints as Size and
	// hash:i lmaster:p lines. nil: the CLI shows the nodes that are not
	// INACTIVE, in PNN order (what CTDB's vnnmap holds after a recovery).
	VNNMap []int `json:"vnn_map,omitempty"`
	// Fencing, when not empty, says which node is being fenced and why it
	// has not worked yet (ctdb-go).
	Fencing string `json:"fencing,omitempty"`
	// DuplicatesResolved counts addresses the leader had released on a node
	// that held them without being given them (ctdb-go).
	DuplicatesResolved uint64 `json:"duplicates_resolved,omitempty"`
}

// NodeStatus is one node line of `ctdb status`.
type NodeStatus struct {
	PNN             int            `json:"pnn"`
	Address         netip.Addr     `json:"address"`
	Flags           nodeflag.Flags `json:"flags"`
	PartiallyOnline bool           `json:"partially_online"`
	ThisNode        bool           `json:"this_node"`
}

// PNN is `ctdb pnn`.
type PNN struct {
	PNN int `json:"pnn"`
}

// Leader is `ctdb leader`; PNN -1 means unknown.
type Leader struct {
	PNN int `json:"pnn"`
}

// NodeAddr is one line of `ctdb listnodes`.
type NodeAddr struct {
	PNN     int        `json:"pnn"`
	Address netip.Addr `json:"address"`
	Deleted bool       `json:"deleted,omitempty"`
}

// IPs is `ctdb ip [all]`.
type IPs struct {
	PNN int        `json:"pnn"` // the answering node
	All bool       `json:"all"`
	IPs []PublicIP `json:"ips"` // sorted ascending, IPv4 before IPv6
}

// PublicIP is one public address as a node sees it.
type PublicIP struct {
	Addr       netip.Addr `json:"addr"`
	Bits       int        `json:"bits"`
	PNN        int        `json:"pnn"`    // holder; -1 unhosted
	Active     string     `json:"active"` // iface it is on here, "" if not here
	Available  []string   `json:"available"`
	Configured []string   `json:"configured"`
	// ProbeAnswer, when set, is the MAC that answered the last
	// duplicate-address probe for this address (ctdb-go).
	ProbeAnswer string `json:"probe_answer,omitempty"`
}

// Iface is one line of `ctdb ifaces`.
type Iface struct {
	Name       string `json:"name"`
	LinkUp     bool   `json:"link_up"`
	References int    `json:"references"`
}

// Uptime is `ctdb uptime`.
type Uptime struct {
	PNN                  int           `json:"pnn"`
	Now                  time.Time     `json:"now"`
	Started              time.Time     `json:"started"`
	LastRecovery         time.Time     `json:"last_recovery"`
	LastRecoveryDuration time.Duration `json:"last_recovery_duration"`
}

// Tunable is one `ctdb listvars` line.
type Tunable struct {
	Name  string `json:"name"`
	Value uint32 `json:"value"`
}

// EventStatus is `ctdb event status EVENT`: the last completed run.
type EventStatus struct {
	Event   string         `json:"event"`
	Scripts []ScriptStatus `json:"scripts"`
	// Summary is the event's result code as CTDB's CLI exits with it:
	// 0, the failing script's exit code, or 110 for a timeout.
	Summary int `json:"summary"`
}

// ScriptStatus is one script's line of `ctdb event status`.
type ScriptStatus struct {
	Name     string        `json:"name"`
	State    string        `json:"state"` // OK, ERROR, TIMEDOUT, DISABLED, CANNOT RUN
	ExitCode int           `json:"exit_code"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration"`
	Output   string        `json:"output,omitempty"`
	Err      string        `json:"err,omitempty"` // for CANNOT RUN: why
}

// Script is one `ctdb event script list` line.
type Script struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
}

// Plan is what a takeover run moves (or would move).
type Plan struct {
	Moves []Move `json:"moves"`
}

// Move is one address changing holder; From/To -1 mean nobody.
type Move struct {
	Addr netip.Addr `json:"addr"`
	From int        `json:"from"`
	To   int        `json:"to"`
}

// RunState is `ctdb runstate`.
type RunState struct {
	State string `json:"state"` // INIT, SETUP, FIRST_RECOVERY, STARTUP, RUNNING, SHUTDOWN
}
