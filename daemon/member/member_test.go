package member

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/memberlist"

	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
)

func TestJoinMetaAndEvents(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil, "prod", 3, true, nil)
	c.waitAlive([]int{0, 1, 2}, 0, 1, 2)

	// Addresses are the peers' configured ones, and every node starts
	// unhealthy with no leader.
	got := c.nodes[0].m.Members()
	var want []Peer
	for i, a := range c.addrs() {
		want = append(want, Peer{PNN: i, Addr: a, Alive: true, Meta: Meta{PNN: i, Flags: nodeflag.Unhealthy, Leader: NoLeader}})
	}
	if diff := cmp.Diff(want, got, equateAddr); diff != "" {
		t.Errorf("pnn 0 Members() (-want +got):\n%s", diff)
	}

	c.nodes[0].waitEvent("join of pnn 2", func(ev Event) bool { return ev.Kind == Join && ev.Peer.PNN == 2 })

	meta := Meta{PNN: 99 /* ignored */, Flags: nodeflag.PermanentlyDisabled, Generation: 7, Leader: 0}
	if err := c.nodes[1].m.SetMeta(meta); err != nil {
		t.Fatalf("SetMeta() = %v", err)
	}
	wantMeta := Meta{PNN: 1, Flags: nodeflag.PermanentlyDisabled, Generation: 7, Leader: 0}
	ev := c.nodes[0].waitEvent("update of pnn 1", func(ev Event) bool { return ev.Kind == Update && ev.Peer.PNN == 1 })
	if diff := cmp.Diff(wantMeta, ev.Peer.Meta); diff != "" {
		t.Errorf("update event meta (-want +got):\n%s", diff)
	}
	for _, i := range []int{1, 2} {
		waitFor(t, fmt.Sprintf("pnn %d to see pnn 1's meta", i), func() bool {
			for _, p := range c.nodes[i].m.Members() {
				if p.PNN == 1 {
					return p.Meta == wantMeta
				}
			}
			return false
		})
	}
}

func TestMetaSetBeforeRun(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil, "prod", 2, false, nil)
	want := Meta{PNN: 1, Generation: 3, Leader: 1}
	if err := c.nodes[1].m.SetMeta(want); err != nil {
		t.Fatalf("SetMeta() = %v", err)
	}
	c.nodes[0].start()
	c.nodes[1].start()
	c.waitAlive([]int{0, 1}, 0)
	waitFor(t, "pnn 0 to see pnn 1's first meta", func() bool { return c.nodes[0].m.Members()[1].Meta == want })
}

func TestGracefulLeave(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil, "prod", 3, true, nil)
	c.waitAlive([]int{0, 1, 2}, 0, 1, 2)
	c.nodes[2].stop()
	for _, i := range []int{0, 1} {
		ev := c.nodes[i].waitEvent("leave of pnn 2", func(ev Event) bool { return ev.Kind == Leave && ev.Peer.PNN == 2 })
		if ev.Peer.Alive || ev.Peer.Addr != c.nodes[2].tr.addrPort() {
			t.Errorf("pnn %d: leave event peer = %+v, want not alive at %v", i, ev.Peer, c.nodes[2].tr.addrPort())
		}
	}
	c.waitAlive([]int{0, 1}, 0, 1)
}

func TestFailureDetectionAndPartitionHeal(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil, "prod", 3, true, nil)
	c.waitAlive([]int{0, 1, 2}, 0, 1, 2)

	// pnn 2 falls silent, as when killed or cut off: the others declare it
	// dead, and it declares them dead.
	c.net.partition(1, c.nodes[2].tr)
	c.nodes[0].waitEvent("pnn 2 failing", func(ev Event) bool { return ev.Kind == Leave && ev.Peer.PNN == 2 })
	c.waitAlive([]int{0, 1}, 0, 1)
	c.waitAlive([]int{2}, 2)

	// Healed, only the rejoin loop brings them together again: dead nodes
	// are neither probed nor pushed/pulled with.
	c.net.partition(0, c.nodes[2].tr)
	c.waitAlive([]int{0, 1, 2}, 0, 1, 2)
	c.nodes[0].waitEvent("pnn 2 rejoining", func(ev Event) bool { return ev.Kind == Join && ev.Peer.PNN == 2 })
}

func TestStartOneAtATime(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil, "prod", 3, false, nil)
	c.nodes[0].start()
	c.waitAlive([]int{0}, 0)
	c.nodes[2].start()
	c.waitAlive([]int{0, 2}, 0, 2)
	c.nodes[1].start()
	c.waitAlive([]int{0, 1, 2}, 0, 1, 2)
}

func TestRestartedNodeRejoins(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil, "prod", 2, true, nil)
	c.waitAlive([]int{0, 1}, 0, 1)
	c.nodes[1].stop()
	c.waitAlive([]int{0}, 0)
	c.nodes[1].newMember()
	c.nodes[1].start()
	c.waitAlive([]int{0, 1}, 0, 1)
}

func TestRequest(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil, "prod", 3, false, nil)
	type seen struct {
		from     int
		deadline bool
	}
	seenCh := make(chan seen, 10)
	for _, nd := range c.nodes {
		nd.m.Handle("echo", func(ctx context.Context, from int, p []byte) ([]byte, error) {
			_, ok := ctx.Deadline()
			seenCh <- seen{from, ok}
			return append([]byte(fmt.Sprintf("pnn %d got ", nd.cfg.PNN)), p...), nil
		})
		nd.m.Handle("fail", func(ctx context.Context, from int, p []byte) ([]byte, error) {
			return nil, errors.New("boom")
		})
		nd.m.Handle("panic", func(ctx context.Context, from int, p []byte) ([]byte, error) {
			panic("oops")
		})
		nd.m.Handle("block", func(ctx context.Context, from int, p []byte) ([]byte, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})
		nd.start()
	}
	c.waitAlive([]int{0, 1, 2}, 0, 1, 2)
	m0 := c.nodes[0].m
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	tests := []struct {
		name    string
		to      int
		kind    string
		want    string
		wantErr string // substring of the error
		remote  bool   // want a *RemoteError
	}{
		{name: "round trip", to: 1, kind: "echo", want: "pnn 1 got hello"},
		{name: "to self", to: 0, kind: "echo", want: "pnn 0 got hello"},
		{name: "handler error", to: 2, kind: "fail", wantErr: "pnn 2 handling fail: boom", remote: true},
		{name: "handler panic", to: 1, kind: "panic", wantErr: "handler panicked: oops", remote: true},
		{name: "no handler", to: 1, kind: "nope", wantErr: "no handler for nope", remote: true},
		{name: "unknown peer", to: 7, kind: "echo", wantErr: ErrUnknownPeer.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m0.Request(ctx, tt.to, tt.kind, []byte("hello"))
			if tt.wantErr != "" {
				var re *RemoteError
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || errors.As(err, &re) != tt.remote {
					t.Fatalf("Request(%d, %q) = %q, %v; want error containing %q (remote %v)", tt.to, tt.kind, got, err, tt.wantErr, tt.remote)
				}
				if tt.remote && re.PNN != tt.to {
					t.Errorf("RemoteError.PNN = %d, want %d", re.PNN, tt.to)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("Request(%d, %q) = %q, %v; want %q", tt.to, tt.kind, got, err, tt.want)
			}
			if s := <-seenCh; s != (seen{from: 0, deadline: true}) {
				t.Errorf("handler saw %+v, want from 0 with the requester's deadline", s)
			}
		})
	}
	if !errors.Is(func() error { _, err := m0.Request(ctx, 7, "echo", nil); return err }(), ErrUnknownPeer) {
		t.Error("Request to an unknown PNN: error is not ErrUnknownPeer")
	}

	t.Run("timeout", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := m0.Request(ctx, 1, "block", nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Request(block) = %v, want DeadlineExceeded", err)
		}
	})

	t.Run("peer fails meanwhile", func(t *testing.T) {
		errc := make(chan error, 1)
		go func() {
			_, err := m0.Request(ctx, 2, "block", nil) // ctx: waitTimeout
			errc <- err
		}()
		// The request is outstanding once pnn 2's handler runs; cut it off.
		waitFor(t, "pnn 2 to serve the request", func() bool {
			c.nodes[2].m.mu.Lock()
			defer c.nodes[2].m.mu.Unlock()
			return c.nodes[2].m.inflight == 1
		})
		c.net.partition(1, c.nodes[2].tr)
		if err := <-errc; !errors.Is(err, ErrPeerLeft) {
			t.Fatalf("Request to a failing peer = %v, want ErrPeerLeft", err)
		}
	})
}

func TestSend(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil, "prod", 2, false, nil)
	type msg struct {
		from    int
		payload string
	}
	got := make(chan msg, 10)
	c.nodes[1].m.Handle("note", func(ctx context.Context, from int, p []byte) ([]byte, error) {
		got <- msg{from, string(p)}
		return []byte("ignored"), nil
	})
	c.nodes[1].m.Handle("bad", func(ctx context.Context, from int, p []byte) ([]byte, error) {
		return nil, errors.New("cannot")
	})
	for _, nd := range c.nodes {
		nd.start()
	}
	c.waitAlive([]int{0, 1}, 0, 1)
	m0 := c.nodes[0].m

	if err := m0.Send(1, "note", []byte("tcp"), true); err != nil {
		t.Fatalf("Send(reliable) = %v", err)
	}
	if m := <-got; m != (msg{0, "tcp"}) {
		t.Errorf("handler got %+v, want {0 tcp}", m)
	}
	// Best effort can be lost on a real network, not on the mock one.
	if err := m0.Send(1, "note", []byte("udp"), false); err != nil {
		t.Fatalf("Send(best effort) = %v", err)
	}
	if m := <-got; m != (msg{0, "udp"}) {
		t.Errorf("handler got %+v, want {0 udp}", m)
	}
	if err := m0.Send(1, "note", make([]byte, 2000), false); err == nil {
		t.Error("Send(2000 bytes, best effort) = nil, want a size error")
	}
	if err := m0.Send(1, "", nil, true); err == nil {
		t.Error(`Send(kind "") = nil, want an error`)
	}
	if err := m0.Send(5, "note", nil, true); !errors.Is(err, ErrUnknownPeer) {
		t.Errorf("Send(to pnn 5) = %v, want ErrUnknownPeer", err)
	}
	// One-way errors and missing handlers are logged at the receiver.
	if err := m0.Send(1, "bad", nil, true); err != nil {
		t.Fatalf("Send(bad) = %v", err)
	}
	if err := m0.Send(1, "unhandled", nil, true); err != nil {
		t.Fatalf("Send(unhandled) = %v", err)
	}
	waitFor(t, "pnn 1 to log both", func() bool {
		return c.logs.count("handling message", "kind=bad", "cannot") == 1 &&
			c.logs.count("handling message", "kind=unhandled", "no handler") == 1
	})
}

func TestLabelIsolation(t *testing.T) {
	t.Parallel()
	checkLeaks(t)
	net := newTestNet(t)
	// Two clusters, the same node names, on one network, and each node
	// misconfigured with the other cluster's addresses as peers too: only
	// the label keeps them apart.
	a := newCluster(t, net, "alpha", 2, false, nil)
	b := newCluster(t, net, "beta", 2, false, nil)
	for _, nd := range a.nodes {
		nd.cfg.Nodes, nd.cfg.Peers = nil, slices.DeleteFunc(append(a.addrs(), b.addrs()...), func(ap netip.AddrPort) bool { return ap == nd.tr.addrPort() })
	}
	for _, nd := range b.nodes {
		nd.cfg.Nodes, nd.cfg.Peers = nil, slices.DeleteFunc(append(b.addrs(), a.addrs()...), func(ap netip.AddrPort) bool { return ap == nd.tr.addrPort() })
	}
	for _, nd := range append(a.nodes, b.nodes...) {
		nd.newMember()
		nd.start()
	}
	a.waitAlive([]int{0, 1}, 0, 1)
	b.waitAlive([]int{0, 1}, 0, 1)
	waitFor(t, "both clusters to drop the other's streams", func() bool {
		return a.logs.count(`unacceptable label \"beta\"`) > 0 && b.logs.count(`unacceptable label \"alpha\"`) > 0
	})
	for _, c := range []*cluster{a, b} {
		for _, nd := range c.nodes {
			for _, p := range nd.m.Members() {
				if want := c.addrs()[p.PNN]; p.Addr != want {
					t.Errorf("%s pnn %d sees pnn %d at %v, want %v", nd.cfg.Cluster, nd.cfg.PNN, p.PNN, p.Addr, want)
				}
			}
		}
	}
}

func TestRefusesForeignNodes(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil, "prod", 1, false, nil)
	intruder := map[string]*testTransport{
		"web1":  c.net.newTransport("web1"),  // not pnn-N
		"pnn-1": c.net.newTransport("pnn-1"), // a PNN, but not at a peer's address
	}
	c.nodes[0].start()
	c.waitAlive([]int{0}, 0)
	for name, tr := range intruder {
		conf := memberlist.DefaultLANConfig()
		conf.Name = name
		conf.Label = "prod"
		conf.Transport = tr
		conf.Delegate = metaDelegate(encodeMeta(Meta{PNN: 1, Leader: NoLeader}, 1))
		conf.Logger = nil
		conf.LogOutput = c.logs
		ml, err := memberlist.Create(conf)
		if err != nil {
			t.Fatalf("memberlist.Create(%s) = %v", name, err)
		}
		// The intruder learns of pnn-0, but pnn-0 ignores it.
		_, err = ml.Join([]string{c.nodes[0].tr.addr})
		if err != nil {
			t.Errorf("intruder %s: Join() = %v", name, err)
		}
		waitFor(t, "pnn 0 to refuse "+name, func() bool {
			return c.logs.count("ignoring alive message for '"+name+"'") > 0
		})
		if got := c.nodes[0].m.Members(); len(got) != 1 {
			t.Errorf("after %s joined: pnn 0 Members() = %+v, want only itself", name, got)
		}
		ml.Shutdown()
	}
}

// metaDelegate is a memberlist.Delegate with a fixed meta.
type metaDelegate []byte

func (d metaDelegate) NodeMeta(int) []byte               { return d }
func (d metaDelegate) NotifyMsg([]byte)                  {}
func (d metaDelegate) GetBroadcasts(int, int) [][]byte   { return nil }
func (d metaDelegate) LocalState(bool) []byte            { return nil }
func (d metaDelegate) MergeRemoteState(b []byte, _ bool) {}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	checkLeaks(t)
	net := newTestNet(t)
	tr := net.newTransport("pnn-0")
	logger := newLogSink(t).logger("0")
	m, err := New(Config{Cluster: "prod", Transport: tr, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Request(context.Background(), 0, "x", nil); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Request before Run = %v, want ErrNotRunning", err)
	}
	if err := m.Send(0, "x", nil, true); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Send before Run = %v, want ErrNotRunning", err)
	}
	if got := m.Members(); len(got) != 0 {
		t.Errorf("Members before Run = %v, want none", got)
	}
	// Close before Run: Events is closed, Run refuses, Close again is fine.
	m.Close()
	if _, ok := <-m.Events(); ok {
		t.Error("Events() not closed after Close")
	}
	if err := m.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close = %v, want ErrClosed", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}

	// Close while running stops Run, which returns nil.
	m, err = New(Config{Cluster: "prod", Transport: tr, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- m.Run(context.Background()) }()
	waitFor(t, "Run to start", func() bool { return len(m.Members()) == 1 })
	if err := m.Run(context.Background()); err == nil {
		t.Error("second Run = nil, want an error")
	}
	m.Close()
	if err := <-errc; err != nil {
		t.Errorf("Run() = %v after Close, want nil", err)
	}
	if err := m.SetMeta(Meta{}); !errors.Is(err, ErrClosed) {
		t.Errorf("SetMeta after Close = %v, want ErrClosed", err)
	}
	if _, err := m.Request(context.Background(), 0, "x", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Request after Close = %v, want ErrClosed", err)
	}
}

func TestNewChecks(t *testing.T) {
	ap := netip.MustParseAddrPort
	ok := Config{Cluster: "prod", Bind: ap("198.18.0.1:7946"), Peers: []netip.AddrPort{ap("198.18.0.2:7946")}, Key: make([]byte, 32)}
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"no cluster", func(c *Config) { c.Cluster = "" }},
		{"long cluster", func(c *Config) { c.Cluster = strings.Repeat("x", 256) }},
		{"negative pnn", func(c *Config) { c.PNN = -1 }},
		{"no bind", func(c *Config) { c.Bind = netip.AddrPort{} }},
		{"unspecified bind", func(c *Config) { c.Bind = ap("0.0.0.0:7946") }},
		{"bad key", func(c *Config) { c.Key = make([]byte, 10) }},
		{"peer is self", func(c *Config) { c.Peers = append(c.Peers, ap("198.18.0.1:7946")) }},
		{"peer twice", func(c *Config) { c.Peers = append(c.Peers, ap("198.18.0.2:7946")) }},
		{"peer twice, mapped", func(c *Config) { c.Peers = append(c.Peers, ap("[::ffff:198.18.0.2]:7946")) }},
		{"peer without port", func(c *Config) { c.Peers = append(c.Peers, ap("198.18.0.3:0")) }},
		{"probe timeout > interval", func(c *Config) { c.ProbeInterval, c.ProbeTimeout = time.Second, 2*time.Second }},
		{"negative interval", func(c *Config) { c.GossipInterval = -1 }},
	}
	if _, err := New(ok); err != nil {
		t.Fatalf("New(%+v) = %v, want nil", ok, err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			cfg.Peers = append([]netip.AddrPort(nil), ok.Peers...)
			tt.edit(&cfg)
			if _, err := New(cfg); err == nil {
				t.Errorf("New(%+v) = nil error, want one", cfg)
			}
		})
	}

	m, err := New(ok)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Cluster: "prod", Bind: ok.Bind, Peers: ok.Peers,
		ProbeInterval: 200 * time.Millisecond, ProbeTimeout: 100 * time.Millisecond, SuspicionMult: 2,
		GossipInterval: 50 * time.Millisecond, RejoinInterval: time.Second, PushPullInterval: 5 * time.Second,
	}
	got := m.cfg
	got.Logger, got.Key = nil, nil
	if diff := cmp.Diff(want, got, equateAddr); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}
