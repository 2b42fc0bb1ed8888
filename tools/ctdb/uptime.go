package main

import (
	"fmt"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

func init() {
	register(&command{
		name:    "uptime",
		usage:   "uptime",
		summary: "show when ctdbd started and when the last takeover run was",
		multi:   true,
		named:   true,
		run:     runUptime,
	})
}

func runUptime(e *env, args []string) int {
	if len(args) != 0 {
		return e.usage("uptime")
	}
	var u control.Uptime
	code, ok := e.query(control.Request{Command: control.CmdUptime}, &u)
	if !ok || e.json {
		return code
	}
	// CTDB shows a time that was never set as the epoch; so do we.
	epoch := func(t time.Time) time.Time {
		if t.IsZero() {
			return time.Unix(0, 0)
		}
		return t
	}
	now, started, last := epoch(u.Now), epoch(u.Started), epoch(u.LastRecovery)
	w := e.stdout
	fmt.Fprintf(w, "Current time of node %-4d     :                %s\n", u.PNN, e.ctime(now))
	fmt.Fprintf(w, "Ctdbd start time              : %s %s\n", since(now, started), e.ctime(started))
	fmt.Fprintf(w, "Time of last recovery/failover: %s %s\n", since(now, last), e.ctime(last))
	fmt.Fprintf(w, "Duration of last recovery/failover: %f seconds\n", u.LastRecoveryDuration.Seconds())
	return code
}

// since is CTDB's "(DDD HH:MM:SS)" from then to now, in whole seconds.
func since(now, then time.Time) string {
	s := now.Unix() - then.Unix()
	if s < 0 {
		s = 0
	}
	return fmt.Sprintf("(%03d %02d:%02d:%02d)", s/86400, s/3600%24, s/60%60, s%60)
}
