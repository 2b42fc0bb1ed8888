package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ctdb-go/ctdb-go/tests/bed"
)

// scenario is one fault: how to inject it into the victim and undo it.
type scenario struct {
	name  string
	about string
	// addrs are the public addresses; nil means the bed's six.
	addrs []netip.Prefix
	// checkEvery is the invariant checker's interval; arpEvery how often
	// the watch re-asks for each address not yet answered by a new node.
	checkEvery, arpEvery time.Duration
	inject               func(c *cluster, victim int) error
	// softInject: an inject error (a CLI command's exit status) is
	// noted and the trial measures on, since the fault may have taken
	// effect anyway.
	softInject bool
	restore    func(c *cluster, victim int) error
	// phase, when set, delays each fault by a random time in [0,
	// phase), so faults found by the periodic monitor event
	// (MonitorInterval, 15 s in both implementations) land at random
	// points of its cycle instead of in step with the trials.
	phase time.Duration
	// postgres: every node runs PostgreSQL (started before ctdbd) and
	// the repo's events.d/50.postgres checks it.
	postgres bool
	// unavailable, when set and returning non-empty, says why the
	// scenario cannot run here; it is reported with 0 trials.
	unavailable func(debian bool) string
}

// probeScript is the monitored "service" of the script-fail scenario, as
// in the reference run of Debian's CTDB (50.probe): its monitor event
// fails while $CTDB_BASE/probe-fail exists. Both implementations run it
// in every scenario.
const probeScript = `#!/bin/sh
# benchmark probe (tests/cmd/benchfailover): the monitor event fails
# while $CTDB_BASE/probe-fail exists.
[ -n "$CTDB_BASE" ] || CTDB_BASE=/etc/ctdb
case "$1" in
monitor)
	if [ -e "$CTDB_BASE/probe-fail" ]; then
		echo "ERROR: probe service is down ($CTDB_BASE/probe-fail)"
		exit 1
	fi
	;;
esac
exit 0
`

const probeName = "50.probe"

// monitorInterval is MonitorInterval's default in CTDB and ctdb-go.
const monitorInterval = 15 * time.Second

func probeFlag(c *cluster, i int) string {
	return filepath.Join(c.b.ConfigDir(i), "probe-fail")
}

// addrs900 are disable-900's addresses: 198.18.4.1 onwards in a /22,
// outside the private network and the client's subnet.
func addrs900() []netip.Prefix {
	var ps []netip.Prefix
	a := netip.MustParseAddr("198.18.4.1")
	for range 900 {
		ps = append(ps, netip.PrefixFrom(a, 22))
		a = a.Next()
	}
	return ps
}

func ctdbCmd(c *cluster, i int, args ...string) error {
	out, err := c.b.Ctdb(i, args...)
	if err != nil {
		return err
	}
	if out.Code != 0 {
		return fmt.Errorf("node %d: ctdb %s: %s", i, strings.Join(args, " "), out)
	}
	return nil
}

// scenarios are the benchmark's faults, in the order they run.
var scenarios = []scenario{
	{
		name:  "public-cable",
		phase: monitorInterval,
		about: "the victim's public cable pulled (eth1 loses carrier), then plugged back",
		inject: func(c *cluster, v int) error {
			return c.b.PullPublic(v)
		},
		restore: func(c *cluster, v int) error {
			return c.b.RestorePublic(v)
		},
	},
	{
		name:  "private-cable",
		about: "the victim's private cable pulled (eth0 loses carrier), then plugged back",
		inject: func(c *cluster, v int) error {
			return c.b.PullPrivate(v)
		},
		restore: func(c *cluster, v int) error {
			return c.b.RestorePrivate(v)
		},
	},
	{
		name:  "kill",
		about: "the victim's ctdbd SIGKILLed, then started again",
		inject: func(c *cluster, v int) error {
			return c.b.Kill(v)
		},
		restore: func(c *cluster, v int) error {
			if err := c.reap(v); err != nil {
				return err
			}
			return c.b.Start(v)
		},
	},
	{
		name:  "stop",
		about: "the victim's ctdbd SIGSTOPped (a hung daemon; Debian: the main ctdbd process), then SIGCONTed",
		inject: func(c *cluster, v int) error {
			return c.b.Stop(v)
		},
		restore: func(c *cluster, v int) error {
			return c.b.Cont(v)
		},
	},
	{
		name:  "partition",
		about: "the victim cut off from the others on the private network (links stay up), then healed",
		inject: func(c *cluster, v int) error {
			return c.b.Partition([]int{v})
		},
		restore: func(c *cluster, _ int) error {
			return c.b.Heal()
		},
	},
	{
		name:  "script-fail",
		phase: monitorInterval,
		about: "the victim's monitor script (50.probe) made to fail by a flag file, then the flag removed",
		inject: func(c *cluster, v int) error {
			return os.WriteFile(probeFlag(c, v), []byte("benchfailover\n"), 0o644)
		},
		restore: func(c *cluster, v int) error {
			if err := os.Remove(probeFlag(c, v)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			return nil
		},
	},
	{
		name:     "postgres-stop",
		phase:    monitorInterval,
		about:    "PostgreSQL stopped on the victim (events.d/50.postgres fails its monitor), then started again",
		postgres: true,
		inject: func(c *cluster, v int) error {
			return c.pgs[v].Stop()
		},
		restore: func(c *cluster, v int) error {
			return c.pgs[v].Start()
		},
		unavailable: func(bool) string {
			if _, err := bed.PostgresBinDir(); err != nil {
				return "not run: " + err.Error()
			}
			return ""
		},
	},
	{
		name:       "disable-900",
		about:      "3 nodes, 900 addresses: `ctdb disable` on the victim, then `ctdb enable`",
		addrs:      addrs900(),
		checkEvery: 100 * time.Millisecond,
		arpEvery:   100 * time.Millisecond,
		softInject: true,
		inject: func(c *cluster, v int) error {
			return ctdbCmd(c, v, "disable")
		},
		restore: func(c *cluster, v int) error {
			return ctdbCmd(c, v, "enable")
		},
	},
}
