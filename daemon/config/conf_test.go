package config

import (
	"encoding/base64"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var addrComparer = cmp.Comparer(func(x, y netip.Addr) bool { return x == y })

func TestConfDefaults(t *testing.T) {
	dir := writeDir(t, map[string]string{})
	c, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Conf{
		Logging: Logging{Location: "stderr", LogLevel: "NOTICE"},
		Cluster: Cluster{
			LeaderCapability: true,
			LeaderTimeout:    5 * time.Second,
			NodesList:        filepath.Join(dir, "nodes"),
			Transport:        "tcp",
			Name:             "ctdb",
			GossipPort:       4379,
			GossipKeyFile:    filepath.Join(dir, GossipKeyFileName), // found without being named
			GossipKeys:       [][]byte{[]byte("0123456789abcdef0123456789abcdef")},
			GossipKey:        []byte("0123456789abcdef0123456789abcdef"),
			Quorum:           QuorumMajority, // three nodes
		},
		Failover: Failover{ShutdownFailoverTimeout: 10 * time.Second},
		Legacy:   Legacy{ScriptLogLevel: "ERROR", RealtimeScheduling: true, LMasterCapability: true},
		Database: Database{TDBMutexes: true},
	}
	if diff := cmp.Diff(want, c.Conf, addrComparer); diff != "" {
		t.Errorf("Conf (-want +got):\n%s", diff)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("Warnings = %v, want none", c.Warnings)
	}
	if c.Conf.Logging.Level() != slog.LevelInfo {
		t.Errorf("Level() = %v, want %v", c.Conf.Logging.Level(), slog.LevelInfo)
	}
}

func TestQuorumDefault(t *testing.T) {
	tests := []struct {
		nodes string
		want  Quorum
	}{
		{"198.18.0.1\n", QuorumNone},
		{"198.18.0.1\n198.18.0.2\n", QuorumNone},
		{"198.18.0.1\n198.18.0.2\n#198.18.0.3\n", QuorumNone}, // deleted nodes do not count
		{"198.18.0.1\n198.18.0.2\n198.18.0.3\n", QuorumMajority},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.nodes, "\n", " "), func(t *testing.T) {
			c, err := Load(writeDir(t, map[string]string{"nodes": tt.nodes}))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.Conf.Cluster.Quorum != tt.want {
				t.Errorf("Quorum = %q, want %q", c.Conf.Cluster.Quorum, tt.want)
			}
		})
	}
}

func TestConfValues(t *testing.T) {
	tests := []struct {
		name string
		conf string
		get  func(c Conf) any
		want any
	}{
		{"key case and inner blanks", "[Logging]\n\tLog   LEVEL = debug\n", func(c Conf) any { return c.Logging.LogLevel }, "DEBUG"},
		{"tabs and no blanks around =", "[logging]\n\tlog level=WARNING\n", func(c Conf) any { return c.Logging.LogLevel }, "WARNING"},
		{"semicolon comment", "; comment\n[logging]\n; log level = DEBUG\n", func(c Conf) any { return c.Logging.LogLevel }, "NOTICE"},
		{"section repeated", "[cluster]\nname = a\n[logging]\n[cluster]\nleader timeout = 7\n", func(c Conf) any { return [2]any{c.Cluster.Name, c.Cluster.LeaderTimeout} }, [2]any{"a", 7 * time.Second}},
		{"location file", "[logging]\nlocation = file:/var/log/ctdb.log\n", func(c Conf) any { return c.Logging.Location }, "file:/var/log/ctdb.log"},
		{"location syslog", "[logging]\nlocation = syslog:udp-rfc5424\n", func(c Conf) any { return c.Logging.Location }, "syslog:udp-rfc5424"},
		{"metrics address", "[logging]\nmetrics address = :9779\n", func(c Conf) any { return c.Logging.MetricsAddress }, ":9779"},
		{"metrics address ipv6", "[logging]\nmetrics address = [::1]:9779\n", func(c Conf) any { return c.Logging.MetricsAddress }, "[::1]:9779"},
		{"metrics address empty", "[logging]\nmetrics address =\n", func(c Conf) any { return c.Logging.MetricsAddress }, ""},
		{"bool yes", "[legacy]\nstart as stopped = YES\n", func(c Conf) any { return c.Legacy.StartAsStopped }, true},
		{"bool on", "[legacy]\nstart as stopped = on\n", func(c Conf) any { return c.Legacy.StartAsStopped }, true},
		{"bool 1", "[legacy]\nstart as stopped = 1\n", func(c Conf) any { return c.Legacy.StartAsStopped }, true},
		{"bool off", "[cluster]\nleader capability = Off\n", func(c Conf) any { return c.Cluster.LeaderCapability }, false},
		{"bool 0", "[cluster]\nleader capability = 0\n", func(c Conf) any { return c.Cluster.LeaderCapability }, false},
		{"bool False", "[failover]\ndisabled = False\n", func(c Conf) any { return c.Failover.Disabled }, false},
		{"cluster lock path", "[cluster]\ncluster lock = /clusterfs/.reclock\n", func(c Conf) any { return c.Cluster.ClusterLock }, "/clusterfs/.reclock"},
		{"cluster lock helper", "[cluster]\ncluster lock = !/bin/true /x/lock 5\n", func(c Conf) any { return c.Cluster.ClusterLock }, "!/bin/true /x/lock 5"},
		{"node address ipv6", "[cluster]\nnode address = 2001:db8::2\n", func(c Conf) any { return c.Cluster.NodeAddress }, netip.MustParseAddr("2001:db8::2")},
		{"quorum none", "[cluster]\nquorum = None\n", func(c Conf) any { return c.Cluster.Quorum }, QuorumNone},
		{"gossip port", "[cluster]\ngossip port = 7946\n", func(c Conf) any { return c.Cluster.GossipPort }, 7946},
		{"shutdown timeouts", "[failover]\nshutdown failover timeout = 0\nshutdown extra timeout = 30\n", func(c Conf) any {
			return [2]time.Duration{c.Failover.ShutdownFailoverTimeout, c.Failover.ShutdownExtraTimeout}
		}, [2]time.Duration{0, 30 * time.Second}},
		{"legacy", "[legacy]\nstart as stopped = true\nstart as disabled = yes\nscript log level = notice\n", func(c Conf) any {
			return [3]any{c.Legacy.StartAsStopped, c.Legacy.StartAsDisabled, c.Legacy.ScriptLogLevel}
		}, [3]any{true, true, "NOTICE"}},
		{"transport", "[cluster]\ntransport = tcp\n", func(c Conf) any { return c.Cluster.Transport }, "tcp"},
		{"nodes list absolute", "[cluster]\nnodes list = /NODES\n", func(c Conf) any { return c.Cluster.NodesList }, "/NODES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nodes := "198.18.0.1\n198.18.0.2\n198.18.0.3\n"
			if strings.Contains(tt.conf, "2001:db8::2") {
				nodes = "2001:db8::1\n2001:db8::2\n"
			}
			files := map[string]string{"ctdb.conf": tt.conf, "nodes": nodes}
			dir := writeDir(t, files)
			conf := strings.ReplaceAll(tt.conf, "/NODES", filepath.Join(dir, "nodes"))
			writeFile(t, filepath.Join(dir, "ctdb.conf"), conf)
			c, err := Load(dir)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := tt.want
			if s, ok := want.(string); ok && s == "/NODES" {
				want = filepath.Join(dir, "nodes")
			}
			if diff := cmp.Diff(want, tt.get(c.Conf), addrComparer); diff != "" {
				t.Errorf("value (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLogLevel(t *testing.T) {
	tests := []struct {
		level string
		want  slog.Level
	}{
		{"ERROR", slog.LevelError},
		{"WARNING", slog.LevelWarn},
		{"NOTICE", slog.LevelInfo},
		{"INFO", slog.LevelInfo - 2},
		{"DEBUG", slog.LevelDebug},
	}
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			if got := (Logging{LogLevel: tt.level}).Level(); got != tt.want {
				t.Errorf("Level(%s) = %v, want %v", tt.level, got, tt.want)
			}
		})
	}
}

func TestConfErrors(t *testing.T) {
	tests := []struct {
		name string
		conf string
		errs []string
	}{
		{"unknown section, its keys not reported", "[foo]\nx = 1\n[logging]\nlog level = INFO\n", []string{
			"DIR/ctdb.conf:1: unknown section [foo]",
		}},
		{"unknown key", "[cluster]\nfoo = 1\n", []string{
			`DIR/ctdb.conf:2: unknown key "foo" in [cluster]`,
		}},
		{"ctdb-go key in the wrong section", "[logging]\nfence = true\n", []string{
			`DIR/ctdb.conf:2: unknown key "fence" in [logging]`,
		}},
		{"key outside a section", "log level = NOTICE\n", []string{
			`DIR/ctdb.conf:1: "log level" is outside any [section]`,
		}},
		{"not key = value", "[logging]\njunk\n", []string{
			`DIR/ctdb.conf:2: expected "key = value", got "junk"`,
		}},
		{"bad section line", "[logging\nlog level = INFO\n", []string{
			`DIR/ctdb.conf:1: expected "[section]", got "[logging"`,
		}},
		{"trailing comment is part of the value", "[logging]\nlog level = NOTICE # default\n", []string{
			`DIR/ctdb.conf:2: [logging] log level = "NOTICE # default": want one of ERROR, WARNING, NOTICE, INFO, DEBUG`,
		}},
		{"key set twice", "[logging]\nlog level = INFO\n[logging]\nLog Level = DEBUG\n", []string{
			"DIR/ctdb.conf:4: [logging] log level set twice (first at line 2)",
		}},
		{"empty value", "[cluster]\nleader timeout =\n", []string{
			"DIR/ctdb.conf:2: [cluster] leader timeout: empty value",
		}},
		{"bad values", "[logging]\n" +
			"location = file:relative/log\n" +
			"[cluster]\n" +
			"leader capability = maybe\n" +
			"leader timeout = 0\n" +
			"node address = 198.18.0.300\n" +
			"transport = ib\n" +
			"name = two words\n" +
			"gossip port = 65536\n" +
			"quorum = most\n" +
			"cluster lock = reclock\n" +
			"nodes list = !/bin/cat /x\n" +
			"[failover]\n" +
			"shutdown failover timeout = -1\n" +
			"shutdown extra timeout = 1.5\n" +
			"[legacy]\n" +
			"script log level = LOUD\n", []string{
			`DIR/ctdb.conf:2: [logging] location = "file:relative/log": want file:PATH with an absolute PATH`,
			`DIR/ctdb.conf:4: [cluster] leader capability = "maybe": want true or false (also yes/no, on/off, 1/0)`,
			`DIR/ctdb.conf:5: [cluster] leader timeout = "0": want a whole number of seconds, 1 or more`,
			`DIR/ctdb.conf:6: [cluster] node address = "198.18.0.300": want an IPv4 or IPv6 address`,
			`DIR/ctdb.conf:7: [cluster] transport = "ib": only tcp is supported`,
			`DIR/ctdb.conf:8: [cluster] name = "two words": no blanks or control characters allowed`,
			`DIR/ctdb.conf:9: [cluster] gossip port = "65536": want a port from 1 to 65535`,
			`DIR/ctdb.conf:10: [cluster] quorum = "most": want majority or none`,
			`DIR/ctdb.conf:11: [cluster] cluster lock = "reclock": want /PATH (a file on a shared filesystem), !COMMAND [ARGS] or etcd://HOST:PORT/KEY`,
			`DIR/ctdb.conf:12: [cluster] nodes list = "!/bin/cat /x": a command as nodes list is not supported; give a file`,
			`DIR/ctdb.conf:14: [failover] shutdown failover timeout = "-1": want a whole number of seconds, 0 or more`,
			`DIR/ctdb.conf:15: [failover] shutdown extra timeout = "1.5": want a whole number of seconds, 0 or more`,
			`DIR/ctdb.conf:17: [legacy] script log level = "LOUD": want one of ERROR, WARNING, NOTICE, INFO, DEBUG`,
		}},
		{"location stderr:x", "[logging]\nlocation = stderr:x\n", []string{
			`DIR/ctdb.conf:2: [logging] location = "stderr:x": stderr takes no argument`,
		}},
		{"location syslog:tcp", "[logging]\nlocation = syslog:tcp\n", []string{
			`DIR/ctdb.conf:2: [logging] location = "syslog:tcp": want syslog, syslog:nonblocking, syslog:udp or syslog:udp-rfc5424`,
		}},
		{"location journald", "[logging]\nlocation = journald\n", []string{
			`DIR/ctdb.conf:2: [logging] location = "journald": want stderr, file:PATH or syslog[:METHOD]`,
		}},
		{"bad metrics addresses", "[logging]\nmetrics address = 9779\n", []string{
			`DIR/ctdb.conf:2: [logging] metrics address = "9779": want HOST:PORT`,
		}},
		{"bad metrics port", "[logging]\nmetrics address = localhost:http\n", []string{
			`DIR/ctdb.conf:2: [logging] metrics address = "localhost:http": want a port from 1 to 65535`,
		}},
		{"bad lock forms", "[cluster]\ncluster lock = !\n", []string{
			`DIR/ctdb.conf:2: [cluster] cluster lock = "!": want !COMMAND [ARGS]`,
		}},
		{"node address not a node", "[cluster]\nnode address = 198.18.0.9\n", []string{
			`DIR/ctdb.conf:2: [cluster] node address = "198.18.0.9": not an address in DIR/nodes`,
		}},
		{"recovery lock and cluster lock", "[cluster]\ncluster lock = /a\nrecovery lock = /b\n", []string{
			"DIR/ctdb.conf:3: [cluster] recovery lock and cluster lock (line 2) are both set; keep cluster lock",
		}},
		{"debug script missing", "[event]\ndebug script = debug-hung-script.sh\n", []string{
			`DIR/ctdb.conf:2: [event] debug script = "debug-hung-script.sh": DIR/debug-hung-script.sh does not exist`,
		}},
		{"gossip key file missing", "[cluster]\ngossip key file = other.key\n", []string{
			`DIR/ctdb.conf:2: [cluster] gossip key file = "DIR/other.key": cannot stat: no such file or directory`,
		}},
		{"helper not absolute", "[cluster]\ncluster lock = !ctdb_mutex_fcntl_helper /x/lock\n", []string{
			`DIR/ctdb.conf:2: [cluster] cluster lock = "!ctdb_mutex_fcntl_helper /x/lock": helper ctdb_mutex_fcntl_helper is not an absolute path`,
		}},
		{"helper missing", "[cluster]\ncluster lock = !/nonexistent/helper /x/lock\n", []string{
			`DIR/ctdb.conf:2: [cluster] cluster lock = "!/nonexistent/helper /x/lock": helper /nonexistent/helper does not exist`,
		}},
		{"helper not executable", "[cluster]\ncluster lock = !/etc/passwd\n", []string{
			`DIR/ctdb.conf:2: [cluster] cluster lock = "!/etc/passwd": helper /etc/passwd is not executable`,
		}},
		{"helper is a directory", "[cluster]\ncluster lock = !/tmp\n", []string{
			`DIR/ctdb.conf:2: [cluster] cluster lock = "!/tmp": helper /tmp is not a file`,
		}},
		{"helper without a command", "[cluster]\ncluster lock = ! \t\n", []string{
			`DIR/ctdb.conf:2: [cluster] cluster lock = "!": want !COMMAND [ARGS]`,
		}},
		{"etcd", "[cluster]\ncluster lock = etcd://10.0.0.1:2379/ctdb/lock\n", []string{
			`DIR/ctdb.conf:2: [cluster] cluster lock = "etcd://10.0.0.1:2379/ctdb/lock": etcd cluster locks are not supported by this build`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeDir(t, map[string]string{"ctdb.conf": tt.conf})
			_, err := Load(dir)
			if diff := cmp.Diff(tt.errs, errorLines(t, err, dir)); diff != "" {
				t.Errorf("Load errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfWarnings(t *testing.T) {
	tests := []struct {
		name     string
		conf     string
		check    func(c Conf) string // "" if the value is right
		warnings []string
	}{
		{
			name: "recovery lock is deprecated but works",
			conf: "[cluster]\nrecovery lock = /clusterfs/reclock\n",
			check: func(c Conf) string {
				if c.Cluster.ClusterLock != "/clusterfs/reclock" {
					return "ClusterLock = " + c.Cluster.ClusterLock
				}
				return ""
			},
			warnings: []string{"DIR/ctdb.conf:2: [cluster] recovery lock is deprecated: use cluster lock"},
		},
		{
			name: "database keys are accepted and ignored",
			conf: "[database]\nvolatile database directory = /var/lib/ctdb/volatile\npersistent database directory = /p\n" +
				"state database directory = /s\nlock debug script = x.sh\ntdb mutexes = false\n",
			check: func(c Conf) string {
				if c.Database.TDBMutexes || c.Database.PersistentDatabaseDirectory != "/p" {
					return "database values not kept"
				}
				return ""
			},
			warnings: []string{
				"DIR/ctdb.conf:2: [database] volatile database directory is ignored: ctdb-go has no databases",
				"DIR/ctdb.conf:3: [database] persistent database directory is ignored: ctdb-go has no databases",
				"DIR/ctdb.conf:4: [database] state database directory is ignored: ctdb-go has no databases",
				"DIR/ctdb.conf:5: [database] lock debug script is ignored: ctdb-go has no databases",
				"DIR/ctdb.conf:6: [database] tdb mutexes is ignored: ctdb-go has no databases",
			},
		},
		{
			name:  "legacy keys ctdb-go does not use",
			conf:  "[legacy]\nrealtime scheduling = false\nlmaster capability = false\n",
			check: func(c Conf) string { return "" },
			warnings: []string{
				"DIR/ctdb.conf:2: [legacy] realtime scheduling is ignored: ctdb-go runs at normal priority",
				"DIR/ctdb.conf:3: [legacy] lmaster capability is ignored: ctdb-go has no databases",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeDir(t, map[string]string{"ctdb.conf": tt.conf})
			c, err := Load(dir)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if problem := tt.check(c.Conf); problem != "" {
				t.Error(problem)
			}
			if diff := cmp.Diff(tt.warnings, warningLines(c.Warnings, dir)); diff != "" {
				t.Errorf("Warnings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDebugScript(t *testing.T) {
	dir := writeDir(t, map[string]string{"ctdb.conf": "[event]\ndebug script = /somewhere/else/debug.sh\n"})
	script := filepath.Join(dir, "debug.sh")
	writeFile(t, script, "#!/bin/sh\n")

	// CTDB takes the script's base name in the config dir.
	_, err := Load(dir)
	want := []string{`DIR/ctdb.conf:2: [event] debug script = "/somewhere/else/debug.sh": DIR/debug.sh is not executable`}
	if diff := cmp.Diff(want, errorLines(t, err, dir)); diff != "" {
		t.Errorf("Load errors (-want +got):\n%s", diff)
	}

	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Conf.Event.DebugScript != script {
		t.Errorf("DebugScript = %q, want %q", c.Conf.Event.DebugScript, script)
	}
}

func TestGossipKey(t *testing.T) {
	key32 := []byte("0123456789abcdef0123456789abcdef")
	b64 := base64.StdEncoding.EncodeToString
	tests := []struct {
		name     string
		content  string
		mode     os.FileMode
		want     [][]byte
		errs     []string
		warnings []string
	}{
		{name: "32 bytes", content: b64(key32) + "\n", mode: 0o600, want: [][]byte{key32}},
		{name: "16 bytes, blanks around", content: "  " + b64(key32[:16]) + "\n\n", mode: 0o400, want: [][]byte{key32[:16]}},
		{name: "24 bytes, no newline", content: b64(key32[:24]), mode: 0o600, want: [][]byte{key32[:24]}},
		{
			name: "several keys: the first is primary", content: "# rotation: new key second\n" + b64(key32) + "\n\n" + b64(key32[:16]) + "\n", mode: 0o600,
			want: [][]byte{key32, key32[:16]},
		},
		{
			name: "readable by the group: a warning", content: b64(key32), mode: 0o640, want: [][]byte{key32},
			warnings: []string{"DIR/keys/gossip.key: gossip key file mode is 0640: its group may read or change the cluster's key (chmod 600 DIR/keys/gossip.key)"},
		},
		{
			name: "readable by everyone: an error", content: b64(key32), mode: 0o644,
			errs: []string{"DIR/keys/gossip.key: gossip key file mode is 0644: every user of this host may read or change the cluster's key (chmod 600 DIR/keys/gossip.key)"},
		},
		{
			name: "wrong length", content: b64(key32) + "\n" + b64(key32[:10]), mode: 0o600,
			errs: []string{"DIR/keys/gossip.key:2: gossip key is 10 bytes; want 16, 24 or 32"},
		},
		{
			name: "raw bytes are not base64", content: string(key32[:31]) + "!", mode: 0o600,
			errs: []string{"DIR/keys/gossip.key:1: gossip key is not base64 text (make one with: ctdb keygen)"},
		},
		{
			name: "empty", content: "\n# nothing\n", mode: 0o600,
			errs: []string{"DIR/keys/gossip.key: no gossip key in the file (make one with: ctdb keygen > DIR/keys/gossip.key)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeDir(t, map[string]string{
				"ctdb.conf":       "[cluster]\ngossip key file = keys/gossip.key\n",
				"keys/gossip.key": tt.content,
				GossipKeyFileName: "-",
			})
			if err := os.Chmod(filepath.Join(dir, "keys/gossip.key"), tt.mode); err != nil {
				t.Fatal(err)
			}
			c, err := Load(dir)
			if diff := cmp.Diff(tt.errs, errorLines(t, err, dir)); diff != "" {
				t.Fatalf("Load errors (-want +got):\n%s", diff)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, c.Conf.Cluster.GossipKeys); diff != "" {
				t.Errorf("GossipKeys (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want[0], c.Conf.Cluster.GossipKey); diff != "" {
				t.Errorf("GossipKey (-want +got):\n%s", diff)
			}
			if got, want := c.Conf.Cluster.GossipKeyFile, filepath.Join(dir, "keys/gossip.key"); got != want {
				t.Errorf("GossipKeyFile = %q, want %q", got, want)
			}
			if diff := cmp.Diff(tt.warnings, warningLines(c.Warnings, dir)); diff != "" {
				t.Errorf("Warnings (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGossipKeyRequired: more than one node needs a key, found in
// DIR/gossip.key or named in ctdb.conf, or the explicit opt-out.
func TestGossipKeyRequired(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		insecure bool
		key      bool
		errs     []string
		warnings []string
	}{
		{
			name:  "no key: error at [cluster]",
			files: map[string]string{"ctdb.conf": "[logging]\nlog level = INFO\n[cluster]\nname = c1\n", GossipKeyFileName: "-"},
			errs:  []string{`DIR/ctdb.conf:3: 3 nodes would gossip without a key: make one with "ctdb keygen > DIR/gossip.key" and copy it to every node (mode 0600), or name a key file with [cluster] gossip key file; to run without one, set [cluster] insecure gossip = true`},
		},
		{
			name:  "no key, no ctdb.conf: error for the file",
			files: map[string]string{GossipKeyFileName: "-"},
			errs:  []string{`DIR/ctdb.conf: 3 nodes would gossip without a key: make one with "ctdb keygen > DIR/gossip.key" and copy it to every node (mode 0600), or name a key file with [cluster] gossip key file; to run without one, set [cluster] insecure gossip = true`},
		},
		{
			name:  "an empty key file name is no key",
			files: map[string]string{"ctdb.conf": "[cluster]\ngossip key file =\n"},
			errs:  []string{`DIR/ctdb.conf:1: 3 nodes would gossip without a key: make one with "ctdb keygen > DIR/gossip.key" and copy it to every node (mode 0600), or name a key file with [cluster] gossip key file; to run without one, set [cluster] insecure gossip = true`},
		},
		{
			name:     "opted out",
			files:    map[string]string{"ctdb.conf": "[cluster]\ninsecure gossip = true\n", GossipKeyFileName: "-"},
			insecure: true,
			warnings: []string{"DIR/ctdb.conf:2: INSECURE: gossip between the 3 nodes is neither encrypted nor authenticated ([cluster] insecure gossip = true): any host that can reach port 4379 can join the cluster and move its addresses"},
		},
		{
			name:     "opted out, but a key is there",
			files:    map[string]string{"ctdb.conf": "[cluster]\ninsecure gossip = yes\n"},
			insecure: true, key: true,
			warnings: []string{"DIR/ctdb.conf:2: [cluster] insecure gossip = true has no effect: gossip uses the key in DIR/gossip.key"},
		},
		{
			name:  "one node needs no key",
			files: map[string]string{"nodes": "198.18.0.1\n#198.18.0.2\n", GossipKeyFileName: "-"},
		},
		{
			name:  "default key file",
			files: map[string]string{},
			key:   true,
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
			if c.Conf.Cluster.InsecureGossip != tt.insecure || (c.Conf.Cluster.GossipKey != nil) != tt.key {
				t.Errorf("InsecureGossip = %v, GossipKey set = %v; want %v, %v", c.Conf.Cluster.InsecureGossip, c.Conf.Cluster.GossipKey != nil, tt.insecure, tt.key)
			}
			if diff := cmp.Diff(tt.warnings, warningLines(c.Warnings, dir)); diff != "" {
				t.Errorf("Warnings (-want +got):\n%s", diff)
			}
		})
	}
}
