package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/control"
	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
)

func TestMain(m *testing.M) {
	// ctime(3) prints local time; the samples were taken on UTC hosts.
	time.Local = time.UTC
	os.Exit(m.Run())
}

// at is a time on the day the reference samples were recorded (UTC).
func at(hms string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", "2026-11-23 "+hms)
	if err != nil {
		panic(err)
	}
	return t
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// view is what one node of the 3-node reference cluster (nodes
// 198.18.0.1-3, public addresses 198.18.1.1-3/24 on eth0) knows and
// answers.
type view struct {
	self       int
	flags      [3]nodeflag.Flags // as this node sees them
	generation uint32
	vnn        []int
	recMode    int
	leader     int
	holders    [3]int // of 198.18.1.1, .2, .3 as this node believes
	linkUp     bool
	refs       int // references of eth0
	uptime     control.Uptime
	events     map[string]control.EventStatus
	runs       map[string]control.EventStatus // `event run EVENT`
	scripts    []control.Script
	tunables   []control.Tunable
	runState   string
}

// healthy is node pnn's view of the healthy reference cluster.
func healthy(pnn int) *view {
	return &view{
		self:       pnn,
		generation: 966786870,
		leader:     0,
		holders:    [3]int{2, 1, 0},
		linkUp:     true,
		refs:       1,
		uptime: control.Uptime{
			PNN:                  pnn,
			Now:                  at("18:28:09"),
			Started:              at("18:23:38"),
			LastRecovery:         at("18:23:43"),
			LastRecoveryDuration: 42172 * time.Microsecond,
		},
		events:   map[string]control.EventStatus{"monitor": monitorOK(at("18:28:00"), 3, 2, 12, 41, 7)},
		runState: "RUNNING",
		scripts: []control.Script{
			{Name: "00.ctdb", Enabled: true}, {Name: "01.reclock", Enabled: true},
			{Name: "05.system", Enabled: true}, {Name: "10.interface", Enabled: true},
			{Name: "20.multipathd", Enabled: false}, {Name: "50.probe", Enabled: true},
		},
	}
}

var scriptNames = []string{"00.ctdb", "01.reclock", "05.system", "10.interface", "50.probe"}

// monitorOK is a monitor run where every script passed, started at start,
// taking the given milliseconds each.
func monitorOK(start time.Time, durs ...int) control.EventStatus {
	st := control.EventStatus{Event: "monitor"}
	for i, d := range durs {
		st.Scripts = append(st.Scripts, control.ScriptStatus{
			Name: scriptNames[i], State: "OK", Start: start, Duration: ms(d),
		})
	}
	return st
}

func (v *view) status() control.Status {
	st := control.Status{
		PNN:          v.self,
		Generation:   v.generation,
		RecoveryMode: v.recMode,
		Leader:       v.leader,
		VNNMap:       v.vnn,
	}
	for p := range 3 {
		st.Nodes = append(st.Nodes, control.NodeStatus{
			PNN:      p,
			Address:  netip.AddrFrom4([4]byte{198, 18, 0, byte(p + 1)}),
			Flags:    v.flags[p],
			ThisNode: p == v.self,
		})
	}
	return st
}

func (v *view) ips(all bool) control.IPs {
	ips := control.IPs{PNN: v.self, All: all}
	// Handed out in reverse so that the CLI's sort is exercised.
	for i := 2; i >= 0; i-- {
		ip := control.PublicIP{
			Addr:       netip.AddrFrom4([4]byte{198, 18, 1, byte(i + 1)}),
			Bits:       24,
			PNN:        v.holders[i],
			Available:  []string{"eth0"},
			Configured: []string{"eth0"},
		}
		if v.holders[i] == v.self {
			ip.Active = "eth0"
		}
		ips.IPs = append(ips.IPs, ip)
	}
	return ips
}

var nodeAddrs = []control.NodeAddr{
	{PNN: 0, Address: netip.MustParseAddr("198.18.0.1")},
	{PNN: 1, Address: netip.MustParseAddr("198.18.0.2")},
	{PNN: 2, Address: netip.MustParseAddr("198.18.0.3")},
}

// fakeDaemon answers controls from views, one per node: a request for
// ThisNode gets the local view, one with a Target the view of that node
// (a node without a view is unreachable). It records every request.
type fakeDaemon struct {
	local int
	views map[int]*view
	nodes []control.NodeAddr
	// replies overrides the answer to "command arg arg..." on any node.
	replies map[string]control.Response

	mu   sync.Mutex
	reqs []control.Request
}

func newDaemon(vs ...*view) *fakeDaemon {
	d := &fakeDaemon{local: vs[0].self, views: map[int]*view{}, nodes: nodeAddrs, replies: map[string]control.Response{}}
	for _, v := range vs {
		d.views[v.self] = v
	}
	return d
}

func (d *fakeDaemon) requests() []control.Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.reqs)
}

func (d *fakeDaemon) Handle(ctx context.Context, req control.Request) control.Response {
	d.mu.Lock()
	req.Timeout = 0 // depends on the clock; tests look at the rest
	d.reqs = append(d.reqs, req)
	d.mu.Unlock()
	if r, ok := d.replies[strings.Join(append([]string{req.Command}, req.Args...), " ")]; ok {
		return r
	}
	pnn := req.Target
	if pnn == control.ThisNode {
		pnn = d.local
	}
	v, ok := d.views[pnn]
	if !ok {
		return control.Failf(1, "Node %d has status DISCONNECTED|UNHEALTHY|INACTIVE", pnn)
	}
	switch req.Command {
	case control.CmdStatus:
		return control.Reply(v.status())
	case control.CmdNodeStatus:
		st := v.status()
		return control.Reply(control.Status{PNN: st.PNN, Nodes: st.Nodes})
	case control.CmdPNN:
		return control.Reply(control.PNN{PNN: v.self})
	case control.CmdLeader:
		return control.Reply(control.Leader{PNN: v.leader})
	case control.CmdListNodes:
		return control.Reply(d.nodes)
	case control.CmdIP:
		return control.Reply(v.ips(slices.Equal(req.Args, []string{"all"})))
	case control.CmdIfaces:
		return control.Reply([]control.Iface{{Name: "eth0", LinkUp: v.linkUp, References: v.refs}})
	case control.CmdUptime:
		return control.Reply(v.uptime)
	case control.CmdListVars:
		return control.Reply(v.tunables)
	case control.CmdGetVar:
		for _, t := range v.tunables {
			if strings.EqualFold(t.Name, req.Args[0]) {
				return control.Reply(t)
			}
		}
		return control.Failf(1, "No such tunable %s", req.Args[0])
	case control.CmdRunState:
		return control.Reply(control.RunState{State: v.runState})
	case control.CmdEvent:
		switch req.Args[0] {
		case "status":
			st, ok := v.events[req.Args[1]]
			if !ok {
				return control.Failf(22, "Event %s has never run in legacy", req.Args[1])
			}
			return control.Reply(st)
		case "run":
			return control.Reply(v.runs[req.Args[1]])
		case "script":
			if req.Args[1] == "list" {
				return control.Reply(v.scripts)
			}
		}
	}
	return control.Response{}
}

// serveDaemon serves h on a socket in a fresh directory and returns its
// path; the server stops when the test ends.
func serveDaemon(t *testing.T, h control.Handler) string {
	t.Helper()
	// Short: a unix socket path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "ctdb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, control.SocketName)
	l, err := control.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := control.NewServer(control.ServerConfig{Listener: l, Handler: h, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("server Run: %v", err)
		}
	})
	return path
}

// ctdb runs the CLI in-process against the socket.
func ctdb(socket string, args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	code = runEnv(append([]string{"--socket", socket}, args...), &out, &errb, func(string) string { return "" })
	return out.String(), errb.String(), code
}

// readTunables reads the reference listvars output into tunables, so the
// fake daemon answers with CTDB's list, in CTDB's order.
func readTunables(t *testing.T) []control.Tunable {
	t.Helper()
	f, err := os.Open("testdata/healthy.n1.listvars.golden")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ts []control.Tunable
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " = ")
		n, err := strconv.ParseUint(val, 10, 32)
		if !ok || err != nil {
			t.Fatalf("bad listvars line %q", sc.Text())
		}
		ts = append(ts, control.Tunable{Name: strings.TrimSpace(name), Value: uint32(n)})
	}
	if len(ts) == 0 {
		t.Fatal("no tunables read")
	}
	return ts
}

func golden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".golden"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func fields(s string) []string { return strings.Fields(s) }

func fmtReqs(rs []control.Request) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%s %q target=%d dry=%v event_timeout=%v\n", r.Command, r.Args, r.Target, r.DryRun, r.EventTimeout)
	}
	return b.String()
}
