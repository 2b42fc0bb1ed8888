package netif

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// kernel is every method the daemon may use; both implementations must
// offer all of them.
type kernel interface {
	AddAddr(iface string, p netip.Prefix, lifetime time.Duration) error
	DelAddr(iface string, p netip.Prefix) error
	Addrs(iface string) ([]netip.Prefix, error)
	AddrDetails(iface string) ([]AddrInfo, error)
	AllAddrs() (map[string][]netip.Prefix, error)
	LocalAddrs() ([]netip.Addr, error)
	LinkUp(iface string) (bool, error)
	LinkExists(iface string) bool
	WatchLinks(ctx context.Context) (<-chan LinkEvent, error)
	Probe(ctx context.Context, iface string, ip netip.Addr, wait time.Duration) (net.HardwareAddr, error)
	Announce(iface string, ip netip.Addr) error
	PromoteSecondaries(iface string) error
	Bond(iface string) (BondStatus, bool, error)
	HardwareAddr(iface string) (net.HardwareAddr, error)
	Close() error
}

var (
	_ kernel = (*Linux)(nil)
	_ kernel = (*Fake)(nil)
)

func TestLifetimeSeconds(t *testing.T) {
	tests := []struct {
		d       time.Duration
		want    uint32
		wantErr bool
	}{
		{d: 0, wantErr: true},
		{d: -time.Second, wantErr: true},
		{d: 999 * time.Millisecond, wantErr: true},
		{d: time.Second, want: 1},
		{d: 1999 * time.Millisecond, want: 1},
		{d: 2 * time.Second, want: 2},
		{d: 2*time.Second + time.Nanosecond, want: 2},
		{d: 3750 * time.Millisecond, want: 3},
		{d: time.Hour, want: 3600},
		{d: 0xFFFFFFFE * time.Second, want: 0xFFFFFFFE},
		{d: 0xFFFFFFFF * time.Second, wantErr: true}, // the kernel's "forever"
	}
	for _, tt := range tests {
		t.Run(tt.d.String(), func(t *testing.T) {
			got, err := lifetimeSeconds(tt.d)
			if (err != nil) != tt.wantErr {
				t.Fatalf("lifetimeSeconds(%v) error = %v, want error %v", tt.d, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("lifetimeSeconds(%v) = %d, want %d", tt.d, got, tt.want)
			}
		})
	}
}

func TestBroadcast(t *testing.T) {
	tests := []struct{ p, want string }{
		{"198.18.1.5/24", "198.18.1.255"},
		{"198.18.1.5/16", "198.18.255.255"},
		{"198.18.1.5/30", "198.18.1.7"},
		{"198.18.1.5/25", "198.18.1.127"},
		{"198.18.1.200/25", "198.18.1.255"},
	}
	for _, tt := range tests {
		if got := broadcast(netip.MustParsePrefix(tt.p)).String(); got != tt.want {
			t.Errorf("broadcast(%s) = %s, want %s", tt.p, got, tt.want)
		}
	}
}

func TestCheckPrefix(t *testing.T) {
	for _, s := range []string{"198.18.1.5/24", "2001:2::5/64", "198.18.1.5/32"} {
		if err := checkPrefix(netip.MustParsePrefix(s)); err != nil {
			t.Errorf("checkPrefix(%s) = %v", s, err)
		}
	}
	for _, p := range []netip.Prefix{{}, netip.MustParsePrefix("::ffff:198.18.1.5/120")} {
		if err := checkPrefix(p); err == nil {
			t.Errorf("checkPrefix(%v) gave no error", p)
		}
	}
}

func TestAddAddrRejectsShortLifetimeFirst(t *testing.T) {
	// Checked before the kernel is asked, so this runs without privileges
	// and on an interface that does not exist.
	l := newLinux(t, "")
	err := l.AddAddr("nif-none", netip.MustParsePrefix("198.18.1.5/24"), 900*time.Millisecond)
	if err == nil {
		t.Fatal("AddAddr with 900ms lifetime gave no error")
	}
}

func TestMissingLink(t *testing.T) {
	l := newLinux(t, "")
	const iface = "nif-none"
	p := netip.MustParsePrefix("198.18.1.5/24")
	if l.LinkExists(iface) {
		t.Errorf("LinkExists(%s) = true", iface)
	}
	checks := map[string]error{}
	_, checks["LinkUp"] = l.LinkUp(iface)
	_, checks["Addrs"] = l.Addrs(iface)
	_, checks["HardwareAddr"] = l.HardwareAddr(iface)
	checks["DelAddr"] = l.DelAddr(iface, p)
	checks["AddAddr"] = l.AddAddr(iface, p, 2*time.Second)
	checks["Announce"] = l.Announce(iface, p.Addr())
	_, checks["Probe"] = l.Probe(context.Background(), iface, p.Addr(), time.Millisecond)
	for name, err := range checks {
		if !errors.Is(err, ErrNoLink) {
			t.Errorf("%s on a missing link: error %v, want one wrapping ErrNoLink", name, err)
		}
	}
}

func TestLoopback(t *testing.T) {
	l := newLinux(t, "")
	if !l.LinkExists("lo") {
		t.Fatal("LinkExists(lo) = false")
	}
	up, err := l.LinkUp("lo")
	if err != nil {
		t.Fatalf("LinkUp(lo): %v", err)
	}
	if !up {
		t.Errorf("LinkUp(lo) = false, want true")
	}
	addrs, err := l.Addrs("lo")
	if err != nil {
		t.Fatalf("Addrs(lo): %v", err)
	}
	found := false
	for _, p := range addrs {
		found = found || p == netip.MustParsePrefix("127.0.0.1/8")
	}
	if !found {
		t.Errorf("Addrs(lo) = %v, want 127.0.0.1/8 among them", addrs)
	}
	infos, err := l.AddrDetails("lo")
	if err != nil {
		t.Fatalf("AddrDetails(lo): %v", err)
	}
	for _, a := range infos {
		if a.Prefix == netip.MustParsePrefix("127.0.0.1/8") && !a.Permanent {
			t.Errorf("AddrDetails(lo): 127.0.0.1/8 is not permanent: %+v", a)
		}
	}
	local, err := l.LocalAddrs()
	if err != nil {
		t.Fatalf("LocalAddrs: %v", err)
	}
	found = false
	for _, a := range local {
		found = found || a == netip.MustParseAddr("127.0.0.1")
	}
	if !found {
		t.Errorf("LocalAddrs() = %v, want 127.0.0.1 among them", local)
	}
	all, err := l.AllAddrs()
	if err != nil {
		t.Fatalf("AllAddrs: %v", err)
	}
	if _, ok := all["lo"]; !ok {
		t.Errorf("AllAddrs() has no lo: %v", all)
	}
	// Nobody can answer on loopback: nil at once, nothing sent.
	if mac, err := l.Probe(context.Background(), "lo", netip.MustParseAddr("127.0.0.1"), time.Second); mac != nil || err != nil {
		t.Errorf("Probe on lo = %v, %v; want nil, nil", mac, err)
	}
	if err := l.Announce("lo", netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Errorf("Announce on lo = %v, want nil", err)
	}
}

func TestClose(t *testing.T) {
	l, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := l.WatchLinks(ctx)
	if err != nil {
		t.Fatalf("WatchLinks: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close ends the watch and waits for it, so the channel is closed.
	// (Events queued before Close may still be read.)
	for open := true; open; {
		select {
		case _, open = <-ch:
		default:
			t.Fatal("WatchLinks channel still open after Close")
		}
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := l.Addrs("lo"); !errors.Is(err, ErrClosed) {
		t.Errorf("Addrs after Close: %v, want ErrClosed", err)
	}
	if _, err := l.WatchLinks(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("WatchLinks after Close: %v, want ErrClosed", err)
	}
}
