package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

// ErrNoSuchTunable is returned (wrapped, with the name) by Tunables.Set
// for a name that is not a tunable. ctdb setvar prints "No such tunable".
var ErrNoSuchTunable = errors.New("config: no such tunable")

// tunable is one tunable's definition.
type tunable struct {
	name     string
	def      uint32
	obsolete bool // accepted by Set (with a warning), an error in files, not listed
	// min and max are the values files and Set accept: 0 where it would
	// stop a timer or the cluster is below min; max is what an operator
	// could mean (an hour for a timeout, a day for a ban, 1 for a switch).
	min, max uint32
	unit     string // "s", "ms" or "" (a count or a 0/1 switch), for messages
	hint     string // for an obsolete name: what to use instead
	// restart: read once when ctdbd starts (memberlist's timings, the
	// monitor's debounce), so ctdb setvar refuses it while ctdbd runs;
	// set it in ctdb.tunables and restart ctdbd.
	restart bool
}

// tunables is CTDB's tunable table (common/tunable.c), in its order, with
// its defaults and obsolete names, followed by ctdb-go's own. List walks
// it in this order, which is `ctdb listvars` order. Times are in seconds
// unless the name ends in Ms (and CTDB's SeqnumInterval and StickyPindown,
// milliseconds too); the rest are counts and switches (0 off). Each
// tunable's range (min..max, in unit) is what ctdb.tunables, tunables.d and
// ctdb setvar accept; testdata/example/ctdb.tunables lists the ranges of
// the tunables ctdb-go uses.
var tunables = []tunable{
	{name: "MaxRedirectCount", def: 3, obsolete: true},
	{name: "SeqnumInterval", def: 1000, min: 0, max: 3600000, unit: "ms"},
	{name: "ControlTimeout", def: 60, min: 1, max: 3600, unit: "s"},
	{name: "TraverseTimeout", def: 20, min: 1, max: 3600, unit: "s"},
	{name: "KeepaliveInterval", def: 5, min: 1, max: 300, unit: "s"},
	{name: "KeepaliveLimit", def: 5, min: 1, max: 100},
	{name: "RecoverTimeout", def: 30, min: 1, max: 3600, unit: "s"},
	{name: "RecoverInterval", def: 1, min: 1, max: 60, unit: "s"},
	{name: "ElectionTimeout", def: 3, min: 1, max: 60, unit: "s"},
	{name: "TakeoverTimeout", def: 9, min: 1, max: 600, unit: "s"},
	{name: "MonitorInterval", def: 15, min: 1, max: 3600, unit: "s"},
	{name: "TickleUpdateInterval", def: 20, min: 1, max: 3600, unit: "s"},
	{name: "EventScriptTimeout", def: 30, min: 1, max: 3600, unit: "s"},
	{name: "MonitorTimeoutCount", def: 20, min: 1, max: 1000},
	{name: "EventScriptUnhealthyOnTimeout", def: 0, obsolete: true},
	{name: "RecoveryGracePeriod", def: 120, min: 0, max: 86400, unit: "s"},
	{name: "RecoveryBanPeriod", def: 300, min: 1, max: 86400, unit: "s"},
	{name: "DatabaseHashSize", def: 100001, min: 1, max: 100000000},
	{name: "DatabaseMaxDead", def: 5, min: 0, max: 100000},
	{name: "RerecoveryTimeout", def: 10, min: 0, max: 3600, unit: "s"},
	{name: "EnableBans", def: 1, min: 0, max: 1},
	{name: "DeterministicIPs", def: 0, obsolete: true, hint: "IPAllocAlgorithm"},
	{name: "LCP2PublicIPs", def: 1, obsolete: true, hint: "IPAllocAlgorithm"},
	{name: "ReclockPingPeriod", def: 60, obsolete: true},
	{name: "NoIPFailback", def: 0, min: 0, max: 1},
	{name: "DisableIPFailover", def: 0, obsolete: true, hint: "[failover] disabled in ctdb.conf"},
	{name: "VerboseMemoryNames", def: 0, min: 0, max: 1},
	{name: "RecdPingTimeout", def: 60, min: 1, max: 3600, unit: "s"},
	{name: "RecdFailCount", def: 10, min: 1, max: 1000},
	{name: "LogLatencyMs", def: 0, min: 0, max: 3600000, unit: "ms"},
	{name: "RecLockLatencyMs", def: 1000, min: 0, max: 3600000, unit: "ms"},
	{name: "RecoveryDropAllIPs", def: 120, min: 0, max: 86400, unit: "s"},
	{name: "VerifyRecoveryLock", def: 1, obsolete: true},
	{name: "VacuumInterval", def: 10, min: 0, max: 86400, unit: "s"},
	{name: "VacuumMaxRunTime", def: 120, min: 0, max: 86400, unit: "s"},
	{name: "RepackLimit", def: 10000, min: 0, max: 100000000},
	{name: "VacuumLimit", def: 5000, obsolete: true},
	{name: "VacuumFastPathCount", def: 60, min: 0, max: 1000000},
	{name: "MaxQueueDropMsg", def: 1000000, min: 0, max: 1000000000},
	{name: "AllowUnhealthyDBRead", def: 0, min: 0, max: 1},
	{name: "StatHistoryInterval", def: 1, min: 1, max: 3600, unit: "s"},
	{name: "DeferredAttachTO", def: 120, min: 1, max: 3600, unit: "s"},
	{name: "AllowClientDBAttach", def: 1, min: 0, max: 1},
	{name: "RecoverPDBBySeqNum", def: 1, obsolete: true},
	{name: "DeferredRebalanceOnNodeAdd", def: 300, obsolete: true},
	{name: "FetchCollapse", def: 1, min: 0, max: 1},
	{name: "HopcountMakeSticky", def: 50, min: 0, max: 1000000},
	{name: "StickyDuration", def: 600, min: 0, max: 86400, unit: "s"},
	{name: "StickyPindown", def: 200, min: 0, max: 3600000, unit: "ms"},
	{name: "NoIPTakeover", def: 0, min: 0, max: 1},
	{name: "DBRecordCountWarn", def: 100000, min: 0, max: 4294967295},
	{name: "DBRecordSizeWarn", def: 10000000, min: 0, max: 4294967295},
	{name: "DBSizeWarn", def: 100000000, min: 0, max: 4294967295},
	{name: "PullDBPreallocation", def: 10485760, min: 0, max: 1073741824},
	{name: "NoIPHostOnAllDisabled", def: 1, obsolete: true},
	{name: "Samba3AvoidDeadlocks", def: 0, obsolete: true},
	{name: "TDBMutexEnabled", def: 1, obsolete: true, hint: "[database] tdb mutexes in ctdb.conf"},
	{name: "LockProcessesPerDB", def: 200, min: 1, max: 10000},
	{name: "RecBufferSizeLimit", def: 1000000, min: 0, max: 1073741824},
	{name: "QueueBufferSize", def: 1024, min: 1, max: 1048576},
	{name: "IPAllocAlgorithm", def: 2, min: 0, max: 2},
	{name: "AllowMixedVersions", def: 0, min: 0, max: 1},

	// ctdb-go's own, after CTDB's so listvars starts as CTDB's does.

	// LeaseTime: s a node may keep its addresses without a renewal from
	// the leader; whole seconds because kernel address lifetimes are.
	{name: "LeaseTime", def: 2, min: 1, max: 60, unit: "s"},
	// LeaseRenewIntervalMs: ms between a node's lease renewals; less
	// than half of LeaseTime, so that one lost renewal does not expire it.
	{name: "LeaseRenewIntervalMs", def: 250, min: 10, max: 30000, unit: "ms"},
	// ProbeIntervalMs: ms between memberlist failure-detection probes.
	{name: "ProbeIntervalMs", def: 200, min: 10, max: 60000, unit: "ms", restart: true},
	// ProbeTimeoutMs: ms to wait for a probe's ack; less than ProbeIntervalMs.
	{name: "ProbeTimeoutMs", def: 100, min: 1, max: 60000, unit: "ms", restart: true},
	// SuspicionMult: memberlist's suspicion multiplier, how many probe
	// intervals (scaled by cluster size) a suspect node has to refute.
	{name: "SuspicionMult", def: 2, min: 1, max: 100, restart: true},
	// GossipIntervalMs: ms between memberlist gossip rounds.
	{name: "GossipIntervalMs", def: 50, min: 5, max: 60000, unit: "ms", restart: true},
	// FenceTimeout: s the fence event may run before it counts as failed.
	{name: "FenceTimeout", def: 60, min: 1, max: 3600, unit: "s"},
	// FenceDelayMs: ms × the leader's PNN to wait before fencing, so two
	// nodes that lose each other never fence each other at once.
	{name: "FenceDelayMs", def: 2000, min: 0, max: 600000, unit: "ms"},
	// FenceStartupGrace: s after a leader starts before it fences a node
	// it has never seen (that node may still be booting).
	{name: "FenceStartupGrace", def: 10, min: 0, max: 3600, unit: "s"},
	// TakeIPProbeTimeoutMs: ms a new holder keeps probing for an old one
	// still answering ARP/ND for an address before it gives up.
	{name: "TakeIPProbeTimeoutMs", def: 1000, min: 1, max: 60000, unit: "ms"},
	// ARPProbeWaitMs: ms to wait for an answer to each duplicate-address probe.
	{name: "ARPProbeWaitMs", def: 20, min: 1, max: 10000, unit: "ms"},
	// LinkDebounceMs: ms to gather link events before a monitor run (0: none).
	{name: "LinkDebounceMs", def: 5, min: 0, max: 10000, unit: "ms", restart: true},
	// TakeoverParallelism: addresses a node takes or releases at once.
	{name: "TakeoverParallelism", def: 8, min: 1, max: 1024},
}

// want says what values d takes, for messages: "want 1 to 3600 s".
func (d tunable) want() string {
	if d.min == 0 && d.max == 1 {
		return "want 0 (off) or 1 (on)"
	}
	r := fmt.Sprintf("want %d to %d", d.min, d.max)
	if d.unit != "" {
		r += " " + d.unit
	}
	return r
}

// TunableRange returns the values a tunable takes, by name in any case,
// with its unit ("s", "ms", or "" for counts and 0/1 switches), for
// ctdb setvar's and listvars' help; false for an unknown or obsolete name.
func TunableRange(name string) (min, max uint32, unit string, ok bool) {
	i, ok := lookup(name)
	if !ok || tunables[i].obsolete {
		return 0, 0, "", false
	}
	d := tunables[i]
	return d.min, d.max, d.unit, true
}

// TunableLive reports whether a tunable takes effect at once when it is
// changed while ctdbd runs (ctdb setvar). The others (memberlist's
// timings, LinkDebounceMs) are read when ctdbd starts: setvar refuses
// them. False for an unknown name.
func TunableLive(name string) bool {
	i, ok := lookup(name)
	return ok && !tunables[i].restart
}

// tunableIndex maps a lower-case name to its index in tunables.
var tunableIndex = func() map[string]int {
	m := make(map[string]int, len(tunables))
	for i, t := range tunables {
		m[strings.ToLower(t.name)] = i
	}
	return m
}()

// Tunables holds the tunables' current values. ctdb setvar changes them
// while the daemon runs, so every method is safe for concurrent use.
type Tunables struct {
	// mu guards v.
	mu sync.RWMutex
	v  []uint32 // by index in tunables
}

// DefaultTunables returns every tunable at its default.
func DefaultTunables() *Tunables {
	t := &Tunables{v: make([]uint32, len(tunables))}
	for i, d := range tunables {
		t.v[i] = d.def
	}
	return t
}

// lookup finds a tunable by name, in any case.
func lookup(name string) (int, bool) {
	i, ok := tunableIndex[strings.ToLower(name)]
	return i, ok
}

// Get returns a tunable's value, obsolete ones included, by name in any
// case; false if there is no such tunable.
func (t *Tunables) Get(name string) (uint32, bool) {
	i, ok := lookup(name)
	if !ok {
		return 0, false
	}
	return t.get(i), true
}

// Set changes a tunable by name, in any case. Setting an obsolete tunable
// works, as in CTDB, and returns the warning ctdb setvar prints; it has no
// effect. Values outside a tunable's range (TunableRange), and values that
// would break the relation between two tunables (LeaseRenewIntervalMs
// below half of LeaseTime; ProbeTimeoutMs below ProbeIntervalMs), are
// errors.
func (t *Tunables) Set(name string, v uint32) (warning string, err error) {
	i, ok := lookup(name)
	if !ok {
		return "", fmt.Errorf("%w %s", ErrNoSuchTunable, name)
	}
	d := tunables[i]
	if !d.obsolete && (v < d.min || v > d.max) {
		return "", fmt.Errorf("setting %s to %d: %s", d.name, v, d.want())
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.v[i]
	t.v[i] = v
	if problem := t.relations(); problem != "" {
		t.v[i] = old
		return "", fmt.Errorf("setting %s to %d: %s", d.name, v, problem)
	}
	if d.obsolete {
		return fmt.Sprintf("Setting obsolete tunable variable '%s'", name), nil
	}
	return "", nil
}

// relations checks the rules between tunables; t.mu must be held.
func (t *Tunables) relations() string {
	lease := t.v[mustIndex("LeaseTime")]
	renew := t.v[mustIndex("LeaseRenewIntervalMs")]
	if uint64(renew)*2 >= uint64(lease)*1000 {
		return fmt.Sprintf("LeaseRenewIntervalMs (%d) must be less than half of LeaseTime (%d s), so that one lost renewal does not end the lease", renew, lease)
	}
	probe := t.v[mustIndex("ProbeIntervalMs")]
	timeout := t.v[mustIndex("ProbeTimeoutMs")]
	if timeout >= probe {
		return fmt.Sprintf("ProbeTimeoutMs (%d) must be less than ProbeIntervalMs (%d)", timeout, probe)
	}
	return ""
}

// List returns the tunables ctdb listvars shows, in its order: CTDB's
// without the obsolete ones, then ctdb-go's.
func (t *Tunables) List() []control.Tunable {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []control.Tunable
	for i, d := range tunables {
		if d.obsolete {
			continue
		}
		out = append(out, control.Tunable{Name: d.name, Value: t.v[i]})
	}
	return out
}

// Clone returns an independent copy.
func (t *Tunables) Clone() *Tunables {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return &Tunables{v: append([]uint32(nil), t.v...)}
}

func (t *Tunables) get(i int) uint32 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.v[i]
}

// mustIndex is lookup for names written in this file.
func mustIndex(name string) int {
	i, ok := lookup(name)
	if !ok {
		panic("config: unknown tunable " + name)
	}
	return i
}

func (t *Tunables) value(name string) uint32 { return t.get(mustIndex(name)) }

func (t *Tunables) seconds(name string) time.Duration {
	return time.Duration(t.value(name)) * time.Second
}

func (t *Tunables) millis(name string) time.Duration {
	return time.Duration(t.value(name)) * time.Millisecond
}

// Typed accessors for the tunables the daemon uses.

// KeepaliveInterval is the time between keepalive checks.
func (t *Tunables) KeepaliveInterval() time.Duration { return t.seconds("KeepaliveInterval") }

// KeepaliveLimit is how many silent KeepaliveIntervals make a node DISCONNECTED.
func (t *Tunables) KeepaliveLimit() int { return int(t.value("KeepaliveLimit")) }

// RecoverInterval is the time between the leader's checks for drift.
func (t *Tunables) RecoverInterval() time.Duration { return t.seconds("RecoverInterval") }

// ElectionTimeout is how long an election waits for votes.
func (t *Tunables) ElectionTimeout() time.Duration { return t.seconds("ElectionTimeout") }

// TakeoverTimeout is the limit of one takeover step; three of them bound a run.
func (t *Tunables) TakeoverTimeout() time.Duration { return t.seconds("TakeoverTimeout") }

// MonitorInterval is the longest time between monitor events.
func (t *Tunables) MonitorInterval() time.Duration { return t.seconds("MonitorInterval") }

// EventScriptTimeout is the limit of one event (all its scripts).
func (t *Tunables) EventScriptTimeout() time.Duration { return t.seconds("EventScriptTimeout") }

// MonitorTimeoutCount is how many monitor timeouts in a row make a node UNHEALTHY.
func (t *Tunables) MonitorTimeoutCount() int { return int(t.value("MonitorTimeoutCount")) }

// RecoveryGracePeriod is how long after its last failure a node's ban
// credits are forgiven.
func (t *Tunables) RecoveryGracePeriod() time.Duration { return t.seconds("RecoveryGracePeriod") }

// RecoveryBanPeriod is how long a node that keeps failing is banned.
func (t *Tunables) RecoveryBanPeriod() time.Duration { return t.seconds("RecoveryBanPeriod") }

// EnableBans reports whether failing nodes are banned.
func (t *Tunables) EnableBans() bool { return t.value("EnableBans") != 0 }

// NoIPFailback reports whether addresses stay where they are when a node
// comes back (only failed nodes' addresses move).
func (t *Tunables) NoIPFailback() bool { return t.value("NoIPFailback") != 0 }

// NoIPTakeover reports whether addresses are not moved at all.
func (t *Tunables) NoIPTakeover() bool { return t.value("NoIPTakeover") != 0 }

// IPAllocAlgorithm is 0 deterministic, 1 nondeterministic, 2 LCP2; CTDB
// treats any other value as LCP2.
func (t *Tunables) IPAllocAlgorithm() int { return int(t.value("IPAllocAlgorithm")) }

// LeaseTime is how long a node keeps its addresses without a renewal.
func (t *Tunables) LeaseTime() time.Duration { return t.seconds("LeaseTime") }

// LeaseRenewInterval is the time between a node's lease renewals.
func (t *Tunables) LeaseRenewInterval() time.Duration { return t.millis("LeaseRenewIntervalMs") }

// ProbeInterval is memberlist's ProbeInterval.
func (t *Tunables) ProbeInterval() time.Duration { return t.millis("ProbeIntervalMs") }

// ProbeTimeout is memberlist's ProbeTimeout.
func (t *Tunables) ProbeTimeout() time.Duration { return t.millis("ProbeTimeoutMs") }

// SuspicionMult is memberlist's SuspicionMult.
func (t *Tunables) SuspicionMult() int { return int(t.value("SuspicionMult")) }

// GossipInterval is memberlist's GossipInterval.
func (t *Tunables) GossipInterval() time.Duration { return t.millis("GossipIntervalMs") }

// FenceTimeout is the limit of one fence event.
func (t *Tunables) FenceTimeout() time.Duration { return t.seconds("FenceTimeout") }

// FenceDelay is FenceDelayMs.
func (t *Tunables) FenceDelay() time.Duration { return t.millis("FenceDelayMs") }

// FenceStartupGrace is FenceStartupGrace.
func (t *Tunables) FenceStartupGrace() time.Duration { return t.seconds("FenceStartupGrace") }

// TakeIPProbeTimeout is how long a new holder probes for an old one.
func (t *Tunables) TakeIPProbeTimeout() time.Duration { return t.millis("TakeIPProbeTimeoutMs") }

// ARPProbeWait is how long to wait for an answer to one probe.
func (t *Tunables) ARPProbeWait() time.Duration { return t.millis("ARPProbeWaitMs") }

// LinkDebounce is how long link events are gathered before a monitor run.
func (t *Tunables) LinkDebounce() time.Duration { return t.millis("LinkDebounceMs") }

// TakeoverParallelism is how many addresses a node takes or releases at once.
func (t *Tunables) TakeoverParallelism() int { return int(t.value("TakeoverParallelism")) }

// tunableSource is where a tunable was last set from a file.
type tunableSource struct {
	file string
	line int
	seq  int // order of setting, across files
}

// tunableSources is where each tunable was last set from a file.
type tunableSources struct {
	at map[int]tunableSource // by index in tunables
	n  int                   // settings so far
}

// loadTunables applies ctdb.tunables, then tunables.d/*.tunables in byte
// (C collation) order, to t, as CTDB does at start-up. Each line is
// NAME=VALUE (blanks around "=" allowed) with a non-negative integer
// VALUE, or a "#" comment; a later file overrides an earlier one. Unknown
// and obsolete names, sections and bad values are errors.
func loadTunables(dir string, t *Tunables, p *problems) {
	files := []string{filepath.Join(dir, "ctdb.tunables")}
	entries, err := os.ReadDir(filepath.Join(dir, "tunables.d"))
	switch {
	case err == nil:
		var names []string
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".tunables") && !e.IsDir() {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		for _, n := range names {
			files = append(files, filepath.Join(dir, "tunables.d", n))
		}
	case !errors.Is(err, fs.ErrNotExist):
		p.errorf(filepath.Join(dir, "tunables.d"), 0, "%s", fileProblem(err))
	}
	set := &tunableSources{at: map[int]tunableSource{}}
	for _, f := range files {
		parseTunablesFile(f, t, set, p)
	}
	t.mu.Lock()
	problem := t.relations()
	t.mu.Unlock()
	if problem != "" {
		// Report it where the last tunable involved was set; defaults
		// alone never break a relation.
		at := tunableSource{file: files[0], seq: -1}
		for _, name := range []string{"LeaseTime", "LeaseRenewIntervalMs", "ProbeIntervalMs", "ProbeTimeoutMs"} {
			if s, ok := set.at[mustIndex(name)]; ok && s.seq > at.seq {
				at = s
			}
		}
		p.errorf(at.file, at.line, "%s", problem)
	}
}

func parseTunablesFile(path string, t *Tunables, set *tunableSources, p *problems) {
	lines, err := readLines(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		p.errorf(path, 0, "%s", fileProblem(err))
		return
	}
	for i, raw := range lines {
		n := i + 1
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] == '[' {
			p.errorf(path, n, "sections are not allowed in a tunables file")
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			p.errorf(path, n, "expected NAME=VALUE, got %s", quoteLine(line))
			continue
		}
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		idx, ok := lookup(name)
		if !ok {
			p.errorf(path, n, "unknown tunable %q", name)
			continue
		}
		d := tunables[idx]
		if d.obsolete {
			if d.hint != "" {
				p.errorf(path, n, "obsolete tunable %s: use %s", d.name, d.hint)
			} else {
				p.errorf(path, n, "obsolete tunable %s: remove it", d.name)
			}
			continue
		}
		v, err := strconv.ParseUint(value, 10, 32)
		if err != nil {
			p.errorf(path, n, "%s = %q: want a whole number from 0 to 4294967295", d.name, value)
			continue
		}
		if uint32(v) < d.min || uint32(v) > d.max {
			p.errorf(path, n, "%s = %d: %s", d.name, v, d.want())
			continue
		}
		t.mu.Lock()
		t.v[idx] = uint32(v)
		t.mu.Unlock()
		set.n++
		set.at[idx] = tunableSource{file: path, line: n, seq: set.n}
	}
}
