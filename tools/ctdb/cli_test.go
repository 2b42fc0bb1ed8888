package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ctdb-go/ctdb-go/daemon/control"
	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
)

func TestParseArgs(t *testing.T) {
	base := func() env { return env{sep: "|", timeout: defaultTimeout, maxRuntime: defaultMaxRuntime} }
	type want struct {
		name    string
		args    []string
		help    bool
		node    string
		machine bool
		sep     string
		json    bool
		verbose bool
		timeout time.Duration
		maxRun  time.Duration
		socket  string
		debug   string
	}
	def := func(w want) want {
		if w.sep == "" {
			w.sep = "|"
		}
		if w.timeout == 0 {
			w.timeout = defaultTimeout
		}
		if w.maxRun == 0 {
			w.maxRun = defaultMaxRuntime
		}
		return w
	}
	tests := []struct {
		line string
		want want
	}{
		{"status", want{name: "status"}},
		{"-n 1 ip", want{name: "ip", node: "1"}},
		{"-n1 -Xv ip all", want{name: "ip", args: []string{"all"}, node: "1", machine: true, verbose: true}},
		{"ip -v", want{name: "ip", verbose: true}},
		{"-X ip -v", want{name: "ip", machine: true, verbose: true}},
		{"ip all -n all", want{name: "ip", args: []string{"all"}, node: "all"}},
		{"--node=0,2 --json status", want{name: "status", node: "0,2", json: true}},
		{"-j -Y -x : status", want{name: "status", json: true, machine: true, sep: ":"}},
		{"-x: status", want{name: "status", sep: ":"}},
		{"--separator=, status", want{name: "status", sep: ","}},
		{"-t 5 -T 30 status", want{name: "status", timeout: 5 * time.Second, maxRun: 30 * time.Second}},
		{"--timelimit=3 --maxruntime 7 status", want{name: "status", timeout: 3 * time.Second, maxRun: 7 * time.Second}},
		{"-d DEBUG --debug=ERR status", want{name: "status", debug: "ERR"}},
		{"--socket /tmp/x.sock status", want{name: "status", socket: "/tmp/x.sock"}},
		{"--machinereadable --verbose ip", want{name: "ip", machine: true, verbose: true}},
		{"ipreallocate --dry-run", want{name: "ipreallocate", args: []string{"--dry-run"}}},
		{"-h", want{help: true}},
		{"ip --help", want{name: "ip", help: true}},
		{"-- ip -v", want{name: "ip", args: []string{"-v"}}},
		{"ip -- -v", want{name: "ip", args: []string{"-v"}}},
		// An offline command gets its words untouched.
		{"help -v -n 1", want{name: "help", args: []string{"-v", "-n", "1"}}},
		{"moveip 198.18.1.1 -1", want{name: "moveip", args: []string{"198.18.1.1", "-1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			e := base()
			p, err := parseArgs(&e, fields(tt.line))
			if err != nil {
				t.Fatalf("parseArgs(%q): %v", tt.line, err)
			}
			got := def(want{name: p.name, args: p.args, help: p.help, node: e.node, machine: e.machine,
				sep: e.sep, json: e.json, verbose: e.verbose, timeout: e.timeout, maxRun: e.maxRuntime,
				socket: e.socket, debug: e.debug})
			if diff := cmp.Diff(def(tt.want), got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("parseArgs(%q) (-want +got):\n%s", tt.line, diff)
			}
		})
	}

	bad := []struct{ line, err string }{
		{"-q status", "invalid option -q"},
		{"--frob status", "invalid option --frob"},
		{"status -n", "option -n needs a value"},
		{"-n x status", `invalid node "x": want a PNN, PNN,PNN,... or all`},
		{"-n -1 status", `invalid node "-1": want a PNN, PNN,PNN,... or all`},
		{"-t 0 status", `invalid -t "0": want a positive number of seconds`},
		{"-T soon status", `invalid -T "soon": want a positive number of seconds`},
		{"--verbose=yes ip", "invalid option --verbose=yes"},
	}
	for _, tt := range bad {
		e := base()
		if _, err := parseArgs(&e, fields(tt.line)); err == nil || err.Error() != tt.err {
			t.Errorf("parseArgs(%q) error = %v, want %q", tt.line, err, tt.err)
		}
	}
}

// cli runs one command line against d and checks all three outputs.
type cliCase struct {
	name   string
	args   string
	stdout string
	stderr string
	code   int
}

func runCases(t *testing.T, d *fakeDaemon, tests []cliCase) {
	t.Helper()
	sock := serveDaemon(t, d)
	for _, tt := range tests {
		name := tt.name
		if name == "" {
			name = tt.args
		}
		t.Run(name, func(t *testing.T) {
			stdout, stderr, code := ctdb(sock, fields(tt.args)...)
			if diff := cmp.Diff(tt.stdout, stdout); diff != "" {
				t.Errorf("ctdb %s: stdout (-want +got):\n%s", tt.args, diff)
			}
			if diff := cmp.Diff(tt.stderr, stderr); diff != "" {
				t.Errorf("ctdb %s: stderr (-want +got):\n%s", tt.args, diff)
			}
			if code != tt.code {
				t.Errorf("ctdb %s: exit code = %d, want %d", tt.args, code, tt.code)
			}
		})
	}
}

func TestErrorsAndNotices(t *testing.T) {
	v := healthy(1)
	v.tunables = []control.Tunable{{Name: "MonitorInterval", Value: 15}}
	d := newDaemon(v)
	d.replies["disable"] = control.Response{Notice: "Node 1 is already disabled"}
	d.replies["enable"] = control.Response{Notice: "Node 1 is not disabled"}
	d.replies["setvar DeterministicIPs 1"] = control.Response{Notice: "Setting obsolete tunable variable 'DeterministicIPs'"}
	d.replies["moveip 198.18.1.1 5"] = control.Failf(1, "Node 5 CANNOT host IP address 198.18.1.1")
	d.replies["shutdown"] = control.Response{ExitCode: 0, Error: "permission denied: the control socket is root-only"}
	runCases(t, d, []cliCase{
		{args: "disable", stderr: "Node 1 is already disabled\n"},
		{args: "enable", stderr: "Node 1 is not disabled\n"},
		{args: "setvar DeterministicIPs 1", stderr: "Setting obsolete tunable variable 'DeterministicIPs'\n"},
		{args: "getvar monitorinterval", stdout: "monitorinterval            = 15\n"},
		{args: "getvar NoSuchThing", stderr: "ctdb: No such tunable NoSuchThing\n", code: 1},
		{args: "moveip 198.18.1.1 5", stderr: "ctdb: Node 5 CANNOT host IP address 198.18.1.1\n", code: 1},
		// An error without a code still fails.
		{args: "shutdown", stderr: "ctdb: permission denied: the control socket is root-only\n", code: 1},
		{args: "event status startup", stderr: "ctdb: Event startup has never run in legacy\n", code: 22},

		// Checked before anything is sent.
		{args: "ban 0", stderr: "Ban time cannot be zero\n", code: 22},
		{args: "ban soon", stderr: "ctdb: invalid ban time \"soon\": want seconds\n", code: 22},
		{args: "moveip 198.18.1.999 1", stderr: "Invalid IP address 198.18.1.999\n", code: 1},
		{args: "moveip 198.18.1.1 x", stderr: "Invalid PNN x\n", code: 22},
		{args: "setvar MonitorInterval -5", stderr: "ctdb: invalid value \"-5\" for MonitorInterval: want a number from 0 to 4294967295\n", code: 22},
		{args: "gratarp nowhere eth0", stderr: "Invalid IP address nowhere\n", code: 1},
		{args: "reloadips some", stderr: "Invalid node some\n", code: 1},
		{args: "status extra", stderr: "Usage: ctdb [OPTIONS] status\n", code: 2},
		{args: "ip some", stderr: "Usage: ctdb [OPTIONS] ip [all] [-v]\n", code: 2},
		{args: "getvar", stderr: "Usage: ctdb [OPTIONS] getvar NAME\n", code: 2},
		{args: "ipreallocate --now", stderr: "ctdb: invalid option --now for ipreallocate\nUsage: ctdb [OPTIONS] ipreallocate [--dry-run]\n", code: 2},
		{args: "-n all moveip 198.18.1.1 0", stderr: "ctdb: moveip runs on one node: give -n one PNN\n", code: 2},
		{args: "-n 1 version", stderr: "ctdb: cannot specify node for command version\n", code: 2},
	})
	// Nothing was sent for the refused command lines.
	for _, r := range d.requests() {
		if r.Command == control.CmdBan || (r.Command == control.CmdMoveIP && r.Args[1] != "5") || r.Command == control.CmdGratARP {
			t.Errorf("sent %+v for a command line that should be refused", r)
		}
	}
}

func TestNoDaemon(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "ctdbd.socket")
	want := "ctdb: cannot connect to ctdbd at " + sock + ": is ctdbd running?\n"
	stdout, stderr, code := ctdb(sock, "status")
	if stdout != "" || stderr != want || code != 1 {
		t.Errorf("ctdb status without a daemon = (%q, %q, %d), want (\"\", %q, 1)", stdout, stderr, code, want)
	}

	// $CTDB_SOCKET names the socket when --socket does not.
	var out, errb bytes.Buffer
	code = runEnv([]string{"pnn"}, &out, &errb, func(k string) string {
		if k == "CTDB_SOCKET" {
			return sock
		}
		return ""
	})
	if errb.String() != want || code != 1 {
		t.Errorf("ctdb pnn with CTDB_SOCKET = (%q, %d), want (%q, 1)", errb.String(), code, want)
	}
}

func TestNewEnv(t *testing.T) {
	tests := []struct {
		vars    map[string]string
		socket  string
		maxRun  time.Duration
		wantErr string
	}{
		{nil, "/run/ctdb/ctdbd.socket", 120 * time.Second, ""},
		{map[string]string{"CTDB_SOCKET": "/tmp/n1/ctdbd.socket", "CTDB_TIMEOUT": "7"}, "/tmp/n1/ctdbd.socket", 7 * time.Second, ""},
		{map[string]string{"CTDB_TIMEOUT": "later"}, "", 0, `invalid CTDB_TIMEOUT "later": want a positive number of seconds`},
	}
	for _, tt := range tests {
		e, err := newEnv(nil, nil, func(k string) string { return tt.vars[k] })
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("newEnv(%v) error = %v, want %q", tt.vars, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("newEnv(%v): %v", tt.vars, err)
		}
		if e.socket != tt.socket || e.maxRuntime != tt.maxRun || e.timeout != 10*time.Second || e.sep != "|" || e.target != control.ThisNode {
			t.Errorf("newEnv(%v) = socket %q, -T %v, -t %v, sep %q, target %d", tt.vars, e.socket, e.maxRuntime, e.timeout, e.sep, e.target)
		}
	}
}

func TestUsageHelpVersion(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.socket") // never dialled
	stdout, stderr, code := ctdb(sock)
	if stdout != "" || !strings.HasPrefix(stderr, "Usage: ctdb [OPTIONS] COMMAND [ARGS...]\n") || code != 2 {
		t.Errorf("ctdb (no command) = (%q, %q, %d), want usage on stderr and exit 2", stdout, stderr, code)
	}

	stdout, stderr, code = ctdb(sock, "frobnicate")
	if stdout != "" || stderr != "ctdb: unknown command 'frobnicate'; 'ctdb help' lists the commands\n" || code != 2 {
		t.Errorf("ctdb frobnicate = (%q, %q, %d), want unknown command on stderr and exit 2", stdout, stderr, code)
	}

	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		stdout, stderr, code = ctdb(sock, args...)
		if code != 0 || stderr != "" {
			t.Errorf("ctdb %v = (stderr %q, %d), want exit 0", args, stderr, code)
		}
		for _, c := range sortedCommands() {
			for _, form := range strings.Split(c.usage, "\n") {
				if !strings.Contains(stdout, "\n  "+form+"\n") && !strings.Contains(stdout, "\n  "+form+" ") {
					t.Errorf("ctdb %v does not list %q", args, form)
				}
			}
			if !strings.Contains(stdout, " "+c.summary) {
				t.Errorf("ctdb %v does not list %s's summary", args, c.name)
			}
		}
		for _, opt := range []string{"-n, --node", "-X", "-Y", "-x, --separator", "-j, --json", "-v, --verbose",
			"-t, --timelimit", "-T, --maxruntime", "-d, --debug", "--socket"} {
			if !strings.Contains(stdout, "  "+opt) {
				t.Errorf("ctdb %v does not list option %s", args, opt)
			}
		}
	}

	for _, args := range [][]string{{"help", "recmaster"}, {"recmaster", "-h"}} {
		stdout, _, code = ctdb(sock, args...)
		want := "Usage: ctdb [OPTIONS] leader\n\nshow the PNN of the leader (recovery master), or UNKNOWN\nAlso: recmaster\nTakes -n all.\n"
		if stdout != want || code != 0 {
			t.Errorf("ctdb %v = (%q, %d), want (%q, 0)", args, stdout, code, want)
		}
	}

	stdout, _, code = ctdb(sock, "version")
	if stdout != "ctdb-go dev\n" || code != 0 {
		t.Errorf("ctdb version = (%q, %d), want (\"ctdb-go dev\\n\", 0)", stdout, code)
	}
}

func TestStatusLayouts(t *testing.T) {
	// A 4-node cluster seen from node 1: a deleted node, a banned one, a
	// stopped and unhealthy one, this node partially online, no
	// generation yet, and ctdb-go's fencing and duplicate lines.
	st := control.Status{
		PNN: 1,
		Nodes: []control.NodeStatus{
			{PNN: 0, Address: netip.MustParseAddr("198.18.0.1"), Flags: nodeflag.Banned},
			{PNN: 1, Address: netip.MustParseAddr("198.18.0.2"), PartiallyOnline: true, ThisNode: true},
			{PNN: 2, Flags: nodeflag.Deleted},
			{PNN: 3, Address: netip.MustParseAddr("fd00::4"), Flags: nodeflag.Stopped | nodeflag.Unhealthy, PartiallyOnline: true},
		},
		Leader:             1,
		Fencing:            "node 0: fence script failed (exit 1)",
		DuplicatesResolved: 2,
	}
	d := newDaemon(healthy(1))
	d.replies["status"] = control.Reply(st)
	d.replies["nodestatus"] = control.Reply(control.Status{PNN: 1, Nodes: st.Nodes})
	runCases(t, d, []cliCase{
		{args: "status", stdout: `Number of nodes:4 (including 1 deleted nodes)
pnn:0 198.18.0.1       BANNED|INACTIVE
pnn:1 198.18.0.2       PARTIALLYONLINE (THIS NODE)
pnn:3 fd00::4          UNHEALTHY|STOPPED|INACTIVE
Generation:INVALID
Size:1
hash:0 lmaster:1
Recovery mode:NORMAL (0)
Leader:1
Fencing:node 0: fence script failed (exit 1)
Duplicates resolved:2
`},
		{args: "-X -x : status", stdout: `:Node:IP:Disconnected:Unknown:Banned:Disabled:Unhealthy:Stopped:Inactive:PartiallyOnline:ThisNode:
:0:198.18.0.1:0:0:1:0:0:0:1:0:N:
:1:198.18.0.2:0:0:0:0:0:0:0:1:Y:
:3:fd00::4:0:0:0:0:1:1:1:0:N:
`},
		// Without an argument: this node only, no header.
		{args: "nodestatus", stdout: "pnn:1 198.18.0.2       PARTIALLYONLINE (THIS NODE)\n"},
		{args: "nodestatus 0,3", stdout: "pnn:0 198.18.0.1       BANNED|INACTIVE\npnn:3 fd00::4          UNHEALTHY|STOPPED|INACTIVE\n",
			code: int(nodeflag.Banned | nodeflag.Stopped | nodeflag.Unhealthy)},
		// The deleted node is counted in the header, not in the exit code.
		{args: "nodestatus all", stdout: `Number of nodes:4 (including 1 deleted nodes)
pnn:0 198.18.0.1       BANNED|INACTIVE
pnn:1 198.18.0.2       PARTIALLYONLINE (THIS NODE)
pnn:3 fd00::4          UNHEALTHY|STOPPED|INACTIVE
`, code: 0x2a},
		{args: "-X nodestatus", stdout: `|Node|IP|Disconnected|Unknown|Banned|Disabled|Unhealthy|Stopped|Inactive|PartiallyOnline|ThisNode|
|1|198.18.0.2|0|0|0|0|0|0|0|1|Y|
`},
		{args: "nodestatus 7", stderr: "Node 7 does not exist\n", code: 10},
		{args: "nodestatus seven", stderr: "Invalid node seven\n", code: 10},
	})
}

func TestListnodesMachineAndDeleted(t *testing.T) {
	d := newDaemon(healthy(1))
	d.nodes = []control.NodeAddr{nodeAddrs[0], {PNN: 1, Deleted: true}, {PNN: 2, Address: netip.MustParseAddr("198.18.0.3")}}
	runCases(t, d, []cliCase{
		{args: "listnodes", stdout: "198.18.0.1\n198.18.0.3\n"},
		{args: "-X listnodes", stdout: "|0|198.18.0.1|\n|2|198.18.0.3|\n"},
	})
}

func TestIPSortingAndUnhosted(t *testing.T) {
	d := newDaemon(healthy(1))
	ip := func(a string, pnn int, active string, avail ...string) control.PublicIP {
		return control.PublicIP{Addr: netip.MustParseAddr(a), PNN: pnn, Active: active, Available: avail, Configured: []string{"eth1", "eth2"}}
	}
	d.replies["ip"] = control.Reply(control.IPs{PNN: 1, IPs: []control.PublicIP{
		ip("fd00::1", 1, "eth1", "eth1", "eth2"),
		ip("198.18.1.10", 0, "", "eth1"),
		{Addr: netip.MustParseAddr("198.18.1.9"), PNN: -1, Configured: []string{"eth1", "eth2"}, ProbeAnswer: "02:00:00:00:00:09"},
	}})
	runCases(t, d, []cliCase{
		{args: "ip", stdout: "Public IPs on node 1\n198.18.1.9 -1\n198.18.1.10 0\nfd00::1 1\n"},
		{args: "ip -v", stdout: "Public IPs on node 1\n" +
			"198.18.1.9 node[-1] active[] available[] configured[eth1,eth2] probe-answer[02:00:00:00:00:09]\n" +
			"198.18.1.10 node[0] active[] available[eth1] configured[eth1,eth2]\n" +
			"fd00::1 node[1] active[eth1] available[eth1,eth2] configured[eth1,eth2]\n"},
		{args: "-Xv ip", stdout: "|Public IP|Node|ActiveInterfaces|AvailableInterfaces|ConfiguredInterfaces|\n" +
			"|198.18.1.9|-1|||eth1,eth2|\n|198.18.1.10|0||eth1|eth1,eth2|\n|fd00::1|1|eth1|eth1,eth2|eth1,eth2|\n"},
	})
}

func TestPerNode(t *testing.T) {
	d := newDaemon(healthy(1), healthy(0), healthy(2))
	runCases(t, d, []cliCase{
		{args: "-n all pnn", stdout: "0\n1\n2\n"},
		{args: "-n 0,2 pnn", stdout: "0\n2\n"},
		{args: "-n 2 pnn", stdout: "2\n"},
		{args: "-n all ip", stdout: "Public IPs on node 0\n198.18.1.1 2\n198.18.1.2 1\n198.18.1.3 0\n" +
			"Public IPs on node 1\n198.18.1.1 2\n198.18.1.2 1\n198.18.1.3 0\n" +
			"Public IPs on node 2\n198.18.1.1 2\n198.18.1.2 1\n198.18.1.3 0\n"},
		// Output that does not name the node gets a header per node.
		{args: "-n 0,1 leader", stdout: ">> NODE: 0 <<\n0\n>> NODE: 1 <<\n0\n"},
		{args: "-n all event status", stdout: ">> NODE: 0 <<\n" + golden(t, "healthy.n1.event_status_legacy_monitor") +
			">> NODE: 1 <<\n" + golden(t, "healthy.n1.event_status_legacy_monitor") +
			">> NODE: 2 <<\n" + golden(t, "healthy.n1.event_status_legacy_monitor")},
		// -n names the node in the header without asking its PNN.
		{args: "-n 2 ifaces", stdout: "Interfaces on node 2\nname:eth0 link:up references:1\n"},
	})
	// The last case asked for the interfaces of node 2 and nothing else.
	if got := d.requests(); got[len(got)-1].Command != control.CmdIfaces || got[len(got)-1].Target != 2 ||
		got[len(got)-2].Command == control.CmdIfaces {
		t.Errorf("-n 2 ifaces sent:\n%s want one ifaces request for target 2 and no PNN lookup", fmtReqs(got))
	}

	// A node that cannot be reached: the others are still shown, the
	// error is reported and the exit code says so.
	d = newDaemon(healthy(1), healthy(0))
	runCases(t, d, []cliCase{
		{args: "-n all pnn", stdout: "0\n1\n", stderr: "ctdb: Node 2 has status DISCONNECTED|UNHEALTHY|INACTIVE\n", code: 1},
		{args: "-n all disable", stderr: "ctdb: Node 2 has status DISCONNECTED|UNHEALTHY|INACTIVE\n", code: 1},
	})
	var disabled []int
	for _, r := range d.requests() {
		if r.Command == control.CmdDisable {
			disabled = append(disabled, r.Target)
		}
	}
	if !cmp.Equal(disabled, []int{0, 1, 2}) {
		t.Errorf("-n all disable asked for %v, want [0 1 2]", disabled)
	}
}

func TestJSON(t *testing.T) {
	d := newDaemon(healthy(1), healthy(0), healthy(2))
	sock := serveDaemon(t, d)

	stdout, _, code := ctdb(sock, "--json", "pnn")
	if stdout != "{\n  \"pnn\": 1\n}\n" || code != 0 {
		t.Errorf("ctdb --json pnn = (%q, %d)", stdout, code)
	}

	stdout, _, _ = ctdb(sock, "-j", "status")
	var st control.Status
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("ctdb -j status printed %q: %v", stdout, err)
	}
	if diff := cmp.Diff(healthy(1).status(), st, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("ctdb -j status (-want +got):\n%s", diff)
	}

	stdout, _, _ = ctdb(sock, "--json", "-n", "all", "pnn")
	var all []struct {
		PNN  int         `json:"pnn"`
		Data control.PNN `json:"data"`
	}
	if err := json.Unmarshal([]byte(stdout), &all); err != nil {
		t.Fatalf("ctdb --json -n all pnn printed %q: %v", stdout, err)
	}
	if len(all) != 3 || all[0].Data.PNN != 0 || all[2].PNN != 2 || all[2].Data.PNN != 2 {
		t.Errorf("ctdb --json -n all pnn = %+v, want one entry per node", all)
	}

	// The exit codes computed from data still hold.
	d.views[1].flags[0] = nodeflag.Unhealthy
	_, _, code = ctdb(sock, "--json", "nodestatus", "all")
	if code != 2 {
		t.Errorf("ctdb --json nodestatus all exit = %d, want 2", code)
	}
	// Commands without data print nothing.
	stdout, _, code = ctdb(sock, "--json", "disable")
	if stdout != "" || code != 0 {
		t.Errorf("ctdb --json disable = (%q, %d), want no output", stdout, code)
	}
}

func TestIfacesLeaderRunstate(t *testing.T) {
	v := healthy(1)
	v.leader = -1
	v.linkUp = false
	d := newDaemon(v)
	runCases(t, d, []cliCase{
		{args: "leader", stdout: "UNKNOWN\n"},
		{args: "recmaster", stdout: "UNKNOWN\n"},
		{args: "ifaces", stdout: "Interfaces on node 1\nname:eth0 link:down references:1\n"},
		{args: "-X ifaces", stdout: "|Name|LinkStatus|References|\n|eth0|0|1|\n"},
		{args: "runstate", stdout: "RUNNING\n"},
		{args: "runstate startup running", stdout: "RUNNING\n"},
		{args: "runstate startup", stdout: "CTDB not in required run state (got RUNNING)\n", code: 1},
		{args: "runstate bogus", stdout: "Invalid run state (bogus)\n", code: 1},
	})
	d.replies["ifaces"] = control.Reply([]control.Iface{})
	runCases(t, d, []cliCase{{args: "ifaces", stdout: "No interfaces configured on node 1\n"}})
}

func TestUptimeNeverRecovered(t *testing.T) {
	v := healthy(0)
	v.uptime = control.Uptime{PNN: 12, Now: time.Unix(90061, 0), Started: time.Unix(1, 0)}
	runCases(t, newDaemon(v), []cliCase{{args: "uptime", stdout: "" +
		"Current time of node 12       :                Fri Jan  2 01:01:01 1970\n" +
		"Ctdbd start time              : (001 01:01:00) Thu Jan  1 00:00:01 1970\n" +
		"Time of last recovery/failover: (001 01:01:01) Thu Jan  1 00:00:00 1970\n" +
		"Duration of last recovery/failover: 0.000000 seconds\n"}})
}

func TestEventStatus(t *testing.T) {
	start := at("09:05:07")
	v := healthy(1)
	v.events["monitor"] = control.EventStatus{Event: "monitor", Summary: -110, Scripts: []control.ScriptStatus{
		{Name: "00.ctdb", State: "OK", Start: start, Duration: ms(3), Output: "note from an OK script\n"},
		{Name: "01.reclock", State: "DISABLED"},
		{Name: "05.system", State: "CANNOT RUN", Err: "Exec format error"},
		{Name: "10.interface", State: "ERROR", ExitCode: 1, Start: start, Duration: 1234567 * time.Microsecond,
			Output: "ERROR: eth1 has no link\n\n  bond0: no active slave\n"},
		{Name: "50.postgres", State: "TIMEDOUT", Start: start},
		{Name: "60.quiet", State: "ERROR", ExitCode: 3, Start: start, Duration: ms(1)},
	}}
	d := newDaemon(v)
	runCases(t, d, []cliCase{
		{name: "states", args: "event status monitor", stdout: golden(t, "ctdbgo.event_status_states"), code: 110},
		{name: "legacy is optional", args: "event status legacy monitor", stdout: golden(t, "ctdbgo.event_status_states"), code: 110},
		{name: "monitor is the default", args: "event status", stdout: golden(t, "ctdbgo.event_status_states"), code: 110},
		{name: "scriptstatus", args: "scriptstatus monitor", stdout: golden(t, "ctdbgo.event_status_states"), code: 110},
		{args: "event status other monitor", stdout: "Event dir for other does not exist\n", code: 2},
		{args: "event status legacy monitor extra", stderr: usageText(commands["event"]), code: 2},
		{args: "event script list legacy", stdout: "* 00.ctdb\n* 01.reclock\n* 05.system\n* 10.interface\n  20.multipathd\n* 50.probe\n"},
		{args: "event", stderr: usageText(commands["event"]), code: 2},
	})
	var asked []string
	for _, r := range d.requests() {
		asked = append(asked, strings.Join(r.Args, " "))
	}
	want := []string{"status monitor", "status monitor", "status monitor", "status monitor", "script list"}
	if !cmp.Equal(asked, want) {
		t.Errorf("event requests = %q, want %q", asked, want)
	}
}

func TestEventRun(t *testing.T) {
	v := healthy(1)
	failed := control.EventStatus{Event: "monitor", Summary: 1, Scripts: []control.ScriptStatus{
		{Name: "10.interface", State: "ERROR", ExitCode: 1, Start: at("18:28:31"), Duration: ms(43), Output: "no link\n"},
	}}
	v.runs = map[string]control.EventStatus{
		"takeip":    {Event: "takeip"},
		"monitor":   failed,
		"startup":   {Event: "startup", Summary: 110},
		"releaseip": {Event: "releaseip", Summary: -125},
	}
	d := newDaemon(v)
	runCases(t, d, []cliCase{
		{args: "event run 30 legacy takeip eth1 198.18.1.1 24"},
		{args: "event run monitor", stdout: "Event monitor in legacy failed\n", code: 8},
		{args: "event run -v monitor", stdout: "10.interface         ERROR      0.043 Mon Nov 23 18:28:31 2026\n  OUTPUT: no link\n\n" +
			"Event monitor in legacy failed\n", code: 8},
		{args: "event run startup", stdout: "Event startup in legacy timed out\n", code: 110},
		{args: "event run legacy releaseip eth1 198.18.1.1 24", stdout: "Event releaseip in legacy got cancelled\n", code: 125},
		{args: "event run 30", stderr: usageText(commands["event"]), code: 2},
	})
	r := d.requests()[0]
	want := control.Request{Command: "event", Args: []string{"run", "takeip", "eth1", "198.18.1.1", "24"}, Target: -1, EventTimeout: 30 * time.Second}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("event run request (-want +got):\n%s", diff)
	}
}

func TestIPReallocate(t *testing.T) {
	plan := control.Plan{Moves: []control.Move{
		{Addr: netip.MustParseAddr("198.18.1.3"), From: 2, To: 0},
		{Addr: netip.MustParseAddr("198.18.1.1"), From: -1, To: 1},
		{Addr: netip.MustParseAddr("198.18.1.2"), From: 1, To: -1},
	}}
	d := newDaemon(healthy(1))
	d.replies["ipreallocate"] = control.Reply(plan)
	runCases(t, d, []cliCase{
		{args: "ipreallocate"},
		{args: "ipreallocate --dry-run", stdout: "Would assign 198.18.1.1 to node 1\nWould release 198.18.1.2 from node 1\n" +
			"Would move 198.18.1.3 from node 2 to node 0\n"},
		{args: "-v sync", stdout: "Assigned 198.18.1.1 to node 1\nReleased 198.18.1.2 from node 1\nMoved 198.18.1.3 from node 2 to node 0\n"},
		{args: "-X ipreallocate --dry-run", stdout: "|Public IP|From|To|\n|198.18.1.1|-1|1|\n|198.18.1.2|1|-1|\n|198.18.1.3|2|0|\n"},
	})
	var dry []bool
	for _, r := range d.requests() {
		dry = append(dry, r.DryRun)
	}
	if !cmp.Equal(dry, []bool{false, true, false, true}) {
		t.Errorf("DryRun of the requests = %v, want [false true false true]", dry)
	}

	d = newDaemon(healthy(1))
	d.replies["ipreallocate"] = control.Reply(control.Plan{})
	runCases(t, d, []cliCase{{args: "ipreallocate --dry-run", stdout: "No public IP would move\n"}})
}

// TestTimeouts drives send directly: -t and -T are whole seconds on the
// command line, too coarse for a test.
func TestTimeouts(t *testing.T) {
	release := make(chan struct{})
	// The handler answers only when the test ends (before the server's
	// cleanup), whatever its context says.
	sock := serveDaemon(t, control.HandlerFunc(func(ctx context.Context, req control.Request) control.Response {
		<-release
		return control.Response{}
	}))
	defer close(release)

	var errb bytes.Buffer
	e := &env{stderr: &errb, socket: sock, ctx: context.Background(), callTimeout: 20 * time.Millisecond}
	if _, code, ok := e.send(control.Request{Command: control.CmdStatus}); ok || code != 1 {
		t.Errorf("send past -t = (%d, %v), want (1, false)", code, ok)
	}
	want := "ctdb: status: no answer from ctdbd at " + sock + " within 20ms\n"
	if errb.String() != want {
		t.Errorf("stderr = %q, want %q", errb.String(), want)
	}

	errb.Reset()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	e.ctx, e.callTimeout = ctx, time.Hour
	if _, code, ok := e.send(control.Request{Command: control.CmdStatus}); ok || code != 1 {
		t.Errorf("send past -T = (%d, %v), want (1, false)", code, ok)
	}
	if errb.String() != "Maximum runtime exceeded - exiting\n" {
		t.Errorf("stderr = %q, want the maximum runtime message", errb.String())
	}
}
