package member

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"testing"
)

// freeAddr returns a loopback address whose port is free for both TCP and
// UDP, as memberlist needs.
func freeAddr(t *testing.T) netip.AddrPort {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ap := netip.MustParseAddrPort(ln.Addr().String())
		pc, err := net.ListenPacket("udp", ap.String())
		ln.Close()
		if err == nil {
			pc.Close()
			return ap
		}
	}
	t.Fatal("no free TCP+UDP port on 127.0.0.1")
	return netip.AddrPort{}
}

// realPair makes two nodes on the real UDP+TCP transport on loopback,
// with keys k0 and k1, and starts them.
func realPair(t *testing.T, k0, k1 []byte) *cluster {
	t.Helper()
	checkLeaks(t)
	c := &cluster{t: t, logs: newLogSink(t)}
	addrs := []netip.AddrPort{freeAddr(t), freeAddr(t)}
	for i, key := range [][]byte{k0, k1} {
		nd := &testNode{t: t, cfg: Config{
			Cluster: "prod", PNN: i, Bind: addrs[i], Nodes: map[int]netip.AddrPort{0: addrs[0], 1: addrs[1]}, Key: key,
			Insecure: key == nil,
			Logger:   c.logs.logger(string(rune('0' + i))),
		}}
		fastConfig(&nd.cfg)
		nd.newMember()
		c.nodes = append(c.nodes, nd)
	}
	for _, nd := range c.nodes {
		nd.start()
	}
	return c
}

func TestRealTransport(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	c := realPair(t, key, key)
	for _, nd := range c.nodes {
		nd.m.Handle("echo", func(ctx context.Context, from int, p []byte) ([]byte, error) { return p, nil })
	}
	c.waitAlive([]int{0, 1}, 0, 1)
	for _, reliable := range []bool{true, false} {
		got, err := c.nodes[0].m.Request(context.Background(), 1, "echo", []byte("over TCP"))
		if err != nil || string(got) != "over TCP" {
			t.Fatalf("Request() = %q, %v", got, err)
		}
		if err := c.nodes[1].m.Send(0, "echo", []byte("x"), reliable); err != nil {
			t.Fatalf("Send(reliable=%v) = %v", reliable, err)
		}
	}
}

func TestRealTransportRefusesStrangers(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	c := realPair(t, key, key)
	got := make(chan msg, 10)
	c.nodes[0].m.Handle("note", func(ctx context.Context, from int, p []byte) ([]byte, error) {
		got <- msg{from, string(p)}
		return nil, nil
	})
	c.waitAlive([]int{0, 1}, 0, 1)
	waitFor(t, "pnn 1 to know pnn 0's run id", func() bool {
		c.nodes[1].m.mu.Lock()
		defer c.nodes[1].m.mu.Unlock()
		return c.nodes[1].m.boots[0] != 0
	})
	// A key holder on pnn 1's host, but not on its gossip port, claims to
	// be pnn 1 over UDP.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	forged := forge(c.nodes[1], 0, frame{from: 1, kind: "note", payload: []byte("forged")}, nil, nil)
	if _, err := pc.WriteTo(append([]byte{frameMagic}, forged...), net.UDPAddrFromAddrPort(c.nodes[0].cfg.Bind)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pnn 0 to drop the forged packet", func() bool { return c.logs.count("claims to be from pnn 1") == 1 })
	// The real pnn 1 gets through, over UDP and TCP.
	for _, reliable := range []bool{false, true} {
		if err := c.nodes[1].m.Send(0, "note", []byte("real"), reliable); err != nil {
			t.Fatalf("Send(reliable %v) = %v", reliable, err)
		}
		c.expect(got, msg{1, "real"})
	}
}

func TestKeyMismatch(t *testing.T) {
	tests := []struct {
		name   string
		k0, k1 []byte
		log    string // what pnn 0 or 1 logs when refusing the other's stream
	}{
		{"different keys", bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 16), "no installed keys could decrypt the message"},
		{"one without key", bytes.Repeat([]byte{1}, 32), nil, "encryption is configured but remote state is not encrypted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := realPair(t, tt.k0, tt.k1)
			c.waitAlive([]int{0}, 0)
			c.waitAlive([]int{1}, 1)
			waitFor(t, "a join to be refused", func() bool {
				return c.logs.count(tt.log) > 0 && c.logs.count("level=WARN", "joining peer") > 0
			})
			for i, nd := range c.nodes {
				if got := nd.alive(); len(got) != 1 || got[0] != i {
					t.Errorf("pnn %d sees %v alive, want only itself", i, got)
				}
			}
		})
	}
}

func TestBindTaken(t *testing.T) {
	addr := freeAddr(t)
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	m, err := New(Config{Cluster: "prod", Bind: addr, Logger: newLogSink(t).logger("0")})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err == nil {
		t.Error("Run() on a taken port = nil, want an error")
	}
	m.Close()
	if _, ok := <-m.Events(); ok {
		t.Error("Events() not closed after a failed Run")
	}
}
