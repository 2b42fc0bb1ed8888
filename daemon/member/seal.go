package member

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// Our frames travel sealed (security audit, issue 10): memberlist's
// NotifyMsg does not say who sent a message, so a frame's sender PNN was
// whatever the sender wrote. Now each frame is sealed with AES-GCM under
// the cluster key and carried on our own channel of the gossip port
// (transport.go), where the packet's source address is known:
//
//	sealed   = version (1 byte, sealVersion)
//	           nonce (12 random bytes)
//	           AES-GCM(key, nonce, plaintext, aad = frameMagic, version, cluster name)
//	plaintext = boot (8 bytes, big endian): the sender's run id, random per Member
//	           seq (8 bytes): the sender's sequence number towards this receiver, from 1
//	           dest (8 bytes): the receiver's run id as the sender knows it (its meta)
//	           the frame (frame.go), whose sender PNN is now authenticated
//
// A receiver accepts a sealed frame only if it opens under one of the
// installed keys, dest is its own run id (so frames captured before it
// restarted are refused without any clock), the sender PNN's configured
// address is the packet's source (sourceMatches), and (boot, seq) passes the
// replay guard (below).

const (
	sealVersion = 1
	// envelopeSize is boot, seq and dest.
	envelopeSize = 3 * 8
	// sealOverhead is what sealing adds to a frame: version, nonce,
	// envelope and the GCM tag.
	sealOverhead = 1 + 12 + envelopeSize + 16
)

// insecureKey seals frames when the cluster has no key (Config.Insecure).
// It is well known (all zeros) and authenticates nothing: with it, frames
// are still bound to their source address and refused when replayed, which
// keeps honest nodes from confusing each other, but any host that can reach
// the gossip port can forge them.
var insecureKey = make([]byte, 32)

// envelope is the authenticated header of a sealed frame.
type envelope struct {
	boot uint64 // the sender's run id
	seq  uint64 // the sender's sequence number towards the receiver, from 1
	dest uint64 // the receiver's run id
}

// sealer seals with its primary key and opens with any of its keys.
type sealer struct {
	aeads []cipher.AEAD // primary first
	aad   []byte
}

func newSealer(cluster string, keys [][]byte) (*sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("member: no key")
	}
	s := &sealer{aad: append([]byte{frameMagic, sealVersion}, cluster...)}
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return nil, err
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("member: key: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("member: key: %w", err)
		}
		s.aeads = append(s.aeads, aead)
	}
	return s, nil
}

func checkKey(k []byte) error {
	switch len(k) {
	case 16, 24, 32:
		return nil
	}
	return fmt.Errorf("member: key is %d bytes, want 16, 24 or 32", len(k))
}

// seal returns version, nonce and the ciphertext of env and frame.
func (s *sealer) seal(env envelope, frame []byte) []byte {
	aead := s.aeads[0]
	out := make([]byte, 1+aead.NonceSize(), sealOverhead+len(frame))
	out[0] = sealVersion
	// A random 96-bit nonce per frame: safe for far more frames than a key
	// will ever seal (NIST SP 800-38D bounds it at 2^32 per key).
	if _, err := rand.Read(out[1:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	pt := make([]byte, envelopeSize, envelopeSize+len(frame))
	binary.BigEndian.PutUint64(pt[0:], env.boot)
	binary.BigEndian.PutUint64(pt[8:], env.seq)
	binary.BigEndian.PutUint64(pt[16:], env.dest)
	pt = append(pt, frame...)
	return aead.Seal(out, out[1:1+aead.NonceSize()], pt, s.aad)
}

var errOpen = errors.New("cannot authenticate: wrong key, another cluster, or forged")

// open authenticates and decrypts b. The frame it returns is its own.
func (s *sealer) open(b []byte) (envelope, []byte, error) {
	var env envelope
	if len(b) < sealOverhead {
		return env, nil, errors.New("sealed frame too short")
	}
	if b[0] != sealVersion {
		return env, nil, fmt.Errorf("unknown seal version %d", b[0])
	}
	nonce, ct := b[1:13], b[13:]
	for _, aead := range s.aeads {
		pt, err := aead.Open(nil, nonce, ct, s.aad)
		if err != nil {
			continue
		}
		env.boot = binary.BigEndian.Uint64(pt[0:])
		env.seq = binary.BigEndian.Uint64(pt[8:])
		env.dest = binary.BigEndian.Uint64(pt[16:])
		return env, pt[envelopeSize:], nil
	}
	return env, nil, errOpen
}

// sourceMatches reports whether a frame claiming to come from PNN claimed
// may have come from src, given every node's gossip address. A packet
// (UDP) must come from the node's exact address: memberlist sends from its
// listening socket. A stream (TCP) comes from an ephemeral port, so its IP
// must be the node's: if src is exactly some node's address it is that
// node; otherwise it is the one node with src's IP. Only where nodes share
// an IP (several daemons on one host, as in tests) does a stream match any
// node on that IP.
func sourceMatches(claimed int, src netip.AddrPort, stream bool, nodes map[int]netip.AddrPort) bool {
	src = unmap(src)
	want, ok := nodes[claimed]
	if !ok || !src.IsValid() {
		return false
	}
	if want == src {
		return true
	}
	if !stream || want.Addr() != src.Addr() {
		return false
	}
	for pnn, a := range nodes {
		if pnn != claimed && a == src {
			return false // src is exactly another node's address
		}
	}
	return true
}

// Replay protection. Each sender numbers its frames towards each receiver
// 1, 2, 3, ... in one run (boot). A receiver keeps, per sender PNN, the
// run it currently hears and a window of the last replayWindow sequence
// numbers: a number seen before, or older than the window, is refused.
// Frames over UDP and over separate TCP connections arrive out of order;
// the window tolerates that up to replayWindow frames (a takeover run sends
// a few per address, in parallel).
//
// Runs: a frame of a new run of a sender starts a fresh window and retires
// the previous run, as does a new run seen in the sender's memberlist meta;
// frames of a retired run are refused, so captured frames of a sender's
// earlier run cannot be replayed once it restarted. Frames captured before
// the receiver itself restarted carry its previous run id as dest and are
// refused by that check. Neither needs synchronised clocks (DESIGN:
// "No clock synchronisation is needed"). The remaining gap: a receiver
// remembers maxRetired runs per sender.
const (
	replayWindow = 4096 // sequence numbers; a multiple of 64
	maxRetired   = 64   // retired runs remembered per sender
)

var (
	errReplay    = errors.New("replayed")
	errTooOld    = errors.New("too old: outside the replay window")
	errRetired   = errors.New("from an earlier run of the sender")
	errZeroSeq   = errors.New("sequence number 0")
	errWrongDest = errors.New("addressed to an earlier run of this node")
)

type replayGuard struct {
	// mu guards peers.
	mu    sync.Mutex
	peers map[int]*replayState
}

type replayState struct {
	boot    uint64
	top     uint64                    // highest sequence number accepted; 0: none
	seen    [replayWindow / 64]uint64 // bit seq%replayWindow: seq accepted, for seq in (top-replayWindow, top]
	retired []uint64                  // earlier runs, oldest first
}

func newReplayGuard() *replayGuard {
	return &replayGuard{peers: make(map[int]*replayState)}
}

func (s *replayState) switchTo(boot uint64) {
	if s.boot != 0 {
		s.retired = append(s.retired, s.boot)
		if len(s.retired) > maxRetired {
			s.retired = slices.Delete(s.retired, 0, len(s.retired)-maxRetired)
		}
	}
	s.boot, s.top, s.seen = boot, 0, [replayWindow / 64]uint64{}
}

func (g *replayGuard) state(pnn int) *replayState {
	s := g.peers[pnn]
	if s == nil {
		s = &replayState{}
		g.peers[pnn] = s
	}
	return s
}

// sawBoot notes pnn's run id from its memberlist meta: a new one retires
// the one the guard holds.
func (g *replayGuard) sawBoot(pnn int, boot uint64) {
	if boot == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.state(pnn)
	if s.boot != boot && !slices.Contains(s.retired, boot) {
		s.switchTo(boot)
	}
}

// check accepts (boot, seq) from pnn once, and records it. Call it only
// for an authenticated frame.
func (g *replayGuard) check(pnn int, boot, seq uint64) error {
	if seq == 0 {
		return errZeroSeq
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.state(pnn)
	if boot != s.boot {
		if slices.Contains(s.retired, boot) {
			return errRetired
		}
		s.switchTo(boot)
	}
	bit := func(n uint64) (*uint64, uint64) {
		i := n % replayWindow
		return &s.seen[i/64], 1 << (i % 64)
	}
	switch {
	case seq > s.top:
		if seq-s.top >= replayWindow {
			s.seen = [replayWindow / 64]uint64{}
		} else {
			for n := s.top + 1; n < seq; n++ {
				w, b := bit(n)
				*w &^= b
			}
		}
		s.top = seq
	case s.top-seq >= replayWindow:
		return errTooOld
	default:
		if w, b := bit(seq); *w&b != 0 {
			return errReplay
		}
	}
	w, b := bit(seq)
	*w |= b
	return nil
}

// Keys.

// GenerateKey returns a new random 32-byte (AES-256) cluster key.
func GenerateKey() ([]byte, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("generating key: %w", err)
	}
	return k, nil
}

// EncodeKey renders key as a key file holds it: standard base64 and a
// newline, as `head -c 32 /dev/urandom | base64` writes it and as
// daemon/config's "gossip key file" reads it (serf's and consul's format).
func EncodeKey(key []byte) []byte {
	return []byte(base64.StdEncoding.EncodeToString(key) + "\n")
}

// ParseKeys reads a key file: one base64 key per line, blank lines and
// lines starting with # ignored; the first key is the primary (it seals),
// the others are accepted too (for rotation, see SetKeys). A file of one
// key, the format daemon/config reads today, is a primary alone. Each key
// must be 16, 24 or 32 bytes.
func ParseKeys(text []byte) (primary []byte, others [][]byte, err error) {
	var keys [][]byte
	for i, line := range bytes.Split(text, []byte("\n")) {
		s := strings.TrimSpace(string(line))
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: key is not base64 text (make one with: head -c 32 /dev/urandom | base64)", i+1)
		}
		if err := checkKey(k); err != nil {
			return nil, nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, nil, errors.New("no key")
	}
	return keys[0], keys[1:], nil
}
