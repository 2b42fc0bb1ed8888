// Command ctdbd is ctdb-go's node daemon: run it on every node of the
// cluster. It only parses flags, sets up logging, and runs the daemon
// until SIGTERM or SIGINT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"

	"github.com/ctdb-go/ctdb-go/daemon"
	"github.com/ctdb-go/ctdb-go/daemon/config"
	"github.com/ctdb-go/ctdb-go/daemon/netif"
	"github.com/ctdb-go/ctdb-go/recoverd/clusterlock"
)

var version = "dev"

func main() {
	// ctdbd runs itself as its cluster lock helper (see
	// clusterlock.SelfHelperSpec): ctdbd --lock-helper FILE.
	if len(os.Args) == 3 && os.Args[1] == clusterlock.HelperFlag {
		os.Exit(clusterlock.RunFcntlHelper(os.Args[2], os.Stdout, os.Stderr))
	}
	// ctdbd's live heap is a few MB, so with Go's default GC target
	// (GOGC=100) a takeover run that moves hundreds of addresses collects
	// many times a second. Unless GOGC says otherwise, let the heap grow
	// four times its live size between collections (tens of MB at most).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ctdbd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defBase := os.Getenv("CTDB_BASE")
	if defBase == "" {
		defBase = "/etc/ctdb"
	}
	configDir := fs.String("config-dir", defBase, "configuration directory: ctdb.conf, nodes, public_addresses, script.options, events.d/ ($CTDB_BASE)")
	runDir := fs.String("run-dir", "/run/ctdb", "run directory: the control socket ctdbd.socket")
	stateDir := fs.String("state-dir", "/var/lib/ctdb", "state directory: state.db")
	check := fs.Bool("check-config", false, "check the configuration, print one FILE:LINE: problem per error, and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: ctdbd [--config-dir DIR] [--run-dir DIR] [--state-dir DIR] [--check-config]\n\n")
		fmt.Fprintf(stderr, "ctdbd keeps the cluster's public addresses on its healthy nodes. Run it on every node.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ctdbd: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "ctdb-go", version)
		return 0
	}
	if *check {
		return checkConfig(*configDir, stdout, stderr)
	}

	conf, err := config.Load(*configDir)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	logger, logFile, err := setupLogging(conf.Conf.Logging, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "ctdbd: %v\n", err)
		return 1
	}
	defer logFile.Close()
	for _, w := range conf.Warnings {
		logger.Warn(w.Error())
	}

	d, err := daemon.New(daemon.Config{ConfigDir: *configDir, Conf: conf, RunDir: *runDir, StateDir: *stateDir, Logger: logger, LockHelper: true})
	if err != nil {
		logger.Error("cannot start", "err", err)
		fmt.Fprintf(stderr, "ctdbd: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// SIGHUP reloads (a logrotate postrotate, a keepalived habit): it
	// reopens the log file, rereads the gossip keys and public_addresses,
	// and moves nothing that stays configured. It never stops ctdbd.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := logFile.Reopen(); err != nil {
					logger.Error("reopening the log file", "err", err)
				}
				logger.Info("SIGHUP: reloading")
				if err := d.Reload(ctx); err != nil {
					logger.Error("reload after SIGHUP", "err", err)
				}
			}
		}
	}()
	logger.Info("ctdbd starting", "version", version, "pnn", d.PNN(), "config_dir", *configDir)
	if err := d.Run(ctx); err != nil {
		logger.Error("ctdbd stopped", "err", err)
		fmt.Fprintf(stderr, "ctdbd: %v\n", err)
		return 1
	}
	logger.Info("ctdbd stopped")
	return 0
}

// checkConfig validates the configuration and this host's part in it.
func checkConfig(dir string, stdout, stderr io.Writer) int {
	conf, err := config.Load(dir)
	var errs config.Errors
	if err != nil && !errors.As(err, &errs) {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	if conf != nil {
		if k, kerr := netif.New(netif.Config{}); kerr == nil {
			if local, lerr := k.LocalAddrs(); lerr == nil {
				errs = append(errs, conf.CheckLocal(local)...)
			}
			for _, pa := range conf.PublicAddresses {
				for _, ifc := range pa.Ifaces {
					if !k.LinkExists(ifc) {
						errs = append(errs, config.Error{File: conf.PublicAddressesFile,
							Msg: fmt.Sprintf("unknown interface %s for public address %s", ifc, pa.Prefix)})
					}
				}
			}
		}
		for _, w := range conf.Warnings {
			fmt.Fprintf(stderr, "warning: %v\n", w)
		}
	}
	for _, e := range errs {
		fmt.Fprintln(stderr, e.Error())
	}
	if len(errs) > 0 {
		return 1
	}
	fmt.Fprintf(stdout, "%s: configuration OK\n", dir)
	return 0
}

// setupLogging follows [logging]: location "file:PATH", "stderr" or
// "syslog…" (written to stderr, for journald to collect).
func setupLogging(l config.Logging, stderr io.Writer) (*slog.Logger, *logWriter, error) {
	w := &logWriter{w: stderr}
	if path, ok := strings.CutPrefix(l.Location, "file:"); ok {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, nil, fmt.Errorf("creating log directory: %w", err)
		}
		w.path = path
		if err := w.Reopen(); err != nil {
			return nil, nil, err
		}
	}
	h := slog.NewTextHandler(w, &slog.HandlerOptions{Level: l.Level()})
	return slog.New(h), w, nil
}

// logWriter is where ctdbd logs: stderr, or a file that Reopen opens
// again under its name (after logrotate moved it).
type logWriter struct {
	path string // "" for stderr
	// mu guards w and f.
	mu sync.Mutex
	w  io.Writer
	f  *os.File
}

func (l *logWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// Reopen opens the log file again; a no-op for stderr.
func (l *logWriter) Reopen() error {
	if l.path == "" {
		return nil
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("opening log file: %w", err)
	}
	l.mu.Lock()
	old := l.f
	l.w, l.f = f, f
	l.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// Close closes the log file, if there is one.
func (l *logWriter) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
		l.w = io.Discard
	}
}
