package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/control"
	"github.com/google/go-cmp/cmp"
)

// readListvars reads testdata/listvars.txt, CTDB's `ctdb listvars`.
func readListvars(t *testing.T) []control.Tunable {
	t.Helper()
	b, err := os.ReadFile("testdata/listvars.txt")
	if err != nil {
		t.Fatal(err)
	}
	var out []control.Tunable
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("listvars.txt: bad line %q", line)
		}
		v, err := strconv.ParseUint(strings.TrimSpace(value), 10, 32)
		if err != nil {
			t.Fatalf("listvars.txt: %v", err)
		}
		out = append(out, control.Tunable{Name: strings.TrimSpace(name), Value: uint32(v)})
	}
	return out
}

func TestListMatchesCTDB(t *testing.T) {
	want := append(readListvars(t),
		control.Tunable{Name: "LeaseTime", Value: 2},
		control.Tunable{Name: "LeaseRenewIntervalMs", Value: 250},
		control.Tunable{Name: "ProbeIntervalMs", Value: 200},
		control.Tunable{Name: "ProbeTimeoutMs", Value: 100},
		control.Tunable{Name: "SuspicionMult", Value: 2},
		control.Tunable{Name: "GossipIntervalMs", Value: 50},
		control.Tunable{Name: "FenceTimeout", Value: 60},
		control.Tunable{Name: "FenceDelayMs", Value: 2000},
		control.Tunable{Name: "FenceStartupGrace", Value: 10},
		control.Tunable{Name: "TakeIPProbeTimeoutMs", Value: 1000},
		control.Tunable{Name: "ARPProbeWaitMs", Value: 20},
		control.Tunable{Name: "LinkDebounceMs", Value: 5},
		control.Tunable{Name: "TakeoverParallelism", Value: 8},
	)
	const ours = 13 // ctdb-go's own, above
	if len(want) != 49+ours {
		t.Fatalf("listvars.txt has %d tunables, want 49", len(want)-ours)
	}
	if diff := cmp.Diff(want, DefaultTunables().List()); diff != "" {
		t.Errorf("List() (-want +got):\n%s", diff)
	}
}

func TestObsoleteTunables(t *testing.T) {
	obsolete := map[string]uint32{
		"MaxRedirectCount": 3, "EventScriptUnhealthyOnTimeout": 0, "DeterministicIPs": 0,
		"LCP2PublicIPs": 1, "ReclockPingPeriod": 60, "DisableIPFailover": 0,
		"VerifyRecoveryLock": 1, "VacuumLimit": 5000, "RecoverPDBBySeqNum": 1,
		"DeferredRebalanceOnNodeAdd": 300, "NoIPHostOnAllDisabled": 1,
		"Samba3AvoidDeadlocks": 0, "TDBMutexEnabled": 1,
	}
	tu := DefaultTunables()
	listed := map[string]bool{}
	for _, l := range tu.List() {
		listed[l.Name] = true
	}
	for name, def := range obsolete {
		t.Run(name, func(t *testing.T) {
			if listed[name] {
				t.Errorf("%s is listed", name)
			}
			if v, ok := tu.Get(name); !ok || v != def {
				t.Errorf("Get(%s) = %d, %v; want %d, true", name, v, ok, def)
			}
			lower := strings.ToLower(name)
			warning, err := tu.Set(lower, 7)
			if err != nil {
				t.Fatalf("Set(%s): %v", lower, err)
			}
			if want := fmt.Sprintf("Setting obsolete tunable variable '%s'", lower); warning != want {
				t.Errorf("Set(%s) warning = %q, want %q", lower, warning, want)
			}
			if v, _ := tu.Get(name); v != 7 {
				t.Errorf("Get(%s) after Set = %d, want 7", name, v)
			}
		})
	}
	var n int
	for _, d := range tunables {
		if d.obsolete {
			n++
		}
	}
	if n != len(obsolete) {
		t.Errorf("%d obsolete tunables, want %d", n, len(obsolete))
	}
}

func TestTunablesGetSet(t *testing.T) {
	tests := []struct {
		name    string
		set     string
		value   uint32
		get     string
		want    uint32
		wantErr string
	}{
		{name: "case-insensitive", set: "monitorinterval", value: 5, get: "MONITORINTERVAL", want: 5},
		{name: "ctdb-go tunable", set: "LeaseTime", value: 4, get: "leasetime", want: 4},
		{name: "zero is fine where it means off", set: "LinkDebounceMs", value: 0, get: "LinkDebounceMs", want: 0},
		{name: "any uint32 for a warning threshold", set: "DBSizeWarn", value: 1<<32 - 1, get: "DBSizeWarn", want: 1<<32 - 1},
		{name: "above maximum", set: "EventScriptTimeout", value: 3601, get: "EventScriptTimeout", want: 30, wantErr: "setting EventScriptTimeout to 3601: want 1 to 3600 s"},
		{name: "switch", set: "NoIPFailback", value: 2, get: "NoIPFailback", want: 0, wantErr: "setting NoIPFailback to 2: want 0 (off) or 1 (on)"},
		{name: "unknown", set: "NoSuchThing", value: 1, get: "MonitorInterval", want: 15, wantErr: "config: no such tunable NoSuchThing"},
		{name: "below minimum", set: "MonitorInterval", value: 0, get: "MonitorInterval", want: 15, wantErr: "setting MonitorInterval to 0: want 1 to 3600 s"},
		{name: "lease minimum", set: "LeaseTime", value: 0, get: "LeaseTime", want: 2, wantErr: "setting LeaseTime to 0: want 1 to 60 s"},
		{
			name: "renewal half the lease", set: "LeaseRenewIntervalMs", value: 1000, get: "LeaseRenewIntervalMs", want: 250,
			wantErr: "setting LeaseRenewIntervalMs to 1000: LeaseRenewIntervalMs (1000) must be less than half of LeaseTime (2 s), so that one lost renewal does not end the lease",
		},
		{name: "renewal under half the lease", set: "LeaseRenewIntervalMs", value: 999, get: "LeaseRenewIntervalMs", want: 999},
		{
			name: "lease of one second", set: "LeaseTime", value: 1, get: "LeaseTime", want: 1,
		},
		{
			name: "probe timeout not below interval", set: "ProbeTimeoutMs", value: 200, get: "ProbeTimeoutMs", want: 100,
			wantErr: "setting ProbeTimeoutMs to 200: ProbeTimeoutMs (200) must be less than ProbeIntervalMs (200)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tu := DefaultTunables()
			warning, err := tu.Set(tt.set, tt.value)
			if warning != "" {
				t.Errorf("Set(%s, %d) warning = %q, want none", tt.set, tt.value, warning)
			}
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.wantErr {
				t.Errorf("Set(%s, %d) = %q, want %q", tt.set, tt.value, gotErr, tt.wantErr)
			}
			if v, ok := tu.Get(tt.get); !ok || v != tt.want {
				t.Errorf("Get(%s) = %d, %v; want %d, true", tt.get, v, ok, tt.want)
			}
		})
	}

	_, err := DefaultTunables().Set("Bogus", 1)
	if !errors.Is(err, ErrNoSuchTunable) {
		t.Errorf("Set(Bogus) = %v, want ErrNoSuchTunable", err)
	}
	if _, ok := DefaultTunables().Get("Bogus"); ok {
		t.Errorf("Get(Bogus) found it")
	}
}

func TestTunablesAccessors(t *testing.T) {
	tu := DefaultTunables()
	got := map[string]any{
		"KeepaliveInterval":   tu.KeepaliveInterval(),
		"KeepaliveLimit":      tu.KeepaliveLimit(),
		"RecoverInterval":     tu.RecoverInterval(),
		"ElectionTimeout":     tu.ElectionTimeout(),
		"TakeoverTimeout":     tu.TakeoverTimeout(),
		"MonitorInterval":     tu.MonitorInterval(),
		"EventScriptTimeout":  tu.EventScriptTimeout(),
		"MonitorTimeoutCount": tu.MonitorTimeoutCount(),
		"RecoveryGracePeriod": tu.RecoveryGracePeriod(),
		"RecoveryBanPeriod":   tu.RecoveryBanPeriod(),
		"EnableBans":          tu.EnableBans(),
		"NoIPFailback":        tu.NoIPFailback(),
		"NoIPTakeover":        tu.NoIPTakeover(),
		"IPAllocAlgorithm":    tu.IPAllocAlgorithm(),
		"LeaseTime":           tu.LeaseTime(),
		"LeaseRenewInterval":  tu.LeaseRenewInterval(),
		"ProbeInterval":       tu.ProbeInterval(),
		"ProbeTimeout":        tu.ProbeTimeout(),
		"SuspicionMult":       tu.SuspicionMult(),
		"GossipInterval":      tu.GossipInterval(),
		"FenceTimeout":        tu.FenceTimeout(),
		"TakeIPProbeTimeout":  tu.TakeIPProbeTimeout(),
		"ARPProbeWait":        tu.ARPProbeWait(),
		"LinkDebounce":        tu.LinkDebounce(),
		"TakeoverParallelism": tu.TakeoverParallelism(),
	}
	want := map[string]any{
		"KeepaliveInterval":   5 * time.Second,
		"KeepaliveLimit":      5,
		"RecoverInterval":     time.Second,
		"ElectionTimeout":     3 * time.Second,
		"TakeoverTimeout":     9 * time.Second,
		"MonitorInterval":     15 * time.Second,
		"EventScriptTimeout":  30 * time.Second,
		"MonitorTimeoutCount": 20,
		"RecoveryGracePeriod": 120 * time.Second,
		"RecoveryBanPeriod":   300 * time.Second,
		"EnableBans":          true,
		"NoIPFailback":        false,
		"NoIPTakeover":        false,
		"IPAllocAlgorithm":    2,
		"LeaseTime":           2 * time.Second,
		"LeaseRenewInterval":  250 * time.Millisecond,
		"ProbeInterval":       200 * time.Millisecond,
		"ProbeTimeout":        100 * time.Millisecond,
		"SuspicionMult":       2,
		"GossipInterval":      50 * time.Millisecond,
		"FenceTimeout":        60 * time.Second,
		"TakeIPProbeTimeout":  time.Second,
		"ARPProbeWait":        20 * time.Millisecond,
		"LinkDebounce":        5 * time.Millisecond,
		"TakeoverParallelism": 8,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("accessors (-want +got):\n%s", diff)
	}

	// Accessors follow Set.
	for _, s := range []struct {
		name string
		v    uint32
	}{{"NoIPFailback", 1}, {"EnableBans", 0}, {"MonitorInterval", 3}, {"LeaseRenewIntervalMs", 100}} {
		if _, err := tu.Set(s.name, s.v); err != nil {
			t.Fatal(err)
		}
	}
	if !tu.NoIPFailback() || tu.EnableBans() || tu.MonitorInterval() != 3*time.Second || tu.LeaseRenewInterval() != 100*time.Millisecond {
		t.Errorf("accessors after Set: NoIPFailback %v EnableBans %v MonitorInterval %v LeaseRenewInterval %v",
			tu.NoIPFailback(), tu.EnableBans(), tu.MonitorInterval(), tu.LeaseRenewInterval())
	}
}

func TestTunablesClone(t *testing.T) {
	a := DefaultTunables()
	b := a.Clone()
	if _, err := b.Set("MonitorInterval", 3); err != nil {
		t.Fatal(err)
	}
	if a.MonitorInterval() != 15*time.Second || b.MonitorInterval() != 3*time.Second {
		t.Errorf("after Set on the clone: original %v, clone %v; want 15s, 3s", a.MonitorInterval(), b.MonitorInterval())
	}
}

// TestTunablesConcurrent is for the race detector: setvar while the daemon
// reads.
func TestTunablesConcurrent(t *testing.T) {
	tu := DefaultTunables()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 200 {
				if _, err := tu.Set("MonitorInterval", uint32(1+i*1000+j)); err != nil {
					t.Error(err)
					return
				}
				_ = tu.MonitorInterval()
				_ = tu.List()
				_ = tu.Clone()
			}
		})
	}
	wg.Wait()
	v, _ := tu.Get("MonitorInterval")
	if v%1000 != 200 {
		t.Errorf("MonitorInterval = %d, want the last value one of the writers set (x200)", v)
	}
}

func TestTunablesFiles(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  map[string]uint32
		errs  []string
	}{
		{
			name: "ctdb.tunables then tunables.d in name order",
			files: map[string]string{
				"ctdb.tunables":              "# comment\n\nMonitorInterval=10\nEnableBans = 0\n  KeepaliveLimit\t=\t9  \n",
				"tunables.d/20-b.tunables":   "MonitorInterval=30\nnoipfailback=1\n",
				"tunables.d/10-a.tunables":   "MonitorInterval=20\nNoIPFailback=0\n",
				"tunables.d/99-z.conf":       "this is not read\n",
				"tunables.d/05.tunables.bak": "this is not read either\n",
			},
			want: map[string]uint32{"MonitorInterval": 30, "EnableBans": 0, "KeepaliveLimit": 9, "NoIPFailback": 1},
		},
		{
			name:  "no files: defaults",
			files: map[string]string{},
			want:  map[string]uint32{"MonitorInterval": 15, "LeaseTime": 2},
		},
		{
			name: "every error class",
			files: map[string]string{
				"ctdb.tunables": "NoSuchTunable=1\n" +
					"DisableIPFailover=1\n" +
					"VerifyRecoveryLock=0\n" +
					"MonitorInterval=-1\n" +
					"MonitorInterval=15s\n" +
					"MonitorInterval=4294967296\n" +
					"MonitorInterval=\n" +
					"MonitorInterval=0x10\n" +
					"MonitorInterval 15\n" +
					"[tunables]\n" +
					"LeaseTime=0\n" +
					"DeterministicIPs=1\n" +
					"TDBMutexEnabled=0\n",
				"tunables.d/x.tunables": "Bogus=1\n",
			},
			errs: []string{
				`DIR/ctdb.tunables:1: unknown tunable "NoSuchTunable"`,
				"DIR/ctdb.tunables:2: obsolete tunable DisableIPFailover: use [failover] disabled in ctdb.conf",
				"DIR/ctdb.tunables:3: obsolete tunable VerifyRecoveryLock: remove it",
				`DIR/ctdb.tunables:4: MonitorInterval = "-1": want a whole number from 0 to 4294967295`,
				`DIR/ctdb.tunables:5: MonitorInterval = "15s": want a whole number from 0 to 4294967295`,
				`DIR/ctdb.tunables:6: MonitorInterval = "4294967296": want a whole number from 0 to 4294967295`,
				`DIR/ctdb.tunables:7: MonitorInterval = "": want a whole number from 0 to 4294967295`,
				`DIR/ctdb.tunables:8: MonitorInterval = "0x10": want a whole number from 0 to 4294967295`,
				`DIR/ctdb.tunables:9: expected NAME=VALUE, got "MonitorInterval 15"`,
				"DIR/ctdb.tunables:10: sections are not allowed in a tunables file",
				"DIR/ctdb.tunables:11: LeaseTime = 0: want 1 to 60 s",
				"DIR/ctdb.tunables:12: obsolete tunable DeterministicIPs: use IPAllocAlgorithm",
				"DIR/ctdb.tunables:13: obsolete tunable TDBMutexEnabled: use [database] tdb mutexes in ctdb.conf",
				`DIR/tunables.d/x.tunables:1: unknown tunable "Bogus"`,
			},
		},
		{
			name: "relation broken across files: reported where the last one was set",
			files: map[string]string{
				"ctdb.tunables":          "LeaseRenewIntervalMs=900\n",
				"tunables.d/50.tunables": "# shorter lease\nLeaseTime=1\n",
			},
			errs: []string{"DIR/tunables.d/50.tunables:2: LeaseRenewIntervalMs (900) must be less than half of LeaseTime (1 s), so that one lost renewal does not end the lease"},
		},
		{
			name: "relation fixed by a later file",
			files: map[string]string{
				"ctdb.tunables":          "ProbeTimeoutMs=500\n",
				"tunables.d/50.tunables": "ProbeIntervalMs=1000\n",
			},
			want: map[string]uint32{"ProbeTimeoutMs": 500, "ProbeIntervalMs": 1000},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeDir(t, tt.files)
			c, err := Load(dir)
			if diff := cmp.Diff(tt.errs, errorLines(t, err, dir)); diff != "" {
				t.Fatalf("Load errors (-want +got):\n%s", diff)
			}
			if err != nil {
				return
			}
			for name, want := range tt.want {
				if v, _ := c.Tunables.Get(name); v != want {
					t.Errorf("%s = %d, want %d", name, v, want)
				}
			}
		})
	}
}

// TestTunableRanges checks every tunable's range holds its default, and
// that TunableRange reports it.
func TestTunableRanges(t *testing.T) {
	for _, d := range tunables {
		min, max, unit, ok := TunableRange(d.name)
		if d.obsolete {
			if ok {
				t.Errorf("TunableRange(%s) = ok for an obsolete tunable", d.name)
			}
			continue
		}
		if !ok || min != d.min || max != d.max || unit != d.unit {
			t.Errorf("TunableRange(%s) = %d, %d, %q, %v; want %d, %d, %q", d.name, min, max, unit, ok, d.min, d.max, d.unit)
		}
		if d.def < d.min || d.def > d.max || d.min > d.max {
			t.Errorf("%s: default %d outside %d..%d", d.name, d.def, d.min, d.max)
		}
		msByName := strings.HasSuffix(d.name, "Ms") || d.name == "SeqnumInterval" || d.name == "StickyPindown"
		if msByName != (d.unit == "ms") {
			t.Errorf("%s: unit %q does not match the name", d.name, d.unit)
		}
	}
}

// TestExampleTunableRanges checks the ranges testdata/example/ctdb.tunables
// documents against the table.
func TestExampleTunableRanges(t *testing.T) {
	b, err := os.ReadFile("testdata/example/ctdb.tunables")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(strings.TrimPrefix(line, "#"))
		if len(f) < 3 || !strings.Contains(f[2], "..") {
			continue
		}
		n++
		i, ok := lookup(f[0])
		if !ok {
			t.Errorf("ctdb.tunables documents unknown tunable %s", f[0])
			continue
		}
		d := tunables[i]
		unit := ""
		if len(f) > 3 {
			unit = f[3]
		}
		want := fmt.Sprintf("%d %d..%d %s", d.def, d.min, d.max, d.unit)
		if got := f[1] + " " + f[2] + " " + unit; got != want {
			t.Errorf("ctdb.tunables documents %s as %q, the table has %q", f[0], got, want)
		}
	}
	if n == 0 {
		t.Error("ctdb.tunables documents no ranges")
	}
}
