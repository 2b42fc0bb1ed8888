// Package state is the node's persistent local state: one bbolt file,
// `<state-dir>/state.db`, owned by one ctdbd at a time (the file lock says
// which). It keeps what must survive a daemon restart:
//
//   - the admin flags (`ctdb disable`, `ctdb stop`, `ctdb ban`) with the
//     wall time a ban ends;
//   - the generation, which only grows;
//   - the public addresses this node holds, with the wall time their kernel
//     lifetime ends, so a restarted daemon knows what it may still have
//     configured;
//   - the last result of each event (a blob the eventscript package writes);
//   - small records under keys of the caller's choosing.
//
// Every logical change is one transaction (one commit, two fdatasyncs: about
// 0.2 ms on the test machine, 2-30 ms on slower disks), so callers should
// batch, e.g. replace all held addresses at once rather than one by one.
// A Store is safe for concurrent use.
package state

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
)

// FileName is the database's name inside the state dir.
const FileName = "state.db"

// schemaVersion is written to the file; a file with a higher version was
// written by a newer ctdbd and is refused rather than misread.
const schemaVersion = 1

// DefaultLockTimeout is how long Open waits for another process to release
// the file lock before giving up with ErrLocked.
const DefaultLockTimeout = time.Second

var (
	// ErrLocked means another process (normally a second ctdbd on the same
	// state dir) holds the database's file lock.
	ErrLocked = errors.New("state: state.db is locked by another ctdbd")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("state: closed")
	// ErrGenerationDown is returned by SetGeneration for a lower value
	// than the stored one.
	ErrGenerationDown = errors.New("state: generation may not go down")
)

// Buckets and keys. Names are part of the file format: do not rename.
var (
	bucketMeta    = []byte("meta")    // schema, generation
	bucketAdmin   = []byte("admin")   // keyAdmin: JSON adminRecord
	bucketHeld    = []byte("held")    // keyHeld: JSON []heldRecord
	bucketEvents  = []byte("events")  // event name -> blob
	bucketRecords = []byte("records") // caller's key -> value

	keySchema     = []byte("schema")
	keyGeneration = []byte("generation")
	keyAdmin      = []byte("admin")
	keyHeld       = []byte("held")

	allBuckets = [][]byte{bucketMeta, bucketAdmin, bucketHeld, bucketEvents, bucketRecords}
)

// Store is an open state.db.
type Store struct {
	db         *bolt.DB
	path       string
	movedAside string // where Open moved a corrupt file; "" if it did not

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed, with its directory) the database at path.
// If another process holds it, Open fails after DefaultLockTimeout with an
// error wrapping ErrLocked. A corrupt file is moved aside (see
// OpenOptions); the Error about it goes to slog.Default().
func Open(path string) (*Store, error) {
	return OpenOptions(path, Options{})
}

// OpenTimeout is Open waiting up to timeout for the file lock (0 means
// DefaultLockTimeout).
func OpenTimeout(path string, timeout time.Duration) (*Store, error) {
	return OpenOptions(path, Options{LockTimeout: timeout})
}

// Options are OpenOptions' settings; the zero value is Open's.
type Options struct {
	// LockTimeout is how long to wait for another process's file lock; 0
	// means DefaultLockTimeout.
	LockTimeout time.Duration
	// Logger gets the Error about a corrupt file moved aside; nil means
	// slog.Default().
	Logger *slog.Logger
	// Now names the moved-aside file; nil means time.Now.
	Now func() time.Time
}

// CorruptSuffix starts the name a corrupt state.db is moved to:
// state.db.corrupt-20260901T120000Z (UTC; ".1", ".2"... added if that
// name is taken).
const CorruptSuffix = ".corrupt-"

// OpenOptions is Open with options.
//
// Open reads every record of an existing file, with memory faults turned
// into panics and bbolt's panics recovered, and writes them to a fresh
// file that replaces it (a few KB: milliseconds). So the running daemon
// only ever reads pages this process wrote, and damage bbolt would only
// trip over later (a bad branch key, a freelist entry past the end) never
// reaches it.
//
// A file that cannot be read that way (bad meta pages, a truncated or
// garbage file, a panic inside bbolt, a record this package cannot
// decode) is renamed to PATH.corrupt-<UTC time>, an Error naming both
// paths is logged, and Open starts with an empty store: the admin flags,
// generation and held addresses it held are lost, which a restarted node
// survives (it rejoins with no admin flags set and learns the generation
// from the others); looping through systemd's restarts it would not.
// Store.MovedAside tells the caller where the old file went.
//
// These are errors, the file left alone: the file is locked by another
// process (ErrLocked: a second ctdbd on the same state dir), it cannot be
// opened or read (permissions, a directory), or it was written by a newer
// ctdbd (its schema version is higher than this one's).
func OpenOptions(path string, o Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("opening state db: empty path")
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating state dir: %w", err)
	}
	aside, problem, err := rebuild(path, o)
	if err != nil {
		return nil, err
	}
	if aside != "" {
		o.Logger.Error("state db is corrupt: moved it aside and starting with an empty one (admin flags and held addresses are forgotten)",
			"component", "state", "path", path, "moved_to", aside, "err", problem)
	}
	db, err := lockedOpen(path, o.LockTimeout, nil)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("creating bucket %s: %w", name, err)
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, encodeUint64(schemaVersion))
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return &Store{db: db, path: path, movedAside: aside}, nil
}

// lockedOpen opens path with bbolt, which takes the file lock, and makes
// sure the file locked is still the one at path: another ctdbd's Open may
// have replaced it (rebuild) while this one waited for the lock. opened,
// if not nil, gets bbolt's file as soon as it is open: after a panic
// inside bolt.Open that file is still open and locked.
func lockedOpen(path string, timeout time.Duration, opened func(*os.File)) (*bolt.DB, error) {
	for range 10 {
		var f *os.File
		db, err := bolt.Open(path, 0o600, &bolt.Options{
			Timeout: timeout,
			OpenFile: func(name string, flag int, mode os.FileMode) (*os.File, error) {
				file, err := os.OpenFile(name, flag, mode)
				if err == nil {
					f = file
					if opened != nil {
						opened(file)
					}
				}
				return file, err
			},
		})
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("waited %v for its lock: %w", timeout, ErrLocked)
		}
		if err != nil {
			return nil, err
		}
		locked, err1 := f.Stat()
		named, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(locked, named) {
			return db, nil
		}
		db.Close()
	}
	return nil, errors.New("the file keeps being replaced while its lock is taken")
}

// records is what a state.db holds: bucket -> key -> value.
type records map[string]map[string][]byte

// rebuild replaces the file at path, if there is one, with a fresh copy
// of its records, holding the old file's lock throughout. If the records
// cannot be read, it moves the file aside instead and returns where to
// and why.
func rebuild(path string, o Options) (aside string, problem, err error) {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return "", nil, nil
	}
	var (
		db       *bolt.DB
		f        *os.File // bbolt's, if it opened one
		panicked bool
		recs     records
	)
	problem = checkFormat(path)
	func() {
		if problem != nil {
			return // not for bbolt's eyes
		}
		// bbolt reads the file through mmap: a read outside it (a
		// truncated file, an offset gone wrong) panics here rather than
		// kill the process; so do bbolt's own panics.
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if r := recover(); r != nil {
				problem, panicked = fmt.Errorf("bbolt panicked: %v", r), true
			}
		}()
		var openErr error
		db, openErr = lockedOpen(path, o.LockTimeout, func(file *os.File) { f = file })
		var pe *fs.PathError
		switch {
		case errors.Is(openErr, ErrLocked), errors.As(openErr, &pe):
			err = openErr
			return
		case openErr != nil:
			problem = openErr
			return
		}
		readErr := db.View(func(tx *bolt.Tx) error {
			var err error
			recs, err = readAll(tx)
			return err
		})
		var newer *newerSchemaError
		if errors.As(readErr, &newer) {
			err = readErr
		} else if readErr != nil {
			problem = readErr
		}
	}()
	switch {
	case err != nil:
		if db != nil {
			db.Close()
		}
		return "", nil, fmt.Errorf("opening %s: %w", path, err)
	case problem != nil:
		// bbolt closed its file (and so dropped the lock) when it
		// returned an error; not when it panicked.
		held := db != nil || (panicked && f != nil)
		aside, err = moveAside(path, o.Now(), held)
		if db != nil {
			closeQuietly(db)
		}
		if panicked && f != nil {
			f.Close()
		}
		if err != nil {
			return "", problem, fmt.Errorf("opening %s: %v; moving it aside: %w", path, problem, err)
		}
		return aside, problem, nil
	}
	defer db.Close()
	if err := writeFresh(path, recs); err != nil {
		return "", nil, fmt.Errorf("rewriting %s: %w", path, err)
	}
	return "", nil, nil
}

// readAll copies every record of the known buckets out of tx and checks
// those this package decodes. Reading every key and value touches every
// leaf page; branch pages' keys are never read (the copy has its own).
func readAll(tx *bolt.Tx) (records, error) {
	if fi, err := os.Stat(tx.DB().Path()); err == nil && fi.Size() < tx.Size() {
		return nil, fmt.Errorf("file is %d bytes, its pages need %d: truncated", fi.Size(), tx.Size())
	}
	// Each record takes its bytes and a 16-byte header in the file: more
	// than the file holds means the pages loop.
	var size, budget int64 = 0, tx.Size()
	recs := records{}
	for _, name := range allBuckets {
		b := tx.Bucket(name)
		if b == nil {
			if k, _ := tx.Cursor().Seek(name); bytes.Equal(k, name) {
				return nil, fmt.Errorf("%s is a value, not a bucket", name)
			}
			continue
		}
		m := map[string][]byte{}
		if err := b.ForEach(func(k, v []byte) error {
			switch {
			case v == nil:
				return fmt.Errorf("bucket %s: %q is a bucket, not a value", name, k)
			case len(k) == 0 || len(k) > bolt.MaxKeySize:
				return fmt.Errorf("bucket %s: a key of %d bytes", name, len(k))
			case len(v) > bolt.MaxValueSize:
				return fmt.Errorf("bucket %s: a value of %d bytes", name, len(v))
			}
			if size += 16 + int64(len(k)+len(v)); size > budget {
				return fmt.Errorf("bucket %s: more records than the file holds: its pages loop", name)
			}
			m[string(k)] = bytes.Clone(v)
			return nil
		}); err != nil {
			return nil, err
		}
		recs[string(name)] = m
	}
	meta := recs[string(bucketMeta)]
	if v, ok := meta[string(keySchema)]; ok {
		got, err := decodeUint64(v)
		if err != nil {
			return nil, fmt.Errorf("reading schema version: %w", err)
		}
		switch {
		case got > schemaVersion && got < 256:
			return nil, &newerSchemaError{got}
		case got > schemaVersion:
			return nil, fmt.Errorf("schema version %d is not one any ctdbd writes", got)
		}
	}
	if v, ok := meta[string(keyGeneration)]; ok {
		if _, err := decodeUint64(v); err != nil {
			return nil, fmt.Errorf("reading generation: %w", err)
		}
	}
	if v, ok := recs[string(bucketAdmin)][string(keyAdmin)]; ok {
		var r adminRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return nil, fmt.Errorf("decoding admin record: %w", err)
		}
	}
	if v, ok := recs[string(bucketHeld)][string(keyHeld)]; ok {
		var rs []heldRecord
		if err := json.Unmarshal(v, &rs); err != nil {
			return nil, fmt.Errorf("decoding held addresses: %w", err)
		}
	}
	return recs, nil
}

// writeFresh writes recs to a new file beside path and renames it over
// path.
func writeFresh(path string, recs records) error {
	tmp := path + ".new"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: DefaultLockTimeout})
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			b, err := tx.CreateBucket(name)
			if err != nil {
				return err
			}
			for k, v := range recs[string(name)] {
				if err := b.Put([]byte(k), v); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// closeQuietly closes a db that may be in a bad state; false if it
// panicked.
func closeQuietly(db *bolt.DB) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	db.Close()
	return true
}

// newerSchemaError is a file written by a newer ctdbd: refused, not
// moved aside.
type newerSchemaError struct{ got uint64 }

func (e *newerSchemaError) Error() string {
	return fmt.Sprintf("schema version %d is newer than this ctdbd's (%d)", e.got, schemaVersion)
}

// moveAside renames a corrupt file to PATH.corrupt-<now in UTC>. Unless
// this process holds its lock (held), it takes the lock first, so that a
// file another ctdbd opened in the meantime is not pulled from under it.
func moveAside(path string, now time.Time, held bool) (string, error) {
	if !held {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return "", err
		}
		defer f.Close()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return "", ErrLocked
			}
			return "", fmt.Errorf("locking it: %w", err)
		}
	}
	stamp := path + CorruptSuffix + now.UTC().Format("20060102T150405Z")
	aside := stamp
	for i := 1; ; i++ {
		if _, err := os.Lstat(aside); errors.Is(err, fs.ErrNotExist) {
			break
		}
		aside = fmt.Sprintf("%s.%d", stamp, i)
	}
	return aside, os.Rename(path, aside)
}

// Path is the file Open was given.
func (s *Store) Path() string { return s.path }

// MovedAside is where Open moved a corrupt file before it started an
// empty one; "" when it did not.
func (s *Store) MovedAside() string { return s.movedAside }

// Close closes the database and releases the file lock. It waits for
// running transactions, may be called more than once and always returns
// the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// update and view run fn in a transaction, mapping bbolt's "not open" to
// ErrClosed.
func (s *Store) update(fn func(*bolt.Tx) error) error {
	return closedErr(s.db.Update(fn))
}

func (s *Store) view(fn func(*bolt.Tx) error) error {
	return closedErr(s.db.View(fn))
}

func closedErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// Admin is the administrator's part of a node's flags.
type Admin struct {
	// Flags holds only nodeflag.Admin bits: PermanentlyDisabled, Stopped,
	// Banned.
	Flags nodeflag.Flags
	// BanUntil is the wall time a ban ends; zero unless Banned.
	BanUntil time.Time
}

type adminRecord struct {
	Flags    uint32    `json:"flags"`
	BanUntil time.Time `json:"ban_until,omitzero"`
}

// AdminFlags returns the stored admin flags and the wall time a ban ends
// (zero unless Banned); a new database has none. An expired ban is
// returned as stored: the caller decides.
func (s *Store) AdminFlags() (nodeflag.Flags, time.Time, error) {
	var a Admin
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		a, err = getAdmin(tx)
		return err
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("reading admin flags: %w", err)
	}
	return a.Flags, a.BanUntil, nil
}

// SetAdminFlags replaces the admin flags. Flags outside nodeflag.Admin are
// an error; banUntil is dropped when Banned is not set.
func (s *Store) SetAdminFlags(flags nodeflag.Flags, banUntil time.Time) error {
	_, err := s.UpdateAdmin(func(cur *Admin) error {
		*cur = Admin{Flags: flags, BanUntil: banUntil}
		return nil
	})
	return err
}

// UpdateAdmin reads the admin flags, lets fn change them and stores the
// result, all in one transaction; fn's error aborts it. It returns what
// was stored.
func (s *Store) UpdateAdmin(fn func(*Admin) error) (Admin, error) {
	var out Admin
	err := s.update(func(tx *bolt.Tx) error {
		a, err := getAdmin(tx)
		if err != nil {
			return err
		}
		if err := fn(&a); err != nil {
			return err
		}
		if extra := a.Flags &^ nodeflag.Admin; extra != 0 {
			return fmt.Errorf("flags %v are not admin flags", extra)
		}
		if a.Flags&nodeflag.Banned == 0 {
			a.BanUntil = time.Time{}
		}
		v, err := json.Marshal(adminRecord{Flags: uint32(a.Flags), BanUntil: a.BanUntil.Round(0)})
		if err != nil {
			return err
		}
		out = a
		return tx.Bucket(bucketAdmin).Put(keyAdmin, v)
	})
	if err != nil {
		return Admin{}, fmt.Errorf("storing admin flags: %w", err)
	}
	return out, nil
}

func getAdmin(tx *bolt.Tx) (Admin, error) {
	v := tx.Bucket(bucketAdmin).Get(keyAdmin)
	if v == nil {
		return Admin{}, nil
	}
	var r adminRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return Admin{}, fmt.Errorf("decoding admin record: %w", err)
	}
	return Admin{Flags: nodeflag.Flags(r.Flags), BanUntil: r.BanUntil}, nil
}

// Generation returns the stored generation; 0 in a new database.
func (s *Store) Generation() (uint64, error) {
	var g uint64
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		g, err = getGeneration(tx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("reading generation: %w", err)
	}
	return g, nil
}

// SetGeneration stores g. A value below the stored one is refused with an
// error wrapping ErrGenerationDown; the same value is accepted.
func (s *Store) SetGeneration(g uint64) error {
	err := s.update(func(tx *bolt.Tx) error {
		cur, err := getGeneration(tx)
		if err != nil {
			return err
		}
		if g < cur {
			return fmt.Errorf("%d is below the stored %d: %w", g, cur, ErrGenerationDown)
		}
		return tx.Bucket(bucketMeta).Put(keyGeneration, encodeUint64(g))
	})
	if err != nil {
		return fmt.Errorf("storing generation: %w", err)
	}
	return nil
}

// NextGeneration adds one to the stored generation and returns the new
// value, in one transaction.
func (s *Store) NextGeneration() (uint64, error) {
	var g uint64
	err := s.update(func(tx *bolt.Tx) error {
		cur, err := getGeneration(tx)
		if err != nil {
			return err
		}
		if cur == ^uint64(0) {
			return errors.New("generation would overflow")
		}
		g = cur + 1
		return tx.Bucket(bucketMeta).Put(keyGeneration, encodeUint64(g))
	})
	if err != nil {
		return 0, fmt.Errorf("advancing generation: %w", err)
	}
	return g, nil
}

func getGeneration(tx *bolt.Tx) (uint64, error) {
	v := tx.Bucket(bucketMeta).Get(keyGeneration)
	if v == nil {
		return 0, nil
	}
	return decodeUint64(v)
}

// Held is a public address this node holds (or last held).
type Held struct {
	Prefix netip.Prefix
	Iface  string
	// Expires is the wall time the address's kernel lifetime ends.
	Expires time.Time
}

type heldRecord struct {
	Prefix  netip.Prefix `json:"prefix"`
	Iface   string       `json:"iface"`
	Expires time.Time    `json:"expires,omitzero"`
}

// Held returns the stored held addresses in the order they were stored;
// nil when there are none.
func (s *Store) Held() ([]Held, error) {
	var out []Held
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketHeld).Get(keyHeld)
		if v == nil {
			return nil
		}
		var rs []heldRecord
		if err := json.Unmarshal(v, &rs); err != nil {
			return fmt.Errorf("decoding held addresses: %w", err)
		}
		for _, r := range rs {
			out = append(out, Held(r))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading held addresses: %w", err)
	}
	return out, nil
}

// SetHeld replaces all held addresses with hs in one transaction. Every
// entry needs a valid prefix and an interface; an address may appear once.
func (s *Store) SetHeld(hs []Held) error {
	rs := make([]heldRecord, 0, len(hs))
	seen := make(map[netip.Addr]bool, len(hs))
	for _, h := range hs {
		switch {
		case !h.Prefix.IsValid():
			return fmt.Errorf("storing held addresses: invalid prefix %v", h.Prefix)
		case h.Iface == "":
			return fmt.Errorf("storing held addresses: %v has no interface", h.Prefix)
		case seen[h.Prefix.Addr()]:
			return fmt.Errorf("storing held addresses: %v listed twice", h.Prefix.Addr())
		}
		seen[h.Prefix.Addr()] = true
		rs = append(rs, heldRecord{Prefix: h.Prefix, Iface: h.Iface, Expires: h.Expires.Round(0)})
	}
	v, err := json.Marshal(rs)
	if err != nil {
		return fmt.Errorf("storing held addresses: %w", err)
	}
	err = s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketHeld).Put(keyHeld, v)
	})
	if err != nil {
		return fmt.Errorf("storing held addresses: %w", err)
	}
	return nil
}

// PutEventResult stores the last result of event (an opaque blob; the
// eventscript package writes JSON).
func (s *Store) PutEventResult(event string, data []byte) error {
	if event == "" {
		return errors.New("storing event result: empty event name")
	}
	err := s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEvents).Put([]byte(event), data)
	})
	if err != nil {
		return fmt.Errorf("storing result of %s: %w", event, err)
	}
	return nil
}

// EventResult returns the stored result of event; nil, nil when there is
// none.
func (s *Store) EventResult(event string) ([]byte, error) {
	v, err := s.get(bucketEvents, event)
	if err != nil {
		return nil, fmt.Errorf("reading result of %s: %w", event, err)
	}
	return v, nil
}

// Put stores a small record under key, replacing any previous value.
func (s *Store) Put(key string, value []byte) error {
	if key == "" {
		return errors.New("storing record: empty key")
	}
	err := s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRecords).Put([]byte(key), value)
	})
	if err != nil {
		return fmt.Errorf("storing record %s: %w", key, err)
	}
	return nil
}

// Get returns the record under key; nil, nil when there is none.
func (s *Store) Get(key string) ([]byte, error) {
	v, err := s.get(bucketRecords, key)
	if err != nil {
		return nil, fmt.Errorf("reading record %s: %w", key, err)
	}
	return v, nil
}

// Delete removes the record under key; a missing key is not an error.
func (s *Store) Delete(key string) error {
	err := s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRecords).Delete([]byte(key))
	})
	if err != nil {
		return fmt.Errorf("deleting record %s: %w", key, err)
	}
	return nil
}

// get copies a value out of its transaction (bbolt's slices are only
// valid inside it).
func (s *Store) get(bucket []byte, key string) ([]byte, error) {
	if key == "" {
		return nil, errors.New("empty key")
	}
	var out []byte
	err := s.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucket).Get([]byte(key)); v != nil {
			out = bytes.Clone(v)
		}
		return nil
	})
	return out, err
}

func encodeUint64(v uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, v)
}

func decodeUint64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("want 8 bytes, have %d", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}
