package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
)

// goodFile writes a state.db with admin flags and a generation, closed,
// and returns its path.
func goodFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetAdminFlags(nodeflag.Stopped, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetGeneration(7); err != nil {
		t.Fatal(err)
	}
	for i := range 50 { // a few pages of records
		if err := s.Put(strings.Repeat("k", 10)+string(rune('a'+i%26))+string(rune('a'+i/26)), bytes.Repeat([]byte{byte(i)}, 300)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// rewrite changes a closed file's bytes with fn.
func rewrite(t *testing.T, path string, fn func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fn(b), 0o600); err != nil {
		t.Fatal(err)
	}
}

// boltUpdate changes a closed file through bbolt itself.
func boltUpdate(t *testing.T, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptMovedAside: every kind of corrupt file is moved aside, an
// Error names both paths, and the store starts empty and works.
func TestCorruptMovedAside(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(t *testing.T, path string)
	}{
		{"truncated to 100 bytes", func(t *testing.T, path string) {
			rewrite(t, path, func(b []byte) []byte { return b[:100] })
		}},
		{"truncated to its meta pages", func(t *testing.T, path string) {
			rewrite(t, path, func(b []byte) []byte { return b[:2*os.Getpagesize()+10] })
		}},
		{"random bytes", func(t *testing.T, path string) {
			r := rand.New(rand.NewPCG(1, 2))
			rewrite(t, path, func(b []byte) []byte {
				for i := range b {
					b[i] = byte(r.Uint32())
				}
				return b
			})
		}},
		{"text file", func(t *testing.T, path string) {
			rewrite(t, path, func([]byte) []byte { return []byte("not a database\n") })
		}},
		{"zeroed meta pages", func(t *testing.T, path string) {
			rewrite(t, path, func(b []byte) []byte {
				clear(b[:2*os.Getpagesize()])
				return b
			})
		}},
		{"zeroed data pages", func(t *testing.T, path string) {
			rewrite(t, path, func(b []byte) []byte {
				clear(b[2*os.Getpagesize():])
				return b
			})
		}},
		{"random data pages", func(t *testing.T, path string) {
			r := rand.New(rand.NewPCG(3, 4))
			rewrite(t, path, func(b []byte) []byte {
				for i := 2 * os.Getpagesize(); i < len(b); i++ {
					b[i] = byte(r.Uint32())
				}
				return b
			})
		}},
		{"bad admin record", func(t *testing.T, path string) {
			boltUpdate(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bucketAdmin).Put(keyAdmin, []byte("{bad")) })
		}},
		{"bad held record", func(t *testing.T, path string) {
			boltUpdate(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bucketHeld).Put(keyHeld, []byte(`{"prefix":1}`)) })
		}},
		{"short generation", func(t *testing.T, path string) {
			boltUpdate(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyGeneration, []byte{1, 2, 3}) })
		}},
		{"short schema", func(t *testing.T, path string) {
			boltUpdate(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte{1}) })
		}},
		{"bucket is a value", func(t *testing.T, path string) {
			boltUpdate(t, path, func(tx *bolt.Tx) error {
				if err := tx.DeleteBucket(bucketHeld); err != nil {
					return err
				}
				return tx.Cursor().Bucket().Put(bucketHeld, []byte("x"))
			})
		}},
		{"value is a bucket", func(t *testing.T, path string) {
			boltUpdate(t, path, func(tx *bolt.Tx) error {
				_, err := tx.Bucket(bucketEvents).CreateBucket([]byte("monitor"))
				return err
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := goodFile(t)
			tt.corrupt(t, path)
			orig, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			now := time.Date(2026, 9, 1, 12, 0, 0, 0, time.FixedZone("X", 3600))
			s, err := OpenOptions(path, Options{
				Logger: slog.New(slog.NewTextHandler(&log, nil)),
				Now:    func() time.Time { return now },
			})
			if err != nil {
				t.Fatalf("OpenOptions() = %v, want the file moved aside", err)
			}
			defer s.Close()
			aside := path + ".corrupt-20260901T110000Z"
			if s.MovedAside() != aside {
				t.Errorf("MovedAside() = %q, want %q", s.MovedAside(), aside)
			}
			if got, err := os.ReadFile(aside); err != nil || !bytes.Equal(got, orig) {
				t.Errorf("moved-aside file: %v; same bytes: %v", err, bytes.Equal(got, orig))
			}
			if l := log.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, path) || !strings.Contains(l, aside) {
				t.Errorf("log = %q, want an ERROR naming %s and %s", l, path, aside)
			}
			if f, _, err := s.AdminFlags(); err != nil || f != 0 {
				t.Errorf("AdminFlags() = %v, %v, want an empty store", f, err)
			}
			if g, err := s.Generation(); err != nil || g != 0 {
				t.Errorf("Generation() = %v, %v, want 0", g, err)
			}
			if err := s.Put("k", []byte("v")); err != nil {
				t.Errorf("Put() on the new store = %v", err)
			}
		})
	}
}

// TestCorruptTwiceKeepsBoth: a second corrupt file in the same second
// does not replace the first one moved aside.
func TestCorruptTwiceKeepsBoth(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	now := func() time.Time { return time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC) }
	quiet := slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
	for i, want := range []string{".corrupt-20260901T120000Z", ".corrupt-20260901T120000Z.1"} {
		if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenOptions(path, Options{Logger: quiet, Now: now})
		if err != nil {
			t.Fatalf("OpenOptions() #%d = %v", i+1, err)
		}
		s.Close()
		if s.MovedAside() != path+want {
			t.Errorf("MovedAside() #%d = %q, want %q", i+1, s.MovedAside(), path+want)
		}
	}
}

// TestLockedNotMovedAside: a file another process (here: another bbolt
// handle) holds is an ErrLocked, even when its content is garbage, and
// stays where it is.
func TestLockedNotMovedAside(t *testing.T) {
	path := goodFile(t)
	first := open(t, path)
	_, err := OpenTimeout(path, 50*time.Millisecond)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("OpenTimeout() of a locked file = %v, want ErrLocked", err)
	}
	first.Close()
	matches, _ := filepath.Glob(path + CorruptSuffix + "*")
	if len(matches) != 0 {
		t.Errorf("moved aside: %v", matches)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("state.db: %v", err)
	}
}

// TestUnreadableNotMovedAside: a path that cannot be opened (here a
// directory) is an error, not a corrupt file.
func TestUnreadableNotMovedAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Open() of a directory = %v, want an error naming it", err)
	}
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		t.Errorf("the directory was moved: %v", err)
	}
}

// TestNewerSchemaNotMovedAside: a newer ctdbd's file is refused, kept.
func TestNewerSchemaNotMovedAside(t *testing.T) {
	path := goodFile(t)
	boltUpdate(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, encodeUint64(schemaVersion+1))
	})
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "newer than this ctdbd") {
		t.Errorf("Open() = %v, want a schema error", err)
	}
	if matches, _ := filepath.Glob(path + CorruptSuffix + "*"); len(matches) != 0 {
		t.Errorf("moved aside: %v", matches)
	}
}

// TestRandomDamage damages a good file at random (bytes changed, the file
// cut short, a run of zeros) and checks that Open never crashes or hangs
// and that the store it returns works: it either kept the records or moved
// the file aside. A crash here is a fault or panic bbolt met outside
// Open's guard.
func TestRandomDamage(t *testing.T) {
	n := 100
	if testing.Short() {
		n = 20
	}
	base := goodFile(t)
	orig, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	for i := range n {
		b := bytes.Clone(orig)
		switch i % 3 {
		case 0:
			for range 1 + r.IntN(20) {
				b[r.IntN(len(b))] = byte(r.Uint32())
			}
		case 1:
			b = b[:r.IntN(len(b))]
		case 2:
			off := r.IntN(len(b))
			clear(b[off : off+r.IntN(len(b)-off)])
		}
		if err := os.WriteFile(base, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenOptions(base, Options{Logger: quiet})
		if err != nil && strings.Contains(err.Error(), "newer than this ctdbd") {
			continue // a changed schema byte
		}
		if err != nil {
			t.Fatalf("damage %d: OpenOptions() = %v", i, err)
		}
		if s.MovedAside() != "" {
			os.Remove(s.MovedAside())
		}
		if _, _, err := s.AdminFlags(); err != nil {
			t.Errorf("damage %d: AdminFlags() = %v", i, err)
		}
		if _, err := s.Held(); err != nil {
			t.Errorf("damage %d: Held() = %v", i, err)
		}
		for j := range 3 {
			if err := s.Put(fmt.Sprint("new", j), bytes.Repeat([]byte{1}, 3000)); err != nil {
				t.Errorf("damage %d: Put() = %v", i, err)
			}
		}
		if _, err := s.NextGeneration(); err != nil {
			t.Errorf("damage %d: NextGeneration() = %v", i, err)
		}
		s.Close()
	}
}

// TestFreelistBomb: a damaged freelist page that claims 2^40 free pages
// (bbolt allocates room for them before it checks the file's size) is
// moved aside, not opened.
func TestFreelistBomb(t *testing.T) {
	base := goodFile(t)
	b, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	m0, ok0 := readBoltMeta(b, 0)
	m1, ok1 := readBoltMeta(b, 1)
	if !ok0 || !ok1 {
		t.Fatal("good file has no valid meta pages")
	}
	m := m0
	if m1.txid > m0.txid {
		m = m1
	}
	if m.freelist == boltNoFreelist {
		t.Skip("bbolt wrote no freelist page") // NoFreelistSync
	}
	off := m.freelist * uint64(m.pageSize)
	binary.LittleEndian.PutUint16(b[off+10:], 0xFFFF)
	binary.LittleEndian.PutUint64(b[off+boltPageHeader:], 1<<40)
	if err := os.WriteFile(base, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checkFormat(base); err == nil {
		t.Fatal("checkFormat accepts a freelist of 2^40 pages")
	}
	s, err := OpenOptions(base, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.MovedAside() == "" {
		t.Error("the damaged file was not moved aside")
	}
}

// TestLoopingPages: files a bbolt cursor would walk for ever (its stack
// growing until memory runs out), found by TestRandomDamage and kept:
// inline-page-flags.db has an inline bucket whose page has neither the
// branch nor the leaf flag, which a cursor takes for a branch page whose
// first child is itself.
func TestLoopingPages(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "inline-page-flags.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checkFormat(path); err == nil {
		t.Fatal("checkFormat accepts an inline page that is neither branch nor leaf")
	}
	s, err := OpenOptions(path, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.MovedAside() == "" {
		t.Error("the file was not moved aside")
	}
}
