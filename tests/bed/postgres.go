package bed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// PostgresUser is the system user the bed's PostgreSQL clusters run as
// (Debian's postgresql package creates it).
const PostgresUser = "postgres"

// PostgresPort is the port the bed's clusters listen on, in each node's
// namespace.
const PostgresPort = 5432

// PostgresBinDir finds Debian's PostgreSQL server programs: the newest
// /usr/lib/postgresql/<version>/bin that has postgres, initdb, pg_isready
// and psql.
func PostgresBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		ok := true
		for _, p := range []string{"postgres", "initdb", "pg_isready", "psql"} {
			if _, err := os.Stat(filepath.Join(d, p)); err != nil {
				ok = false
			}
		}
		if ok {
			return d, nil
		}
	}
	return "", errors.New("bed: no PostgreSQL server in /usr/lib/postgresql/*/bin: apt-get install postgresql")
}

// Postgres is a PostgreSQL cluster of its own in one node's namespace:
// initdb'd into <node dir>/postgres (owned by the postgres user), socket
// directory that same directory, listening on every address of the
// namespace (listen_addresses '*': the public addresses the node holds
// and 127.0.0.1), trust authentication for local connections, 127.0.0.1
// and 198.18.0.0/15, cluster_name n<i> (so `SHOW cluster_name` tells
// which node answered), durability off. The bed's Close stops it.
type Postgres struct {
	Node   int
	Dir    string // socket directory; the data directory is Dir/data
	Port   int
	BinDir string
	Log    string // the server's stdout and stderr

	b *Bed
	// mu guards proc.
	mu   sync.Mutex
	proc *Proc
}

// StartPostgres creates node i's PostgreSQL cluster and starts it inside
// the node's namespace; it returns once the server accepts connections.
func (b *Bed) StartPostgres(i int) (*Postgres, error) {
	if err := b.checkNode(i); err != nil {
		return nil, err
	}
	bin, err := PostgresBinDir()
	if err != nil {
		return nil, err
	}
	u, err := user.Lookup(PostgresUser)
	if err != nil {
		return nil, fmt.Errorf("bed: PostgreSQL runs as user %s: %w", PostgresUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	pg := &Postgres{
		Node:   i,
		Dir:    filepath.Join(b.Paths(i).Dir, "postgres"),
		Port:   PostgresPort,
		BinDir: bin,
		b:      b,
	}
	pg.Log = filepath.Join(b.Paths(i).Dir, "log.postgres")
	// The run directory is root's (0700); the postgres user must reach
	// its directory below it.
	if err := os.Chmod(b.root, 0o711); err != nil {
		return nil, fmt.Errorf("bed: node %d PostgreSQL: %w", i, err)
	}
	if err := os.Mkdir(pg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("bed: node %d PostgreSQL: %w", i, err)
	}
	if err := os.Chown(pg.Dir, uid, gid); err != nil {
		return nil, fmt.Errorf("bed: node %d PostgreSQL: %w", i, err)
	}
	initdb := pg.asPostgres(filepath.Join(bin, "initdb"), "-D", pg.data(), "-U", PostgresUser,
		"-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C", "--no-instructions")
	b.logf("node %d: %s", i, strings.Join(initdb, " "))
	out, err := run(initdb, "")
	if err != nil {
		return nil, fmt.Errorf("bed: node %d: initdb: %w", i, err)
	}
	if out.Code != 0 {
		return nil, fmt.Errorf("bed: node %d: initdb: %s", i, out)
	}
	hba, err := os.OpenFile(filepath.Join(pg.data(), "pg_hba.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, fmt.Errorf("bed: node %d PostgreSQL: %w", i, err)
	}
	_, err = fmt.Fprintf(hba, "# the ctdb-go test bed's networks\nhost all all %s trust\n", TestNet)
	if cerr := hba.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("bed: node %d PostgreSQL: writing pg_hba.conf: %w", i, err)
	}
	if err := b.addCloser(pg.close); err != nil {
		return nil, err
	}
	if err := pg.Start(); err != nil {
		return nil, err
	}
	return pg, nil
}

func (pg *Postgres) data() string { return filepath.Join(pg.Dir, "data") }

// asPostgres is argv run as the postgres user (setpriv execs it: no
// process in between, so a signal to the PID reaches PostgreSQL).
func (pg *Postgres) asPostgres(argv ...string) []string {
	return append([]string{"setpriv", "--reuid=" + PostgresUser, "--regid=" + PostgresUser,
		"--init-groups", "--"}, argv...)
}

// Start starts the server (again) in the node's namespace and waits until
// it accepts connections.
func (pg *Postgres) Start() error {
	pg.mu.Lock()
	if pg.proc != nil {
		if exited, _ := pg.proc.Exited(); !exited {
			pg.mu.Unlock()
			return fmt.Errorf("bed: node %d: PostgreSQL already running (pid %d)", pg.Node, pg.proc.PID)
		}
	}
	pg.mu.Unlock()
	argv := pg.asPostgres(filepath.Join(pg.BinDir, "postgres"), "-D", pg.data(),
		"-k", pg.Dir, "-p", strconv.Itoa(pg.Port),
		"-c", "listen_addresses=*",
		"-c", fmt.Sprintf("cluster_name=n%d", pg.Node),
		"-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off",
		"-c", "shared_buffers=16MB", "-c", "max_connections=20", "-c", "logging_collector=off")
	p, err := pg.b.Spawn(pg.b.nodes[pg.Node], fmt.Sprintf("node %d postgres", pg.Node), pg.Log, argv...)
	if err != nil {
		return fmt.Errorf("bed: node %d: starting PostgreSQL: %w", pg.Node, err)
	}
	pg.mu.Lock()
	pg.proc = p
	pg.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), CmdTimeout)
	defer cancel()
	for {
		out, err := runContext(ctx, []string{"ip", "netns", "exec", pg.b.nodes[pg.Node],
			filepath.Join(pg.BinDir, "pg_isready"), "-q", "-h", pg.Dir, "-p", strconv.Itoa(pg.Port)}, "", nil)
		if err == nil && out.Code == 0 {
			pg.b.logf("node %d: PostgreSQL accepts connections (pid %d)", pg.Node, p.PID)
			return nil
		}
		if exited, werr := p.Exited(); exited {
			return fmt.Errorf("bed: node %d: PostgreSQL exited (%v); log ends:\n%s", pg.Node, werr, fileTail(pg.Log, 20))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bed: node %d: PostgreSQL does not accept connections after %v; log ends:\n%s",
				pg.Node, CmdTimeout, fileTail(pg.Log, 20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop shuts the server down as `pg_ctl stop -m fast` does (SIGINT: the
// clients are disconnected, new connections refused) and waits for the
// postmaster to exit. Stopping a stopped server does nothing.
func (pg *Postgres) Stop() error {
	return pg.signalWait(syscall.SIGINT, "fast shutdown")
}

// Kill SIGKILLs the postmaster (a crash); its backends exit when they
// notice. It waits for the postmaster to be gone.
func (pg *Postgres) Kill() error {
	return pg.signalWait(syscall.SIGKILL, "SIGKILL")
}

func (pg *Postgres) signalWait(sig syscall.Signal, what string) error {
	pg.mu.Lock()
	p := pg.proc
	pg.mu.Unlock()
	if p == nil {
		return nil
	}
	if exited, _ := p.Exited(); exited {
		return nil
	}
	pg.b.logf("node %d: PostgreSQL %s (pid %d)", pg.Node, what, p.PID)
	p.intended.Store(true)
	if err := p.Signal(sig); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), CmdTimeout)
	defer cancel()
	if err := p.Wait(ctx); err != nil && ctx.Err() != nil {
		return fmt.Errorf("bed: node %d: PostgreSQL: %w", pg.Node, err)
	}
	return nil
}

// Running reports whether the postmaster runs.
func (pg *Postgres) Running() bool {
	pg.mu.Lock()
	p := pg.proc
	pg.mu.Unlock()
	if p == nil {
		return false
	}
	exited, _ := p.Exited()
	return !exited
}

// close is the bed's closer: a fast shutdown, so that nothing writes into
// the run directory while the bed removes it.
func (pg *Postgres) close() error { return pg.Stop() }

// PSQL runs psql inside namespace ns against host (an address or a
// socket directory) on PostgresPort as user postgres, database postgres,
// with PGCONNECT_TIMEOUT=connectTimeout (whole seconds, at least 1), and
// returns its output: unaligned, tuples only (-XAtq). A failed connection
// or query is a non-zero Output.Code, not an error.
func (b *Bed) PSQL(ctx context.Context, ns, host string, connectTimeout time.Duration, sql string) (Output, error) {
	bin, err := PostgresBinDir()
	if err != nil {
		return Output{}, err
	}
	secs := max(int(connectTimeout/time.Second), 1)
	argv := []string{"ip", "netns", "exec", ns, filepath.Join(bin, "psql"),
		"-XAtq", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", strconv.Itoa(PostgresPort),
		"-U", PostgresUser, "-d", "postgres", "-c", sql}
	return runContext(ctx, argv, "", []string{"PGCONNECT_TIMEOUT=" + strconv.Itoa(secs)})
}

// fileTail is the last n lines of a file.
func fileTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// PostgresScriptOptions is script.options for 50.postgres in the bed, bin
// being PostgresBinDir: every node checks its own server over TCP on
// 127.0.0.1 (inside its namespace), with a check query that also asserts
// the server is a primary.
func PostgresScriptOptions(bin string) string {
	return fmt.Sprintf(`CTDB_POSTGRES_HOST=127.0.0.1
CTDB_POSTGRES_PORT=%d
CTDB_POSTGRES_USER=%s
CTDB_POSTGRES_DBNAME=postgres
CTDB_POSTGRES_TIMEOUT=2
CTDB_POSTGRES_PG_ISREADY=%s
CTDB_POSTGRES_PSQL=%s
CTDB_POSTGRES_CHECK_QUERY="SELECT NOT pg_is_in_recovery()"
CTDB_POSTGRES_CHECK_EXPECT=t
`, PostgresPort, PostgresUser, filepath.Join(bin, "pg_isready"), filepath.Join(bin, "psql"))
}
