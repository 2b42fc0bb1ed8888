package member

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/memberlist"
)

func TestSealOpen(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 16)
	env := envelope{boot: 7, seq: 9, dest: 11}
	frame := []byte("frame")
	sealed := must(newSealer("prod", [][]byte{k1})).seal(env, frame)
	tamper := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 1
		return b
	}
	tests := []struct {
		name    string
		cluster string
		keys    [][]byte
		b       []byte
		wantErr bool
	}{
		{name: "same key", cluster: "prod", keys: [][]byte{k1}, b: sealed},
		{name: "old key still installed", cluster: "prod", keys: [][]byte{k2, k1}, b: sealed},
		{name: "wrong key", cluster: "prod", keys: [][]byte{k2}, b: sealed, wantErr: true},
		{name: "other cluster", cluster: "test", keys: [][]byte{k1}, b: sealed, wantErr: true},
		{name: "insecure key", cluster: "prod", keys: [][]byte{insecureKey}, b: sealed, wantErr: true},
		{name: "version changed", cluster: "prod", keys: [][]byte{k1}, b: tamper(0), wantErr: true},
		{name: "nonce changed", cluster: "prod", keys: [][]byte{k1}, b: tamper(5), wantErr: true},
		{name: "ciphertext changed", cluster: "prod", keys: [][]byte{k1}, b: tamper(20), wantErr: true},
		{name: "tag changed", cluster: "prod", keys: [][]byte{k1}, b: tamper(len(sealed) - 1), wantErr: true},
		{name: "truncated", cluster: "prod", keys: [][]byte{k1}, b: sealed[:sealOverhead-1], wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotEnv, got, err := must(newSealer(tt.cluster, tt.keys)).open(tt.b)
			if tt.wantErr {
				if err == nil {
					t.Errorf("open() = %+v, %q, nil; want an error", gotEnv, got)
				}
				return
			}
			if err != nil || gotEnv != env || !bytes.Equal(got, frame) {
				t.Errorf("open() = %+v, %q, %v; want %+v, %q", gotEnv, got, err, env, frame)
			}
		})
	}
	if len(sealed) != sealOverhead+len(frame) {
		t.Errorf("sealed %d bytes into %d, want %d overhead", len(frame), len(sealed), sealOverhead)
	}
	if _, err := newSealer("prod", [][]byte{make([]byte, 10)}); err == nil {
		t.Error("newSealer(10-byte key) = nil error")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestReplayGuard(t *testing.T) {
	type step struct {
		pnn     int
		boot    uint64
		seq     uint64
		sawBoot bool // a meta with boot, not a frame
		want    error
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"in order", []step{{1, 5, 1, false, nil}, {1, 5, 2, false, nil}, {1, 5, 3, false, nil}}},
		{"duplicate", []step{{1, 5, 1, false, nil}, {1, 5, 2, false, nil}, {1, 5, 1, false, errReplay}, {1, 5, 2, false, errReplay}}},
		{"reordered within the window", []step{{1, 5, 3, false, nil}, {1, 5, 1, false, nil}, {1, 5, 2, false, nil}, {1, 5, 2, false, errReplay}}},
		{"window's far end", []step{{1, 5, replayWindow + 1, false, nil}, {1, 5, 2, false, nil}, {1, 5, 1, false, errTooOld}}},
		{"jump past the window clears it", []step{{1, 5, 1, false, nil}, {1, 5, 3 * replayWindow, false, nil}, {1, 5, 2*replayWindow + 1, false, nil}, {1, 5, 2 * replayWindow, false, errTooOld}}},
		{"bit reused after the window moved", []step{{1, 5, 1, false, nil}, {1, 5, replayWindow + 2, false, nil}, {1, 5, replayWindow + 1, false, nil}, {1, 5, replayWindow + 1, false, errReplay}}},
		{"senders apart", []step{{1, 5, 1, false, nil}, {2, 6, 1, false, nil}, {2, 6, 1, false, errReplay}}},
		{"sender restarted", []step{{1, 5, 9, false, nil}, {1, 8, 1, false, nil}, {1, 5, 10, false, errRetired}, {1, 8, 1, false, errReplay}}},
		{"restart seen in meta first", []step{{1, 5, 1, false, nil}, {1, 8, 0, true, nil}, {1, 5, 2, false, errRetired}, {1, 8, 1, false, nil}}},
		{"meta of the current run", []step{{1, 5, 1, false, nil}, {1, 5, 0, true, nil}, {1, 5, 1, false, errReplay}}},
		{"zero", []step{{1, 5, 0, false, errZeroSeq}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newReplayGuard()
			for i, s := range tt.steps {
				if s.sawBoot {
					g.sawBoot(s.pnn, s.boot)
					continue
				}
				if got := g.check(s.pnn, s.boot, s.seq); !errors.Is(got, s.want) {
					t.Errorf("step %d: check(%d, %d, %d) = %v, want %v", i, s.pnn, s.boot, s.seq, got, s.want)
				}
			}
		})
	}
	t.Run("retired runs are bounded", func(t *testing.T) {
		g := newReplayGuard()
		for boot := uint64(1); boot <= 2*maxRetired; boot++ {
			if err := g.check(1, boot, 1); err != nil {
				t.Fatalf("check(1, %d, 1) = %v", boot, err)
			}
		}
		if n := len(g.peers[1].retired); n != maxRetired {
			t.Errorf("%d retired runs kept, want %d", n, maxRetired)
		}
		if err := g.check(1, 2*maxRetired-1, 2); !errors.Is(err, errRetired) {
			t.Errorf("check of a recent retired run = %v, want errRetired", err)
		}
	})
}

func TestSourceMatches(t *testing.T) {
	ap := netip.MustParseAddrPort
	nodes := map[int]netip.AddrPort{0: ap("198.18.0.1:7946"), 1: ap("198.18.0.2:7946"), 2: ap("198.18.0.3:7946")}
	shared := map[int]netip.AddrPort{0: ap("127.0.0.1:7001"), 1: ap("127.0.0.1:7002")}
	tests := []struct {
		name    string
		claimed int
		src     netip.AddrPort
		stream  bool
		nodes   map[int]netip.AddrPort
		want    bool
	}{
		{"packet from the node", 1, ap("198.18.0.2:7946"), false, nodes, true},
		{"packet, mapped address", 1, ap("[::ffff:198.18.0.2]:7946"), false, nodes, true},
		{"packet from another port", 1, ap("198.18.0.2:5000"), false, nodes, false},
		{"packet from another node", 1, ap("198.18.0.3:7946"), false, nodes, false},
		{"packet from a stranger", 1, ap("198.18.0.9:7946"), false, nodes, false},
		{"stream from the node's IP", 1, ap("198.18.0.2:41000"), true, nodes, true},
		{"stream from another node", 1, ap("198.18.0.3:41000"), true, nodes, false},
		{"unknown PNN", 5, ap("198.18.0.2:7946"), false, nodes, false},
		{"no source", 1, netip.AddrPort{}, true, nodes, false},
		{"shared IP, stream from the node's port", 1, ap("127.0.0.1:7002"), true, shared, true},
		{"shared IP, stream from the other node's port", 1, ap("127.0.0.1:7001"), true, shared, false},
		{"shared IP, stream from an ephemeral port", 1, ap("127.0.0.1:40000"), true, shared, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sourceMatches(tt.claimed, tt.src, tt.stream, tt.nodes); got != tt.want {
				t.Errorf("sourceMatches(%d, %v, stream %v) = %v, want %v", tt.claimed, tt.src, tt.stream, got, tt.want)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	k1, err := GenerateKey()
	if err != nil || len(k1) != 32 {
		t.Fatalf("GenerateKey() = %x, %v; want 32 bytes", k1, err)
	}
	k2 := must(GenerateKey())
	if bytes.Equal(k1, k2) {
		t.Fatal("GenerateKey() twice gave the same key")
	}
	file := append(append([]byte("# rotating\n\n"), EncodeKey(k1)...), EncodeKey(k2)...)
	tests := []struct {
		name        string
		text        []byte
		wantPrimary []byte
		wantOthers  [][]byte
		wantErr     bool
	}{
		{name: "one key, as daemon/config reads", text: EncodeKey(k1), wantPrimary: k1, wantOthers: [][]byte{}},
		{name: "without newline", text: bytes.TrimSpace(EncodeKey(k2)), wantPrimary: k2, wantOthers: [][]byte{}},
		{name: "two keys and a comment", text: file, wantPrimary: k1, wantOthers: [][]byte{k2}},
		{name: "empty", text: []byte("\n# none\n"), wantErr: true},
		{name: "not base64", text: []byte("not a key!\n"), wantErr: true},
		{name: "short key", text: EncodeKey(make([]byte, 10)), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			primary, others, err := ParseKeys(tt.text)
			if tt.wantErr {
				if err == nil {
					t.Errorf("ParseKeys(%q) = nil error, want one", tt.text)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKeys(%q) = %v", tt.text, err)
			}
			if diff := cmp.Diff(tt.wantPrimary, primary); diff != "" {
				t.Errorf("primary (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantOthers, others); diff != "" {
				t.Errorf("others (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNotifyAliveBindsPNNToAddress(t *testing.T) {
	ap := netip.MustParseAddrPort
	nodes := map[int]netip.AddrPort{0: ap("198.18.0.1:7946"), 1: ap("198.18.0.2:7946"), 2: ap("198.18.0.3:7946")}
	m, err := New(Config{Cluster: "prod", PNN: 0, Bind: nodes[0], Nodes: nodes, Key: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	node := func(name string, at netip.AddrPort, meta []byte) *memberlist.Node {
		return &memberlist.Node{Name: name, Addr: at.Addr().AsSlice(), Port: at.Port(), Meta: meta}
	}
	meta := func(pnn int) []byte { return encodeMeta(Meta{PNN: pnn, Leader: NoLeader}, 3) }
	tests := []struct {
		name string
		n    *memberlist.Node
		ok   bool
	}{
		{"node at its address", node("pnn-1", nodes[1], meta(1)), true},
		{"node at another node's address", node("pnn-1", nodes[2], meta(1)), false},
		{"node not in Nodes", node("pnn-3", nodes[1], meta(3)), false},
		{"meta of another PNN", node("pnn-1", nodes[1], meta(2)), false},
		{"meta without a run id", node("pnn-1", nodes[1], encodeMeta(Meta{PNN: 1, Leader: NoLeader}, 3)[:5]), false},
	}
	d := &delegate{m}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := d.NotifyAlive(tt.n); (err == nil) != tt.ok {
				t.Errorf("NotifyAlive(%s at %v) = %v, want ok %v", tt.n.Name, tt.n.Address(), err, tt.ok)
			}
		})
	}
}
