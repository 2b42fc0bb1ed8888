package member

import (
	"bytes"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/memberlist"

	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
)

func TestParsePNN(t *testing.T) {
	tests := []struct {
		name string
		pnn  int
		ok   bool
	}{
		{"pnn-0", 0, true},
		{"pnn-3", 3, true},
		{"pnn-63", 63, true},
		{"pnn-2147483647", 2147483647, true},
		{"pnn-2147483648", 0, false},
		{"pnn-03", 0, false},
		{"pnn--1", 0, false},
		{"pnn-", 0, false},
		{"pnn-1x", 0, false},
		{"pnn-+1", 0, false},
		{"PNN-1", 0, false},
		{"web1", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		pnn, ok := parsePNN(tt.name)
		if pnn != tt.pnn || ok != tt.ok {
			t.Errorf("parsePNN(%q) = %d, %v; want %d, %v", tt.name, pnn, ok, tt.pnn, tt.ok)
		}
		if ok && nodeName(pnn) != tt.name {
			t.Errorf("nodeName(%d) = %q, want %q", pnn, nodeName(pnn), tt.name)
		}
	}
}

func TestFrameRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		f    frame
	}{
		{"one-way", frame{from: 2, kind: "takeip", payload: []byte("198.18.1.5/24")}},
		{"one-way empty", frame{from: 0, kind: "x", payload: []byte{}}},
		{"request", frame{flags: flagRequest, from: 63, id: 1 << 40, timeout: 2500, kind: "lease", payload: []byte{0, 1, 2}}},
		{"reply", frame{flags: flagReply, from: 1, id: 7, kind: "lease", payload: []byte("ok")}},
		{"error reply", frame{flags: flagReply | flagError, from: 1, id: 7, kind: "lease", payload: []byte("boom")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeFrame(tt.f.encode())
			if err != nil {
				t.Fatalf("decodeFrame(encode(%+v)) = %v", tt.f, err)
			}
			if diff := cmp.Diff(tt.f, got, cmp.AllowUnexported(frame{})); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeFrameErrors(t *testing.T) {
	good := (&frame{flags: flagRequest, from: 1, id: 9, kind: "k", payload: []byte("p")}).encode()
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"one byte", []byte{1}},
		{"version", append([]byte{2}, good[1:]...)},
		{"unknown flag", append([]byte{1, 0x08}, good[2:]...)},
		{"request and reply", append([]byte{1, flagRequest | flagReply}, good[2:]...)},
		{"error without reply", append([]byte{1, flagError}, good[2:]...)},
		{"request without id", (&frame{flags: flagRequest, from: 1, kind: "k"}).encode()},
		{"one-way with id", (&frame{from: 1, id: 3, kind: "k"}).encode()},
		{"truncated", good[:4]},
		{"empty kind", []byte{1, 0, 1, 0, 0, 0}},
		{"kind past end", []byte{1, 0, 1, 0, 0, 5, 'a'}},
		{"pnn too big", []byte{1, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0, 1, 'k'}},
	}
	for _, tt := range tests {
		if f, err := decodeFrame(tt.b); err == nil {
			t.Errorf("%s: decodeFrame(%x) = %+v, want an error", tt.name, tt.b, f)
		}
	}
}

func FuzzDecodeFrame(f *testing.F) {
	f.Add((&frame{flags: flagReply, from: 1, id: 7, kind: "lease", payload: []byte("ok")}).encode())
	f.Add(encodeMeta(Meta{PNN: 1, Leader: NoLeader}, 9))
	f.Fuzz(func(t *testing.T, b []byte) {
		if fr, err := decodeFrame(b); err == nil {
			if again, err := decodeFrame(fr.encode()); err != nil || again.kind != fr.kind || !bytes.Equal(again.payload, fr.payload) {
				t.Errorf("re-decoding %+v: %+v, %v", fr, again, err)
			}
		}
		if m, boot, err := decodeMeta(b); err == nil {
			if again, againBoot, err := decodeMeta(encodeMeta(m, boot)); err != nil || again != m || againBoot != boot {
				t.Errorf("re-decoding meta %+v, %d: %+v, %d, %v", m, boot, again, againBoot, err)
			}
		}
	})
}

func TestMetaRoundTrip(t *testing.T) {
	tests := []Meta{
		{PNN: 0, Leader: NoLeader},
		{PNN: 3, Flags: nodeflag.Unhealthy | nodeflag.Banned, Generation: 42, Leader: 0},
		{PNN: maxPNN, Flags: 0xffffffff, Generation: 1<<64 - 1, Leader: maxPNN},
	}
	const boot = 1<<64 - 1
	for _, m := range tests {
		b := encodeMeta(m, boot)
		if len(b) > maxMetaSize || len(b) > memberlist.MetaMaxSize {
			t.Errorf("encodeMeta(%+v) is %d bytes, over %d", m, len(b), maxMetaSize)
		}
		got, gotBoot, err := decodeMeta(b)
		if err != nil || got != m || gotBoot != boot {
			t.Errorf("decodeMeta(encodeMeta(%+v, %d)) = %+v, %d, %v", m, uint64(boot), got, gotBoot, err)
		}
		// A later version's appended fields are ignored.
		if got, gotBoot, err := decodeMeta(append(b, 1, 2, 3)); err != nil || got != m || gotBoot != boot {
			t.Errorf("decodeMeta(encodeMeta(%+v)+extra) = %+v, %d, %v", m, got, gotBoot, err)
		}
	}
	if got := encodeMeta(Meta{PNN: 1, Flags: nodeflag.Unhealthy, Generation: 5, Leader: NoLeader}, 9); !bytes.Equal(got, []byte{1, 1, 2, 5, 1, 9}) {
		t.Errorf("encodeMeta = %x, want 010102050109", got)
	}
	for _, b := range [][]byte{
		nil,
		{2, 1, 2, 5, 1, 9},
		{1, 1, 2, 5},
		{1, 1, 2, 5, 3, 9},
		{1, 0x80},
		{1, 1, 2, 5, 1},    // no run id: a node from before sealing
		{1, 1, 2, 5, 1, 0}, // run id 0
	} {
		if m, boot, err := decodeMeta(b); err == nil {
			t.Errorf("decodeMeta(%x) = %+v, %d, want an error", b, m, boot)
		}
	}
}

func TestParseLogLine(t *testing.T) {
	tests := []struct {
		line  string
		level slog.Level
		msg   string
	}{
		{"[DEBUG] memberlist: Stream connection from=127.0.0.1:1", slog.LevelDebug, "Stream connection from=127.0.0.1:1"},
		{"[INFO] memberlist: Marking pnn-2 as failed", slog.LevelInfo, "Marking pnn-2 as failed"},
		{"[WARN] memberlist: Refuting a suspect message", slog.LevelWarn, "Refuting a suspect message"},
		{`[ERR] memberlist: discarding stream with unacceptable label "x"`, slog.LevelError, `discarding stream with unacceptable label "x"`},
		{"[ERROR] memberlist: x", slog.LevelError, "x"},
		{"Err: Could not set the deadline: x", slog.LevelInfo, "Err: Could not set the deadline: x"},
		{"[WHAT] y", slog.LevelInfo, "[WHAT] y"},
	}
	for _, tt := range tests {
		level, msg := parseLogLine(tt.line)
		if level != tt.level || msg != tt.msg {
			t.Errorf("parseLogLine(%q) = %v, %q; want %v, %q", tt.line, level, msg, tt.level, tt.msg)
		}
	}

	var buf bytes.Buffer
	w := logWriter{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	w.Write([]byte("[DEBUG] memberlist: hidden\n"))
	w.Write([]byte("[WARN] memberlist: shown\n"))
	if got := buf.String(); !bytes.Contains(buf.Bytes(), []byte("level=WARN msg=shown")) || bytes.Contains(buf.Bytes(), []byte("hidden")) {
		t.Errorf("logWriter output = %q, want only the WARN line", got)
	}
}

func TestMissingPeers(t *testing.T) {
	ap := netip.MustParseAddrPort
	peers := []netip.AddrPort{ap("198.18.0.2:7946"), ap("198.18.0.3:7946"), ap("198.18.0.4:7946")}
	tests := []struct {
		name  string
		alive []netip.AddrPort
		want  []netip.AddrPort
	}{
		{"alone", []netip.AddrPort{ap("198.18.0.1:7946")}, peers},
		{"one seen", []netip.AddrPort{ap("198.18.0.1:7946"), ap("198.18.0.3:7946")}, []netip.AddrPort{peers[0], peers[2]}},
		{"other port", []netip.AddrPort{ap("198.18.0.2:7947")}, peers},
		{"all seen", []netip.AddrPort{ap("198.18.0.4:7946"), ap("198.18.0.2:7946"), ap("198.18.0.3:7946")}, nil},
	}
	for _, tt := range tests {
		got := missingPeers(peers, tt.alive)
		if diff := cmp.Diff(tt.want, got, equateAddr); diff != "" {
			t.Errorf("%s: missingPeers (-want +got):\n%s", tt.name, diff)
		}
	}
}
