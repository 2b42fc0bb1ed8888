package eventsd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The scripts run with sh, PATH = the stubs in testdata/stubs, then
// sysTools linked from the host. Nothing else is found, so a script that
// reaches for the real ip, ethtool, ss or ctdb fails the test instead of
// touching the machine.
var sysTools = []string{
	"sh", "cat", "awk", "grep", "sed", "sort", "tr", "mkdir", "mv", "rm",
	"tail", "head", "wc", "nice", "cp", "touch", "chmod",
}

// shipped are the files of this directory a node's CTDB_BASE gets, as
// `make install` lays them out: functions beside ctdb.conf, scripts in
// events.d/.
var shipped = []string{"functions", "10.interface", "50.postgres", "90.fence-ipmi"}

// node is a fake node: CTDB_BASE, procfs, sysfs, state dir and the stubs'
// state ($FAKE_STATE), all under one temporary root.
type node struct {
	t    *testing.T
	root string
	env  map[string]string
}

func newNode(t *testing.T) *node {
	t.Helper()
	root := t.TempDir()
	n := &node{t: t, root: root}
	n.env = map[string]string{
		"PATH":               n.path("bin") + ":" + n.path("sysbin"),
		"CTDB_BASE":          n.path("etc/ctdb"),
		"CTDB_PROC_ROOT":     n.path("proc"),
		"CTDB_SYS_ROOT":      n.path("sys"),
		"CTDB_VARDIR":        n.path("var/lib/ctdb"),
		"CTDB_HELPER_BINDIR": n.path("libexec/ctdb"),
		"CTDB_SYS_ETCDIR":    n.path("sysetc"),
		"FAKE_STATE":         n.path("fake"),
		"HOME":               root,
		"LC_ALL":             "C",
	}
	for _, f := range shipped {
		dst := "etc/ctdb/events.d/" + f
		if f == "functions" {
			dst = "etc/ctdb/functions"
		}
		n.copy(f, dst, 0o755)
	}
	stubs, err := os.ReadDir("testdata/stubs")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stubs {
		n.copy(filepath.Join("testdata/stubs", s.Name()), "bin/"+s.Name(), 0o755)
	}
	n.mkdir("sysbin")
	for _, tool := range sysTools {
		p, err := exec.LookPath(tool)
		if err != nil {
			continue // a script needing it fails its test
		}
		if err := os.Symlink(p, n.path("sysbin/"+tool)); err != nil {
			t.Fatal(err)
		}
	}
	n.mkdir("fake")
	n.write("proc/sys/net/ipv4/conf/all/promote_secondaries", "0\n")
	return n
}

func (n *node) path(rel string) string { return filepath.Join(n.root, rel) }

func (n *node) mkdir(rel string) {
	n.t.Helper()
	if err := os.MkdirAll(n.path(rel), 0o755); err != nil {
		n.t.Fatal(err)
	}
}

// write writes content to rel (under the node's root), making its dirs.
func (n *node) write(rel, content string) {
	n.t.Helper()
	n.writeMode(rel, content, 0o644)
}

func (n *node) writeMode(rel, content string, mode os.FileMode) {
	n.t.Helper()
	n.mkdir(filepath.Dir(rel))
	if err := os.WriteFile(n.path(rel), []byte(content), mode); err != nil {
		n.t.Fatal(err)
	}
	if err := os.Chmod(n.path(rel), mode); err != nil {
		n.t.Fatal(err)
	}
}

// copy copies src (relative to the package dir) to rel.
func (n *node) copy(src, rel string, mode os.FileMode) {
	n.t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		n.t.Fatal(err)
	}
	n.writeMode(rel, string(b), mode)
}

func (n *node) remove(rel string) {
	n.t.Helper()
	if err := os.Remove(n.path(rel)); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) read(rel string) string {
	n.t.Helper()
	b, err := os.ReadFile(n.path(rel))
	if err != nil {
		n.t.Fatal(err)
	}
	return string(b)
}

// publicAddresses writes CTDB's test layout (tests/UNIT/eventscripts
// local.sh), in the benchmark range: six addresses on dev123, three on
// dev456.
func (n *node) publicAddresses() {
	var b strings.Builder
	b.WriteString("# CTDB's eventscript test layout\n\n")
	for i := 1; i <= 6; i++ {
		fmt.Fprintf(&b, "198.18.1.%d/24 dev123\n", i)
	}
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&b, "  198.18.2.%d/24\tdev456\n", i)
	}
	n.write("etc/ctdb/public_addresses", b.String())
}

// nic makes a plain interface, administratively up, with link "yes" or
// "no" (as ethtool reports it).
func (n *node) nic(name, link string) {
	n.t.Helper()
	n.write("fake/links/"+name, brLine(name, link, true))
	n.write("fake/ethtool/"+name, link+"\n")
}

// nicAdminDown makes an interface that is administratively down, whose
// link is "after" once "ip link set NAME up" ran.
func (n *node) nicAdminDown(name, after string) {
	n.t.Helper()
	n.write("fake/links/"+name, brLine(name, "no", false))
	n.write("fake/ethtool/"+name, "no\n")
	n.write("fake/links/"+name+".up", brLine(name, after, true))
	n.write("fake/ethtool/"+name+".up", after+"\n")
}

// vlan makes VLAN name on lower, with link as ethtool reports it on the
// VLAN.
func (n *node) vlan(name, lower, link string) {
	n.t.Helper()
	n.write("fake/links/"+name, brLine(name+"@"+lower, link, true))
	n.write("fake/ethtool/"+name, link+"\n")
}

// bond makes bond name whose /proc/net/bonding file is
// testdata/bonding/fixture. ethtool would say "yes": a bond must be judged
// by its bonding file alone.
func (n *node) bond(name, fixture string) {
	n.t.Helper()
	n.write("fake/links/"+name, brLine(name, "yes", true))
	n.write("fake/ethtool/"+name, "yes\n")
	n.copy(filepath.Join("testdata/bonding", fixture), "proc/net/bonding/"+name, 0o644)
}

// brLine is what "ip -br link show" prints.
func brLine(name, link string, adminUp bool) string {
	switch {
	case !adminUp:
		return fmt.Sprintf("%-16s DOWN           02:00:00:00:00:01 <BROADCAST,MULTICAST> \n", name)
	case link == "yes":
		return fmt.Sprintf("%-16s UP             02:00:00:00:00:01 <BROADCAST,MULTICAST,UP,LOWER_UP> \n", name)
	default:
		return fmt.Sprintf("%-16s DOWN           02:00:00:00:00:01 <NO-CARRIER,BROADCAST,MULTICAST,UP> \n", name)
	}
}

// conns adds count connections to ip:port from 198.18.254.i:base+i to
// the stub ss's list; unkillable ones survive "ss -K" and ctdb_killtcp.
func (n *node) conns(ip string, port, count, base int, unkillable bool) {
	n.t.Helper()
	file := "fake/tcp"
	if unkillable {
		file = "fake/tcp_unkillable"
	}
	var b strings.Builder
	if old, err := os.ReadFile(n.path(file)); err == nil {
		b.Write(old)
	}
	for i := 1; i <= count; i++ {
		fmt.Fprintf(&b, "%s:%d 198.18.254.%d:%d\n", ip, port, i, base+i)
	}
	n.write(file, b.String())
}

// calls is what the stubs were asked to do, one line per call.
func (n *node) calls() []string {
	n.t.Helper()
	b, err := os.ReadFile(n.path("fake/calls"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		n.t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// run runs an installed script as ctdbd does: sh, the event and its
// arguments, stdout and stderr into one stream. It returns the output,
// with the node's root shown as $ROOT, and the exit code.
func (n *node) run(script string, args ...string) (string, int) {
	n.t.Helper()
	return n.runCmd(append([]string{n.path("etc/ctdb/events.d/" + script)}, args...)...)
}

// runCmd runs sh with args in the node's environment.
func (n *node) runCmd(args ...string) (string, int) {
	n.t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		n.t.Fatal(err)
	}
	// A guard against a hanging script, not a timing assertion.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sh, args...)
	cmd.Env = n.environ()
	cmd.Dir = n.root
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err = cmd.Run()
	rc := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		rc = exit.ExitCode()
	case err != nil:
		n.t.Fatalf("running %v: %v", args, err)
	}
	return strings.ReplaceAll(out.String(), n.root, "$ROOT"), rc
}

func (n *node) environ() []string {
	var env []string
	for k, v := range n.env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// check compares a run's output and exit code.
func check(t *testing.T, gotOut string, gotRC int, wantOut string, wantRC int) {
	t.Helper()
	if diff := cmp.Diff(wantOut, gotOut); diff != "" {
		t.Errorf("output mismatch (-want +got):\n%s", diff)
	}
	if gotRC != wantRC {
		t.Errorf("exit code = %d, want %d; output:\n%s", gotRC, wantRC, gotOut)
	}
}

// checkCalls compares the stub calls whose command is one of cmds (all
// calls when cmds is empty).
func checkCalls(t *testing.T, n *node, want []string, cmds ...string) {
	t.Helper()
	var got []string
	for _, c := range n.calls() {
		if len(cmds) == 0 {
			got = append(got, c)
			continue
		}
		for _, p := range cmds {
			if strings.HasPrefix(c, p+" ") {
				got = append(got, c)
				break
			}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stub calls mismatch (-want +got):\n%s", diff)
	}
}

// standard is a node with CTDB's test public addresses, both interfaces
// up.
func standard(t *testing.T) *node {
	n := newNode(t)
	n.publicAddresses()
	n.nic("dev123", "yes")
	n.nic("dev456", "yes")
	return n
}

func TestInterface(t *testing.T) {
	const (
		noLink123 = "ERROR: No link on the public network interface dev123\n"
		noLink456 = "ERROR: No link on the public network interface dev456\n"
		argsErr   = "ERROR: must supply interface, IP and maskbits\n"
		argsErrUp = "ERROR: must supply old interface, new interface, IP and maskbits\n"
	)
	tests := []struct {
		name    string
		setup   func(n *node)
		args    []string
		wantOut string
		wantRC  int
		// wantCalls, if set, are all the stub calls the run made.
		wantCalls []string
		// after, if set, checks the node after the run.
		after func(t *testing.T, n *node)
	}{
		{
			name:    "init.001 no public_addresses",
			setup:   func(n *node) { n.remove("etc/ctdb/public_addresses") },
			args:    []string{"init"},
			wantOut: "No public addresses file found\n",
		},
		{
			name:      "init.002 all up",
			args:      []string{"init"},
			wantCalls: []string{},
		},
		{
			name:    "init no promote_secondaries",
			setup:   func(n *node) { n.remove("proc/sys/net/ipv4/conf/all/promote_secondaries") },
			args:    []string{"init"},
			wantOut: "Public IPs only supported if promote_secondaries is available\n",
			wantRC:  1,
		},
		{
			name:      "monitor.001 no public_addresses",
			setup:     func(n *node) { n.remove("etc/ctdb/public_addresses") },
			args:      []string{"monitor"},
			wantCalls: []string{},
		},
		{
			name:      "startup.001 no public_addresses",
			setup:     func(n *node) { n.remove("etc/ctdb/public_addresses") },
			args:      []string{"startup"},
			wantCalls: []string{},
		},
		{
			name: "monitor.002 all up",
			args: []string{"monitor"},
			wantCalls: []string{
				"ip -br link show dev123", "ethtool dev123",
				"ip -br link show dev456", "ethtool dev456",
			},
		},
		{
			name: "startup.002 all up",
			args: []string{"startup"},
		},
		{
			name:    "monitor.003 one interface without link",
			setup:   func(n *node) { n.nic("dev123", "no") },
			args:    []string{"monitor"},
			wantOut: noLink123,
			wantRC:  1,
			// The link is up administratively: no "ip link set up" retry
			// that would hide a pulled cable.
			wantCalls: []string{
				"ip -br link show dev123", "ethtool dev123",
				"ip -br link show dev456", "ethtool dev456",
			},
		},
		{
			name:    "startup one interface without link",
			setup:   func(n *node) { n.nic("dev456", "no") },
			args:    []string{"startup"},
			wantOut: noLink456,
			wantRC:  1,
		},
		{
			name:  "monitor.004 bond with active slave",
			setup: func(n *node) { n.bond("dev123", "active-backup-up") },
			args:  []string{"monitor"},
			// A bond is judged by its bonding file, never by ethtool.
			wantCalls: []string{
				"ip -br link show dev123",
				"ip -br link show dev456", "ethtool dev456",
			},
		},
		{
			name:  "monitor bond failed over to second slave",
			setup: func(n *node) { n.bond("dev123", "active-backup-failed-over") },
			args:  []string{"monitor"},
		},
		{
			name:    "monitor.005 bond no active slave",
			setup:   func(n *node) { n.bond("dev123", "active-backup-no-active-slave") },
			args:    []string{"monitor"},
			wantOut: "ERROR: No active slaves for bond device dev123\n",
			wantRC:  1,
		},
		{
			name:    "monitor.006 bond MII down",
			setup:   func(n *node) { n.bond("dev123", "round-robin-down") },
			args:    []string{"monitor"},
			wantOut: "ERROR: public network interface dev123 is down\n",
			wantRC:  1,
		},
		{
			name: "monitor.009 partially online, one down",
			setup: func(n *node) {
				n.nic("dev123", "no")
				n.write("etc/ctdb/script.options", "CTDB_PARTIALLY_ONLINE_INTERFACES=yes\n")
			},
			args:    []string{"monitor"},
			wantOut: noLink123,
		},
		{
			name: "monitor.010 partially online, all down",
			setup: func(n *node) {
				n.nic("dev123", "no")
				n.nic("dev456", "no")
				n.write("etc/ctdb/script.options", "CTDB_PARTIALLY_ONLINE_INTERFACES=yes\n")
			},
			args:    []string{"monitor"},
			wantOut: noLink123 + noLink456,
			wantRC:  1,
		},
		{
			name: "monitor all down, every error printed",
			setup: func(n *node) {
				n.nic("dev123", "no")
				n.nic("dev456", "no")
			},
			args:    []string{"monitor"},
			wantOut: noLink123 + noLink456,
			wantRC:  1,
		},
		{
			name: "monitor.011 partially online, one bond without slaves",
			setup: func(n *node) {
				n.bond("dev123", "active-backup-no-active-slave")
				n.bond("dev456", "active-backup-up")
				n.write("etc/ctdb/events.d/10.interface.options", "CTDB_PARTIALLY_ONLINE_INTERFACES=yes\n")
			},
			args:    []string{"monitor"},
			wantOut: "ERROR: No active slaves for bond device dev123\n",
		},
		{
			name: "monitor.012 partially online, all bonds without slaves",
			setup: func(n *node) {
				n.bond("dev123", "active-backup-no-active-slave")
				n.bond("dev456", "active-backup-no-active-slave")
				n.write("etc/ctdb/events.d/10.interface.options", "CTDB_PARTIALLY_ONLINE_INTERFACES=yes\n")
			},
			args: []string{"monitor"},
			wantOut: "ERROR: No active slaves for bond device dev123\n" +
				"ERROR: No active slaves for bond device dev456\n",
			wantRC: 1,
		},
		{
			name:  "monitor 802.3ad bond up",
			setup: func(n *node) { n.bond("dev123", "802.3ad-up") },
			args:  []string{"monitor"},
		},
		{
			name:  "monitor 802.3ad bond with one slave up",
			setup: func(n *node) { n.bond("dev123", "802.3ad-one-slave-up") },
			args:  []string{"monitor"},
		},
		{
			name:    "monitor.013 802.3ad bond up but all slaves down",
			setup:   func(n *node) { n.bond("dev123", "802.3ad-slaves-down") },
			args:    []string{"monitor"},
			wantOut: "ERROR: No active slaves for 802.ad bond device dev123\n",
			wantRC:  1,
		},
		{
			name: "monitor.014 spurious addresses ignored",
			setup: func(n *node) {
				n.write("fake/addrs", "2: dev123    inet 203.0.113.9/24 scope global dev123\n"+
					"3: dev456    inet 198.18.2.99/24 scope global secondary dev456\n")
			},
			args: []string{"monitor"},
			// Addresses are ctdbd's: the script never lists them.
			wantCalls: []string{
				"ip -br link show dev123", "ethtool dev123",
				"ip -br link show dev456", "ethtool dev456",
			},
		},
		{
			name:    "monitor.015 interface missing",
			setup:   func(n *node) { n.remove("fake/links/dev123") },
			args:    []string{"monitor"},
			wantOut: "ERROR: Monitored interface dev123 does not exist\n",
			wantRC:  1,
		},
		{
			name: "monitor.016 interface missing, partially online",
			setup: func(n *node) {
				n.remove("fake/links/dev123")
				n.write("etc/ctdb/script.options", "CTDB_PARTIALLY_ONLINE_INTERFACES=yes\n")
			},
			args:    []string{"monitor"},
			wantOut: "ERROR: Monitored interface dev123 does not exist\n",
		},
		{
			name: "monitor.017 VLAN on plain interface, link down",
			setup: func(n *node) {
				n.write("etc/ctdb/public_addresses", "198.18.1.1/24 vlan100\n")
				n.nic("dev123", "yes")
				n.vlan("vlan100", "dev123", "no")
			},
			args:    []string{"monitor"},
			wantOut: "ERROR: No link on the public network interface vlan100\n",
			wantRC:  1,
			// ethtool looks at the VLAN itself.
			wantCalls: []string{"ip -br link show vlan100", "ethtool vlan100"},
		},
		{
			name: "monitor VLAN on plain interface, link up",
			setup: func(n *node) {
				n.write("etc/ctdb/public_addresses", "198.18.1.1/24 vlan100\n")
				n.vlan("vlan100", "dev123", "yes")
			},
			args: []string{"monitor"},
		},
		{
			name: "monitor.018 VLAN on bond whose MII is down",
			setup: func(n *node) {
				n.write("etc/ctdb/public_addresses", "198.18.1.1/24 bond0.100\n")
				n.bond("bond0", "round-robin-down")
				n.vlan("bond0.100", "bond0", "yes")
			},
			args:      []string{"monitor"},
			wantOut:   "ERROR: public network interface bond0 is down\n",
			wantRC:    1,
			wantCalls: []string{"ip -br link show bond0.100"},
		},
		{
			name: "monitor VLAN on bond with active slave",
			setup: func(n *node) {
				n.write("etc/ctdb/public_addresses", "198.18.1.1/24 bond0.100\n")
				n.bond("bond0", "active-backup-up")
				n.vlan("bond0.100", "bond0", "no")
			},
			args: []string{"monitor"},
		},
		{
			name: "monitor veth peer name is not taken for a VLAN",
			setup: func(n *node) {
				// the test bed's eth1 shows as eth1@if12
				n.write("etc/ctdb/public_addresses", "198.18.1.1/24 eth1\n")
				n.vlan("eth1", "if12", "yes")
			},
			args:      []string{"monitor"},
			wantCalls: []string{"ip -br link show eth1", "ethtool eth1"},
		},
		{
			name: "monitor lo and ib are always up",
			setup: func(n *node) {
				n.write("etc/ctdb/public_addresses", "198.18.1.1/24 lo\n198.18.1.2/24 ib0\n")
				n.nic("lo", "no")
				n.nic("ib0", "no")
			},
			args:      []string{"monitor"},
			wantCalls: []string{"ip -br link show ib0", "ip -br link show lo"},
		},
		{
			name: "monitor several interfaces per address, each checked once",
			setup: func(n *node) {
				n.write("etc/ctdb/public_addresses", "# comment dev999\n"+
					"198.18.1.1/24 dev456,dev123\n198.18.1.2/24 dev123,dev456\n\n")
				n.nic("dev456", "no")
			},
			args:    []string{"monitor"},
			wantOut: noLink456,
			wantRC:  1,
			wantCalls: []string{
				"ip -br link show dev123", "ethtool dev123",
				"ip -br link show dev456", "ethtool dev456",
			},
		},
		{
			name:    "monitor administratively down, link after ip link set up",
			setup:   func(n *node) { n.nicAdminDown("dev123", "yes") },
			args:    []string{"monitor"},
			wantOut: "WARNING: public network interface dev123 is administratively down, setting it up\n",
			wantCalls: []string{
				"ip -br link show dev123", "ethtool dev123", "ip link set dev123 up", "ethtool dev123",
				"ip -br link show dev456", "ethtool dev456",
			},
		},
		{
			name:  "monitor administratively down, still no link",
			setup: func(n *node) { n.nicAdminDown("dev123", "no") },
			args:  []string{"monitor"},
			wantOut: "WARNING: public network interface dev123 is administratively down, setting it up\n" +
				noLink123,
			wantRC: 1,
		},
		{
			name: "monitor without ethtool uses sysfs carrier",
			setup: func(n *node) {
				n.remove("bin/ethtool")
				n.write("sys/class/net/dev123/carrier", "1\n")
				n.write("sys/class/net/dev456/carrier", "0\n")
			},
			args:    []string{"monitor"},
			wantOut: noLink456,
			wantRC:  1,
		},
		{
			name: "monitor without ethtool or carrier file",
			setup: func(n *node) {
				n.remove("bin/ethtool")
				n.write("sys/class/net/dev123/carrier", "1\n")
			},
			args:    []string{"monitor"},
			wantOut: noLink456,
			wantRC:  1,
		},
		{
			name: "monitor ethtool without link state falls back to carrier",
			setup: func(n *node) {
				n.write("fake/ethtool/dev123", "none\n")
				n.write("sys/class/net/dev123/carrier", "1\n")
				n.write("fake/ethtool/dev456", "none\n")
				n.write("sys/class/net/dev456/carrier", "0\n")
			},
			args:    []string{"monitor"},
			wantOut: noLink456,
			wantRC:  1,
		},
		{
			name: "monitor setifacelink only when asked",
			setup: func(n *node) {
				n.nic("dev123", "no")
				n.write("etc/ctdb/script.options", "CTDB_SETIFACELINK=yes\n")
			},
			args:      []string{"monitor"},
			wantOut:   noLink123,
			wantRC:    1,
			wantCalls: nil, // checked below
			after: func(t *testing.T, n *node) {
				checkCalls(t, n, []string{"ctdb setifacelink dev123 down", "ctdb setifacelink dev456 up"}, "ctdb")
			},
		},
		{
			name:  "monitor no setifacelink by default",
			setup: func(n *node) { n.nic("dev123", "no") },
			args:  []string{"monitor"},
			after: func(t *testing.T, n *node) {
				checkCalls(t, n, nil, "ctdb")
			},
			wantOut: noLink123,
			wantRC:  1,
		},
		{
			name:    "takeip.001 no args",
			args:    []string{"takeip"},
			wantOut: argsErr,
			wantRC:  1,
		},
		{
			name:    "takeip too many args",
			args:    []string{"takeip", "dev123", "198.18.1.1", "24", "extra"},
			wantOut: argsErr,
			wantRC:  1,
		},
		{
			name: "takeip.002 flushes the route cache, touches nothing else",
			setup: func(n *node) {
				n.write("proc/sys/net/ipv4/route/flush", "")
				n.write("proc/sys/net/ipv6/route/flush", "")
			},
			args:      []string{"takeip", "dev123", "198.18.1.1", "24"},
			wantCalls: []string{},
			after: func(t *testing.T, n *node) {
				for _, f := range []string{"proc/sys/net/ipv4/route/flush", "proc/sys/net/ipv6/route/flush"} {
					if got := n.read(f); got != "1\n" {
						t.Errorf("%s = %q, want %q", f, got, "1\n")
					}
				}
			},
		},
		{
			name:      "takeip without route flush files",
			args:      []string{"takeip", "dev123", "198.18.1.1", "24"},
			wantCalls: []string{},
		},
		{
			name:    "releaseip.001 no args",
			args:    []string{"releaseip"},
			wantOut: argsErr,
			wantRC:  1,
		},
		{
			name:    "updateip no args",
			args:    []string{"updateip"},
			wantOut: argsErrUp,
			wantRC:  1,
		},
		{
			name:    "updateip three args",
			args:    []string{"updateip", "dev123", "198.18.1.1", "24"},
			wantOut: argsErrUp,
			wantRC:  1,
		},
		{
			name:    "updateip redundant",
			args:    []string{"updateip", "dev123", "dev123", "198.18.1.1", "24"},
			wantOut: "Redundant \"updateip\" - 198.18.1.1 already on dev123\n",
		},
		{
			name:      "updateip to another interface",
			args:      []string{"updateip", "dev123", "dev456", "198.18.1.1", "24"},
			wantCalls: []string{},
		},
		{
			name:      "ipreallocated does nothing",
			args:      []string{"ipreallocated"},
			wantCalls: []string{},
		},
		{
			name:      "shutdown does nothing",
			args:      []string{"shutdown"},
			wantCalls: []string{},
		},
		{
			name:      "unknown event",
			args:      []string{"frobnicate", "x"},
			wantCalls: []string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := standard(t)
			if tc.setup != nil {
				tc.setup(n)
			}
			out, rc := n.run("10.interface", tc.args...)
			check(t, out, rc, tc.wantOut, tc.wantRC)
			if tc.wantCalls != nil {
				if len(tc.wantCalls) == 0 {
					checkCalls(t, n, nil)
				} else {
					checkCalls(t, n, tc.wantCalls)
				}
			}
			if tc.after != nil {
				tc.after(t, n)
			}
		})
	}
}

func TestInterfaceReleaseIPKillsConnections(t *testing.T) {
	const ip = "198.18.1.3"
	killed := func(k, total int, method string) string {
		return fmt.Sprintf("Killed %d/%d TCP connections to released IP %s, using %s\n", k, total, ip, method)
	}
	remaining := func(from, to int) string {
		s := "Remaining connections:\n"
		for i := from; i <= to; i++ {
			s += fmt.Sprintf("  %s:445 198.18.254.%d:%d\n", ip, i, 43210+i)
		}
		return s
	}
	helper := func(n *node) { n.copy("testdata/stubs/ctdb_killtcp", "libexec/ctdb/ctdb_killtcp", 0o755) }
	tests := []struct {
		name       string
		options    string
		killable   int
		unkillable int
		setup      func(n *node)
		wantOut    string
	}{
		{
			name:     "releaseip no connections",
			options:  "CTDB_KILLTCP_USE_SS_KILL=yes\n",
			killable: 0,
		},
		{
			name:     "releaseip.010 default without ctdb_killtcp leaves connections",
			killable: 10,
		},
		{
			name:     "releaseip.010 default uses ctdb_killtcp when installed",
			killable: 10,
			setup:    helper,
			wantOut:  killed(10, 10, "ctdb_killtcp"),
		},
		{
			name:       "releaseip.011 ctdb_killtcp, 1 fails",
			killable:   10,
			unkillable: 1,
			setup:      helper,
			wantOut:    killed(10, 11, "ctdb_killtcp") + remaining(1, 1),
		},
		{
			name:     "releaseip.020 ss -K, 10 killed",
			options:  "CTDB_KILLTCP_USE_SS_KILL=yes\n",
			killable: 10,
			wantOut:  killed(10, 10, "ss -K"),
		},
		{
			name:       "releaseip.021 ss -K, 1 fails",
			options:    "CTDB_KILLTCP_USE_SS_KILL=yes\n",
			killable:   10,
			unkillable: 1,
			setup:      helper, // not used with "yes"
			wantOut:    killed(10, 11, "ss -K") + remaining(1, 1),
		},
		{
			name:       "releaseip.022 ss -K, 3 fail",
			options:    "CTDB_KILLTCP_USE_SS_KILL=yes\n",
			killable:   10,
			unkillable: 3,
			wantOut:    killed(10, 13, "ss -K") + remaining(1, 3),
		},
		{
			name:       "releaseip.023 ss -K, all fail",
			options:    "CTDB_KILLTCP_USE_SS_KILL=yes\n",
			unkillable: 10,
			wantOut:    killed(0, 10, "ss -K") + remaining(1, 10),
		},
		{
			name:     "releaseip.030 try ss -K, 10 killed",
			options:  "CTDB_KILLTCP_USE_SS_KILL=try\n",
			killable: 10,
			setup:    helper,
			wantOut:  killed(10, 10, "ss -K"),
		},
		{
			name:       "releaseip.031 try ss -K, 1 fails, then ctdb_killtcp",
			options:    "CTDB_KILLTCP_USE_SS_KILL=try\n",
			killable:   10,
			unkillable: 1,
			setup:      helper,
			wantOut: killed(10, 11, "ss -K") + remaining(1, 1) +
				killed(0, 1, "ctdb_killtcp") + remaining(1, 1),
		},
		{
			name:       "releaseip.033 try ss -K, all fail, no ctdb_killtcp",
			options:    "CTDB_KILLTCP_USE_SS_KILL=try\n",
			unkillable: 10,
			wantOut:    killed(0, 10, "ss -K") + remaining(1, 10),
		},
		{
			name:     "releaseip invalid CTDB_KILLTCP_USE_SS_KILL",
			options:  "CTDB_KILLTCP_USE_SS_KILL=true\n",
			killable: 2,
			wantOut:  "WARNING: CTDB_KILLTCP_USE_SS_KILL=true is not yes, try or no; using no\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := standard(t)
			n.write("etc/ctdb/script.options", tc.options)
			n.conns(ip, 445, tc.killable, 12300, false)
			n.conns(ip, 445, tc.unkillable, 43210, true)
			// Another address's connections are not touched.
			n.conns("198.18.1.4", 445, 2, 22000, false)
			if tc.setup != nil {
				tc.setup(n)
			}
			before := n.read("fake/tcp")

			out, rc := n.run("10.interface", "releaseip", "dev123", ip, "24")
			check(t, out, rc, tc.wantOut, 0)

			wantTCP := "198.18.1.4:445 198.18.254.1:22001\n198.18.1.4:445 198.18.254.2:22002\n"
			if !strings.Contains(tc.wantOut, "Killed") {
				wantTCP = before // nothing killed
			}
			if diff := cmp.Diff(wantTCP, n.read("fake/tcp")); diff != "" {
				t.Errorf("connections left (-want +got):\n%s", diff)
			}
		})
	}
}

// ctdb_killtcp resets both ends, except for CIFS where only ours is reset.
func TestInterfaceReleaseIPKillTCPInput(t *testing.T) {
	n := standard(t)
	n.copy("testdata/stubs/ctdb_killtcp", "libexec/ctdb/ctdb_killtcp", 0o755)
	n.conns("198.18.1.3", 5432, 1, 40000, false)
	n.conns("198.18.1.3", 445, 1, 50000, false)

	out, rc := n.run("10.interface", "releaseip", "dev123", "198.18.1.3", "24")
	check(t, out, rc, "Killed 2/2 TCP connections to released IP 198.18.1.3, using ctdb_killtcp\n", 0)
	var got []string
	inKill := false
	for _, c := range n.calls() {
		switch {
		case strings.HasPrefix(c, "ctdb_killtcp "):
			inKill = true
			got = append(got, c)
		case inKill && strings.HasPrefix(c, "  "):
			got = append(got, c)
		default:
			inKill = false
		}
	}
	want := []string{
		"ctdb_killtcp dev123",
		"  198.18.254.1:40001 198.18.1.3:5432",
		"  198.18.1.3:5432 198.18.254.1:40001",
		"  198.18.254.1:50001 198.18.1.3:445",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ctdb_killtcp input (-want +got):\n%s", diff)
	}
}

func TestPostgres(t *testing.T) {
	const (
		isready     = "pg_isready -q -h /run/postgresql -p 5432"
		noResponse  = "ERROR: postgres on /run/postgresql port 5432 is not accepting connections (pg_isready: no response)\n"
		checkQuery  = "psql -X -q -A -t -w -v ON_ERROR_STOP=1 -h /run/postgresql -p 5432 -c SELECT 1"
		checkEnvDef = "  PGCONNECT_TIMEOUT=3 PGOPTIONS=-c statement_timeout=3s PGAPPNAME=ctdb 50.postgres"
	)
	tests := []struct {
		name      string
		setup     func(n *node)
		args      []string
		wantOut   string
		wantRC    int
		wantCalls []string
	}{
		{
			name:      "monitor accepting",
			args:      []string{"monitor"},
			wantCalls: []string{isready},
		},
		{
			name:      "monitor refusing, no response",
			setup:     func(n *node) { n.write("fake/pg_isready", "2\n") },
			args:      []string{"monitor"},
			wantOut:   noResponse,
			wantRC:    1,
			wantCalls: []string{isready},
		},
		{
			name:    "monitor rejecting connections",
			setup:   func(n *node) { n.write("fake/pg_isready", "1\n") },
			args:    []string{"monitor"},
			wantOut: "ERROR: postgres on /run/postgresql port 5432 is not accepting connections (pg_isready: rejecting connections, starting up or shutting down)\n",
			wantRC:  1,
		},
		{
			name:    "monitor no attempt",
			setup:   func(n *node) { n.write("fake/pg_isready", "3\n") },
			args:    []string{"monitor"},
			wantOut: "ERROR: postgres on /run/postgresql port 5432: pg_isready made no attempt to connect (bad CTDB_POSTGRES_* settings?)\n",
			wantRC:  1,
		},
		{
			name:    "monitor pg_isready odd exit code",
			setup:   func(n *node) { n.write("fake/pg_isready", "42\n") },
			args:    []string{"monitor"},
			wantOut: "ERROR: postgres on /run/postgresql port 5432: pg_isready failed with exit code 42\n",
			wantRC:  1,
		},
		{
			name: "monitor host and port from script.options",
			setup: func(n *node) {
				n.write("etc/ctdb/script.options", "CTDB_POSTGRES_HOST=198.18.1.10\nCTDB_POSTGRES_PORT=5433\n")
				n.write("fake/pg_isready", "2\n")
			},
			args:      []string{"monitor"},
			wantOut:   "ERROR: postgres on 198.18.1.10 port 5433 is not accepting connections (pg_isready: no response)\n",
			wantRC:    1,
			wantCalls: []string{"pg_isready -q -h 198.18.1.10 -p 5433"},
		},
		{
			name: "monitor port from events.d/50.postgres.options wins",
			setup: func(n *node) {
				n.write("etc/ctdb/script.options", "CTDB_POSTGRES_PORT=5433\n")
				n.write("etc/ctdb/events.d/50.postgres.options", "CTDB_POSTGRES_PORT=5434\n")
			},
			args:      []string{"monitor"},
			wantCalls: []string{"pg_isready -q -h /run/postgresql -p 5434"},
		},
		{
			name: "monitor port from CTDB's events/legacy/50.postgres.options",
			setup: func(n *node) {
				n.write("etc/ctdb/events/legacy/50.postgres.options", "CTDB_POSTGRES_PORT=6432\n")
			},
			args:      []string{"monitor"},
			wantCalls: []string{"pg_isready -q -h /run/postgresql -p 6432"},
		},
		{
			name: "monitor user, database and timeout",
			setup: func(n *node) {
				n.write("etc/ctdb/script.options", "CTDB_POSTGRES_USER=ctdb\nCTDB_POSTGRES_DBNAME=postgres\nCTDB_POSTGRES_TIMEOUT=2\n")
			},
			args:      []string{"monitor"},
			wantCalls: []string{isready + " -U ctdb -d postgres -t 2"},
		},
		{
			name: "monitor pg_isready from CTDB_POSTGRES_PG_ISREADY",
			setup: func(n *node) {
				n.remove("bin/pg_isready")
				n.copy("testdata/stubs/pg_isready", "usr/lib/postgresql/16/bin/pg_isready", 0o755)
				n.write("etc/ctdb/script.options", "CTDB_POSTGRES_PG_ISREADY="+n.path("usr/lib/postgresql/16/bin/pg_isready")+"\n")
			},
			args:      []string{"monitor"},
			wantCalls: []string{isready},
		},
		{
			name:    "monitor pg_isready missing",
			setup:   func(n *node) { n.remove("bin/pg_isready") },
			args:    []string{"monitor"},
			wantOut: "ERROR: pg_isready not found: install the PostgreSQL client or set CTDB_POSTGRES_PG_ISREADY\n",
			wantRC:  1,
		},
		{
			name: "monitor check query passes",
			setup: func(n *node) {
				n.write("etc/ctdb/script.options", "CTDB_POSTGRES_CHECK_QUERY='SELECT 1'\n")
				n.write("fake/psql_out", "1\n")
			},
			args:      []string{"monitor"},
			wantCalls: []string{isready, checkQuery, checkEnvDef},
		},
		{
			name: "monitor check query with user, database, timeout",
			setup: func(n *node) {
				n.write("etc/ctdb/script.options", "CTDB_POSTGRES_CHECK_QUERY='SELECT 1'\n"+
					"CTDB_POSTGRES_USER=ctdb\nCTDB_POSTGRES_DBNAME=app\nCTDB_POSTGRES_TIMEOUT=5\n")
			},
			args: []string{"monitor"},
			wantCalls: []string{
				isready + " -U ctdb -d app -t 5",
				"psql -X -q -A -t -w -v ON_ERROR_STOP=1 -h /run/postgresql -p 5432 -U ctdb -d app -c SELECT 1",
				"  PGCONNECT_TIMEOUT=5 PGOPTIONS=-c statement_timeout=5s PGAPPNAME=ctdb 50.postgres",
			},
		},
		{
			name: "monitor check query fails",
			setup: func(n *node) {
				n.write("etc/ctdb/script.options", "CTDB_POSTGRES_CHECK_QUERY='SELECT 1'\n")
				n.write("fake/psql_err", "psql: error: connection to server on socket \"/run/postgresql/.s.PGSQL.5432\" failed: FATAL:  the database system is in recovery mode\n")
				n.write("fake/psql_rc", "2\n")
			},
			args: []string{"monitor"},
			wantOut: "psql: error: connection to server on socket \"/run/postgresql/.s.PGSQL.5432\" failed: FATAL:  the database system is in recovery mode\n" +
				"ERROR: postgres on /run/postgresql port 5432: check query failed: SELECT 1\n",
			wantRC: 1,
		},
		{
			name: "monitor check query returns the expected value",
			setup: func(n *node) {
				n.write("etc/ctdb/script.options", "CTDB_POSTGRES_CHECK_QUERY='SELECT NOT pg_is_in_recovery()'\nCTDB_POSTGRES_CHECK_EXPECT=t\n")
				n.write("fake/psql_out", "t\n")
			},
			args: []string{"monitor"},
		},
		{
			name: "monitor check query returns something else",
			setup: func(n *node) {
				n.write("etc/ctdb/script.options", "CTDB_POSTGRES_CHECK_QUERY='SELECT NOT pg_is_in_recovery()'\nCTDB_POSTGRES_CHECK_EXPECT=t\n")
				n.write("fake/psql_out", "f\n")
			},
			args:    []string{"monitor"},
			wantOut: "ERROR: postgres on /run/postgresql port 5432: check query returned \"f\", expected \"t\": SELECT NOT pg_is_in_recovery()\n",
			wantRC:  1,
		},
		{
			name: "monitor check query not run when pg_isready fails",
			setup: func(n *node) {
				n.write("etc/ctdb/script.options", "CTDB_POSTGRES_CHECK_QUERY='SELECT 1'\n")
				n.write("fake/pg_isready", "2\n")
			},
			args:      []string{"monitor"},
			wantOut:   noResponse,
			wantRC:    1,
			wantCalls: []string{isready},
		},
		{
			name: "monitor psql missing",
			setup: func(n *node) {
				n.write("etc/ctdb/script.options", "CTDB_POSTGRES_CHECK_QUERY='SELECT 1'\n")
				n.remove("bin/psql")
			},
			args:    []string{"monitor"},
			wantOut: "ERROR: psql not found: install the PostgreSQL client or set CTDB_POSTGRES_PSQL\n",
			wantRC:  1,
		},
		{
			name:      "startup accepting",
			args:      []string{"startup"},
			wantCalls: []string{isready},
		},
		{
			name:      "startup refusing",
			setup:     func(n *node) { n.write("fake/pg_isready", "2\n") },
			args:      []string{"startup"},
			wantOut:   noResponse,
			wantRC:    1,
			wantCalls: []string{isready},
		},
		{
			name: "startup skipped when asked",
			setup: func(n *node) {
				n.write("etc/ctdb/script.options", "CTDB_POSTGRES_SKIP_ON_STARTUP=yes\n")
				n.write("fake/pg_isready", "2\n")
			},
			args:      []string{"startup"},
			wantCalls: []string{},
		},
		{
			name: "monitor still checks with skip on startup",
			setup: func(n *node) {
				n.write("etc/ctdb/script.options", "CTDB_POSTGRES_SKIP_ON_STARTUP=yes\n")
				n.write("fake/pg_isready", "2\n")
			},
			args:    []string{"monitor"},
			wantOut: noResponse,
			wantRC:  1,
		},
	}
	for _, ev := range [][]string{
		{"init"}, {"setup"}, {"takeip", "eth1", "198.18.1.1", "24"},
		{"releaseip", "eth1", "198.18.1.1", "24"}, {"ipreallocated"}, {"shutdown"}, {"frobnicate"},
	} {
		tests = append(tests, struct {
			name      string
			setup     func(n *node)
			args      []string
			wantOut   string
			wantRC    int
			wantCalls []string
		}{
			name:      ev[0] + " does not check",
			setup:     func(n *node) { n.write("fake/pg_isready", "2\n") },
			args:      ev,
			wantCalls: []string{},
		})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := newNode(t)
			if tc.setup != nil {
				tc.setup(n)
			}
			out, rc := n.run("50.postgres", tc.args...)
			check(t, out, rc, tc.wantOut, tc.wantRC)
			if tc.wantCalls != nil {
				if len(tc.wantCalls) == 0 {
					checkCalls(t, n, nil)
				} else {
					checkCalls(t, n, tc.wantCalls)
				}
			}
		})
	}
}

// helperScript runs shell code in a script that sourced functions, as a
// custom event script would.
const helperScript = `#!/bin/sh
. "${CTDB_BASE:?}/functions"
eval "$1"
`

func TestFunctions(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(n *node)
		code      string
		wantOut   string
		wantRC    int
		wantCalls []string
	}{
		{name: "die", code: `die "ERROR: boom"; echo not reached`, wantOut: "ERROR: boom\n", wantRC: 1},
		{name: "die with code", code: `die "ERROR: boom" 7`, wantOut: "ERROR: boom\n", wantRC: 7},
		{name: "die without message", code: `die`, wantRC: 1},
		{
			name:    "variables",
			code:    `echo "$CTDB_VARDIR|$CTDB_SCRIPT_VARDIR|$CTDB_SCRIPT_NAME|$script_name|$CTDB"`,
			wantOut: "$ROOT/var/lib/ctdb|$ROOT/var/lib/ctdb/scripts|99.helper|99.helper|ctdb\n",
		},
		{
			name: "variable defaults",
			setup: func(n *node) {
				delete(n.env, "CTDB_VARDIR")
				delete(n.env, "CTDB_PROC_ROOT")
				delete(n.env, "CTDB_SYS_ROOT")
				delete(n.env, "CTDB_HELPER_BINDIR")
				delete(n.env, "CTDB_SYS_ETCDIR")
			},
			code:    `echo "$CTDB_VARDIR|$CTDB_SCRIPT_VARDIR|$CTDB_PROC_ROOT|$CTDB_SYS_ROOT|$CTDB_HELPER_BINDIR|$CTDB_SYS_ETCDIR"`,
			wantOut: "/var/lib/ctdb|/var/lib/ctdb/scripts|/proc|/sys|/usr/libexec/ctdb|/etc\n",
		},
		{
			name:    "CTDB_SCRIPT_VARDIR override",
			setup:   func(n *node) { n.env["CTDB_SCRIPT_VARDIR"] = "/elsewhere" },
			code:    `echo "$CTDB_SCRIPT_VARDIR"`,
			wantOut: "/elsewhere\n",
		},
		{
			name: "load_script_options order",
			setup: func(n *node) {
				n.write("etc/ctdb/script.options", "A=global\nB=global\nC=global\n")
				n.write("etc/ctdb/events/legacy/99.helper.options", "B=legacy\nC=legacy\n")
				n.write("etc/ctdb/events.d/99.helper.options", "C=ctdb-go\n")
			},
			code:    `load_script_options; echo "$A $B $C"`,
			wantOut: "global legacy ctdb-go\n",
		},
		{
			name: "load_script_options for a named script",
			setup: func(n *node) {
				n.write("etc/ctdb/events.d/10.interface.options", "X=iface\n")
				n.write("etc/ctdb/events.d/99.helper.options", "X=helper\n")
			},
			code:    `load_script_options legacy 10.interface; echo "$X"; load_script_options 99.helper; echo "$X"`,
			wantOut: "iface\nhelper\n",
		},
		{
			name:    "load_script_options without files",
			code:    `load_script_options; echo ok`,
			wantOut: "ok\n",
		},
		{name: "ctdb_check_args takeip ok", code: `ctdb_check_args takeip dev123 198.18.1.1 24; echo ok`, wantOut: "ok\n"},
		{name: "ctdb_check_args monitor", code: `ctdb_check_args monitor; echo ok`, wantOut: "ok\n"},
		{
			name:    "ctdb_check_args releaseip short",
			code:    `ctdb_check_args releaseip dev123 198.18.1.1`,
			wantOut: "ERROR: must supply interface, IP and maskbits\n", wantRC: 1,
		},
		{
			name:    "ctdb_check_args updateip short",
			code:    `ctdb_check_args updateip dev123 198.18.1.1 24`,
			wantOut: "ERROR: must supply old interface, new interface, IP and maskbits\n", wantRC: 1,
		},
		{
			name:      "ctdb_get_pnn cached",
			setup:     func(n *node) { n.write("fake/ctdb_pnn", "2\n") },
			code:      `ctdb_get_pnn; ctdb_get_pnn; cat "$CTDB_SCRIPT_VARDIR/my-pnn"`,
			wantOut:   "2\n2\n2\n",
			wantCalls: []string{"ctdb pnn"},
		},
		{
			name: "ctdb_get_pnn from CTDB_PNN",
			setup: func(n *node) {
				n.env["CTDB_PNN"] = "4"
				n.write("fake/ctdb_pnn", "2\n")
			},
			code:      `ctdb_get_pnn; [ -e "$CTDB_SCRIPT_VARDIR/my-pnn" ] || echo "no cache"`,
			wantOut:   "4\nno cache\n",
			wantCalls: []string{},
		},
		{
			name: "ctdb_get_pnn ignores a bad CTDB_PNN",
			setup: func(n *node) {
				n.env["CTDB_PNN"] = "x"
				n.write("fake/ctdb_pnn", "2\n")
			},
			code:      `ctdb_get_pnn`,
			wantOut:   "2\n",
			wantCalls: []string{"ctdb pnn"},
		},
		{
			name: "ctdb_get_pnn with options in CTDB",
			setup: func(n *node) {
				n.write("fake/ctdb_pnn", "1\n")
				n.env["CTDB"] = "ctdb --socket /run/ctdb/n1.socket"
			},
			code:      `ctdb_get_pnn`,
			wantOut:   "1\n",
			wantCalls: []string{"ctdb --socket /run/ctdb/n1.socket pnn"},
		},
		{
			name: "ctdb_get_pnn daemon unreachable caches nothing",
			code: `ctdb_get_pnn || echo "failed $?"; [ -e "$CTDB_SCRIPT_VARDIR/my-pnn" ] || echo "no cache"; ` +
				`echo 3 >"$FAKE_STATE/ctdb_pnn"; ctdb_get_pnn`,
			wantOut: "connect() failed, errno=2\nFailed to connect to CTDB daemon (/run/ctdb/ctdbd.socket)\n" +
				"failed 1\nno cache\n3\n",
			wantCalls: []string{"ctdb pnn", "ctdb pnn"},
		},
		{
			name: "ctdb_get_ip_address",
			setup: func(n *node) {
				n.write("fake/ctdb_pnn", "1\n")
				n.write("fake/ctdb_ip", "198.18.0.2\n")
			},
			code:      `ctdb_get_ip_address; ctdb_get_ip_address`,
			wantOut:   "198.18.0.2\n198.18.0.2\n",
			wantCalls: []string{"ctdb -X nodestatus"},
		},
		{
			name:    "get_proc",
			setup:   func(n *node) { n.write("proc/net/bonding/bond0", "MII Status: up\n") },
			code:    `get_proc net/bonding/bond0; get_proc net/bonding/bond1 2>/dev/null || echo "no bond1"`,
			wantOut: "MII Status: up\nno bond1\n",
		},
		{
			name:    "set_proc_maybe",
			setup:   func(n *node) { n.write("proc/sys/net/ipv4/conf/dev123/promote_secondaries", "0\n") },
			code:    `set_proc_maybe sys/net/ipv4/conf/dev123/promote_secondaries 1; set_proc_maybe sys/nonexistent 1; cat "$CTDB_PROC_ROOT/sys/net/ipv4/conf/dev123/promote_secondaries"; [ -e "$CTDB_PROC_ROOT/sys/nonexistent" ] || echo absent`,
			wantOut: "1\nabsent\n",
		},
		{
			name: "counters",
			code: `ctdb_setup_state_dir service foo; echo "$script_state_dir"; ctdb_counter_get; ` +
				`ctdb_counter_incr; ctdb_counter_incr; ctdb_counter_get; ` +
				`ctdb_counter_incr x; ctdb_counter_get x; ctdb_counter_init; ctdb_counter_get; ctdb_counter_get x`,
			wantOut: "$ROOT/var/lib/ctdb/scripts/service/foo\n0\n2\n1\n0\n1\n",
		},
		{
			name:    "ctdb_setup_state_dir default",
			code:    `ctdb_setup_state_dir; echo "$script_state_dir"; [ -d "$script_state_dir" ] && echo made`,
			wantOut: "$ROOT/var/lib/ctdb/scripts/script/99.helper\nmade\n",
		},
		{
			name:    "ctdb_setup_state_dir usage",
			code:    `ctdb_setup_state_dir one`,
			wantOut: "usage: ctdb_setup_state_dir <type> <name>\n", wantRC: 1,
		},
		{
			name:    "counters need a state dir",
			code:    `ctdb_counter_incr`,
			wantOut: "ctdb_counter_* functions need ctdb_setup_state_dir()\n", wantRC: 1,
		},
		{
			name: "reconfigure flag",
			code: `service_name=nfs; ctdb_setup_state_dir service nfs; ` +
				`ctdb_service_needs_reconfigure || echo "not needed"; ctdb_service_set_reconfigure; ` +
				`ctdb_service_needs_reconfigure && echo needed; ctdb_counter_incr; ` +
				`service_reconfigure () { echo "reloading $service_name"; }; ctdb_service_reconfigure; ` +
				`ctdb_service_needs_reconfigure || echo "not needed"; ctdb_counter_get`,
			wantOut: "not needed\nneeded\nReconfiguring service \"nfs\"...\nreloading nfs\nnot needed\n0\n",
		},
		{
			name:    "ctdb_check_tcp_ports listening",
			setup:   func(n *node) { n.write("fake/tcp_listen", "0.0.0.0:5432\n[::]:22\n127.0.0.1%lo:53\n") },
			code:    `ctdb_check_tcp_ports 5432 22 53 && echo ok`,
			wantOut: "ok\n",
		},
		{
			name:    "ctdb_check_tcp_ports not listening",
			setup:   func(n *node) { n.write("fake/tcp_listen", "0.0.0.0:5432\n0.0.0.0:15433\n") },
			code:    `service_name=postgresql; ctdb_check_tcp_ports 5432 5433 || echo "rc $?"`,
			wantOut: "postgresql not listening on TCP port 5433\nrc 1\n",
		},
		{
			name:    "ctdb_check_tcp_ports names the script without service_name",
			code:    `ctdb_check_tcp_ports 445`,
			wantOut: "99.helper not listening on TCP port 445\n", wantRC: 1,
		},
		{
			name:    "ctdb_check_tcp_ports no ports",
			code:    `ctdb_check_tcp_ports`,
			wantOut: "INTERNAL ERROR: ctdb_check_tcp_ports - no ports specified\n", wantRC: 1,
		},
		{
			name: "ctdb_check_tcp_ports from /proc/net/tcp without ss",
			setup: func(n *node) {
				n.remove("bin/ss")
				hdr := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
				n.write("proc/net/tcp", hdr+
					"   0: 00000000:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   114        0 21345 1 0000000000000000 100 0 0 10 0\n"+
					"   1: 0100007F:1539 0100007F:C350 01 00000000:00000000 00:00000000 00000000   114        0 21346 1 0000000000000000 20 4 30 10 -1\n")
				n.write("proc/net/tcp6", "  sl  local_address                         remote_address                        st\n"+
					"   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1\n")
			},
			code:    `ctdb_check_tcp_ports 5432 22 && echo ok; ctdb_check_tcp_ports 5433`,
			wantOut: "ok\n99.helper not listening on TCP port 5433\n", wantRC: 1,
		},
		{
			name:    "ctdb_check_unix_socket",
			setup:   func(n *node) { n.write("fake/unix_listen", "/run/postgresql/.s.PGSQL.5432\n") },
			code:    `service_name=postgresql; ctdb_check_unix_socket /run/postgresql/.s.PGSQL.5432 && echo ok; ctdb_check_unix_socket /run/postgresql/.s.PGSQL.5433`,
			wantOut: "ok\nERROR: postgresql not listening on /run/postgresql/.s.PGSQL.5433\n", wantRC: 1,
		},
		{
			name:    "ctdb_check_unix_socket without path",
			code:    `ctdb_check_unix_socket`,
			wantOut: "ERROR: ctdb_check_unix_socket() requires socket path\n", wantRC: 1,
		},
		{
			name: "ctdb_check_unix_socket from /proc/net/unix without ss",
			setup: func(n *node) {
				n.remove("bin/ss")
				n.write("proc/net/unix", "Num       RefCount Protocol Flags    Type St Inode Path\n"+
					"0000000000000000: 00000002 00000000 00010000 0001 01 20001 /run/a.sock\n"+
					"0000000000000000: 00000003 00000000 00000000 0001 03 20002 /run/b.sock\n")
			},
			code:    `ctdb_check_unix_socket /run/a.sock && echo ok; ctdb_check_unix_socket /run/b.sock`,
			wantOut: "ok\nERROR: 99.helper not listening on /run/b.sock\n", wantRC: 1,
		},
		{
			name:    "ctdb_check_directories arguments",
			setup:   func(n *node) { n.mkdir("srv/a"); n.mkdir("srv/b") },
			code:    `service_name=samba; ctdb_check_directories "$HOME/srv/a" "$HOME/srv/%U" "$HOME/srv/b" && echo ok; ctdb_check_directories "$HOME/srv/a" "$HOME/srv/c" "$HOME/srv/d"; echo not reached`,
			wantOut: "ok\nERROR: samba directory \"$ROOT/srv/c\" not available\n", wantRC: 1,
		},
		{
			name:  "ctdb_check_directories stdin",
			setup: func(n *node) { n.mkdir("srv/a") },
			code: "service_name=samba\nctdb_check_directories <<EOF\n$HOME/srv/a\n\n$HOME/srv/%U\nEOF\necho ok\n" +
				"ctdb_check_directories <<EOF\n$HOME/srv/a\n$HOME/srv/with space\nEOF\n",
			wantOut: "ok\nERROR: samba directory \"$ROOT/srv/with space\" not available\n", wantRC: 1,
		},
		{
			name: "interface_get_real",
			code: `for i in "vlan100@dev123   UP  02:00:00:00:00:01 <BROADCAST,MULTICAST,UP,LOWER_UP>" ` +
				`"bond0.100@bond0  UP  x <UP>" "dev123.100       UP  x <UP>" "dev123  UP  x <UP>" ` +
				`"eth1@if12  UP  x <UP>" "5: vlan7@bond1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500"; do interface_get_real "$i"; done`,
			wantOut: "dev123\nbond0\ndev123\ndev123\nif12\nbond1\n",
		},
		{
			name: "interface_admin_up",
			code: `for i in "dev123  UP  x <BROADCAST,MULTICAST,UP,LOWER_UP>" "dev123  DOWN  x <NO-CARRIER,BROADCAST,MULTICAST,UP>" ` +
				`"dev123  DOWN  x <BROADCAST,MULTICAST>" "dev123  DOWN  x <UP>" "dev123  DOWN  x <BROADCAST,MULTICAST,UPPER>" "no flags"; do ` +
				`if interface_admin_up "$i"; then echo up; else echo down; fi; done`,
			wantOut: "up\nup\ndown\nup\ndown\nup\n",
		},
		{
			name: "get_public_ifaces",
			setup: func(n *node) {
				n.write("etc/ctdb/public_addresses", "#198.18.1.9/24 commented\n 198.18.1.1/24 eth2,eth1\n\n198.18.1.2/24 eth1\nfd00::1/64 eth3\n198.18.1.3/24\n")
			},
			code:    `get_public_ifaces; echo $public_ifaces; have_public_addresses && echo have`,
			wantOut: "eth1 eth2 eth3\nhave\n",
		},
		{
			name: "have_public_addresses",
			code: `have_public_addresses || echo none`, wantOut: "none\n",
		},
		{
			name: "is_ctdb_managed_service",
			setup: func(n *node) {
				n.env["CTDB_MANAGED_SERVICES"] = "samba winbind"
				n.env["CTDB_MANAGES_NFS"] = "yes"
				n.env["CTDB_MANAGES_VSFTPD"] = "no"
			},
			code: `for s in samba winbind nfs vsftpd postgresql samb; do if is_ctdb_managed_service "$s"; then echo "$s yes"; else echo "$s no"; fi; done; ` +
				`service_name=nfs; is_ctdb_managed_service && echo "default yes"`,
			wantOut: "samba yes\nwinbind yes\nnfs yes\nvsftpd no\npostgresql no\nsamb no\ndefault yes\n",
		},
		{
			name:      "service uses service(8)",
			code:      `service smbd restart; nice_service nmbd start; service_name=winbind; service_start; service_stop`,
			wantCalls: []string{"service smbd restart", "service nmbd start", "service winbind start", "service winbind stop"},
		},
		{
			name:      "service falls back to systemctl",
			setup:     func(n *node) { n.remove("bin/service") },
			code:      `service smbd restart`,
			wantCalls: []string{"systemctl restart smbd"},
		},
		{
			name: "service falls back to init script",
			setup: func(n *node) {
				n.remove("bin/service")
				n.remove("bin/systemctl")
				n.writeMode("sysetc/init.d/smbd", "#!/bin/sh\necho \"init.d smbd $*\"\n", 0o755)
			},
			code:    `service smbd reload`,
			wantOut: "init.d smbd reload\n",
		},
		{
			name: "service without any way",
			setup: func(n *node) {
				n.remove("bin/service")
				n.remove("bin/systemctl")
			},
			code:    `service smbd start || echo "rc $?"`,
			wantOut: "ERROR: no service(8), systemctl or init script to start smbd\nrc 1\n",
		},
		{
			name:    "assert_service_name",
			code:    `service_name=x; assert_service_name; echo ok; unset service_name; assert_service_name`,
			wantOut: "ok\nINTERNAL ERROR: $service_name not set\n", wantRC: 1,
		},
		{
			name: "iptables_wrapper",
			setup: func(n *node) {
				for _, c := range []string{"iptables", "ip6tables"} {
					n.writeMode("bin/"+c, "#!/bin/sh\nprintf '%s\\n' \""+c+" $*\" >>\"$FAKE_STATE/calls\"\n", 0o755)
				}
			},
			code:      `iptables_wrapper inet -I INPUT -i dev123 -d 198.18.1.1 -j DROP; iptables_wrapper inet6 -D INPUT -i dev123 -d fd00::1 -j DROP`,
			wantCalls: []string{"iptables -I INPUT -i dev123 -d 198.18.1.1 -j DROP", "ip6tables -D INPUT -i dev123 -d fd00::1 -j DROP"},
		},
		{
			name:    "script_log to a file",
			setup:   func(n *node) { n.env["CTDB_LOGGING"] = "file:" + n.path("log.ctdb") },
			code:    `script_log tag "hello world"; echo from stdin | script_log tag; cat "$HOME/log.ctdb"`,
			wantOut: "hello world\nfrom stdin\n",
		},
		{
			name:    "script_log without logger goes to the output",
			code:    `script_log tag "hello"`,
			wantOut: "hello\n",
		},
		{
			name:    "background_with_logging",
			setup:   func(n *node) { n.env["CTDB_LOGGING"] = "file:" + n.path("log.ctdb") },
			code:    `background_with_logging echo "in the background"; wait; cat "$HOME/log.ctdb"`,
			wantOut: "in the background\n",
		},
		{
			name:    "rc.local",
			setup:   func(n *node) { n.writeMode("etc/ctdb/rc.local", "site_hook () { echo site; }\n", 0o755) },
			code:    `site_hook`,
			wantOut: "site\n",
		},
		{
			name: "rc.local.d",
			setup: func(n *node) {
				n.writeMode("etc/ctdb/rc.local.d/a", "a () { echo a; }\n", 0o755)
				n.writeMode("etc/ctdb/rc.local.d/b", "b () { echo b; }\n", 0o644) // not executable: skipped
			},
			code:    `a; command -v b >/dev/null || echo "no b"`,
			wantOut: "a\nno b\n",
		},
		{
			name:    "ctdb_standard_event_handler",
			code:    `ctdb_standard_event_handler "$@"; echo ok`,
			wantOut: "ok\n",
		},
		{
			name:    "load_system_config",
			setup:   func(n *node) { n.write("sysetc/default/nfs", "RPCNFSDCOUNT=16\n") },
			code:    `load_system_config nfs; echo "$RPCNFSDCOUNT"; load_system_config none; load_system_config`,
			wantOut: "16\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := newNode(t)
			n.writeMode("etc/ctdb/events.d/99.helper", helperScript, 0o755)
			if tc.setup != nil {
				tc.setup(n)
			}
			out, rc := n.run("99.helper", tc.code)
			check(t, out, rc, tc.wantOut, tc.wantRC)
			if tc.wantCalls != nil {
				if len(tc.wantCalls) == 0 {
					checkCalls(t, n, nil)
				} else {
					checkCalls(t, n, tc.wantCalls)
				}
			}
		})
	}
}

func TestFunctionsNeedCTDBBase(t *testing.T) {
	n := newNode(t)
	delete(n.env, "CTDB_BASE")
	out, rc := n.runCmd("-c", `. "$1"; echo not reached`, "sh", n.path("etc/ctdb/functions"))
	check(t, out, rc, "CTDB_BASE unset in CTDB functions file\n", 1)
}

// CTDB's layout names scripts NN.name.script; the name drops the suffix.
func TestFunctionsScriptNameDropsSuffix(t *testing.T) {
	n := newNode(t)
	n.writeMode("etc/ctdb/events/legacy/50.custom.script", helperScript, 0o755)
	n.write("etc/ctdb/events/legacy/50.custom.options", "X=legacy\n")
	out, rc := n.runCmd(n.path("etc/ctdb/events/legacy/50.custom.script"),
		`load_script_options; echo "$CTDB_SCRIPT_NAME $script_name $X"`)
	check(t, out, rc, "50.custom 50.custom.script legacy\n", 0)
}

// Every shipped script accepts any event it does not handle, and exits 0
// on a node with nothing configured for it.
func TestScriptsIgnoreUnknownEvents(t *testing.T) {
	for _, s := range scripts(t) {
		t.Run(s, func(t *testing.T) {
			t.Parallel()
			n := newNode(t)
			out, rc := n.run(s, "frobnicate", "x", "y")
			check(t, out, rc, "", 0)
		})
	}
}

// scripts lists the event scripts of this directory (NN.name).
func scripts(t *testing.T) []string {
	t.Helper()
	m, err := filepath.Glob("[0-9][0-9].*")
	if err != nil {
		t.Fatal(err)
	}
	if len(m) == 0 {
		t.Fatal("no scripts found")
	}
	for _, s := range m {
		found := false
		for _, f := range shipped {
			found = found || f == s
		}
		if !found {
			t.Errorf("script %s is not in shipped: add it there and test it", s)
		}
	}
	return m
}

// README.md documents every CTDB_* variable the shipped files read.
func TestReadmeDocumentsVariables(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`\$\{?(CTDB_[A-Z0-9_]+)`)
	seen := map[string]bool{}
	for _, f := range shipped {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			v := m[1]
			if seen[v] {
				continue
			}
			seen[v] = true
			if !bytes.Contains(readme, []byte(v)) {
				t.Errorf("README.md does not mention %s (read by %s)", v, f)
			}
		}
	}
	if len(seen) < 10 {
		t.Errorf("found only %d variables: is the pattern broken?", len(seen))
	}
}

func TestShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("shellcheck is not installed; CI needs it")
		}
		t.Skip("shellcheck is not installed")
	}
	files := append([]string{"functions"}, scripts(t)...)
	stubs, err := filepath.Glob("testdata/stubs/*")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, stubs...)
	cmd := exec.Command(sc, append([]string{"-x", "--severity=style"}, files...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("shellcheck %v: %v\n%s", files, err, out)
	}
}

func TestFenceIPMI(t *testing.T) {
	const (
		bmc        = "ipmitool -I lanplus -H 198.18.9.2"
		fencing    = "fencing node 1 (198.18.0.2): power off through BMC 198.18.9.2\n"
		poweredOff = "node 1 is powered off\n"
		opts       = "CTDB_FENCE_IPMI_HOST_1=198.18.9.2\n"
	)
	tests := []struct {
		name      string
		setup     func(n *node)
		args      []string
		wantOut   string
		wantRC    int
		wantCalls []string // $ROOT stands for the node's root
	}{
		{
			name:  "monitor does nothing",
			setup: func(n *node) { n.write("etc/ctdb/script.options", opts) },
			args:  []string{"monitor"},
		},
		{
			name: "fence powers off and sees it off",
			setup: func(n *node) {
				n.write("etc/ctdb/script.options", opts+"CTDB_FENCE_IPMI_USER=admin\n"+
					"CTDB_FENCE_IPMI_PASSWORD_FILE=$CTDB_BASE/ipmi.pw\n")
				n.write("etc/ctdb/ipmi.pw", "secret\n")
			},
			args:    []string{"fence", "1", "198.18.0.2"},
			wantOut: fencing + poweredOff,
			wantCalls: []string{
				bmc + " -U admin -f $ROOT/etc/ctdb/ipmi.pw chassis power off",
				bmc + " -U admin -f $ROOT/etc/ctdb/ipmi.pw chassis power status",
			},
		},
		{
			name: "per-node user and password file, interface and options",
			setup: func(n *node) {
				n.write("etc/ctdb/script.options", opts+"CTDB_FENCE_IPMI_USER=admin\n"+
					"CTDB_FENCE_IPMI_USER_1=root\nCTDB_FENCE_IPMI_PASSWORD_FILE_1=$CTDB_BASE/n1.pw\n"+
					"CTDB_FENCE_IPMI_INTERFACE=lan\nCTDB_FENCE_IPMI_OPTIONS='-L OPERATOR -N 1'\n")
				n.write("etc/ctdb/n1.pw", "secret\n")
			},
			args:    []string{"fence", "1", "198.18.0.2"},
			wantOut: fencing + poweredOff,
			wantCalls: []string{
				"ipmitool -I lan -H 198.18.9.2 -U root -f $ROOT/etc/ctdb/n1.pw -L OPERATOR -N 1 chassis power off",
				"ipmitool -I lan -H 198.18.9.2 -U root -f $ROOT/etc/ctdb/n1.pw -L OPERATOR -N 1 chassis power status",
			},
		},
		{
			name: "waits until the BMC reports off",
			setup: func(n *node) {
				n.write("etc/ctdb/script.options", opts)
				n.write("fake/ipmi_off_after", "2\n")
			},
			args:    []string{"fence", "1", "198.18.0.2"},
			wantOut: fencing + poweredOff,
			wantCalls: []string{
				bmc + " chassis power off",
				bmc + " chassis power status", "sleep 1",
				bmc + " chassis power status", "sleep 1",
				bmc + " chassis power status",
			},
		},
		{
			name: "still on after the wait fails",
			setup: func(n *node) {
				n.write("etc/ctdb/script.options", opts+"CTDB_FENCE_IPMI_WAIT=2\n")
				n.write("fake/ipmi_stuck", "")
			},
			args:    []string{"fence", "1", "198.18.0.2"},
			wantOut: fencing + "ERROR: cannot fence node 1: BMC 198.18.9.2 reports power on 2 s after power off\n",
			wantRC:  1,
			wantCalls: []string{
				bmc + " chassis power off",
				bmc + " chassis power status", "sleep 1",
				bmc + " chassis power status", "sleep 1",
				bmc + " chassis power status",
			},
		},
		{
			name: "BMC unreachable fails",
			setup: func(n *node) {
				n.write("etc/ctdb/script.options", opts)
				n.write("fake/ipmi_fail", "")
			},
			args: []string{"fence", "1", "198.18.0.2"},
			wantOut: fencing + "Error: Unable to establish IPMI v2 / RMCP+ session\n" +
				"ERROR: cannot fence node 1: BMC 198.18.9.2 did not power it off\n",
			wantRC:    1,
			wantCalls: []string{bmc + " chassis power off", bmc + " chassis power status"},
		},
		{
			name: "reboot powers on again after off",
			setup: func(n *node) {
				n.write("etc/ctdb/script.options", opts+"CTDB_FENCE_IPMI_ACTION=reboot\n")
			},
			args:    []string{"fence", "1", "198.18.0.2"},
			wantOut: fencing + poweredOff + "node 1 powered on again\n",
			wantCalls: []string{
				bmc + " chassis power off", bmc + " chassis power status", bmc + " chassis power on",
			},
		},
		{
			name:    "no BMC for the node fails",
			setup:   func(n *node) { n.write("etc/ctdb/script.options", "CTDB_FENCE_IPMI_HOST_0=198.18.9.1\n") },
			args:    []string{"fence", "1", "198.18.0.2"},
			wantOut: "ERROR: cannot fence node 1: no BMC configured (set CTDB_FENCE_IPMI_HOST_1 in script.options)\n",
			wantRC:  1,
		},
		{
			name: "unreadable password file fails",
			setup: func(n *node) {
				n.write("etc/ctdb/script.options", opts+"CTDB_FENCE_IPMI_PASSWORD_FILE=/nonexistent/ipmi.pw\n")
			},
			args:    []string{"fence", "1", "198.18.0.2"},
			wantOut: "ERROR: cannot fence node 1: password file /nonexistent/ipmi.pw is not readable\n",
			wantRC:  1,
		},
		{
			name:    "ipmitool missing fails",
			setup:   func(n *node) { n.write("etc/ctdb/script.options", opts+"CTDB_FENCE_IPMITOOL=/nonexistent/ipmitool\n") },
			args:    []string{"fence", "1", "198.18.0.2"},
			wantOut: "ERROR: cannot fence node 1: /nonexistent/ipmitool not found (install ipmitool or set CTDB_FENCE_IPMITOOL)\n",
			wantRC:  1,
		},
		{
			name:    "bad action fails",
			setup:   func(n *node) { n.write("etc/ctdb/script.options", opts+"CTDB_FENCE_IPMI_ACTION=cycle\n") },
			args:    []string{"fence", "1", "198.18.0.2"},
			wantOut: "ERROR: CTDB_FENCE_IPMI_ACTION=cycle: want off or reboot\n",
			wantRC:  1,
		},
		{
			name:    "bad node number fails",
			setup:   func(n *node) { n.write("etc/ctdb/script.options", opts) },
			args:    []string{"fence", "x1", "198.18.0.2"},
			wantOut: "ERROR: fence: bad node number \"x1\"\n",
			wantRC:  1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := newNode(t)
			if tc.setup != nil {
				tc.setup(n)
			}
			out, rc := n.run("90.fence-ipmi", tc.args...)
			check(t, out, rc, tc.wantOut, tc.wantRC)
			var want []string
			for _, c := range tc.wantCalls {
				want = append(want, strings.ReplaceAll(c, "$ROOT", n.root))
			}
			checkCalls(t, n, want, "ipmitool", "sleep")
		})
	}
}

// 90.fence-ipmi powers machines off: it is shipped disabled (not
// executable), to be configured and enabled on purpose.
func TestFenceIPMIShippedDisabled(t *testing.T) {
	fi, err := os.Stat("90.fence-ipmi")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&0o111 != 0 {
		t.Errorf("90.fence-ipmi has mode %v: ship it disabled (0644)", fi.Mode())
	}
}

// TestInterfaceReleaseIPCountedByCtdbd: ctdbd counts the address's
// connections before releaseip (CTDB_TCP_CONNECTIONS="IP N"); with none,
// nothing starts ss. The count names its address: another address's
// "0" changes nothing.
func TestInterfaceReleaseIPCountedByCtdbd(t *testing.T) {
	const ip = "198.18.1.3"
	tests := []struct {
		name      string
		count     string
		killable  int
		wantOut   string
		wantCalls int // ss calls
	}{
		{name: "none counted", count: ip + " 0", wantCalls: 0},
		{name: "two counted", count: ip + " 2", killable: 2,
			wantOut: "Killed 2/2 TCP connections to released IP " + ip + ", using ss -K\n", wantCalls: 3},
		{name: "another address counted", count: "198.18.1.4 0", killable: 2,
			wantOut: "Killed 2/2 TCP connections to released IP " + ip + ", using ss -K\n", wantCalls: 3},
		{name: "not counted", killable: 0, wantCalls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := standard(t)
			n.write("etc/ctdb/script.options", "CTDB_KILLTCP_USE_SS_KILL=yes\n")
			n.conns(ip, 445, tc.killable, 12300, false)
			if tc.count != "" {
				n.env["CTDB_TCP_CONNECTIONS"] = tc.count
			}
			out, rc := n.run("10.interface", "releaseip", "dev123", ip, "24")
			check(t, out, rc, tc.wantOut, 0)
			ss := 0
			for _, c := range n.calls() {
				if strings.HasPrefix(c, "ss ") {
					ss++
				}
			}
			if ss != tc.wantCalls {
				t.Errorf("ss ran %d times, want %d (calls: %q)", ss, tc.wantCalls, n.calls())
			}
		})
	}
}
