package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ctdb-go/ctdb-go/daemon/control"
	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
)

// TestReferenceSamples replays the reference recordings of Debian's CTDB
// 4.17 (testdata/<scenario>.n<PNN>.<command>.golden, copied verbatim):
// each case serves the state the recording was taken in from a fake
// daemon, runs the same command line, and wants the same bytes and exit
// code.
func TestReferenceSamples(t *testing.T) {
	tunables := readTunables(t)

	with := func(v *view, f func(v *view)) *view { f(v); return v }
	holders := func(pnn int, h ...int) *view {
		return with(healthy(pnn), func(v *view) { v.holders = [3]int{h[0], h[1], h[2]} })
	}
	disabled := func(pnn int) *view {
		return with(healthy(pnn), func(v *view) {
			v.flags[2] = nodeflag.PermanentlyDisabled
			v.holders = [3]int{0, 1, 0}
		})
	}
	unhealthy := func(pnn int) *view {
		return with(healthy(pnn), func(v *view) {
			v.flags[0] = nodeflag.Unhealthy
			v.holders = [3]int{1, 1, 2}
			v.refs = 2
			v.uptime.Now = at("18:28:28")
			v.events["monitor"] = monitorOK(at("18:28:15"), 3, 2, 14, 31, 10)
		})
	}
	// pnn0 sees its own probe fail.
	unhealthyN0 := with(unhealthy(0), func(v *view) {
		st := monitorOK(at("18:28:26"), 2, 2, 11, 29, 7)
		st.Scripts[4].State = "ERROR"
		st.Scripts[4].ExitCode = 1
		st.Scripts[4].Output = "ERROR: probe service on pnn 0 is down (/srv/ctdb-bench/fail-0)\n"
		st.Summary = 1
		v.events["monitor"] = st
	})
	disconnectedN1 := with(healthy(1), func(v *view) {
		v.flags[2] = nodeflag.Disconnected | nodeflag.Unhealthy
		v.generation = 191155635
		v.holders = [3]int{1, 1, 0}
	})
	// pnn2, cable pulled, alone: everyone else gone, no leader, in
	// recovery with the old vnnmap.
	disconnectedN2 := with(healthy(2), func(v *view) {
		gone := nodeflag.Disconnected | nodeflag.Unhealthy
		v.flags = [3]nodeflag.Flags{gone, gone, nodeflag.Unhealthy}
		v.vnn = []int{0, 1, 2}
		v.recMode = 1
		v.leader = -1
		v.holders = [3]int{1, 1, 2}
		st := monitorOK(at("18:28:30"), 3, 2, 16, 43)
		st.Scripts[3].State = "ERROR"
		st.Scripts[3].ExitCode = 1
		st.Scripts[3].Start = at("18:28:31")
		st.Scripts[3].Output = "ERROR: No link on the public network interface eth0\n"
		st.Summary = 1
		v.events["monitor"] = st
	})

	tests := []struct {
		golden string
		v      *view
		args   string
		code   int
	}{
		{"healthy.n1.status", healthy(1), "status", 0},
		{"healthy.n1.X_status", healthy(1), "-X status", 0},
		{"healthy.n1.ip", healthy(1), "ip", 0},
		{"healthy.n1.ip_all", healthy(1), "ip all", 0},
		{"healthy.n1.X_ip_v", healthy(1), "-X ip -v", 0},
		{"healthy.n1.ip_v", healthy(1), "ip -v", 0},
		{"healthy.n1.listnodes", healthy(1), "listnodes", 0},
		{"healthy.n1.pnn", healthy(1), "pnn", 0},
		{"healthy.n1.uptime", healthy(1), "uptime", 0},
		{"healthy.n0.event_status_legacy_monitor", with(healthy(0), func(v *view) {
			v.events["monitor"] = monitorOK(at("18:27:56"), 3, 2, 14, 31, 8)
		}), "event status legacy monitor", 0},
		{"healthy.n1.event_status_legacy_monitor", healthy(1), "event status legacy monitor", 0},
		{"healthy.n1.leader", healthy(1), "leader", 0},
		{"healthy.n1.nodestatus_all", healthy(1), "nodestatus all", 0},
		{"healthy.n1.X_nodestatus_all", healthy(1), "-X nodestatus all", 0},
		{"healthy.n1.ifaces", healthy(1), "ifaces", 0},
		{"healthy.n1.X_ifaces", healthy(1), "-X ifaces", 0},
		{"healthy.n1.scriptstatus", healthy(1), "scriptstatus", 0},
		{"healthy.n1.listvars", healthy(1), "listvars", 0},

		{"disable.n2.disable", healthy(2), "disable", 0},
		{"disable.n1.status", disabled(1), "status", 0},
		{"disable.n1.ip", disabled(1), "ip", 0},
		{"disable.n2.enable", disabled(2), "enable", 0},
		{"disable.n1.status.2", healthy(1), "status", 0},

		{"moveip.n1.ip", holders(1, 0, 1, 2), "ip", 0},
		{"moveip.n1.moveip_198_18_1_1_0", holders(1, 0, 1, 2), "moveip 198.18.1.1 0", 0},
		{"moveip.n1.ip.2", holders(1, 0, 1, 2), "ip", 0},
		{"reloadips.n1.reloadips", holders(1, 0, 1, 2), "reloadips", 0},
		{"reloadips.n1.ip", holders(1, 0, 1, 2), "ip", 0},

		{"unhealthy.n1.status", unhealthy(1), "status", 0},
		{"unhealthy.n1.X_status", unhealthy(1), "-X status", 0},
		{"unhealthy.n1.ip", unhealthy(1), "ip", 0},
		{"unhealthy.n1.ip_all", unhealthy(1), "ip all", 0},
		{"unhealthy.n1.X_ip_v", unhealthy(1), "-X ip -v", 0},
		{"unhealthy.n1.ip_v", unhealthy(1), "ip -v", 0},
		{"unhealthy.n1.listnodes", unhealthy(1), "listnodes", 0},
		{"unhealthy.n1.pnn", unhealthy(1), "pnn", 0},
		{"unhealthy.n1.uptime", unhealthy(1), "uptime", 0},
		{"unhealthy.n0.event_status_legacy_monitor", unhealthyN0, "event status legacy monitor", 1},
		{"unhealthy.n1.event_status_legacy_monitor", unhealthy(1), "event status legacy monitor", 0},
		{"unhealthy.n1.leader", unhealthy(1), "leader", 0},
		{"unhealthy.n1.nodestatus_all", unhealthy(1), "nodestatus all", 2},
		{"unhealthy.n1.X_nodestatus_all", unhealthy(1), "-X nodestatus all", 2},
		{"unhealthy.n1.ifaces", unhealthy(1), "ifaces", 0},
		{"unhealthy.n1.X_ifaces", unhealthy(1), "-X ifaces", 0},
		{"unhealthy.n1.scriptstatus", unhealthy(1), "scriptstatus", 0},
		{"unhealthy.n0.status", unhealthyN0, "status", 0},

		{"disconnected.n1.status", disconnectedN1, "status", 0},
		{"disconnected.n1.ip", disconnectedN1, "ip", 0},
		{"disconnected.n1.X_ip_v", disconnectedN1, "-X ip -v", 0},
		{"disconnected.n2.status", disconnectedN2, "status", 0},
		{"disconnected.n2.ip", disconnectedN2, "ip", 0},
		{"disconnected.n2.event_status_legacy_monitor", disconnectedN2, "event status legacy monitor", 1},

		{"back.n1.status", with(healthy(1), func(v *view) { v.generation = 235988295 }), "status", 0},
		{"back.n1.ip", holders(1, 1, 2, 0), "ip", 0},

		{"appended.n1.ip", holders(1, 1, 2, 0), "ip", 0},
		{"appended.n1.moveip_198_18_1_1_2", holders(1, 1, 2, 0), "moveip 198.18.1.1 2", 0},
		{"appended.n1.ip.2", holders(1, 2, 2, 0), "ip", 0},
		{"appended.n1.X_ip", holders(1, 2, 2, 0), "-X ip", 0},
		{"appended.n1.reloadips", holders(1, 2, 2, 0), "reloadips", 0},
		{"appended.n1.ip.3", holders(1, 2, 1, 0), "ip", 0},
		{"appended.n1.getvar_MonitorInterval", healthy(1), "getvar MonitorInterval", 0},
	}

	used := map[string]bool{}
	for _, tt := range tests {
		used[tt.golden+".golden"] = true
		t.Run(tt.golden, func(t *testing.T) {
			tt.v.tunables = tunables
			sock := serveDaemon(t, newDaemon(tt.v))
			stdout, stderr, code := ctdb(sock, fields(tt.args)...)
			if diff := cmp.Diff(golden(t, tt.golden), stdout); diff != "" {
				t.Errorf("ctdb %s: stdout (-want +got):\n%s", tt.args, diff)
			}
			if stderr != "" {
				t.Errorf("ctdb %s: stderr = %q, want none", tt.args, stderr)
			}
			if code != tt.code {
				t.Errorf("ctdb %s: exit code = %d, want %d", tt.args, code, tt.code)
			}
		})
	}

	files, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		if !used[name] && !strings.HasPrefix(name, "ctdbgo.") {
			t.Errorf("%s is not used by any test", f)
		}
	}
}

// TestActionRequests checks what the commands without output send.
func TestActionRequests(t *testing.T) {
	tests := []struct {
		args string
		want control.Request
	}{
		{"moveip 198.18.1.1 0", control.Request{Command: "moveip", Args: []string{"198.18.1.1", "0"}, Target: -1}},
		{"-n 2 disable", control.Request{Command: "disable", Target: 2}},
		{"enable", control.Request{Command: "enable", Target: -1}},
		{"stop", control.Request{Command: "stop", Target: -1}},
		{"continue", control.Request{Command: "continue", Target: -1}},
		{"ban 0x10", control.Request{Command: "ban", Args: []string{"16"}, Target: -1}},
		{"unban", control.Request{Command: "unban", Target: -1}},
		{"reloadips all", control.Request{Command: "reloadips", Args: []string{"all"}, Target: -1}},
		{"reloadips", control.Request{Command: "reloadips", Target: -1}},
		{"ipreallocate", control.Request{Command: "ipreallocate", Target: -1}},
		{"sync", control.Request{Command: "ipreallocate", Target: -1}},
		{"gratarp 198.18.1.2 eth0", control.Request{Command: "gratarp", Args: []string{"198.18.1.2", "eth0"}, Target: -1}},
		{"shutdown", control.Request{Command: "shutdown", Target: -1}},
		{"setvar MonitorInterval 5", control.Request{Command: "setvar", Args: []string{"MonitorInterval", "5"}, Target: -1}},
		{"event script enable legacy 50.probe", control.Request{Command: "event", Args: []string{"script", "enable", "50.probe"}, Target: -1}},
		{"event script disable 50.probe", control.Request{Command: "event", Args: []string{"script", "disable", "50.probe"}, Target: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			d := newDaemon(healthy(1), healthy(2))
			sock := serveDaemon(t, d)
			stdout, stderr, code := ctdb(sock, fields(tt.args)...)
			if stdout != "" || stderr != "" || code != 0 {
				t.Errorf("ctdb %s = (%q, %q, %d), want no output and exit 0", tt.args, stdout, stderr, code)
			}
			if diff := cmp.Diff([]control.Request{tt.want}, d.requests()); diff != "" {
				t.Errorf("ctdb %s sent (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}
