// Package eventscript runs the event scripts in events.d, as CTDB's event
// daemon runs the "legacy" component, and keeps the last result of each
// event. It owns the scripts' processes: nothing a script starts
// outlives the script.
//
// # The script contract
//
// This is the one place the contract is written down; the events.d
// README should point here rather than repeat it.
//
// Which files are scripts. Files in the events dir (Config.Dir, normally
// $CTDB_BASE/events.d) named `NN.name` or CTDB's `NN.name.script`, NN two
// digits. The script's name is the file name without `.script`
// (`10.interface`); when both spellings exist the `.script` file is used
// and the other is ignored with a warning. Ignored as well: names not
// matching `[0-9][0-9].?*`, directories, and editor or package-manager
// leftovers (`*~`, `*.swp`, `*.swo`, `*.bak`, `*.orig`, `*.rpm*`,
// `*.dpkg*`), so a backup of an executable script never runs.
//
// Enabled or disabled. A script is enabled when it is executable by its
// owner (stat follows symlinks, so a dangling symlink is disabled).
// `ctdb event script enable NAME` sets the x bits for user, group and
// other, `disable` clears them; both work on regular files only.
//
// Order. An event runs the scripts one after another in name order (so
// NN orders them). Disabled scripts are listed as DISABLED and skipped.
// The first script that does not succeed ends the event: later scripts do
// not run and have no result.
//
// Arguments. The script is executed directly (execve: it needs a `#!`
// line and the x bit) with argv[0] = its path, argv[1] = the event, then
// the event's arguments:
//
//	init, setup, startup, monitor, startrecovery, recovered,
//	startipreallocate, ipreallocated, shutdown    (none)
//	takeip    IFACE IP MASKBITS
//	releaseip IFACE IP MASKBITS
//	updateip  OLDIFACE NEWIFACE IP MASKBITS
//	fence     PNN ADDRESS                           (ctdb-go)
//
// A known event with the wrong number of arguments is refused before any
// script runs. Other event names are passed through; scripts should exit
// 0 for events they do not know.
//
// Environment. ctdbd's own environment, then Config.Env (the daemon adds
// e.g. CTDB_LOGGING, CTDB_DEBUGLEVEL, CTDB_VARDIR there), then CTDB_BASE =
// the config dir, which wins over both. Scripts source
// "$CTDB_BASE/functions". stdin is /dev/null. The working directory is
// ctdbd's.
//
// Output. stdout and stderr go to one pipe, so their lines stay in order.
// The last Config.OutputCap bytes (default 64 KiB) are kept as the
// script's output (earlier bytes are dropped and the result says so) and
// shown by `ctdb event status`. Output written after the script exited,
// by a process it left behind, is read for at most 100 ms and then the
// pipe is closed (a later write gets SIGPIPE).
//
// Exit status. 0 is success (OK). Any other exit status fails the event
// (ERROR) with that code; unlike CTDB, 64-254 are not read as errno
// values, so every non-zero status is a failure. Killed by a signal:
// ERROR, code 128+signal. The script could not be executed at all (no `#!`
// line: ENOEXEC; interpreter missing: ENOENT; not permitted: EACCES):
// CANNOT RUN with the system's message, code = the errno. A `#!/usr/bin/env
// prog` line with prog missing is env's exit 127: ERROR 127.
//
// Timeout. One deadline covers the whole event (all its scripts):
// Config.Timeout (EventScriptTimeout, 30 s), or the caller's context
// deadline if earlier. When it passes, the running script is TIMEDOUT and
// the event's status is TimedOut (summary 110). Config.DebugScript, if
// set, is then run as `DEBUGSCRIPT PID EVENT` (at most 10 s, its output
// logged), after which the script's whole process group gets SIGTERM, and
// SIGKILL after Config.KillGrace (default 500 ms) or as soon as the script
// itself has exited, whichever is first; then everything else it started
// is killed (below). A script that takes more than half the timeout is
// logged as slow even when it succeeds.
//
// Left-behind processes. When a script ends, however it ends (exit 0, an
// error, killed at the timeout, cancelled), every process it started and
// that still runs gets SIGKILL, before its result is returned: children
// in its process group, and also those that left it (setsid, double
// forks, `nohup cmd &`). Event scripts are not a way to start daemons. A
// service a script needs must be started through the init system
// (`systemctl start`, `service`): systemd starts it from PID 1 in its own
// cgroup, so it is not the script's. A process in the middle of such a
// hand-over (`systemctl` itself) is the script's and must have finished
// before the script exits.
//
// How they are found (Config.Reaper): by default each script runs in a
// cgroup v1 freezer cgroup of its own, `ctdb-go/PID-N` under ctdbd's own
// freezer cgroup (ctdbd as root with /sys/fs/cgroup/freezer mounted);
// nothing escapes it. The script is in it from its first instruction
// (forked by a thread of ctdbd that is in the cgroup for the fork only).
// After the script: if the cgroup is empty (one read), nothing to do;
// else it is frozen, everything in it gets SIGKILL, it is thawed, and Run
// waits until it is empty (at most 5 s; a process stuck in the kernel is
// logged as an error). Cgroups are reused from run to run; Close removes
// them, and a later ctdbd removes empty ones left by one that is gone.
// Without a usable freezer hierarchy (not root, cgroup v2 only, a
// container), every script gets CTDB_EVENT_RUN_ID=PID-N in its
// environment, inherited by its descendants, and after the script every
// process whose /proc/PID/environ holds that value gets SIGKILL, scan
// after scan until none is left. That misses a process that cleared or
// replaced its environment (env -i, daemons that sanitise it) and one
// ctdbd may not read (another user's setuid program).
//
// Preemption. `monitor` is special: any other event starting cancels a
// running monitor (its process group is killed at once, the run's status
// is Cancelled and it is not recorded), and a monitor asked for while any
// other event (or another monitor) runs is Cancelled at once. Other
// events may run at the same time as each other: takeip and releaseip of
// different addresses run in parallel, so scripts must not assume they
// are alone.
//
// Status. The last completed run of each event (not a cancelled one) is
// kept, in memory at once and in the Store (when there is one) by a
// background writer at most every 100 ms, and returned by Status: what
// `ctdb event status EVENT` shows. Flush waits for the writer.
package eventscript
