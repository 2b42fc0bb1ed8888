package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

// fuzzCommands are the controls FuzzHandle sends; shutdown is left out
// (it ends the daemon under test).
var fuzzCommands = []string{
	control.CmdStatus, control.CmdNodeStatus, control.CmdPNN, control.CmdLeader, control.CmdListNodes,
	control.CmdIP, control.CmdIfaces, control.CmdUptime, control.CmdListVars, control.CmdGetVar,
	control.CmdSetVar, control.CmdDisable, control.CmdEnable, control.CmdStop, control.CmdContinue,
	control.CmdBan, control.CmdUnban, control.CmdMoveIP, control.CmdReloadIPs, control.CmdIPReallocate,
	control.CmdEvent, control.CmdGratARP, control.CmdRunState, "held", "leader-status", "", "no-such-control",
}

// FuzzHandle sends the control dispatcher structured requests (a known
// command with 0 to 3 arguments, some of them the right ones) and checks
// that none panics, hangs past its deadline, or answers success with an
// error, whatever the arguments.
func FuzzHandle(f *testing.F) {
	seeds := []struct {
		cmd     int
		n       uint8
		a, b, c string
	}{
		{0, 0, "", "", ""}, {5, 1, "all", "", ""}, {9, 1, "MonitorInterval", "", ""},
		{10, 2, "MonitorInterval", "7", ""}, {10, 2, "LeaseTime", "99999999999", ""}, {10, 2, "NoSuchVar", "1", ""},
		{11, 0, "", "", ""}, {12, 0, "", "", ""}, {13, 0, "", "", ""}, {14, 0, "", "", ""},
		{15, 1, "0", "", ""}, {15, 1, "-5", "", ""}, {16, 0, "", "", ""},
		{17, 2, "198.18.1.1", "0", ""}, {17, 2, "not-an-ip", "x", ""}, {17, 2, "198.18.1.1", "99", ""},
		{19, 0, "", "", ""}, {20, 2, "status", "monitor", ""}, {20, 3, "script", "enable", "../../etc/passwd"},
		{20, 3, "run", "5", "monitor"}, {21, 2, "198.18.1.1", "eth1", ""}, {22, 1, "RUNNING", "", ""},
		{23, 0, "", "", ""}, {25, 3, "a", "b", "c"},
	}
	for _, s := range seeds {
		f.Add(s.cmd, s.n, s.a, s.b, s.c)
	}
	d, _, _, _, _ := oneNode(f)
	eventually(f, "the daemon running", d.running.Load)
	f.Fuzz(func(t *testing.T, cmd int, n uint8, a, b, c string) {
		if cmd < 0 {
			cmd = -cmd
		}
		req := control.Request{Command: fuzzCommands[cmd%len(fuzzCommands)], Target: control.ThisNode,
			Args: []string{a, b, c}[:n%4], EventTimeout: time.Second}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		resp := d.Handle(ctx, req)
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("Handle(%+v) took %v, past its deadline", req, took)
		}
		if resp.ExitCode == 0 && resp.Error != "" {
			t.Errorf("Handle(%+v) = exit 0 with error %q", req, resp.Error)
		}
		if resp.ExitCode != 0 && resp.Error == "" {
			t.Errorf("Handle(%+v) = exit %d without an error", req, resp.ExitCode)
		}
	})
}
