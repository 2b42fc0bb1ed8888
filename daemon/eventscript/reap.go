package eventscript

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Reaper says how Run finds, when a script has ended, the processes it
// started that are still running, to kill them. See "Left-behind
// processes" in the package doc.
type Reaper int

const (
	// ReaperAuto is ReaperCgroup when a freezer cgroup can be made under
	// Config.CgroupRoot (ctdbd runs as root on a host with cgroup v1),
	// else ReaperEnv.
	ReaperAuto Reaper = iota
	// ReaperCgroup runs every script in a cgroup v1 freezer cgroup of its
	// own and kills whatever is left in it. Nothing escapes it.
	ReaperCgroup
	// ReaperEnv marks every script with RunIDEnv and kills every process
	// whose environment holds the mark. A process that drops the variable
	// (env -i, an exec with a new environment) escapes it.
	ReaperEnv
)

func (m Reaper) String() string {
	switch m {
	case ReaperAuto:
		return "auto"
	case ReaperCgroup:
		return "cgroup"
	case ReaperEnv:
		return "env"
	}
	return "Reaper(" + strconv.Itoa(int(m)) + ")"
}

// DefaultCgroupRoot is where the cgroup v1 freezer hierarchy is mounted.
const DefaultCgroupRoot = "/sys/fs/cgroup/freezer"

// RunIDEnv is the variable that marks a script and its descendants with
// their run ("PID-N", unique on the host while ctdbd runs).
const RunIDEnv = "CTDB_EVENT_RUN_ID"

// cgroupDirName is the directory under ctdbd's own freezer cgroup that
// holds the run cgroups, named PID-N after the ctdbd that made them.
const cgroupDirName = "ctdb-go"

// Bounds of the kill work after a script; a process stuck in the kernel
// (D state) cannot die before its system call returns.
const (
	reapFreezeWait = time.Second     // for freezer.state to read FROZEN
	reapDeadWait   = 5 * time.Second // for the killed processes to be gone
	reapEnvRounds  = 200             // rounds of the environment scan
)

// runSeq numbers runs in this process, for run IDs and cgroup names.
var runSeq atomic.Uint64

// reaper finds and kills what a script left behind.
type reaper struct {
	self int         // our PID: never killed, even if listed
	pool *cgroupPool // nil with ReaperEnv
}

// newReaper sets up mode; ReaperAuto falls back to ReaperEnv, saying why.
func newReaper(mode Reaper, root string) (*reaper, Reaper, error) {
	r := &reaper{self: os.Getpid()}
	switch mode {
	case ReaperEnv:
		return r, ReaperEnv, nil
	case ReaperAuto, ReaperCgroup:
		pool, err := newCgroupPool(root)
		if err == nil {
			r.pool = pool
			return r, ReaperCgroup, nil
		}
		if mode == ReaperCgroup {
			return nil, mode, err
		}
		return r, ReaperEnv, err
	}
	return nil, mode, fmt.Errorf("eventscript: unknown reaper %d", mode)
}

// run is what the reaper knows about one script's run.
type run struct {
	id     string // RunIDEnv's value
	cgroup string // the run's cgroup dir; "" when the environment scan is used
	leader int    // the script's PID once started
	// keep is false when the cgroup must not go back to the pool: our
	// own thread may still be in it.
	keep bool
}

// begin prepares a run: a cgroup from the pool, if there is a pool.
func (rp *reaper) begin() *run {
	rn := &run{id: strconv.Itoa(rp.self) + "-" + strconv.FormatUint(runSeq.Add(1), 10), keep: true}
	if rp.pool != nil {
		cg, err := rp.pool.get()
		if err == nil {
			rn.cgroup = cg
		}
	}
	return rn
}

// start starts cmd inside the run's cgroup; without one, or when the
// cgroup cannot be entered, it starts cmd plainly and the run falls back
// to the environment scan. The returned error is cmd.Start's.
//
// How the script gets into its cgroup before it runs anything: a
// thread of ours, locked to this goroutine, moves into the cgroup, forks
// the script (a child starts in its parent thread's cgroup), and moves
// back. The Go runtime never clones new threads from a locked thread, so
// nothing else of ctdbd follows it. If the thread cannot move back, the
// goroutine ends without unlocking it and the runtime ends the thread.
func (rp *reaper) start(rn *run, cmd *exec.Cmd) (placeErr, err error) {
	if rn.cgroup == "" {
		return nil, cmd.Start()
	}
	placeErr = rp.pool.inside(rn.cgroup, func() { err = cmd.Start() })
	if errors.Is(placeErr, errNotEntered) {
		// Not entered: start it here, tracked by its environment.
		rp.pool.put(rn.cgroup)
		rn.cgroup = ""
		return placeErr, cmd.Start()
	}
	if placeErr != nil {
		rn.keep = false // our thread may still be in it
	}
	return placeErr, err
}

// errNotEntered marks an error of inside that did not run fn.
var errNotEntered = errors.New("cgroup not entered")

// inside runs fn on a thread of ours moved into cg, and moves the thread
// back. It runs fn unless the thread could not enter cg (the error then
// wraps errNotEntered). When the thread cannot move back, the error says
// so and the thread ends (a goroutine that exits while locked to its
// thread takes the thread with it).
func (p *cgroupPool) inside(cg string, fn func()) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		tid := unix.Gettid()
		if err := writeFD(p.tasksFD(cg), tid); err != nil {
			runtime.UnlockOSThread()
			ch <- fmt.Errorf("entering cgroup %s: %w (%w)", cg, err, errNotEntered)
			return
		}
		fn()
		if err := writeFD(p.homeFD, tid); err != nil {
			ch <- fmt.Errorf("leaving cgroup %s: %w", cg, err)
			return // still locked: the thread ends with this goroutine
		}
		runtime.UnlockOSThread()
		ch <- nil
	}()
	return <-ch
}

// end kills every process the script left behind and returns how many
// it signalled. The script itself must have exited and not been reaped.
func (rp *reaper) end(rn *run) (int, error) {
	if rn.cgroup == "" {
		return killMarked(rn.id, rn.leader, rp.self)
	}
	n, err := rp.pool.empty(rn.cgroup, rp.self)
	if err == nil && rn.keep {
		rp.pool.put(rn.cgroup)
	}
	// else: something would not die, or our thread may still be in it;
	// the cgroup is left out of the pool (Close tries to remove it).
	return n, err
}

// close removes the pool's idle cgroups.
func (rp *reaper) close() {
	if rp.pool != nil {
		rp.pool.close()
	}
}

// cgroupPool keeps run cgroups for reuse: making one (mkdir) and
// removing it (rmdir) per run would cost more than the run's cleanup.
type cgroupPool struct {
	dir string // <root><ctdbd's cgroup>/ctdb-go
	// homeFD is the tasks file of ctdbd's own cgroup, where threads go
	// back. It and the tasks files below stay open: a migration through
	// an open file costs half as much.
	homeFD int

	// mu guards the fields below it.
	mu    sync.Mutex
	idle  []string
	made  []string       // every cgroup this pool made, for close
	tasks map[string]int // each made cgroup's tasks file, open for writing
}

// newCgroupPool prepares root/<ctdbd's cgroup>/ctdb-go and removes empty
// run cgroups there left by ctdbd processes that are gone.
func newCgroupPool(root string) (*cgroupPool, error) {
	if root == "" {
		root = DefaultCgroupRoot
	}
	root = filepath.Clean(root)
	if !isFreezerMount(root) {
		return nil, fmt.Errorf("no cgroup v1 freezer hierarchy mounted at %s", root)
	}
	self, err := ownCgroup("freezer")
	if err != nil {
		return nil, err
	}
	home := filepath.Join(root, self)
	p := &cgroupPool{dir: filepath.Join(home, cgroupDirName), tasks: make(map[string]int)}
	if err := os.Mkdir(p.dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("making cgroup %s: %w", p.dir, err)
	}
	p.homeFD, err = unix.Open(filepath.Join(home, "tasks"), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", filepath.Join(home, "tasks"), err)
	}
	p.removeStale()
	// Prove it works: make one run cgroup (kept in the pool) and check we
	// may move a thread (this one) in and out of it.
	cg, err := p.get()
	if err != nil {
		return nil, err
	}
	if err := p.inside(cg, func() {}); err != nil {
		if errors.Is(err, errNotEntered) {
			p.close()
		}
		return nil, err
	}
	p.put(cg)
	return p, nil
}

// isFreezerMount reports whether dir is a cgroup v1 mount with the freezer
// controller.
func isFreezerMount(dir string) bool {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) >= 4 && f[1] == dir && f[2] == "cgroup" && strings.Contains(","+f[3]+",", ",freezer,") {
			return true
		}
	}
	return false
}

// ownCgroup is this process's cgroup path in the v1 hierarchy with
// controller, from /proc/self/cgroup ("6:freezer:/").
func ownCgroup(controller string) (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(data)) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) == 3 && strings.Contains(","+parts[1]+",", ","+controller+",") {
			return parts[2], nil
		}
	}
	return "", fmt.Errorf("no %s cgroup in /proc/self/cgroup", controller)
}

// removeStale removes the empty run cgroups of ctdbd processes that are
// gone. A non-empty one is left: what runs there is not ours to kill.
func (p *cgroupPool) removeStale() {
	entries, err := os.ReadDir(p.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		pidText, _, ok := strings.Cut(e.Name(), "-")
		pid, err := strconv.Atoi(pidText)
		if !e.IsDir() || !ok || err != nil || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		os.Remove(filepath.Join(p.dir, e.Name()))
	}
}

// get returns an idle run cgroup, or makes one.
func (p *cgroupPool) get() (string, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		cg := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return cg, nil
	}
	p.mu.Unlock()
	cg := filepath.Join(p.dir, strconv.Itoa(os.Getpid())+"-"+strconv.FormatUint(runSeq.Add(1), 10))
	if err := os.Mkdir(cg, 0o755); err != nil {
		return "", fmt.Errorf("making cgroup: %w", err)
	}
	fd, err := unix.Open(filepath.Join(cg, "tasks"), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		os.Remove(cg)
		return "", fmt.Errorf("opening cgroup: %w", err)
	}
	p.mu.Lock()
	p.made = append(p.made, cg)
	p.tasks[cg] = fd
	p.mu.Unlock()
	return cg, nil
}

// tasksFD is cg's tasks file, open for writing.
func (p *cgroupPool) tasksFD(cg string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if fd, ok := p.tasks[cg]; ok {
		return fd
	}
	return -1
}

// put returns an empty, thawed cgroup to the pool.
func (p *cgroupPool) put(cg string) {
	p.mu.Lock()
	p.idle = append(p.idle, cg)
	p.mu.Unlock()
}

// close removes every cgroup the pool made (those still in use or not
// empty stay).
func (p *cgroupPool) close() {
	p.mu.Lock()
	made, tasks := p.made, p.tasks
	p.made, p.idle, p.tasks = nil, nil, make(map[string]int)
	p.mu.Unlock()
	for _, cg := range made {
		unix.Close(tasks[cg])
		os.Remove(cg)
	}
}

// empty kills everything in cg and waits until it is gone. The common
// case, nothing left, costs one read of its tasks file (25-35 µs here: the
// kernel builds the list at open, so the file cannot be kept open).
//
// Otherwise: freeze the cgroup, so nothing in it can fork or exit (and
// its thread IDs cannot be reused) while the list is read; SIGKILL every
// listed thread (which kills its process); thaw, so the signals take
// effect; repeat until the list is empty. The tasks file is read rather
// than cgroup.procs, which leaves out a process whose main thread has
// exited while others run. Threads of ctdbd itself are left out.
func (p *cgroupPool) empty(cg string, self int) (int, error) {
	procs := filepath.Join(cg, "tasks")
	pids, err := readPIDs(procs, self)
	if err != nil || len(pids) == 0 {
		return 0, err
	}
	state := filepath.Join(cg, "freezer.state")
	killed := 0
	deadline := time.Now().Add(reapDeadWait)
	for len(pids) > 0 {
		if time.Now().After(deadline) {
			writeString(state, "THAWED")
			return killed, fmt.Errorf("processes %v in %s do not die", pids, cg)
		}
		if err := freeze(state); err != nil {
			return killed, err
		}
		if pids, err = readPIDs(procs, self); err != nil {
			writeString(state, "THAWED")
			return killed, err
		}
		for _, pid := range pids {
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				killed++
			}
		}
		if err := writeString(state, "THAWED"); err != nil {
			return killed, fmt.Errorf("thawing %s: %w", cg, err)
		}
		// Killed processes leave cgroup.procs as they exit; kill again
		// what is still there after a while.
		round := time.Now().Add(100 * time.Millisecond)
		for wait := 50 * time.Microsecond; time.Now().Before(round); wait = min(2*wait, 10*time.Millisecond) {
			if pids, err = readPIDs(procs, self); err != nil || len(pids) == 0 {
				return killed, err
			}
			time.Sleep(wait)
		}
	}
	return killed, nil
}

// freeze freezes the cgroup whose freezer.state is state and waits until
// it is (reapFreezeWait at most: a task in D state may keep it FREEZING;
// the kills then still go out and take effect when it wakes).
func freeze(state string) error {
	if err := writeString(state, "FROZEN"); err != nil {
		return fmt.Errorf("freezing: %w", err)
	}
	deadline := time.Now().Add(reapFreezeWait)
	for wait := 20 * time.Microsecond; time.Now().Before(deadline); wait = min(2*wait, 5*time.Millisecond) {
		b, err := os.ReadFile(state)
		if err != nil {
			return fmt.Errorf("freezing: %w", err)
		}
		if strings.TrimSpace(string(b)) == "FROZEN" {
			return nil
		}
		time.Sleep(wait)
	}
	return nil
}

// readPIDs reads a cgroup's tasks file, leaving out the threads of
// process self.
func readPIDs(path string, self int) ([]int, error) {
	b, err := readSmall(path)
	if err != nil || len(b) == 0 {
		return nil, err
	}
	selfTasks := "/proc/" + strconv.Itoa(self) + "/task/"
	var pids []int
	for f := range bytes.FieldsSeq(b) {
		tid, err := strconv.Atoi(string(f))
		if err != nil || tid == self || unix.Access(selfTasks+string(f), unix.F_OK) == nil {
			continue
		}
		pids = append(pids, tid)
	}
	return pids, nil
}

// readSmall reads a small kernel file with plain system calls (os.ReadFile
// adds an fstat and more allocations; this runs after every script).
func readSmall(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var buf [512]byte
	var out []byte
	for {
		n, err := unix.Read(fd, buf[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, buf[:n]...)
	}
}

// writeFD writes n to an open cgroup file.
func writeFD(fd, n int) error {
	if fd < 0 {
		return unix.EBADF
	}
	for {
		_, err := unix.Write(fd, []byte(strconv.Itoa(n)))
		if err != unix.EINTR {
			return err
		}
	}
}

func writeString(path, s string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	for {
		_, err = unix.Write(fd, []byte(s))
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return &os.PathError{Op: "write", Path: path, Err: err}
	}
	return nil
}

// killMarked kills every process (but self and leader) whose environment
// holds RunIDEnv=id, and repeats until a scan finds none, for the
// children they forked meanwhile. It returns how many it signalled.
//
// Which PIDs it reads: every process marked was forked after the leader,
// so its PID lies after the leader's in allocation order, up to the last
// PID handed out (/proc/sys/kernel/ns_last_pid). That span is usually a
// few PIDs; when it wrapped or is long, all of /proc is read.
//
// A PID is opened as a pidfd before its environment is read and the
// signal goes through the pidfd, so a PID reused in between is never hit.
func killMarked(id string, leader, self int) (int, error) {
	mark := []byte(RunIDEnv + "=" + id + "\x00")
	killed := 0
	for round := 0; round < reapEnvRounds; round++ {
		found := 0
		var unsure []int
		err := eachCandidate(leader, func(pid int) {
			if pid == self || pid == leader {
				return
			}
			switch markedKill(pid, mark) {
			case killedIt:
				found++
			case cannotTell:
				unsure = append(unsure, pid)
			}
		})
		if err != nil {
			return killed, err
		}
		// A process in the middle of execve shows an empty environment
		// for a moment (seen under load: a setsid grandchild that was
		// exec'ing sleep survived the scan). Look at those again, a few
		// times, before the search ends.
		for try := 0; try < unsureTries && len(unsure) > 0 && found == 0; try++ {
			time.Sleep(time.Millisecond)
			still := unsure[:0]
			for _, pid := range unsure {
				switch markedKill(pid, mark) {
				case killedIt:
					found++
				case cannotTell:
					still = append(still, pid)
				}
			}
			unsure = still
		}
		killed += found
		if found == 0 {
			return killed, nil
		}
		// Killed processes keep their environment until they are gone;
		// and they may have forked meanwhile.
		time.Sleep(time.Millisecond)
	}
	return killed, fmt.Errorf("processes marked %s=%s still found after %d rounds", RunIDEnv, id, reapEnvRounds)
}

// unsureTries is how often killMarked looks again at a process whose
// environment it could not read (execve in progress).
const unsureTries = 5

// markResult is what markedKill did.
type markResult int

const (
	notMarked  markResult = iota // gone, or its environment lacks the mark
	killedIt                     // marked, and sent SIGKILL
	cannotTell                   // its environment read empty or failed: look again
)

// maxPIDSpan is the longest run of PIDs tried one by one; past it,
// reading the /proc directory is cheaper.
const maxPIDSpan = 256

// eachCandidate calls fn for every PID that may have been forked after
// leader.
func eachCandidate(leader int, fn func(pid int)) error {
	if leader > 0 {
		if b, err := readSmall("/proc/sys/kernel/ns_last_pid"); err == nil {
			if last, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && last >= leader && last-leader <= maxPIDSpan {
				for pid := leader + 1; pid <= last; pid++ {
					fn(pid)
				}
				return nil
			}
		}
	}
	d, err := os.Open("/proc")
	if err != nil {
		return err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, name := range names {
		if pid, err := strconv.Atoi(name); err == nil {
			fn(pid)
		}
	}
	return nil
}

// markedKill sends SIGKILL to pid if its environment holds mark. An
// environment that reads empty (or not at all) from a process that is
// not a kernel thread cannot be told: execve replaces it.
func markedKill(pid int, mark []byte) markResult {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err == unix.ESRCH {
		return notMarked
	}
	if err == nil {
		defer unix.Close(pidfd)
	} else {
		pidfd = -1 // no pidfd_open (Linux < 5.3): plain kill below
	}
	env, err := readSmall("/proc/" + strconv.Itoa(pid) + "/environ")
	switch {
	case errors.Is(err, unix.ESRCH), errors.Is(err, unix.ENOENT):
		return notMarked
	case err != nil || len(env) == 0:
		if kernelThread(pid) {
			return notMarked
		}
		return cannotTell
	case !hasVar(env, mark):
		return notMarked
	}
	if pidfd >= 0 {
		if unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0) == nil {
			return killedIt
		}
		return notMarked
	}
	if syscall.Kill(pid, syscall.SIGKILL) == nil {
		return killedIt
	}
	return notMarked
}

// kernelThread reports whether pid is a kernel thread (PF_KTHREAD in
// /proc/PID/stat's flags), whose environment is always empty.
func kernelThread(pid int) bool {
	b, err := readSmall("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // gone
	}
	// The fields after ") " are: state ppid pgrp session tty_nr tpgid flags.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 7 {
		return false
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	return err == nil && flags&0x00200000 != 0 // PF_KTHREAD
}

// hasVar reports whether env, NUL-separated, holds the entry kv (which
// ends with its NUL).
func hasVar(env, kv []byte) bool {
	for off := 0; ; {
		i := bytes.Index(env[off:], kv)
		if i < 0 {
			return false
		}
		if at := off + i; at == 0 || env[at-1] == 0 {
			return true
		}
		off += i + 1
	}
}
