package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestExample loads testdata/example, the configuration reference the
// README points to: it must load without errors or warnings, and every
// value it sets must arrive.
func TestExample(t *testing.T) {
	dir := exampleDir(t)
	c, err := Load(dir)
	if err != nil {
		t.Fatalf("Load(testdata/example):\n%v", err)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("Warnings = %v, want none", c.Warnings)
	}
	a, p := netip.MustParseAddr, netip.MustParsePrefix
	wantNodes := []Node{
		{0, a("198.18.0.1"), false}, {1, a("198.18.0.2"), false}, {2, a("198.18.0.3"), false},
		{3, netip.Addr{}, true}, {4, a("198.18.0.5"), false},
	}
	if diff := cmp.Diff(wantNodes, c.Nodes, addrComparer); diff != "" {
		t.Errorf("Nodes (-want +got):\n%s", diff)
	}
	wantPublic := []PublicAddress{
		{p("198.18.1.1/24"), []string{"eth1"}},
		{p("198.18.1.2/24"), []string{"eth1"}},
		{p("198.18.1.3/24"), []string{"eth1", "eth2"}},
		{p("2001:db8:1::10/64"), []string{"eth1"}},
	}
	if diff := cmp.Diff(wantPublic, c.PublicAddresses, cmp.Comparer(func(x, y netip.Prefix) bool { return x == y })); diff != "" {
		t.Errorf("PublicAddresses (-want +got):\n%s", diff)
	}
	wantConf := DefaultConf(dir)
	wantConf.Logging.MetricsAddress = "127.0.0.1:9779"
	wantConf.Cluster.Name = "pg-prod"
	wantConf.Cluster.ClusterLock = "/clusterfs/.ctdb/reclock"
	wantConf.Cluster.Quorum = QuorumMajority
	wantConf.Cluster.GossipKeyFile = filepath.Join(dir, GossipKeyFileName)
	wantConf.Cluster.GossipKeys = [][]byte{[]byte("0123456789abcdef0123456789abcdef")}
	wantConf.Cluster.GossipKey = wantConf.Cluster.GossipKeys[0]
	if diff := cmp.Diff(wantConf, c.Conf, addrComparer); diff != "" {
		t.Errorf("Conf (-want +got):\n%s", diff)
	}
	wantOpts := map[string]string{
		"CTDB_PARTIALLY_ONLINE_INTERFACES": "yes",
		"CTDB_POSTGRES_HOST":               "/run/postgresql",
		"CTDB_POSTGRES_PORT":               "5432",
	}
	if diff := cmp.Diff(wantOpts, c.ScriptOptions); diff != "" {
		t.Errorf("ScriptOptions (-want +got):\n%s", diff)
	}
	if c.Tunables.MonitorInterval() != 10*time.Second || c.Tunables.LeaseTime() != 3*time.Second || c.Tunables.LeaseRenewInterval() != 500*time.Millisecond {
		t.Errorf("tunables: MonitorInterval %v LeaseTime %v LeaseRenewInterval %v; want 10s 3s 500ms",
			c.Tunables.MonitorInterval(), c.Tunables.LeaseTime(), c.Tunables.LeaseRenewInterval())
	}
	if c.Dir != dir || c.ScriptOptionsFile != filepath.Join(dir, "script.options") || c.PublicAddressesFile != filepath.Join(dir, "public_addresses") {
		t.Errorf("paths: Dir %q ScriptOptionsFile %q PublicAddressesFile %q", c.Dir, c.ScriptOptionsFile, c.PublicAddressesFile)
	}
}

// TestLoadCollectsAll checks that one Load reports the problems of every
// file, in file order, not just the first.
func TestLoadCollectsAll(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"ctdb.conf":             "[logging]\nlog level = LOUD\n[bogus]\n",
		"nodes":                 "198.18.0.1\nnope\n198.18.0.1\n",
		"public_addresses":      "198.18.1.1 eth1\n198.18.1.2/24\n",
		"script.options":        "A=$(B)\n",
		"ctdb.tunables":         "Nope=1\n",
		"tunables.d/a.tunables": "MonitorInterval=x\n",
	})
	_, err := Load(dir)
	want := []string{
		`DIR/ctdb.conf:2: [logging] log level = "LOUD": want one of ERROR, WARNING, NOTICE, INFO, DEBUG`,
		"DIR/ctdb.conf:3: unknown section [bogus]",
		`DIR/nodes:2: invalid node address "nope"`,
		"DIR/nodes:3: duplicate node address 198.18.0.1 (also at line 1)",
		`DIR/public_addresses:1: public address "198.18.1.1" has no /BITS`,
		"DIR/public_addresses:2: no interface for public address 198.18.1.2/24",
		"DIR/script.options:1: A: command substitution, arithmetic and ${...} forms other than ${NAME} are not supported; write the value out, or use $NAME or ${NAME}",
		`DIR/ctdb.tunables:1: unknown tunable "Nope"`,
		`DIR/tunables.d/a.tunables:1: MonitorInterval = "x": want a whole number from 0 to 4294967295`,
	}
	if diff := cmp.Diff(want, errorLines(t, err, dir)); diff != "" {
		t.Errorf("Load errors (-want +got):\n%s", diff)
	}
}

// exampleDir copies testdata/example to a temporary dir and adds the
// gossip key the example's ctdb.conf tells the reader to make (git keeps
// no 0600 modes, and a key in the repository would be no secret).
func exampleDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "example")
	if err := os.CopyFS(dir, os.DirFS("testdata/example")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, GossipKeyFileName), []byte(testKey), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestExampleAsShipped loads testdata/example itself: its only problem is
// the gossip key it tells the reader to make.
func TestExampleAsShipped(t *testing.T) {
	dir, err := filepath.Abs("testdata/example")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Load(dir)
	want := []string{`DIR/ctdb.conf:56: 4 nodes would gossip without a key: make one with "ctdb keygen > DIR/gossip.key" and copy it to every node (mode 0600), or name a key file with [cluster] gossip key file; to run without one, set [cluster] insecure gossip = true`}
	if diff := cmp.Diff(want, errorLines(t, err, dir)); diff != "" {
		t.Errorf("Load errors (-want +got):\n%s", diff)
	}
}

func TestLoadRelativeDir(t *testing.T) {
	dir := exampleDir(t)
	t.Chdir(filepath.Dir(dir))
	c, err := Load("example")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !filepath.IsAbs(c.Dir) || !filepath.IsAbs(c.Conf.Cluster.NodesList) {
		t.Errorf("Dir %q, NodesList %q: want absolute paths (scripts get CTDB_BASE)", c.Dir, c.Conf.Cluster.NodesList)
	}
}

func TestFindPNN(t *testing.T) {
	a := netip.MustParseAddr
	const nodes = "198.18.0.1\n#198.18.0.2\n198.18.0.3\n198.18.0.4\n198.18.0.5\n"
	tests := []struct {
		name  string
		conf  string
		local []netip.Addr
		want  int
		err   string // FindPNN's error
		check string // CheckLocal's error
	}{
		{name: "first node", local: []netip.Addr{a("127.0.0.1"), a("198.18.0.1")}, want: 0},
		{name: "a later node", local: []netip.Addr{a("10.1.1.1"), a("198.18.0.3")}, want: 2},
		{name: "zone and other families ignored", local: []netip.Addr{a("fe80::1%eth0"), a("2001:db8::4"), a("198.18.0.4")}, want: 3},
		{name: "v4-mapped local address", local: []netip.Addr{a("::ffff:198.18.0.5")}, want: 4},
		{name: "first in file order wins", local: []netip.Addr{a("198.18.0.5"), a("198.18.0.3")}, want: 2},
		{
			name: "a deleted node never matches", local: []netip.Addr{a("198.18.0.2")}, want: -1,
			err: "no address from DIR/nodes is configured on this host", check: "DIR/nodes: none of these addresses is configured on this host",
		},
		{
			name: "no local address", local: nil, want: -1,
			err: "no address from DIR/nodes is configured on this host", check: "DIR/nodes: none of these addresses is configured on this host",
		},
		{
			name: "node address wins", conf: "[cluster]\nnode address = 198.18.0.5\n",
			local: []netip.Addr{a("198.18.0.1"), a("198.18.0.5")}, want: 4,
		},
		{
			name: "node address not on this host", conf: "[cluster]\nnode address = 198.18.0.5\n",
			local: []netip.Addr{a("198.18.0.1")}, want: -1,
			err: "[cluster] node address 198.18.0.5 is not configured on this host", check: "DIR/ctdb.conf: [cluster] node address 198.18.0.5 is not configured on this host",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeDir(t, map[string]string{"nodes": nodes, "ctdb.conf": tt.conf})
			c, err := Load(dir)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			pnn, err := c.FindPNN(tt.local)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if pnn != tt.want || gotErr != strings.ReplaceAll(tt.err, "DIR", dir) {
				t.Errorf("FindPNN(%v) = %d, %q; want %d, %q", tt.local, pnn, gotErr, tt.want, tt.err)
			}
			var want []string
			if tt.check != "" {
				want = []string{tt.check}
			}
			if diff := cmp.Diff(want, warningLines(c.CheckLocal(tt.local), dir)); diff != "" {
				t.Errorf("CheckLocal (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFindPNNNodeAddressNotANode covers a Config built by hand: Load
// itself rejects a node address that is not in the nodes file.
func TestFindPNNNodeAddressNotANode(t *testing.T) {
	dir := writeDir(t, map[string]string{})
	c, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	c.Conf.Cluster.NodeAddress = netip.MustParseAddr("198.18.0.9")
	_, err = c.FindPNN([]netip.Addr{netip.MustParseAddr("198.18.0.9")})
	want := "[cluster] node address 198.18.0.9 is not in " + filepath.Join(dir, "nodes")
	if err == nil || err.Error() != want {
		t.Errorf("FindPNN = %v, want %q", err, want)
	}
}
