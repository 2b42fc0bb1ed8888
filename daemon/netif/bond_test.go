package netif

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// newLinux returns a Linux for the tests that need no privileges.
func newLinux(t *testing.T, procRoot string) *Linux {
	t.Helper()
	l, err := New(Config{ProcRoot: procRoot})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestBond(t *testing.T) {
	l := newLinux(t, "testdata/proc")
	tests := []struct {
		iface   string
		want    BondStatus
		problem string
	}{
		{
			iface: "ab-up",
			want: BondStatus{Name: "ab-up", Mode: "fault-tolerance (active-backup)", ActiveSlave: "eth1", MIIUp: true,
				Slaves: []BondSlave{{Name: "eth1", MIIUp: true}, {Name: "eth2"}}},
		},
		{
			iface: "ab-none",
			want: BondStatus{Name: "ab-none", Mode: "fault-tolerance (active-backup)", NoActiveSlave: true,
				Slaves: []BondSlave{{Name: "eth1"}, {Name: "eth2"}}},
			problem: "No active slaves for bond device ab-none",
		},
		{
			iface: "rr-down",
			want: BondStatus{Name: "rr-down", Mode: "load balancing (round-robin)",
				Slaves: []BondSlave{{Name: "eth1"}, {Name: "eth2"}}},
			problem: "public network interface rr-down is down",
		},
		{
			// The bond says "up" while no slave is: the driver bug CTDB
			// works around for 802.3ad.
			iface: "lacp-down",
			want: BondStatus{Name: "lacp-down", Mode: Mode8023AD, MIIUp: true,
				Slaves: []BondSlave{{Name: "eth1"}, {Name: "eth2"}}},
			problem: "No active slaves for 802.ad bond device lacp-down",
		},
		{
			iface: "lacp-ok",
			want: BondStatus{Name: "lacp-ok", Mode: Mode8023AD, MIIUp: true,
				Slaves: []BondSlave{{Name: "eth1", MIIUp: true}, {Name: "eth2"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.iface, func(t *testing.T) {
			got, ok, err := l.Bond(tt.iface)
			if err != nil || !ok {
				t.Fatalf("Bond(%q) = _, %v, %v; want a bond", tt.iface, ok, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Bond(%q) mismatch (-want +got):\n%s", tt.iface, diff)
			}
			if p := got.Problem(); p != tt.problem {
				t.Errorf("Bond(%q).Problem() = %q, want %q", tt.iface, p, tt.problem)
			}
		})
	}
}

func TestBondNotABond(t *testing.T) {
	l := newLinux(t, "testdata/proc")
	if b, ok, err := l.Bond("eth0"); ok || err != nil {
		t.Errorf("Bond(eth0) = %+v, %v, %v; want not a bond, no error", b, ok, err)
	}
	for _, name := range []string{"", "..", "../../etc", "a/b"} {
		if _, _, err := l.Bond(name); err == nil {
			t.Errorf("Bond(%q) gave no error", name)
		}
	}
}

func TestBondProblem(t *testing.T) {
	tests := []struct {
		name string
		b    BondStatus
		want string
	}{
		{"slave up but bond MII down", BondStatus{Name: "b", Slaves: []BondSlave{{Name: "e", MIIUp: true}}}, ""},
		{"nothing up", BondStatus{Name: "b", Slaves: []BondSlave{{Name: "e"}}}, "public network interface b is down"},
		{"no active slave wins", BondStatus{Name: "b", NoActiveSlave: true, MIIUp: true}, "No active slaves for bond device b"},
		{"802.3ad without slaves", BondStatus{Name: "b", Mode: Mode8023AD, MIIUp: true}, "No active slaves for 802.ad bond device b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.Problem(); got != tt.want {
				t.Errorf("Problem() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPromoteSecondariesWritesUnderProcRoot(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "sys/net/ipv4/conf/eth1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "promote_secondaries")
	if err := os.WriteFile(file, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l := newLinux(t, root)
	if err := l.PromoteSecondaries("eth1"); err != nil {
		t.Fatalf("PromoteSecondaries(eth1): %v", err)
	}
	if got, _ := os.ReadFile(file); string(got) != "1\n" {
		t.Errorf("promote_secondaries = %q, want %q", got, "1\n")
	}
	// A sysctl is never created: a missing interface is an error.
	if err := l.PromoteSecondaries("eth9"); err == nil {
		t.Errorf("PromoteSecondaries(eth9) gave no error")
	}
	if _, err := os.Stat(filepath.Join(root, "sys/net/ipv4/conf/eth9")); err == nil {
		t.Errorf("PromoteSecondaries(eth9) created a directory")
	}
}
