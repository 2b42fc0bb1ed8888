package netif

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var pfx = netip.MustParsePrefix

func TestFakeTranscript(t *testing.T) {
	f := NewFake()
	f.AddLink("eth1", true)
	ctx := context.Background()
	holder := net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 1}
	f.SetProbeAnswer(netip.MustParseAddr("198.18.1.6"), holder)

	steps := []error{
		f.PromoteSecondaries("eth1"),
		f.AddAddr("eth1", pfx("198.18.1.5/24"), 3900*time.Millisecond),
		f.Announce("eth1", netip.MustParseAddr("198.18.1.5")),
		f.AddAddr("eth1", pfx("198.18.1.5/24"), 2*time.Second),
		f.AddAddr("eth1", pfx("2001:2::5/64"), 2*time.Second),
		f.Announce("eth1", netip.MustParseAddr("2001:2::5")),
		f.DelAddr("eth1", pfx("198.18.1.5/24")),
		f.DelAddr("eth1", pfx("198.18.1.5/24")), // absent: no error, still a call
		// Failures are not recorded.
		f.AddAddr("eth1", pfx("198.18.1.7/24"), 500*time.Millisecond),
		f.AddAddr("eth9", pfx("198.18.1.7/24"), 2*time.Second),
	}
	for i, want := range []bool{false, false, false, false, false, false, false, false, true, true} {
		if (steps[i] != nil) != want {
			t.Errorf("step %d: error %v, want error %v", i, steps[i], want)
		}
	}
	if mac, err := f.Probe(ctx, "eth1", netip.MustParseAddr("198.18.1.6"), 10*time.Millisecond); err != nil || !bytesEqual(mac, holder) {
		t.Errorf("Probe(198.18.1.6) = %v, %v; want %v", mac, err, holder)
	}
	if mac, err := f.Probe(ctx, "eth1", netip.MustParseAddr("198.18.1.8"), 10*time.Millisecond); err != nil || mac != nil {
		t.Errorf("Probe(198.18.1.8) = %v, %v; want nobody", mac, err)
	}

	want := []string{
		"sysctl net.ipv4.conf.eth1.promote_secondaries=1",
		"addr add 198.18.1.5/24 dev eth1 valid_lft 3",
		"arp announce 198.18.1.5 dev eth1",
		"addr add 198.18.1.5/24 dev eth1 valid_lft 2",
		"addr add 2001:2::5/64 dev eth1 valid_lft 2",
		"ndp announce 2001:2::5 dev eth1",
		"addr del 198.18.1.5/24 dev eth1",
		"addr del 198.18.1.5/24 dev eth1",
		"arp probe 198.18.1.6 dev eth1",
		"arp probe 198.18.1.8 dev eth1",
	}
	if diff := cmp.Diff(want, f.Transcript()); diff != "" {
		t.Errorf("Transcript() mismatch (-want +got):\n%s", diff)
	}
	if got, _ := f.Addrs("eth1"); !cmp.Equal(got, []netip.Prefix{pfx("2001:2::5/64")}, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })) {
		t.Errorf("Addrs(eth1) = %v, want [2001:2::5/64]", got)
	}
	f.Reset()
	if got := f.Transcript(); len(got) != 0 {
		t.Errorf("Transcript() after Reset = %q, want empty", got)
	}
}

func bytesEqual(a, b net.HardwareAddr) bool { return a.String() == b.String() }

func TestFakeLifetimes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := NewFake()
		f.AddLink("eth1", true)
		p := pfx("198.18.1.5/24")
		if err := f.AddAddr("eth1", p, 2500*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		details := func() []AddrInfo {
			t.Helper()
			d, err := f.AddrDetails("eth1")
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		if diff := cmp.Diff([]AddrInfo{{Prefix: p, ValidLft: 2 * time.Second}}, details(), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
			t.Errorf("AddrDetails mismatch (-want +got):\n%s", diff)
		}
		time.Sleep(1500 * time.Millisecond)
		// Refreshed with 2 s at t=1.5 s: now expires at 3.5 s.
		if err := f.AddAddr("eth1", p, 2*time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1900 * time.Millisecond) // t=3.4 s
		if got := details(); len(got) != 1 {
			t.Fatalf("at 3.4 s after a refresh to 3.5 s: %v, want the address", got)
		}
		time.Sleep(100 * time.Millisecond) // t=3.5 s
		if got := details(); len(got) != 0 {
			t.Errorf("at 3.5 s: %v, want the address expired", got)
		}
	})
}

func TestFakePromoteSecondaries(t *testing.T) {
	for _, promote := range []bool{false, true} {
		f := NewFake()
		f.AddLink("eth1", true)
		if promote {
			if err := f.PromoteSecondaries("eth1"); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range []string{"198.18.1.5/24", "198.18.1.6/24", "198.18.2.1/24", "198.18.1.7/25"} {
			if err := f.AddAddr("eth1", pfx(p), 5*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.DelAddr("eth1", pfx("198.18.1.5/24")); err != nil {
			t.Fatal(err)
		}
		want := []netip.Prefix{pfx("198.18.2.1/24"), pfx("198.18.1.7/25")}
		if promote {
			want = append([]netip.Prefix{pfx("198.18.1.6/24")}, want...)
		}
		got, _ := f.Addrs("eth1")
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
			t.Errorf("promote=%v: after deleting the primary (-want +got):\n%s", promote, diff)
		}
	}
}

func TestFakeWatchLinks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := NewFake()
		f.AddLink("eth1", true)
		ctx, cancel := context.WithCancel(context.Background())
		ch, err := f.WatchLinks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Changes made before anyone reads are queued, in order.
		f.SetLinkUp("eth1", false)
		f.SetLinkUp("eth1", false) // no change: no event
		f.SetLinkUp("eth1", true)
		f.AddLink("eth2", false)
		f.RemoveLink("eth2")
		want := []LinkEvent{
			{Iface: "eth1", Exists: true},
			{Iface: "eth1", Up: true, Exists: true},
			{Iface: "eth2", Exists: true},
			{Iface: "eth2"},
		}
		var got []LinkEvent
		for range want {
			got = append(got, <-ch)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("events mismatch (-want +got):\n%s", diff)
		}
		if up, err := f.LinkUp("eth1"); !up || err != nil {
			t.Errorf("LinkUp(eth1) = %v, %v; want true", up, err)
		}
		if f.LinkExists("eth2") {
			t.Errorf("LinkExists(eth2) after RemoveLink")
		}
		cancel()
		synctest.Wait()
		if _, ok := <-ch; ok {
			t.Errorf("channel open after cancel")
		}
	})
}

func TestFakeErrorsAndState(t *testing.T) {
	f := NewFake()
	f.AddLink("eth1", true)
	f.AddLink("eth2", false)
	boom := errors.New("boom")
	f.SetError("AddAddr", boom)
	if err := f.AddAddr("eth1", pfx("198.18.1.5/24"), 2*time.Second); !errors.Is(err, boom) {
		t.Errorf("AddAddr with injected error = %v", err)
	}
	f.SetError("AddAddr", nil)
	if err := f.AddAddr("eth1", pfx("198.18.1.5/24"), 2*time.Second); err != nil {
		t.Errorf("AddAddr after clearing = %v", err)
	}
	if err := f.AddAddr("eth2", pfx("198.18.2.5/24"), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := f.AddAddr("eth2", pfx("198.18.1.5/32"), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	all, _ := f.AllAddrs()
	wantAll := map[string][]netip.Prefix{
		"eth1": {pfx("198.18.1.5/24")},
		"eth2": {pfx("198.18.2.5/24"), pfx("198.18.1.5/32")},
	}
	cmpPrefix := cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })
	if diff := cmp.Diff(wantAll, all, cmpPrefix); diff != "" {
		t.Errorf("AllAddrs mismatch (-want +got):\n%s", diff)
	}
	local, _ := f.LocalAddrs()
	if diff := cmp.Diff([]netip.Addr{netip.MustParseAddr("198.18.1.5"), netip.MustParseAddr("198.18.2.5")}, local,
		cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("LocalAddrs mismatch (-want +got):\n%s", diff)
	}
	if mac, _ := f.HardwareAddr("eth2"); mac.String() != "02:00:00:00:00:02" {
		t.Errorf("HardwareAddr(eth2) = %v", mac)
	}
	if _, err := f.LinkUp("eth9"); !errors.Is(err, ErrNoLink) {
		t.Errorf("LinkUp(eth9) = %v, want ErrNoLink", err)
	}
	f.SetBond("bond0", BondStatus{Mode: Mode8023AD, MIIUp: true})
	b, ok, err := f.Bond("bond0")
	if !ok || err != nil || b.Problem() != "No active slaves for 802.ad bond device bond0" {
		t.Errorf("Bond(bond0) = %+v, %v, %v", b, ok, err)
	}
	if _, ok, _ := f.Bond("eth1"); ok {
		t.Errorf("Bond(eth1) ok")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Probe(ctx, "eth1", netip.MustParseAddr("198.18.1.9"), time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("Probe with a cancelled context = %v", err)
	}
	if diff := cmp.Diff([]string{
		"addr add 198.18.1.5/24 dev eth1 valid_lft 2",
		"addr add 198.18.2.5/24 dev eth2 valid_lft 2",
		"addr add 198.18.1.5/32 dev eth2 valid_lft 2",
	}, f.Transcript(), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Transcript mismatch (-want +got):\n%s", diff)
	}
}
