package bed

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ctdb-go/ctdb-go/daemon/config"
)

func TestCtdbConf(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    confParams
		want string
	}{
		{"defaults", confParams{LogFile: "/r/n0/log.ctdbd", LogLevel: "INFO", ClusterLock: "/r/reclock", Name: "cg1-1"}, `# written by the ctdb-go test bed (tests/bed)
[logging]
	location = file:/r/n0/log.ctdbd
	log level = INFO
[cluster]
	cluster lock = /r/reclock
	name = cg1-1
`},
		{"everything", confParams{LogFile: "/l", LogLevel: "DEBUG", Name: "c", GossipPort: 4400, Fence: true, Extra: "[legacy]\n\tstart as disabled = true"}, `# written by the ctdb-go test bed (tests/bed)
[logging]
	location = file:/l
	log level = DEBUG
[cluster]
	name = c
	gossip port = 4400
[failover]
	fence = true
[legacy]
	start as disabled = true
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, ctdbConf(tc.p)); diff != "" {
				t.Errorf("ctdbConf (-want +got):\n%s", diff)
			}
		})
	}
}

// testBed is a Bed with files only: no namespaces, for the file writers.
func testBed(t *testing.T, cfg Config) *Bed {
	t.Helper()
	repo := t.TempDir()
	if err := os.MkdirAll(filepath.Join(repo, "events.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"functions": "# functions\n", "10.interface": "#!/bin/sh\nexit 0\n"} {
		if err := os.WriteFile(filepath.Join(repo, "events.d", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if cfg.RepoDir == "" {
		cfg.RepoDir = repo
	}
	if err := cfg.fill(); err != nil {
		t.Fatal(err)
	}
	return &Bed{cfg: cfg, id: "cg1-1", root: t.TempDir()}
}

func TestWriteNodeFiles(t *testing.T) {
	b := testBed(t, Config{
		Nodes:          2,
		PublicAddrs:    []netip.Prefix{netip.MustParsePrefix("198.18.1.1/24"), netip.MustParsePrefix("198.18.4.7/22")},
		Tunables:       map[string]uint32{"MonitorInterval": 5, "EventScriptTimeout": 10},
		ScriptOptions:  "CTDB_PARTIALLY_ONLINE_INTERFACES=yes\n",
		EventScripts:   map[string]string{"50.fail": "#!/bin/sh\nexit 1\n"},
		InstallShipped: []string{"10.interface"},
	})
	if err := b.writeNodeFiles(1); err != nil {
		t.Fatal(err)
	}
	np := b.Paths(1)
	for _, tc := range []struct {
		path string
		want string
		mode os.FileMode
	}{
		{"nodes", "198.18.0.1\n198.18.0.2\n", 0o644},
		{"public_addresses", "198.18.1.1/24 eth1\n198.18.4.7/22 eth1\n", 0o644},
		{"ctdb.tunables", "EventScriptTimeout=10\nMonitorInterval=5\n", 0o644},
		{"script.options", "CTDB_PARTIALLY_ONLINE_INTERFACES=yes\n", 0o644},
		{"functions", "# functions\n", 0o644},
		{"events.d/10.interface", "#!/bin/sh\nexit 0\n", 0o755},
		{"events.d/50.fail", "#!/bin/sh\nexit 1\n", 0o755},
	} {
		p := filepath.Join(np.Config, tc.path)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("%s: %v", tc.path, err)
			continue
		}
		if string(data) != tc.want {
			t.Errorf("%s = %q, want %q", tc.path, data, tc.want)
		}
		if st, _ := os.Stat(p); st.Mode().Perm() != tc.mode {
			t.Errorf("%s mode %v, want %v", tc.path, st.Mode().Perm(), tc.mode)
		}
	}
	conf, err := os.ReadFile(filepath.Join(np.Config, "ctdb.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"location = file:" + np.Log, "cluster lock = " + filepath.Join(b.root, "reclock"), "name = cg1-1"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("ctdb.conf lacks %q:\n%s", want, conf)
		}
	}
	for _, d := range []string{np.Run, np.State} {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			t.Errorf("%s: %v", d, err)
		}
	}
}

func TestClusterLockModes(t *testing.T) {
	for _, tc := range []struct{ lock, want string }{
		{"", "cluster lock = RUN/reclock"},
		{"file", "cluster lock = RUN/reclock"},
		{"none", ""},
		{"!/usr/bin/helper a b", "cluster lock = !/usr/bin/helper a b"},
	} {
		b := testBed(t, Config{Nodes: 1, ClusterLock: tc.lock})
		fs, err := b.nodeFiles(0)
		if err != nil {
			t.Fatal(err)
		}
		conf := fs[0].Data
		want := strings.ReplaceAll(tc.want, "RUN", b.root)
		if got := strings.Contains(conf, "cluster lock"); got != (want != "") || want != "" && !strings.Contains(conf, want) {
			t.Errorf("ClusterLock %q: ctdb.conf\n%s\nwant %q", tc.lock, conf, want)
		}
	}
}

func TestShippedScriptMissing(t *testing.T) {
	b := testBed(t, Config{Nodes: 1, InstallShipped: []string{"50.postgres"}})
	if _, err := b.nodeFiles(0); err == nil || !strings.Contains(err.Error(), "50.postgres") {
		t.Errorf("nodeFiles with a missing shipped script = %v, want an error naming it", err)
	}
}

func TestConfigFill(t *testing.T) {
	repo := t.TempDir()
	var def Config
	def.RepoDir = repo
	if err := def.fill(); err != nil {
		t.Fatal(err)
	}
	if def.Nodes != 3 || len(def.PublicAddrs) != 6 || def.PublicAddrs[5] != netip.MustParsePrefix("198.18.1.6/24") ||
		def.Bin != filepath.Join(repo, "bin") || def.LogLevel != "INFO" || def.Prefix != DefaultPrefix {
		t.Errorf("defaults: %+v", def)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"too many nodes", Config{Nodes: 65}},
		{"negative nodes", Config{Nodes: -1}},
		{"outside the test net", Config{PublicAddrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}},
		{"IPv6", Config{PublicAddrs: []netip.Prefix{netip.MustParsePrefix("2001:db8::1/64")}}},
		{"wider than the test net", Config{PublicAddrs: []netip.Prefix{netip.MustParsePrefix("198.18.1.1/8")}}},
		{"private network", Config{PublicAddrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.9/24")}}},
		{"client address", Config{PublicAddrs: []netip.Prefix{netip.MustParsePrefix("198.18.1.200/24")}}},
		{"twice", Config{PublicAddrs: []netip.Prefix{netip.MustParsePrefix("198.18.1.1/24"), netip.MustParsePrefix("198.18.1.1/24")}}},
		{"prefix with digits", Config{Prefix: "cg1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.RepoDir = repo
			if err := tc.cfg.fill(); err == nil {
				t.Errorf("fill(%+v): no error", tc.cfg)
			}
		})
	}
}

func TestCreatorPID(t *testing.T) {
	for _, tc := range []struct {
		name   string
		want   int
		wantOK bool
	}{
		{"cg4711-1-n0", 4711, true},
		{"cg4711-12-sw", 4711, true},
		{"cg4711-3-1234567890", 4711, true}, // a run directory's name
		{"cg4711", 0, false},
		{"cg4711-", 0, false},
		{"cg-1-n0", 0, false},
		{"cgx4711-1-n0", 0, false},
		{"xcg4711-1-n0", 0, false},
		{"cg0-1-n0", 0, false},
	} {
		pid, ok := creatorPID("cg", tc.name)
		if pid != tc.want || ok != tc.wantOK {
			t.Errorf("creatorPID(cg, %q) = %d, %v; want %d, %v", tc.name, pid, ok, tc.want, tc.wantOK)
		}
	}
}

// The files the bed writes are files ctdbd accepts: its own config loader
// reads them without a complaint, and reads back what the bed meant.
func TestDaemonConfigAcceptsBedFiles(t *testing.T) {
	b := testBed(t, Config{
		Nodes:          3,
		Tunables:       map[string]uint32{"MonitorInterval": 5},
		ScriptOptions:  "CTDB_PARTIALLY_ONLINE_INTERFACES=no\n",
		GossipPort:     4400,
		Fence:          true,
		InstallShipped: []string{"10.interface"},
		// fence = true needs an enabled script that handles fencing.
		EventScripts: map[string]string{"01.fence": "#!/bin/sh\n# ctdb-go: handles fence\nexit 0\n"},
	})
	if err := b.writeNodeFiles(1); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(b.Paths(1).Config)
	if err != nil {
		t.Fatalf("ctdbd's config.Load rejects the bed's files: %v", err)
	}
	got := fmt.Sprintf("name=%s port=%d fence=%v lock=%s log=%s nodes=%d public=%d monitor=%d",
		c.Conf.Cluster.Name, c.Conf.Cluster.GossipPort, c.Conf.Failover.Fence, c.Conf.Cluster.ClusterLock,
		c.Conf.Logging.Location, len(c.Nodes), len(c.PublicAddresses), must(c.Tunables.Get("MonitorInterval")))
	want := fmt.Sprintf("name=cg1-1 port=4400 fence=true lock=%s log=file:%s nodes=3 public=6 monitor=5",
		filepath.Join(b.root, "reclock"), b.Paths(1).Log)
	if got != want {
		t.Errorf("config.Load read\n%s\nwant\n%s", got, want)
	}
	if len(b.cfg.GossipKey) != 32 || string(c.Conf.Cluster.GossipKey) != string(b.cfg.GossipKey) {
		t.Errorf("config.Load read gossip key %x, the bed made %x (want 32 bytes)", c.Conf.Cluster.GossipKey, b.cfg.GossipKey)
	}
	if st, err := os.Stat(filepath.Join(b.Paths(1).Config, GossipKeyName)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, %v; want mode 0600", GossipKeyName, st, err)
	}
}

func TestInsecureGossipWritesNoKey(t *testing.T) {
	b := testBed(t, Config{Nodes: 2, InsecureGossip: true, GossipKey: []byte("0123456789abcdef")})
	fs, err := b.nodeFiles(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if f.Path == GossipKeyName {
			t.Errorf("InsecureGossip: %s written", GossipKeyName)
		}
	}
	if strings.Contains(fs[0].Data, "gossip key file") || strings.Contains(fs[0].Data, "insecure gossip") {
		t.Errorf("InsecureGossip with a daemon that does not know it: ctdb.conf\n%s", fs[0].Data)
	}
	b.insecureKnown = true
	if fs, _ = b.nodeFiles(0); !strings.Contains(fs[0].Data, "\tinsecure gossip = true\n") {
		t.Errorf("InsecureGossip with a daemon that knows it: ctdb.conf\n%s", fs[0].Data)
	}
}

func must(v uint32, ok bool) uint32 {
	if !ok {
		return 1<<32 - 1
	}
	return v
}
