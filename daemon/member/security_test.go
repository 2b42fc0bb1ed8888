package member

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/memberlist"
)

// msg is one message a test handler saw.
type msg struct {
	from    int
	payload string
}

// noteCluster starts n nodes whose "note" handler reports to the returned
// channel, and waits until they all see each other.
func noteCluster(t *testing.T, n int, tune func(*Config)) (*cluster, chan msg) {
	t.Helper()
	c := newCluster(t, nil, "prod", n, false, tune)
	got := make(chan msg, 100)
	for _, nd := range c.nodes {
		nd.m.Handle("note", func(ctx context.Context, from int, p []byte) ([]byte, error) {
			got <- msg{from, string(p)}
			return nil, nil
		})
		nd.start()
	}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	c.waitAlive(all, all...)
	// Each must know the others' run ids (their metas) to address them.
	for _, nd := range c.nodes {
		waitFor(t, "run ids known", func() bool {
			nd.m.mu.Lock()
			defer nd.m.mu.Unlock()
			return len(nd.m.boots) == n
		})
	}
	return c, got
}

// forge seals f as sender's Member would for the node to, with the next
// sequence number; edit may change the envelope and key (nil: sender's).
func forge(sender *testNode, to int, f frame, key []byte, edit func(*envelope)) []byte {
	m := sender.m
	m.mu.Lock()
	m.seq[to]++
	env := envelope{boot: m.boot, seq: m.seq[to], dest: m.boots[to]}
	m.mu.Unlock()
	if edit != nil {
		edit(&env)
	}
	s := m.sealer.Load()
	if key != nil {
		s = must(newSealer(sender.cfg.Cluster, [][]byte{key}))
	}
	return s.seal(env, f.encode())
}

// sendStream sends sealed from sender's address to the node at to.
func sendStream(sender, to *testNode, sealed []byte) error {
	return sender.m.tr.sendStream(memberlist.Address{Addr: to.tr.addr}, sealed)
}

// sendPacket delivers sealed to the node to as a datagram from src, then
// a genuine best-effort "note" from pnn 1 and waits for it: by then the
// packet before it has been judged (one goroutine takes packets in order).
func (c *cluster) sendPacket(got chan msg, to *testNode, src netip.AddrPort, sealed []byte) {
	c.t.Helper()
	to.tr.injectPacket(src, append([]byte{frameMagic}, sealed...))
	marker := fmt.Sprintf("marker %d", time.Now().UnixNano())
	if err := c.nodes[1].m.Send(to.cfg.PNN, "note", []byte(marker), false); err != nil {
		c.t.Fatalf("Send(marker) = %v", err)
	}
	c.expect(got, msg{1, marker})
}

// expect reads the next message and compares it with want.
func (c *cluster) expect(got chan msg, want msg) {
	c.t.Helper()
	select {
	case m := <-got:
		if m != want {
			c.t.Errorf("handler got %+v, want %+v", m, want)
		}
	case <-time.After(waitTimeout):
		c.t.Fatalf("timed out waiting for %+v", want)
	}
}

// none checks no message is waiting.
func none(t *testing.T, got chan msg) {
	t.Helper()
	select {
	case m := <-got:
		t.Errorf("handler got %+v, want nothing", m)
	default:
	}
}

func TestForgedAndWrongKeyFramesDropped(t *testing.T) {
	t.Parallel()
	c, got := noteCluster(t, 3, nil)
	n0, n1, n2 := c.nodes[0], c.nodes[1], c.nodes[2]
	note := func(from int, p string) frame { return frame{from: from, kind: "note", payload: []byte(p)} }
	otherKey := bytes.Repeat([]byte{9}, 32)

	tests := []struct {
		name   string
		sender *testNode // whose sealer, sequence numbers and address
		f      frame
		key    []byte // nil: the sender's
		edit   func(*envelope)
		log    string // what pnn 0 logs
	}{
		{name: "pnn 2 claims to be pnn 1", sender: n2, f: note(1, "forged"), log: "claims to be from pnn 1"},
		{name: "pnn 2 claims to be pnn 0 itself", sender: n2, f: note(0, "forged"), log: "claims to be from pnn 0"},
		{name: "wrong key", sender: n1, f: note(1, "wrong key"), key: otherKey, log: "cannot authenticate"},
		{name: "for another run of pnn 0", sender: n1, f: note(1, "old"), edit: func(e *envelope) { e.dest++ }, log: errWrongDest.Error()},
		{name: "sequence number 0", sender: n1, f: note(1, "zero"), edit: func(e *envelope) { e.seq = 0 }, log: errZeroSeq.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name+" (TCP)", func(t *testing.T) {
			before := c.logs.count(tt.log)
			if err := sendStream(tt.sender, n0, forge(tt.sender, 0, tt.f, tt.key, tt.edit)); !errors.Is(err, errRefused) {
				t.Errorf("sending = %v, want errRefused", err)
			}
			if c.logs.count(tt.log) != before+1 {
				t.Errorf("pnn 0 did not log %q", tt.log)
			}
			none(t, got)
		})
		t.Run(tt.name+" (UDP)", func(t *testing.T) {
			before := c.logs.count(tt.log)
			c.sendPacket(got, n0, tt.sender.tr.addrPort(), forge(tt.sender, 0, tt.f, tt.key, tt.edit))
			if c.logs.count(tt.log) != before+1 {
				t.Errorf("pnn 0 did not log %q", tt.log)
			}
			none(t, got)
		})
	}

	// A memberlist user message (the old way, whose sender nobody knows)
	// is dropped too.
	n2.m.mu.Lock()
	ml, node := n2.m.ml, n2.m.nodes[0]
	n2.m.mu.Unlock()
	um := note(1, "user message")
	if err := ml.SendReliable(&node, um.encode()); err != nil {
		t.Fatalf("SendReliable() = %v", err)
	}
	waitFor(t, "pnn 0 to drop the user message", func() bool { return c.logs.count("memberlist user message") > 0 })
	none(t, got)

	// The genuine article still passes.
	if err := n1.m.Send(0, "note", []byte("real"), true); err != nil {
		t.Fatalf("Send() = %v", err)
	}
	c.expect(got, msg{1, "real"})
}

func TestReplayDropped(t *testing.T) {
	t.Parallel()
	c, got := noteCluster(t, 2, nil)
	n0, n1 := c.nodes[0], c.nodes[1]
	var wires []wire
	c.net.setTap(func(w wire) {
		if w.from == n1.tr.addr && w.to == n0.tr.addr {
			wires = append(wires, w)
		}
	})
	for _, reliable := range []bool{true, false} {
		if err := n1.m.Send(0, "note", []byte(fmt.Sprint("reliable ", reliable)), reliable); err != nil {
			t.Fatalf("Send() = %v", err)
		}
		c.expect(got, msg{1, fmt.Sprint("reliable ", reliable)})
	}
	c.net.setTap(nil)
	if len(wires) != 2 || !wires[0].stream || wires[1].stream {
		t.Fatalf("captured %+v, want a stream and a packet", wires)
	}

	replay := func(t *testing.T, wantLog string) {
		t.Helper()
		before := c.logs.count("dropping", wantLog)
		// The stream's bytes again, from pnn 1's own address.
		conn, err := n1.tr.DialTimeout(n0.tr.addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Write(wires[0].b); err != nil {
			t.Fatal(err)
		}
		var ack [1]byte
		if _, err := io.ReadFull(conn, ack[:]); err != nil || ack[0] != ackRefused {
			t.Errorf("replayed stream: ack %d, %v; want %d (refused)", ack[0], err, ackRefused)
		}
		// The datagram again, from pnn 1's address.
		c.sendPacket(got, n0, n1.tr.addrPort(), wires[1].b[1:])
		if n := c.logs.count("dropping", wantLog) - before; n != 2 {
			t.Errorf("pnn 0 logged %q %d times, want 2", wantLog, n)
		}
		none(t, got)
	}
	t.Run("same run", func(t *testing.T) { replay(t, errReplay.Error()) })

	t.Run("after the receiver restarted", func(t *testing.T) {
		oldBoot := n0.m.boot
		n0.stop()
		n0.newMember()
		n0.m.Handle("note", func(ctx context.Context, from int, p []byte) ([]byte, error) {
			got <- msg{from, string(p)}
			return nil, nil
		})
		n0.start()
		c.waitAlive([]int{0, 1}, 0, 1)
		waitFor(t, "pnn 1 to see pnn 0's new run", func() bool {
			n1.m.mu.Lock()
			defer n1.m.mu.Unlock()
			return n1.m.boots[0] == n0.m.boot && n0.m.boot != oldBoot
		})
		replay(t, errWrongDest.Error())
	})
}

func TestReorderedPacketsAccepted(t *testing.T) {
	t.Parallel()
	c, got := noteCluster(t, 2, nil)
	n0, n1 := c.nodes[0], c.nodes[1]
	var sealed [][]byte
	for i := range 3 {
		sealed = append(sealed, forge(n1, 0, frame{from: 1, kind: "note", payload: []byte(fmt.Sprint(i))}, nil, nil))
	}
	for _, i := range []int{2, 0, 1} {
		n0.tr.injectPacket(n1.tr.addrPort(), append([]byte{frameMagic}, sealed[i]...))
	}
	var seen []string
	for range 3 {
		select {
		case m := <-got:
			seen = append(seen, m.payload)
		case <-time.After(waitTimeout):
			t.Fatalf("timed out; got %v", seen)
		}
	}
	slices.Sort(seen)
	if diff := cmp.Diff([]string{"0", "1", "2"}, seen); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
	before := c.logs.count("dropping", errReplay.Error())
	c.sendPacket(got, n0, n1.tr.addrPort(), sealed[1])
	if c.logs.count("dropping", errReplay.Error()) != before+1 {
		t.Error("a duplicate of a reordered packet was not refused")
	}
}

func TestReplyFromAnotherNodeDropped(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil, "prod", 3, false, nil)
	release := make(chan struct{})
	c.nodes[1].m.Handle("slow", func(ctx context.Context, from int, p []byte) ([]byte, error) {
		<-release
		return []byte("from 1"), nil
	})
	for _, nd := range c.nodes {
		nd.start()
	}
	c.waitAlive([]int{0, 1, 2}, 0, 1, 2)
	n0, n2 := c.nodes[0], c.nodes[2]
	reply := make(chan string, 1)
	go func() {
		p, err := n0.m.Request(context.Background(), 1, "slow", nil)
		reply <- fmt.Sprint(string(p), err)
	}()
	waitFor(t, "pnn 1 to serve the request", func() bool {
		c.nodes[1].m.mu.Lock()
		defer c.nodes[1].m.mu.Unlock()
		return c.nodes[1].m.inflight == 1
	})
	// pnn 2, a genuine node, answers pnn 0's request to pnn 1 with the
	// right request id.
	id := n0.m.nextID.Load()
	fake := frame{flags: flagReply, from: 2, id: id, kind: "slow", payload: []byte("from 2")}
	if err := sendStream(n2, n0, forge(n2, 0, fake, nil, nil)); err != nil {
		t.Fatalf("sending the reply = %v", err)
	}
	if c.logs.count("dropping reply", "pnn=2") != 1 {
		t.Error("pnn 0 did not drop pnn 2's reply")
	}
	close(release)
	if got := <-reply; got != "from 1<nil>" {
		t.Errorf("Request() = %s, want from 1, nil", got)
	}
}

func TestKeyRequired(t *testing.T) {
	ap := netip.MustParseAddrPort
	nodes := map[int]netip.AddrPort{0: ap("198.18.0.1:7946"), 1: ap("198.18.0.2:7946")}
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
		warn    bool
	}{
		{name: "two nodes, no key", cfg: Config{Nodes: nodes}, wantErr: true},
		{name: "two nodes (Peers), no key", cfg: Config{Peers: []netip.AddrPort{nodes[1]}}, wantErr: true},
		{name: "two nodes, key", cfg: Config{Nodes: nodes, Key: make([]byte, 16)}},
		{name: "two nodes, insecure", cfg: Config{Nodes: nodes, Insecure: true}, warn: true},
		{name: "one node, no key", cfg: Config{Nodes: map[int]netip.AddrPort{0: nodes[0]}}},
		{name: "Nodes and Peers", cfg: Config{Nodes: nodes, Peers: []netip.AddrPort{nodes[1]}, Key: make([]byte, 16)}, wantErr: true},
		{name: "own address is not Bind", cfg: Config{Nodes: map[int]netip.AddrPort{0: nodes[1]}, Key: make([]byte, 16)}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := newLogSink(t)
			cfg := tt.cfg
			cfg.Cluster, cfg.Bind, cfg.Logger = "prod", nodes[0], logs.logger("0")
			m, err := New(cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New(%+v) = %v, want error %v", cfg, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			m.Close()
			if n := logs.count("level=WARN", "gossip is not authenticated"); (n == 1) != tt.warn {
				t.Errorf("New logged the insecure warning %d times, want it %v", n, tt.warn)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	c := newCluster(t, nil, "prod", 2, false, func(cfg *Config) { cfg.Key, cfg.Insecure = k1, false })
	for _, nd := range c.nodes {
		nd.m.Handle("echo", func(ctx context.Context, from int, p []byte) ([]byte, error) { return p, nil })
		nd.start()
	}
	c.waitAlive([]int{0, 1}, 0, 1)
	roundTrips := func(t *testing.T) {
		t.Helper()
		for _, pair := range [][2]int{{0, 1}, {1, 0}} {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			p, err := c.nodes[pair[0]].m.Request(ctx, pair[1], "echo", []byte("hi"))
			cancel()
			if err != nil || string(p) != "hi" {
				t.Errorf("pnn %d Request(pnn %d) = %q, %v", pair[0], pair[1], p, err)
			}
		}
	}
	steps := []struct {
		name string
		node []int // who changes
		keys [][]byte
	}{
		{"install k2 everywhere", []int{0, 1}, [][]byte{k1, k2}},
		{"pnn 0 seals with k2, pnn 1 with k1", []int{0}, [][]byte{k2, k1}},
		{"both seal with k2", []int{1}, [][]byte{k2, k1}},
		{"remove k1 everywhere", []int{0, 1}, [][]byte{k2}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			for _, i := range s.node {
				if err := c.nodes[i].m.SetKeys(s.keys[0], s.keys[1:]...); err != nil {
					t.Fatalf("pnn %d SetKeys() = %v", i, err)
				}
				c.nodes[i].m.mu.Lock()
				kr := c.nodes[i].m.keyring
				c.nodes[i].m.mu.Unlock()
				if diff := cmp.Diff(s.keys, kr.GetKeys()); diff != "" {
					t.Errorf("pnn %d memberlist keyring (-want +got):\n%s", i, diff)
				}
			}
			roundTrips(t)
		})
	}
	t.Run("removed key refused", func(t *testing.T) {
		f := frame{from: 1, kind: "echo", payload: []byte("old key")}
		if err := sendStream(c.nodes[1], c.nodes[0], forge(c.nodes[1], 0, f, k1, nil)); !errors.Is(err, errRefused) {
			t.Errorf("sending with the removed key = %v, want errRefused", err)
		}
	})
	t.Run("bad keys", func(t *testing.T) {
		if err := c.nodes[0].m.SetKeys(make([]byte, 10)); err == nil {
			t.Error("SetKeys(10-byte key) = nil, want an error")
		}
		if err := c.nodes[0].m.SetKeys(k2, make([]byte, 7)); err == nil {
			t.Error("SetKeys(k2, 7-byte key) = nil, want an error")
		}
		roundTrips(t)
	})
}

func TestSetKeysInsecure(t *testing.T) {
	t.Parallel()
	c := newCluster(t, nil, "prod", 2, false, nil)
	key := bytes.Repeat([]byte{1}, 16)
	// Before Run a key may still be given...
	if err := c.nodes[0].m.SetKeys(key); err != nil {
		t.Errorf("SetKeys before Run = %v", err)
	}
	// ...not once running without one.
	c.nodes[1].start()
	c.waitAlive([]int{1}, 1)
	if err := c.nodes[1].m.SetKeys(key); err == nil {
		t.Error("SetKeys on a Member running without a key = nil, want an error")
	}
	c.nodes[1].stop()
	if err := c.nodes[1].m.SetKeys(key); !errors.Is(err, ErrClosed) {
		t.Errorf("SetKeys after Close = %v, want ErrClosed", err)
	}
}

func TestEventsBounded(t *testing.T) {
	t.Parallel()
	// Each of the 200 updates waits for a gossip round: 1 ms apart, not 20.
	c := newCluster(t, nil, "prod", 2, true, func(cfg *Config) { cfg.GossipInterval = time.Millisecond })
	c.waitAlive([]int{0, 1}, 0, 1)
	// Nobody reads pnn 0's events, as in ctdbd.
	for gen := uint64(1); gen <= 200; gen++ {
		if err := c.nodes[1].m.SetMeta(Meta{Generation: gen, Leader: NoLeader}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, fmt.Sprintf("pnn 0 to see generation %d", gen), func() bool {
			return c.nodes[0].m.Members()[1].Meta.Generation == gen
		})
	}
	n0 := c.nodes[0].m
	n0.mu.Lock()
	queued := slices.Clone(n0.queue)
	n0.mu.Unlock()
	if len(queued) > 2 {
		t.Errorf("%d events queued after 200 updates, want at most 2: %+v", len(queued), queued)
	}
	// The reader that comes late sees pnn 1's latest meta.
	ev := c.nodes[0].waitEvent("pnn 1's latest", func(ev Event) bool { return ev.Peer.PNN == 1 && ev.Peer.Meta.Generation == 200 })
	if ev.Kind == Leave {
		t.Errorf("event %+v, want a join or an update", ev)
	}
}

func TestQueueEvent(t *testing.T) {
	ev := func(k EventKind, pnn int, gen uint64) Event {
		return Event{Kind: k, Peer: Peer{PNN: pnn, Meta: Meta{PNN: pnn, Generation: gen}}}
	}
	tests := []struct {
		name string
		in   []Event
		want []Event
	}{
		{"updates merge into a join", []Event{ev(Join, 1, 0), ev(Update, 1, 1), ev(Update, 1, 2)}, []Event{ev(Join, 1, 2)}},
		{"per node", []Event{ev(Update, 1, 1), ev(Join, 2, 0), ev(Update, 1, 2), ev(Update, 2, 5)}, []Event{ev(Update, 1, 2), ev(Join, 2, 5)}},
		{"not into a leave", []Event{ev(Leave, 1, 1), ev(Update, 1, 2)}, []Event{ev(Leave, 1, 1), ev(Update, 1, 2)}},
		{"joins and leaves kept", []Event{ev(Join, 1, 0), ev(Leave, 1, 0), ev(Join, 1, 1), ev(Update, 1, 2)}, []Event{ev(Join, 1, 0), ev(Leave, 1, 0), ev(Join, 1, 2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(Config{Cluster: "prod", Bind: netip.MustParseAddrPort("198.18.0.1:7946"), Logger: newLogSink(t).logger("0")})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			m.mu.Lock()
			for _, e := range tt.in {
				m.queueEvent(e)
			}
			got := slices.Clone(m.queue)
			m.mu.Unlock()
			if diff := cmp.Diff(tt.want, got, equateAddr); diff != "" {
				t.Errorf("queue (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("oldest dropped when full", func(t *testing.T) {
		logs := newLogSink(t)
		m, err := New(Config{Cluster: "prod", Bind: netip.MustParseAddrPort("198.18.0.1:7946"), Logger: logs.logger("0")})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		const n = 3000
		m.mu.Lock()
		for i := range n {
			m.queueEvent(ev([]EventKind{Join, Leave}[i%2], 1, uint64(i)))
		}
		queued, dropped, last := len(m.queue), m.dropped, m.queue[len(m.queue)-1]
		m.mu.Unlock()
		if queued != maxQueuedEvents || dropped != n-maxQueuedEvents || last != ev(Leave, 1, n-1) {
			t.Errorf("after %d events: %d queued, %d dropped, last %+v; want %d, %d, the newest", n, queued, dropped, last, maxQueuedEvents, n-maxQueuedEvents)
		}
		if logs.count("level=DEBUG", "nobody reads events") != n-maxQueuedEvents {
			t.Error("drops not logged at Debug")
		}
	})
}
