package addrtable

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ctdb-go/ctdb-go/daemon/config"
	"github.com/ctdb-go/ctdb-go/daemon/eventscript"
	"github.com/ctdb-go/ctdb-go/daemon/lease"
	"github.com/ctdb-go/ctdb-go/daemon/netif"
)

// transcript is shared by the fake kernel's calls and the fake events, so
// tests see their order.
type transcript struct {
	mu    sync.Mutex
	lines []string
}

func (t *transcript) add(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, fmt.Sprintf(format, args...))
}

func (t *transcript) take() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.lines
	t.lines = nil
	return out
}

// kernel is netif.Fake whose calls also go to the shared transcript and
// whose AddAddr can be made to pause (a freeze between computing a
// lifetime and the netlink call).
type kernel struct {
	*netif.Fake
	tr    *transcript
	mu    sync.Mutex
	pause time.Duration
}

func (k *kernel) AddAddr(iface string, p netip.Prefix, lft time.Duration) error {
	k.mu.Lock()
	pause := k.pause
	k.pause = 0
	k.mu.Unlock()
	time.Sleep(pause)
	k.tr.add("addr add %s dev %s valid_lft %d", p, iface, int(lft/time.Second))
	return k.Fake.AddAddr(iface, p, lft)
}

func (k *kernel) DelAddr(iface string, p netip.Prefix) error {
	k.tr.add("addr del %s dev %s", p, iface)
	return k.Fake.DelAddr(iface, p)
}

// events records event runs; fail makes an event fail.
type events struct {
	tr   *transcript
	mu   sync.Mutex
	fail map[string]bool
}

func (e *events) Run(ctx context.Context, event string, args ...string) eventscript.Result {
	e.tr.add("event %s %s", event, strings.Join(args, " "))
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fail[event] {
		return eventscript.Result{Event: event, Status: eventscript.StatusFailed}
	}
	return eventscript.Result{Event: event, Status: eventscript.StatusOK}
}

// fakeLease is a lease keeper whose term the test sets.
type fakeLease struct {
	mu  sync.Mutex
	t   lease.Term
	chg chan struct{}
}

func (f *fakeLease) Term() lease.Term {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeLease) Changed() <-chan struct{} { return f.chg }

func (f *fakeLease) set(end time.Time, id uint64) {
	f.mu.Lock()
	f.t = lease.Term{End: end, ID: id}
	f.mu.Unlock()
	select {
	case f.chg <- struct{}{}:
	default:
	}
}

type bed struct {
	t     *Table
	k     *kernel
	ev    *events
	lease *fakeLease
	tr    *transcript
	stop  func() // ends Run and waits for it; idempotent
}

var (
	ip1 = netip.MustParseAddr("198.18.1.1")
	ip2 = netip.MustParseAddr("198.18.1.2")
)

// newBed runs a table for two public addresses on eth1 with a 2.5 s
// lease (kernel lifetime 2 s).
func newBed(t *testing.T) *bed {
	t.Helper()
	tr := &transcript{}
	f := netif.NewFake()
	f.AddLink("eth1", true)
	b := &bed{k: &kernel{Fake: f, tr: tr}, ev: &events{tr: tr, fail: map[string]bool{}},
		lease: &fakeLease{chg: make(chan struct{}, 1)}, tr: tr}
	b.lease.set(time.Now().Add(2500*time.Millisecond), 1)
	tab, err := New(Config{
		PNN: 0, Kernel: b.k, Events: b.ev, Lease: b.lease,
		Public: []config.PublicAddress{
			{Prefix: netip.MustParsePrefix("198.18.1.1/24"), Ifaces: []string{"eth1"}},
			{Prefix: netip.MustParsePrefix("198.18.1.2/24"), Ifaces: []string{"eth1"}},
		},
		Links: map[string]bool{"eth1": true},
	})
	if err != nil {
		t.Fatal(err)
	}
	b.t = tab
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tab.Run(ctx); close(done) }()
	b.stop = func() { cancel(); <-done }
	t.Cleanup(b.stop)
	return b
}

// takeThenRelease is what a take of 198.18.1.1 and then its release do,
// in order.
var takeThenRelease = []string{
	"addr add 198.18.1.1/24 dev eth1 valid_lft 2",
	"event takeip eth1 198.18.1.1 24",
	"event releaseip eth1 198.18.1.1 24",
	"addr del 198.18.1.1/24 dev eth1",
}

func TestTakeThenRelease(t *testing.T) {
	b := newBed(t)
	if err := b.t.Take(context.Background(), ip1); err != nil {
		t.Fatal(err)
	}
	if err := b.t.Release(context.Background(), ip1, 2); err != nil {
		t.Fatal(err)
	}
	want := takeThenRelease
	if diff := cmp.Diff(want, b.tr.take()); diff != "" {
		t.Errorf("take then release (-want +got):\n%s", diff)
	}
	if got := b.k.Transcript(); !slices.Contains(got, "arp probe 198.18.1.1 dev eth1") || !slices.Contains(got, "arp announce 198.18.1.1 dev eth1") {
		t.Errorf("kernel calls %q: want a probe before the take and an announcement", got)
	}
	if c := b.t.Counters(); c.Takes != 1 || c.Releases != 1 {
		t.Errorf("counters = %+v", c)
	}
}

func TestTakeFailures(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(b *bed)
		addr      netip.Addr
		wantFault bool
		wantErr   string
	}{
		{"not public", func(*bed) {}, netip.MustParseAddr("198.18.9.9"), false, "not a public address"},
		{"no link", func(b *bed) { b.t.SetLink("eth1", false) }, ip1, false, "no interface with link up"},
		{"no lease", func(b *bed) { b.lease.set(time.Now().Add(500*time.Millisecond), 1) }, ip1, false, "no lease"},
		{"takeip fails", func(b *bed) { b.ev.fail["takeip"] = true }, ip1, true, "takeip event failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBed(t)
			tt.setup(b)
			err := b.t.Take(context.Background(), tt.addr)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || IsFault(err) != tt.wantFault {
				t.Fatalf("Take = %v (fault %v), want %q (fault %v)", err, IsFault(err), tt.wantErr, tt.wantFault)
			}
			if h := b.t.Snapshot().Held; len(h) != 0 {
				t.Errorf("held after a failed take: %v", h)
			}
			if ps, _ := b.k.Addrs("eth1"); len(ps) != 0 {
				t.Errorf("kernel has %v after a failed take", ps)
			}
		})
	}
}

// TestRefreshNeverRevivesReleased: a refresh picked before a release must
// not add the address back after it.
func TestRefreshNeverRevivesReleased(t *testing.T) {
	b := newBed(t)
	if err := b.t.Take(context.Background(), ip1); err != nil {
		t.Fatal(err)
	}
	var e *entry
	b.t.do(func(s *tableState) { e = s.held[ip1] }) // what a refresh pass would have picked
	if err := b.t.Release(context.Background(), ip1, -1); err != nil {
		t.Fatal(err)
	}
	b.tr.take()
	if err := b.t.setLifetime(ip1, e); err != nil {
		t.Fatal(err)
	}
	if got := b.tr.take(); len(got) != 0 {
		t.Errorf("a refresh after the release did %q", got)
	}
}

// TestLapsedTermDropsOldAddresses: addresses added under a lease that
// lapsed (a node frozen past its lease, then granted again) are removed,
// never refreshed: the kernel may have dropped them and another node may
// hold them by now.
func TestLapsedTermDropsOldAddresses(t *testing.T) {
	b := newBed(t)
	for _, a := range []netip.Addr{ip1, ip2} {
		if err := b.t.Take(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	b.tr.take()
	b.lease.set(time.Now().Add(2500*time.Millisecond), 2) // lapsed, renewed
	eventually(t, "addresses dropped", func() bool { return len(b.t.Snapshot().Held) == 0 })
	eventually(t, "releaseip run for both", func() bool {
		got := b.tr.take()
		slices.Sort(got)
		return slices.Equal(got, []string{
			"addr del 198.18.1.1/24 dev eth1", "addr del 198.18.1.2/24 dev eth1",
			"event releaseip eth1 198.18.1.1 24", "event releaseip eth1 198.18.1.2 24",
		})
	})
	if c := b.t.Counters(); c.LeaseDrops != 2 {
		t.Errorf("lease drops = %d, want 2", c.LeaseDrops)
	}
}

// TestSlowAddNeverOutlivesLease: an add that returns after the lease has
// less than its lifetime left is set again, or the address removed.
func TestSlowAddNeverOutlivesLease(t *testing.T) {
	tests := []struct {
		name  string
		lease time.Duration // left when the add starts
		lft   time.Duration
		pause time.Duration // frozen inside the add
		want  []string
		err   bool
	}{
		{"no time left after the freeze", 1500 * time.Millisecond, time.Second, time.Second,
			[]string{"addr add 198.18.1.1/24 dev eth1 valid_lft 1", "addr del 198.18.1.1/24 dev eth1"}, true},
		{"a second left after the freeze", 2500 * time.Millisecond, 2 * time.Second, 800 * time.Millisecond,
			[]string{"addr add 198.18.1.1/24 dev eth1 valid_lft 2", "addr add 198.18.1.1/24 dev eth1 valid_lft 1"}, false},
		{"no freeze", 2500 * time.Millisecond, 2 * time.Second, 0,
			[]string{"addr add 198.18.1.1/24 dev eth1 valid_lft 2"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBed(t)
			b.lease.set(time.Now().Add(tt.lease), 1)
			free, err := b.t.acquire(context.Background(), ip1) // first: no refresh may pick it
			if err != nil {
				t.Fatal(err)
			}
			e := &entry{prefix: netip.MustParsePrefix("198.18.1.1/24"), iface: "eth1", term: 1}
			b.t.do(func(s *tableState) { s.held[ip1] = e })
			b.k.mu.Lock()
			b.k.pause = tt.pause
			b.k.mu.Unlock()
			err = b.t.addWithinLease(ip1, e, tt.lft)
			free()
			if (err != nil) != tt.err {
				t.Errorf("addWithinLease = %v, want error %v", err, tt.err)
			}
			if diff := cmp.Diff(tt.want, b.tr.take()); diff != "" {
				t.Errorf("kernel calls (-want +got):\n%s", diff)
			}
			if _, held := b.t.Snapshot().Held[ip1]; held == tt.err {
				t.Errorf("held = %v after addWithinLease error %v", held, err)
			}
		})
	}
}

// TestScanKeepsPendingTakes: an address another operation is acting on
// (a take between its registration and its kernel add) is not vanished;
// one whose take completed and that is gone from the kernel is; a public
// address found in the kernel that was never given is foreign.
func TestScanKeepsPendingTakes(t *testing.T) {
	b := newBed(t)
	// Lifetimes that need no refresh yet, so only the scan acts on them.
	exp := time.Now().Add(2 * time.Second)
	pending := &entry{prefix: netip.MustParsePrefix("198.18.1.1/24"), iface: "eth1", term: 1, kernelExp: exp}
	gone := &entry{prefix: netip.MustParsePrefix("198.18.1.2/24"), iface: "eth1", term: 1, kernelExp: exp, taken: time.Now().Add(-time.Second)}
	b.t.do(func(s *tableState) { s.held[ip1], s.held[ip2] = pending, gone })
	free, err := b.t.acquire(context.Background(), ip1)
	if err != nil {
		t.Fatal(err)
	}
	b.t.scan()
	sn := b.t.Snapshot()
	if _, ok := sn.Held[ip1]; !ok {
		t.Error("a take's address whose kernel add is pending was dropped as vanished")
	}
	if _, ok := sn.Held[ip2]; ok {
		t.Error("an added address missing from the kernel was kept")
	}
	free()

	b.k.Fake.AddAddr("eth1", netip.MustParsePrefix("198.18.1.2/24"), time.Hour) // by hand
	b.t.scan()
	if got := b.t.Snapshot().Foreign; !cmp.Equal(got, map[netip.Addr]string{ip2: "eth1"}) {
		t.Errorf("foreign = %v, want 198.18.1.2 on eth1", got)
	}
	// The leader releases it.
	if err := b.t.Release(context.Background(), ip2, -1); err != nil {
		t.Fatal(err)
	}
	if ps, _ := b.k.Addrs("eth1"); slices.Contains(ps, netip.MustParsePrefix("198.18.1.2/24")) {
		t.Error("a foreign address survived its release")
	}
}

// TestOneOperationPerAddress: a release that comes while a take is
// running waits for it, and then removes the address.
func TestOneOperationPerAddress(t *testing.T) {
	b := newBed(t)
	b.k.mu.Lock()
	b.k.pause = 300 * time.Millisecond
	b.k.mu.Unlock()
	took := make(chan error, 1)
	go func() { took <- b.t.Take(context.Background(), ip1) }()
	time.Sleep(100 * time.Millisecond)
	if err := b.t.Release(context.Background(), ip1, -1); err != nil {
		t.Fatal(err)
	}
	if err := <-took; err != nil {
		t.Fatal(err)
	}
	want := takeThenRelease
	if diff := cmp.Diff(want, b.tr.take()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestStoppedTableRefuses: after Run returns, calls fail and nothing
// outlives it.
func TestStoppedTableRefuses(t *testing.T) {
	b := newBed(t)
	if err := b.t.Take(context.Background(), ip1); err != nil {
		t.Fatal(err)
	}
	b.stop()
	if err := b.t.Take(context.Background(), ip2); err == nil {
		t.Error("Take after Run returned succeeded")
	}
	before := len(b.k.Transcript())
	time.Sleep(announceRepeat + 200*time.Millisecond)
	if got := b.k.Transcript(); len(got) != before {
		t.Errorf("kernel calls after Run returned: %q", got[before:])
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
