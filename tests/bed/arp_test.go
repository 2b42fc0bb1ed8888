//go:build integration

package bed

import (
	"net/netip"
	"os"
	"testing"
	"time"
)

// TestARPSocketsReadOwnAnswers: each of the bed's ARP sockets asks with a
// sender address of its own and reads the answers to its own requests
// only, so the checker does not count the answer to another socket's
// request as a second answer to its own.
func TestARPSocketsReadOwnAnswers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	p := netip.MustParsePrefix("198.18.1.1/24")
	b, err := New(Config{Nodes: 1, PublicAddrs: []netip.Prefix{p}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.AddAddr(0, p); err != nil {
		t.Fatal(err)
	}
	first, err := b.dialARP()
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := b.dialARP()
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if first.self == second.self || !IsClientAddr(first.self) || !IsClientAddr(second.self) {
		t.Fatalf("sender addresses %s and %s: want two distinct client addresses", first.self, second.self)
	}
	// Answers to the first socket's requests reach the client (and every
	// socket on it) before the second one asks.
	for range 3 {
		if err := first.Request(p.Addr()); err != nil {
			t.Fatal(err)
		}
		select {
		case <-first.Replies:
		case <-time.After(5 * time.Second):
			t.Fatal("no answer to the first socket's request")
		}
	}
	asked := time.Now()
	if err := second.Request(p.Addr()); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-second.Replies:
		if r.At.Before(asked) {
			t.Errorf("the second socket read an answer received at %s, before it asked (%s): another socket's", r.At.Format(time.StampMicro), asked.Format(time.StampMicro))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no answer to the second socket's request")
	}
	// Closed sockets give their addresses back.
	first.Close()
	second.Close()
	for range 2 * len(arpSenders()) {
		a, err := b.dialARP()
		if err != nil {
			t.Fatalf("dialARP after closing: %v", err)
		}
		a.Close()
	}
}
