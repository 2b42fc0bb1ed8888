package config

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Conf is ctdb.conf, parsed, with every default filled in. The sections
// and keys are CTDB's (ctdb.conf(5)) plus ctdb-go's own, marked below.
type Conf struct {
	Logging  Logging
	Cluster  Cluster
	Failover Failover
	Event    Event
	Legacy   Legacy
	Database Database
}

// Logging is [logging].
type Logging struct {
	// Location is where the log goes: "stderr" (ctdb-go's default, for
	// systemd's journal), "file:PATH" (PATH absolute) or
	// "syslog[:nonblocking|:udp|:udp-rfc5424]" as in CTDB.
	Location string
	// LogLevel is ERROR, WARNING, NOTICE (default), INFO or DEBUG; Level
	// maps it to slog.
	LogLevel string
	// MetricsAddress (ctdb-go, "metrics address") is the HOST:PORT the
	// Prometheus /metrics listener binds; "" (default) means no listener.
	MetricsAddress string
}

// Level maps CTDB's log level to slog's: NOTICE is slog's Info, and INFO
// sits between Info and Debug so that it shows more than NOTICE.
func (l Logging) Level() slog.Level {
	switch l.LogLevel {
	case "ERROR":
		return slog.LevelError
	case "WARNING":
		return slog.LevelWarn
	case "INFO":
		return slog.LevelInfo - 2
	case "DEBUG":
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// Quorum says when a leader may act: see [cluster] quorum.
type Quorum string

const (
	// QuorumMajority: a leader that sees fewer than a majority of the
	// non-deleted nodes gives up the lock and stops granting leases.
	QuorumMajority Quorum = "majority"
	// QuorumNone: a leader acts whatever it sees (CTDB's behaviour).
	QuorumNone Quorum = "none"
)

// Cluster is [cluster].
type Cluster struct {
	// ClusterLock is the lock the leader must hold: "/PATH" (fcntl lock
	// on a shared filesystem), "!COMMAND ARGS" (a CTDB mutex helper) or
	// "etcd://HOST:PORT/KEY"; "" (default) means no lock. The deprecated
	// key "recovery lock" sets it too.
	ClusterLock string
	// LeaderCapability: whether this node may become leader (true).
	LeaderCapability bool
	// LeaderTimeout: how long without a leader broadcast before an
	// election (5s).
	LeaderTimeout time.Duration
	// NodeAddress, if valid, is this node's address in the nodes file,
	// for hosts that carry more than one of them; zero means find it.
	NodeAddress netip.Addr
	// NodesList is the nodes file's path (default DIR/nodes; a relative
	// path is taken from DIR).
	NodesList string
	// Transport is always "tcp", CTDB's only working transport; ctdb-go
	// gossips with memberlist over UDP and TCP whatever it says.
	Transport string

	// Name (ctdb-go, "name") is the cluster's name, memberlist's label:
	// gossip from a cluster with another name is dropped ("ctdb").
	Name string
	// GossipPort (ctdb-go, "gossip port") is the UDP and TCP port of
	// memberlist on every node's private address (4379).
	GossipPort int
	// GossipKeyFile (ctdb-go, "gossip key file") is the path of the
	// gossip keys (see GossipKeys). Unset, it is DIR/gossip.key if that
	// file exists; after Load it is the file the keys came from, "" if
	// none (gossip is then neither encrypted nor authenticated).
	GossipKeyFile string
	// GossipKeys are the keys read from GossipKeyFile, one per line of
	// it, each 16, 24 or 32 bytes (AES-128, -192, -256). The first
	// encrypts; all decrypt, so a key can be rotated: add the new one
	// second on every node, then move it first, then drop the old one.
	// nil without a key file.
	GossipKeys [][]byte
	// GossipKey is GossipKeys[0], the primary key; nil without a key.
	GossipKey []byte
	// InsecureGossip (ctdb-go, "insecure gossip"): allow a cluster of
	// more than one node to gossip without a key (false). Without a key
	// any host that can reach the gossip port can join, forge node
	// state and move addresses; Load then warns.
	InsecureGossip bool
	// Quorum (ctdb-go, "quorum"): majority or none. The default is
	// majority for three or more non-deleted nodes, none for one or two.
	Quorum Quorum
}

// Failover is [failover].
type Failover struct {
	// Disabled: no public addresses are managed at all (false).
	Disabled bool
	// ShutdownFailoverTimeout: how long a stopping node waits for its
	// addresses to move elsewhere (10s).
	ShutdownFailoverTimeout time.Duration
	// ShutdownExtraTimeout: how long a stopping node waits after that,
	// with its addresses gone, before it leaves the cluster (0).
	ShutdownExtraTimeout time.Duration
	// Fence (ctdb-go, "fence"): run the fence event, and wait for it to
	// succeed, before moving the addresses of an unreachable node (false).
	Fence bool
}

// Event is [event].
type Event struct {
	// DebugScript is the full path of the script run on a hung event
	// script (given as a bare name in DIR); "" means none.
	DebugScript string
}

// Legacy is [legacy].
type Legacy struct {
	StartAsStopped  bool // "start as stopped": start with STOPPED set (false)
	StartAsDisabled bool // "start as disabled": start with DISABLED set (false)
	// ScriptLogLevel is the level event-script output is logged at
	// (ERROR); same names as [logging] log level.
	ScriptLogLevel string
	// RealtimeScheduling and LMasterCapability are accepted for CTDB
	// compatibility and ignored (with a warning): ctdb-go has no
	// databases and runs at normal priority.
	RealtimeScheduling bool
	LMasterCapability  bool
}

// Database is [database]: accepted so that a CTDB ctdb.conf loads, and
// ignored (with a warning), because ctdb-go keeps no TDB databases.
type Database struct {
	VolatileDatabaseDirectory   string
	PersistentDatabaseDirectory string
	StateDatabaseDirectory      string
	LockDebugScript             string
	TDBMutexes                  bool
}

// DefaultConf is ctdb.conf's defaults for config dir dir. Quorum is left
// empty: its default depends on the nodes file.
func DefaultConf(dir string) Conf {
	return Conf{
		Logging: Logging{Location: "stderr", LogLevel: "NOTICE"},
		Cluster: Cluster{
			LeaderCapability: true,
			LeaderTimeout:    5 * time.Second,
			NodesList:        filepath.Join(dir, "nodes"),
			Transport:        "tcp",
			Name:             "ctdb",
			GossipPort:       4379,
		},
		Failover: Failover{ShutdownFailoverTimeout: 10 * time.Second},
		Legacy: Legacy{
			ScriptLogLevel:     "ERROR",
			RealtimeScheduling: true,
			LMasterCapability:  true,
		},
		Database: Database{TDBMutexes: true},
	}
}

// confKey is one key of ctdb.conf: how to parse its value into Conf.
// set returns the problem with the value, "" if none.
type confKey struct {
	set func(c *Conf, dir, v string) string
	// emptyOK: an empty value is allowed (and means "none").
	emptyOK bool
	// ignored: accepted for CTDB compatibility; ctdb-go does not use it.
	ignored string
}

var logLevels = []string{"ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"}

// confKeys is every section and key ctdb.conf may hold, keyed by lower
// case section and key with single spaces.
var confKeys = map[string]map[string]confKey{
	"logging": {
		"location":        {set: func(c *Conf, _, v string) string { return setLocation(&c.Logging.Location, v) }},
		"log level":       {set: func(c *Conf, _, v string) string { return setLevel(&c.Logging.LogLevel, v) }},
		"metrics address": {set: func(c *Conf, _, v string) string { return setHostPort(&c.Logging.MetricsAddress, v) }, emptyOK: true},
	},
	"cluster": {
		"cluster lock":      {set: func(c *Conf, _, v string) string { return setLock(&c.Cluster.ClusterLock, v) }, emptyOK: true},
		"recovery lock":     {set: func(c *Conf, _, v string) string { return setLock(&c.Cluster.ClusterLock, v) }, emptyOK: true},
		"leader capability": {set: func(c *Conf, _, v string) string { return setBool(&c.Cluster.LeaderCapability, v) }},
		"leader timeout":    {set: func(c *Conf, _, v string) string { return setSeconds(&c.Cluster.LeaderTimeout, v, 1) }},
		"node address":      {set: func(c *Conf, _, v string) string { return setAddr(&c.Cluster.NodeAddress, v) }},
		"nodes list":        {set: func(c *Conf, dir, v string) string { return setNodesList(&c.Cluster.NodesList, dir, v) }},
		"transport":         {set: func(c *Conf, _, v string) string { return setTransport(&c.Cluster.Transport, v) }},
		"name":              {set: func(c *Conf, _, v string) string { return setName(&c.Cluster.Name, v) }},
		"gossip port":       {set: func(c *Conf, _, v string) string { return setPort(&c.Cluster.GossipPort, v) }},
		"gossip key file":   {set: func(c *Conf, dir, v string) string { c.Cluster.GossipKeyFile = inDir(dir, v); return "" }, emptyOK: true},
		"insecure gossip":   {set: func(c *Conf, _, v string) string { return setBool(&c.Cluster.InsecureGossip, v) }},
		"quorum":            {set: func(c *Conf, _, v string) string { return setQuorum(&c.Cluster.Quorum, v) }},
	},
	"failover": {
		"disabled":                  {set: func(c *Conf, _, v string) string { return setBool(&c.Failover.Disabled, v) }},
		"shutdown failover timeout": {set: func(c *Conf, _, v string) string { return setSeconds(&c.Failover.ShutdownFailoverTimeout, v, 0) }},
		"shutdown extra timeout":    {set: func(c *Conf, _, v string) string { return setSeconds(&c.Failover.ShutdownExtraTimeout, v, 0) }},
		"fence":                     {set: func(c *Conf, _, v string) string { return setBool(&c.Failover.Fence, v) }},
	},
	"event": {
		"debug script": {set: func(c *Conf, dir, v string) string { return setScript(&c.Event.DebugScript, dir, v) }, emptyOK: true},
	},
	"legacy": {
		"start as stopped":    {set: func(c *Conf, _, v string) string { return setBool(&c.Legacy.StartAsStopped, v) }},
		"start as disabled":   {set: func(c *Conf, _, v string) string { return setBool(&c.Legacy.StartAsDisabled, v) }},
		"script log level":    {set: func(c *Conf, _, v string) string { return setLevel(&c.Legacy.ScriptLogLevel, v) }},
		"realtime scheduling": {set: func(c *Conf, _, v string) string { return setBool(&c.Legacy.RealtimeScheduling, v) }, ignored: "ctdb-go runs at normal priority"},
		"lmaster capability":  {set: func(c *Conf, _, v string) string { return setBool(&c.Legacy.LMasterCapability, v) }, ignored: "ctdb-go has no databases"},
	},
	"database": {
		"volatile database directory":   {set: func(c *Conf, _, v string) string { c.Database.VolatileDatabaseDirectory = v; return "" }, ignored: "ctdb-go has no databases"},
		"persistent database directory": {set: func(c *Conf, _, v string) string { c.Database.PersistentDatabaseDirectory = v; return "" }, ignored: "ctdb-go has no databases"},
		"state database directory":      {set: func(c *Conf, _, v string) string { c.Database.StateDatabaseDirectory = v; return "" }, ignored: "ctdb-go has no databases"},
		"lock debug script":             {set: func(c *Conf, _, v string) string { c.Database.LockDebugScript = v; return "" }, ignored: "ctdb-go has no databases"},
		"tdb mutexes":                   {set: func(c *Conf, _, v string) string { return setBool(&c.Database.TDBMutexes, v) }, ignored: "ctdb-go has no databases"},
	},
}

// confLines remembers where some keys were set, for checks made after
// the whole configuration is read.
type confLines map[string]int // "section/key" (or "section", its first header) -> line

// parseConf reads ctdb.conf into c. A missing file leaves the defaults.
func parseConf(path, dir string, c *Conf, p *problems) confLines {
	where := confLines{}
	lines, err := readLines(path)
	if errors.Is(err, fs.ErrNotExist) {
		return where
	}
	if err != nil {
		p.errorf(path, 0, "%s", fileProblem(err))
		return where
	}
	section := ""        // current section, "" before the first
	knownSection := true // false inside an unknown section: its keys are not reported again
	for i, raw := range lines {
		n := i + 1
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			name, ok := strings.CutSuffix(line, "]")
			if !ok {
				p.errorf(path, n, "expected \"[section]\", got %q", line)
				section, knownSection = "", false
				continue
			}
			section = normKey(name[1:])
			if _, ok := confKeys[section]; !ok {
				p.errorf(path, n, "unknown section [%s]", section)
				knownSection = false
				continue
			}
			knownSection = true
			if _, seen := where[section]; !seen {
				where[section] = n
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			p.errorf(path, n, "expected \"key = value\", got %q", line)
			continue
		}
		key, value := normKey(k), strings.TrimSpace(v)
		if !knownSection {
			continue
		}
		if section == "" {
			p.errorf(path, n, "%q is outside any [section]", key)
			continue
		}
		ck, ok := confKeys[section][key]
		if !ok {
			p.errorf(path, n, "unknown key %q in [%s]", key, section)
			continue
		}
		id := section + "/" + key
		if first, dup := where[id]; dup {
			p.errorf(path, n, "[%s] %s set twice (first at line %d)", section, key, first)
			continue
		}
		where[id] = n
		if value == "" && !ck.emptyOK {
			p.errorf(path, n, "[%s] %s: empty value", section, key)
			continue
		}
		if problem := ck.set(c, dir, value); problem != "" {
			p.errorf(path, n, "[%s] %s = %q: %s", section, key, value, problem)
			continue
		}
		if ck.ignored != "" {
			p.warnf(path, n, "[%s] %s is ignored: %s", section, key, ck.ignored)
		}
	}
	if rl, ok := where["cluster/recovery lock"]; ok {
		if cl, both := where["cluster/cluster lock"]; both {
			p.errorf(path, rl, "[cluster] recovery lock and cluster lock (line %d) are both set; keep cluster lock", cl)
		} else {
			p.warnf(path, rl, "[cluster] recovery lock is deprecated: use cluster lock")
		}
	}
	return where
}

// normKey lower-cases a section or key name and folds runs of blanks to
// one space: "Log  Level" is "log level".
func normKey(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// inDir resolves a relative path against the config dir.
func inDir(dir, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

func setBool(dst *bool, v string) string {
	b, ok := parseBool(v)
	if !ok {
		return "want true or false (also yes/no, on/off, 1/0)"
	}
	*dst = b
	return ""
}

// parseBool takes true/false, yes/no, on/off and 1/0, in any case.
func parseBool(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "true", "yes", "on", "1":
		return true, true
	case "false", "no", "off", "0":
		return false, true
	}
	return false, false
}

// setSeconds parses a whole number of seconds, at least min.
func setSeconds(dst *time.Duration, v string, min int) string {
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > 1<<31-1 {
		if min == 0 {
			return "want a whole number of seconds, 0 or more"
		}
		return fmt.Sprintf("want a whole number of seconds, %d or more", min)
	}
	*dst = time.Duration(n) * time.Second
	return ""
}

func setLevel(dst *string, v string) string {
	up := strings.ToUpper(v)
	for _, l := range logLevels {
		if up == l {
			*dst = l
			return ""
		}
	}
	return "want one of " + strings.Join(logLevels, ", ")
}

func setLocation(dst *string, v string) string {
	kind, arg, hasArg := strings.Cut(v, ":")
	switch kind {
	case "stderr":
		if hasArg {
			return "stderr takes no argument"
		}
	case "file":
		if !filepath.IsAbs(arg) {
			return "want file:PATH with an absolute PATH"
		}
	case "syslog":
		switch {
		case !hasArg, arg == "nonblocking", arg == "udp", arg == "udp-rfc5424":
		default:
			return "want syslog, syslog:nonblocking, syslog:udp or syslog:udp-rfc5424"
		}
	default:
		return "want stderr, file:PATH or syslog[:METHOD]"
	}
	*dst = v
	return ""
}

// setHostPort checks a listen address: HOST:PORT with a numeric port; an
// empty HOST means every address.
func setHostPort(dst *string, v string) string {
	if v == "" {
		*dst = ""
		return ""
	}
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return "want HOST:PORT"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "want a port from 1 to 65535"
	}
	*dst = v
	return ""
}

func setPort(dst *int, v string) string {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return "want a port from 1 to 65535"
	}
	*dst = n
	return ""
}

// setLock checks a cluster lock. A helper ("!HELPER ARGS", split on
// blanks without quoting, as CTDB does) must be an executable file given
// by its absolute path, as clusterlock runs it. etcd is refused until
// clusterlock has it: a leader that cannot take its lock never leads.
func setLock(dst *string, v string) string {
	switch {
	case v == "", strings.HasPrefix(v, "/"):
	case strings.HasPrefix(v, "!"):
		argv := strings.FieldsFunc(v[1:], func(r rune) bool { return r == ' ' || r == '\t' })
		switch {
		case len(argv) == 0:
			return "want !COMMAND [ARGS]"
		case !filepath.IsAbs(argv[0]):
			return "helper " + argv[0] + " is not an absolute path"
		}
		if problem := checkExecutable(argv[0]); problem != "" {
			return "helper " + problem
		}
	case strings.HasPrefix(v, "etcd://"):
		return "etcd cluster locks are not supported by this build"
	default:
		return "want /PATH (a file on a shared filesystem), !COMMAND [ARGS] or etcd://HOST:PORT/KEY"
	}
	*dst = v
	return ""
}

func setAddr(dst *netip.Addr, v string) string {
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return "want an IPv4 or IPv6 address"
	}
	*dst = a.Unmap()
	return ""
}

func setNodesList(dst *string, dir, v string) string {
	if strings.HasPrefix(v, "!") {
		return "a command as nodes list is not supported; give a file"
	}
	*dst = inDir(dir, v)
	return ""
}

func setTransport(dst *string, v string) string {
	if v != "tcp" {
		return "only tcp is supported"
	}
	*dst = v
	return ""
}

// setName checks a cluster name: it goes into every gossip packet as
// memberlist's label, which is at most 255 bytes.
func setName(dst *string, v string) string {
	if len(v) > 255 {
		return "longer than 255 bytes"
	}
	for _, r := range v {
		if r <= ' ' || r == 0x7f {
			return "no blanks or control characters allowed"
		}
	}
	*dst = v
	return ""
}

func setQuorum(dst *Quorum, v string) string {
	switch q := Quorum(strings.ToLower(v)); q {
	case QuorumMajority, QuorumNone:
		*dst = q
		return ""
	}
	return "want majority or none"
}

// setScript resolves a debug script as CTDB does: its base name in the
// config dir, which must be an executable file.
func setScript(dst *string, dir, v string) string {
	if v == "" {
		*dst = ""
		return ""
	}
	path := filepath.Join(dir, filepath.Base(v))
	if problem := checkExecutable(path); problem != "" {
		return problem
	}
	*dst = path
	return ""
}
