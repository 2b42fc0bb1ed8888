package daemon

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/ctdb-go/ctdb-go/daemon/control"
	"github.com/ctdb-go/ctdb-go/daemon/netif"
	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
)

// oneNode starts a one-node daemon on a fake kernel and a mock network,
// with a monitor script that fails while the file it returns exists.
func oneNode(t testing.TB) (*Daemon, *netif.Fake, string, context.CancelFunc, func() error) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "etc")
	fail := filepath.Join(dir, "fail")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(conf, "events.d"), 0o755))
	must(os.WriteFile(filepath.Join(conf, "nodes"), []byte("198.18.0.1\n"), 0o644))
	must(os.WriteFile(filepath.Join(conf, "public_addresses"), []byte("198.18.1.1/24 eth1\n198.18.1.2/24 eth1\n"), 0o644))
	must(os.WriteFile(filepath.Join(conf, "ctdb.conf"), []byte("[cluster]\n\tname = unit\n"), 0o644))
	script := "#!/bin/sh\n[ \"$1\" = monitor ] && [ -e " + fail + " ] && { echo service down; exit 1; }\nexit 0\n"
	must(os.WriteFile(filepath.Join(conf, "events.d", "50.check"), []byte(script), 0o755))

	k := netif.NewFake()
	k.AddLink("eth0", true)
	k.AddLink("eth1", true)
	must(k.AddAddr("eth0", netip.MustParsePrefix("198.18.0.1/24"), 1000*time.Hour))
	k.Reset()

	d, err := New(Config{
		ConfigDir: conf, RunDir: filepath.Join(dir, "run"), StateDir: filepath.Join(dir, "state"),
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		Kernel:          k,
		MemberTransport: (&memberlist.MockNetwork{}).NewTransport("pnn-0"),
	})
	must(err)
	d.firstMonitor = 10 * time.Millisecond // CTDB waits 2 s; the tests need not
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	var runErr error
	go func() { runErr = d.Run(ctx); close(stopped) }()
	wait := func() error {
		select {
		case <-stopped:
			return runErr
		case <-time.After(20 * time.Second):
			t.Error("daemon did not stop")
			return nil
		}
	}
	t.Cleanup(func() { cancel(); wait() })
	return d, k, fail, cancel, wait
}

// eventually polls cond for up to 15 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func held(k *netif.Fake) []string {
	ps, _ := k.Addrs("eth1")
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	slices.Sort(out)
	return out
}

func TestOneNodeTakesReleasesAndDrops(t *testing.T) {
	t.Parallel()
	d, k, fail, cancel, wait := oneNode(t)
	want := []string{"198.18.1.1/24", "198.18.1.2/24"}
	eventually(t, "both addresses on eth1", func() bool { return slices.Equal(held(k), want) })

	// Every add carries a lifetime within the 2 s lease: valid_lft 1.
	for _, l := range k.Transcript() {
		if strings.HasPrefix(l, "addr add 198.18.1.") && !strings.HasSuffix(l, "valid_lft 1") {
			t.Errorf("transcript line %q: want valid_lft 1 (whole seconds left on a 2 s lease)", l)
		}
	}
	if !slices.Contains(k.Transcript(), "sysctl net.ipv4.conf.eth1.promote_secondaries=1") {
		t.Errorf("promote_secondaries not set on eth1; transcript:\n%s", strings.Join(k.Transcript(), "\n"))
	}

	// Carrier lost: both addresses go without waiting for a monitor run.
	k.SetLinkUp("eth1", false)
	eventually(t, "addresses released on link loss", func() bool { return len(held(k)) == 0 })
	k.SetLinkUp("eth1", true)
	eventually(t, "addresses back on link return", func() bool { return slices.Equal(held(k), want) })

	// The monitor fails: the node turns UNHEALTHY and releases everything.
	if err := os.WriteFile(fail, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	mon := d.mon
	d.mu.Unlock()
	mon.Trigger("test")
	eventually(t, "addresses released when unhealthy", func() bool { return len(held(k)) == 0 })
	st := d.status(context.Background())
	if f := st.Nodes[0].Flags; f&nodeflag.Unhealthy == 0 {
		t.Errorf("status flags = %v, want UNHEALTHY", f)
	}
	es := d.Handle(context.Background(), control.Request{Command: control.CmdEvent, Args: []string{"status", "monitor"}, Target: control.ThisNode})
	if es.ExitCode != 1 || !strings.Contains(string(es.Data), "service down") {
		t.Errorf("event status monitor = exit %d %s, want exit 1 with the script's output", es.ExitCode, es.Data)
	}
	if err := os.Remove(fail); err != nil {
		t.Fatal(err)
	}
	mon.Trigger("test")
	eventually(t, "addresses back when healthy", func() bool { return slices.Equal(held(k), want) })

	// Shutdown releases everything.
	cancel()
	if err := wait(); err != nil {
		t.Errorf("Run() = %v", err)
	}
	if h := held(k); len(h) != 0 {
		t.Errorf("addresses left after shutdown: %v", h)
	}
}

func TestDisableSurvivesRestart(t *testing.T) {
	t.Parallel()
	d, k, _, cancel, wait := oneNode(t)
	eventually(t, "addresses taken", func() bool { return len(held(k)) == 2 })
	r := d.Handle(context.Background(), control.Request{Command: control.CmdDisable, Target: control.ThisNode})
	if r.ExitCode != 0 {
		t.Fatalf("disable: %+v", r)
	}
	eventually(t, "addresses released on disable", func() bool { return len(held(k)) == 0 })
	r = d.Handle(context.Background(), control.Request{Command: control.CmdDisable, Target: control.ThisNode})
	if r.Notice != "Node 0 is already disabled" {
		t.Errorf("second disable notice = %q, want %q", r.Notice, "Node 0 is already disabled")
	}
	cancel()
	wait()
	f, _, err := reopenAdmin(t, d)
	if err != nil {
		t.Fatal(err)
	}
	if f&nodeflag.PermanentlyDisabled == 0 {
		t.Errorf("admin flags after restart = %v, want DISABLED kept", f)
	}
}

func reopenAdmin(t *testing.T, d *Daemon) (nodeflag.Flags, time.Time, error) {
	t.Helper()
	d2, err := New(Config{ConfigDir: d.cfg.ConfigDir, RunDir: d.cfg.RunDir, StateDir: d.cfg.StateDir,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Kernel: d.k,
		MemberTransport: (&memberlist.MockNetwork{}).NewTransport("pnn-0")})
	if err != nil {
		return 0, time.Time{}, err
	}
	defer d2.store.Close()
	return d2.store.AdminFlags()
}

func TestMetricsText(t *testing.T) {
	t.Parallel()
	d, k, _, _, _ := oneNode(t)
	eventually(t, "addresses taken", func() bool { return len(held(k)) == 2 })
	m := d.metricsText()
	for _, want := range []string{
		`ctdb_public_addresses_held{pnn="0"} 2`,
		`ctdb_is_leader{pnn="0"} 1`,
		`ctdb_node_flags{pnn="0"} 0`,
		`# TYPE ctdb_takes_total counter`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
}

// TestReleaseIPGetsConnectionCount: releaseip is told how many
// established TCP connections ctdbd counted on the address.
func TestReleaseIPGetsConnectionCount(t *testing.T) {
	t.Parallel()
	_, k, fail, _, _ := oneNode(t)
	want := []string{"198.18.1.1/24", "198.18.1.2/24"}
	eventually(t, "both addresses on eth1", func() bool { return slices.Equal(held(k), want) })
	dir := filepath.Dir(fail)
	log := filepath.Join(dir, "releases")
	script := "#!/bin/sh\n[ \"$1\" = releaseip ] && echo \"$3: ${CTDB_TCP_CONNECTIONS:-unset}\" >>" + log + "\nexit 0\n"
	if err := os.WriteFile(filepath.Join(dir, "etc", "events.d", "50.check"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	k.SetTCPConnections(netip.MustParseAddr("198.18.1.1"), 3)
	k.SetLinkUp("eth1", false)
	eventually(t, "addresses released on link loss", func() bool { return len(held(k)) == 0 })
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(string(b)), "\n")
	slices.Sort(got)
	wantLines := []string{"198.18.1.1: 198.18.1.1 3", "198.18.1.2: 198.18.1.2 0"}
	if !slices.Equal(got, wantLines) {
		t.Errorf("releaseip saw %q, want %q", got, wantLines)
	}
}
