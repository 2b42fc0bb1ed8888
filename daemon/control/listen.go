package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// DefaultRunDir is where ctdbd puts its socket unless told otherwise.
const DefaultRunDir = "/run/ctdb"

// DefaultSocket is the control socket's default path; the CLI uses it
// when neither --socket nor $CTDB_SOCKET says otherwise.
const DefaultSocket = DefaultRunDir + "/" + SocketName

// staleProbe bounds the dial that tells a live daemon from a stale socket.
const staleProbe = time.Second

// Listen opens the control socket at path: it creates the run directory
// (0755) when it is missing, removes a socket file left by a daemon that
// died, and makes the new socket root-only (0600). It refuses to touch a
// socket some daemon still answers on, and a path that is not a socket.
func Listen(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("creating run dir %s: %w", dir, err)
		}
		// MkdirAll honours the umask; the run dir is meant to be 0755.
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, fmt.Errorf("creating run dir %s: %w", dir, err)
		}
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	// Between bind and chmod the socket has the umask's mode; the
	// SO_PEERCRED check in Server covers that moment.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("making %s root-only: %w", path, err)
	}
	return l, nil
}

// removeStale deletes path when it is a socket nobody listens on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket; not removing it", path)
	}
	c, err := net.DialTimeout("unix", path, staleProbe)
	if err == nil {
		c.Close()
		return fmt.Errorf("another ctdbd is running: %s", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("checking for a running ctdbd on %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing stale socket %s: %w", path, err)
	}
	return nil
}
