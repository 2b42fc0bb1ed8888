package state

import (
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%s) = %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestAdminPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", FileName) // Open creates the dir
	s := open(t, path)
	f, until, err := s.AdminFlags()
	if err != nil || f != 0 || !until.IsZero() {
		t.Fatalf("AdminFlags() on a new file = %v, %v, %v, want 0, zero, nil", f, until, err)
	}
	wantUntil := time.Date(2026, 9, 1, 12, 0, 0, 5, time.UTC)
	wantFlags := nodeflag.Banned | nodeflag.Stopped
	if err := s.SetAdminFlags(wantFlags, wantUntil); err != nil {
		t.Fatalf("SetAdminFlags() = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	s = open(t, path)
	f, until, err = s.AdminFlags()
	if err != nil {
		t.Fatalf("AdminFlags() = %v", err)
	}
	if f != wantFlags || !until.Equal(wantUntil) {
		t.Errorf("AdminFlags() after reopen = %v, %v, want %v, %v", f, until, wantFlags, wantUntil)
	}
}

func TestSetAdminFlags(t *testing.T) {
	until := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name    string
		in      Admin
		want    Admin
		wantErr string
	}{
		{"disabled", Admin{Flags: nodeflag.PermanentlyDisabled}, Admin{Flags: nodeflag.PermanentlyDisabled}, ""},
		{"ban until dropped without banned", Admin{Flags: nodeflag.Stopped, BanUntil: until}, Admin{Flags: nodeflag.Stopped}, ""},
		{"not an admin flag", Admin{Flags: nodeflag.Unhealthy | nodeflag.Stopped}, Admin{}, "UNHEALTHY are not admin flags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, filepath.Join(t.TempDir(), FileName))
			err := s.SetAdminFlags(tt.in.Flags, tt.in.BanUntil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("SetAdminFlags(%+v) = %v, want error containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("SetAdminFlags(%+v) = %v", tt.in, err)
			}
			f, until, err := s.AdminFlags()
			if got := (Admin{Flags: f, BanUntil: until}); err != nil || got != tt.want {
				t.Errorf("AdminFlags() = %+v, %v, want %+v", got, err, tt.want)
			}
		})
	}
}

func TestUpdateAdminAbortsOnError(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), FileName))
	if err := s.SetAdminFlags(nodeflag.Stopped, time.Time{}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	_, err := s.UpdateAdmin(func(a *Admin) error {
		a.Flags = 0
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateAdmin() = %v, want %v", err, boom)
	}
	if f, _, _ := s.AdminFlags(); f != nodeflag.Stopped {
		t.Errorf("AdminFlags() after aborted update = %v, want STOPPED", f)
	}
	got, err := s.UpdateAdmin(func(a *Admin) error {
		a.Flags |= nodeflag.PermanentlyDisabled
		return nil
	})
	if err != nil || got.Flags != nodeflag.Stopped|nodeflag.PermanentlyDisabled {
		t.Errorf("UpdateAdmin(+disabled) = %+v, %v", got, err)
	}
}

func TestGeneration(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s := open(t, path)
	if g, err := s.Generation(); g != 0 || err != nil {
		t.Fatalf("Generation() on a new file = %d, %v, want 0, nil", g, err)
	}
	steps := []struct {
		set     uint64
		wantErr bool
		want    uint64
	}{
		{5, false, 5},
		{5, false, 5}, // same value is fine
		{4, true, 5},  // refused
		{0, true, 5},
		{9, false, 9},
	}
	for _, st := range steps {
		err := s.SetGeneration(st.set)
		if st.wantErr != errors.Is(err, ErrGenerationDown) {
			t.Errorf("SetGeneration(%d) = %v, want ErrGenerationDown: %v", st.set, err, st.wantErr)
		}
		if g, _ := s.Generation(); g != st.want {
			t.Errorf("after SetGeneration(%d): Generation() = %d, want %d", st.set, g, st.want)
		}
	}
	if g, err := s.NextGeneration(); g != 10 || err != nil {
		t.Errorf("NextGeneration() = %d, %v, want 10, nil", g, err)
	}
	s.Close()
	s = open(t, path)
	if g, err := s.Generation(); g != 10 || err != nil {
		t.Errorf("Generation() after reopen = %d, %v, want 10", g, err)
	}
}

func TestHeldReplaceAll(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s := open(t, path)
	exp := time.Unix(1_800_000_000, 250_000_000).UTC()
	first := []Held{
		{Prefix: netip.MustParsePrefix("198.18.1.1/24"), Iface: "eth1", Expires: exp},
		{Prefix: netip.MustParsePrefix("198.18.1.2/24"), Iface: "eth1", Expires: exp},
		{Prefix: netip.MustParsePrefix("2001:db8::5/64"), Iface: "eth2", Expires: exp},
	}
	if err := s.SetHeld(first); err != nil {
		t.Fatalf("SetHeld() = %v", err)
	}
	second := first[1:2]
	if err := s.SetHeld(second); err != nil {
		t.Fatalf("SetHeld() = %v", err)
	}
	s.Close()
	s = open(t, path)
	got, err := s.Held()
	if err != nil {
		t.Fatalf("Held() = %v", err)
	}
	if diff := cmp.Diff(second, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("Held() mismatch (-want +got):\n%s", diff)
	}
	if err := s.SetHeld(nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Held(); len(got) != 0 || err != nil {
		t.Errorf("Held() after SetHeld(nil) = %v, %v, want empty", got, err)
	}
}

func TestSetHeldRejects(t *testing.T) {
	p := netip.MustParsePrefix("198.18.1.1/24")
	tests := []struct {
		name string
		in   []Held
		want string
	}{
		{"invalid prefix", []Held{{Iface: "eth1"}}, "invalid prefix"},
		{"no iface", []Held{{Prefix: p}}, "has no interface"},
		{"twice", []Held{{Prefix: p, Iface: "eth1"}, {Prefix: netip.MustParsePrefix("198.18.1.1/16"), Iface: "eth2"}}, "listed twice"},
	}
	s := open(t, filepath.Join(t.TempDir(), FileName))
	keep := []Held{{Prefix: p, Iface: "eth1"}}
	if err := s.SetHeld(keep); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.SetHeld(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("SetHeld(%v) = %v, want error containing %q", tt.in, err, tt.want)
			}
			if got, _ := s.Held(); len(got) != 1 || got[0].Prefix != p {
				t.Errorf("Held() after refused SetHeld = %v, want %v unchanged", got, keep)
			}
		})
	}
}

func TestEventResultsAndRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s := open(t, path)
	if v, err := s.EventResult("monitor"); v != nil || err != nil {
		t.Fatalf("EventResult(monitor) on a new file = %q, %v, want nil, nil", v, err)
	}
	if err := s.PutEventResult("monitor", []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutEventResult("monitor", []byte(`{"a":2}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("gone", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("gone"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("never"); err != nil {
		t.Errorf("Delete(never) = %v, want nil", err)
	}
	s.Close()
	s = open(t, path)
	if v, err := s.EventResult("monitor"); string(v) != `{"a":2}` || err != nil {
		t.Errorf("EventResult(monitor) = %q, %v, want {\"a\":2}", v, err)
	}
	if v, err := s.EventResult("takeip"); v != nil || err != nil {
		t.Errorf("EventResult(takeip) = %q, %v, want nil, nil", v, err)
	}
	if v, err := s.Get("k"); string(v) != "v" || err != nil {
		t.Errorf("Get(k) = %q, %v, want v", v, err)
	}
	if v, err := s.Get("gone"); v != nil || err != nil {
		t.Errorf("Get(gone) = %q, %v, want nil, nil", v, err)
	}
}

func TestSecondOpenFailsLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	first := open(t, path)
	_, err := OpenTimeout(path, 100*time.Millisecond)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open() = %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "state.db is locked by another ctdbd") || !strings.Contains(err.Error(), path) {
		t.Errorf("second Open() error = %q, want the path and the lock message", err)
	}
	// Once the first is closed the file opens again.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	open(t, path)
}

func TestCloseIdempotent(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), FileName))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := s.Close(); err != nil {
			t.Errorf("Close() #%d = %v", i+1, err)
		}
	}
	checks := map[string]error{}
	_, _, checks["AdminFlags"] = s.AdminFlags()
	checks["SetGeneration"] = s.SetGeneration(1)
	_, checks["Held"] = s.Held()
	checks["Put"] = s.Put("k", nil)
	_, checks["EventResult"] = s.EventResult("monitor")
	for name, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s := open(t, path)
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, encodeUint64(schemaVersion+1))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(path)
	if err == nil || !strings.Contains(err.Error(), "newer than this ctdbd") {
		t.Errorf("Open() of a newer file = %v, want a schema error", err)
	}
}
