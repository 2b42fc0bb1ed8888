package member

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// maxPNN is the largest PNN; CTDB's PNNs are uint32 with 0xffffffff meaning
// "unknown", and ours must also fit an int32.
const maxPNN = 1<<31 - 1

// maxKind is the longest message kind.
const maxKind = 255

// nodeName is a node's memberlist name: "pnn-3".
func nodeName(pnn int) string { return "pnn-" + strconv.Itoa(pnn) }

// parsePNN is the inverse of nodeName. It accepts only names nodeName
// produces, so "pnn-03", "pnn--1" and "web1" are not nodes of ours.
func parsePNN(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, "pnn-")
	if !ok || s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > maxPNN {
		return 0, false
	}
	return int(n), true
}

// A frame is one node-to-node message. Every message of ours, reliable
// (TCP) or best effort (UDP), is one frame, sealed (seal.go) and sent on
// our channel of the gossip port (transport.go):
//
//	byte     version, 1
//	byte     flags: 0x01 request (the sender waits for a reply),
//	         0x02 reply, 0x04 error (a reply whose payload is the error text)
//	uvarint  sender PNN (authenticated by the seal, and accepted only from
//	         that node's address)
//	uvarint  request id, 0 for a one-way message; a reply carries its request's
//	uvarint  timeout: milliseconds the requester will wait, 0 for none
//	uvarint  length of kind, then kind (1-255 bytes; a reply repeats it)
//	rest     payload
type frame struct {
	flags   byte
	from    int
	id      uint64
	timeout uint64 // milliseconds
	kind    string
	payload []byte
}

const (
	frameVersion = 1

	flagRequest = 0x01
	flagReply   = 0x02
	flagError   = 0x04
)

func (f *frame) encode() []byte {
	b := make([]byte, 0, 2+4*binary.MaxVarintLen64+len(f.kind)+len(f.payload))
	b = append(b, frameVersion, f.flags)
	b = binary.AppendUvarint(b, uint64(f.from))
	b = binary.AppendUvarint(b, f.id)
	b = binary.AppendUvarint(b, f.timeout)
	b = binary.AppendUvarint(b, uint64(len(f.kind)))
	b = append(b, f.kind...)
	b = append(b, f.payload...)
	return b
}

// decodeFrame parses a frame. The payload aliases b.
func decodeFrame(b []byte) (frame, error) {
	var f frame
	if len(b) < 2 {
		return f, errors.New("decoding frame: too short")
	}
	if b[0] != frameVersion {
		return f, fmt.Errorf("decoding frame: unknown version %d", b[0])
	}
	f.flags = b[1]
	if f.flags&^(flagRequest|flagReply|flagError) != 0 ||
		f.flags&(flagRequest|flagReply) == flagRequest|flagReply ||
		(f.flags&flagError != 0 && f.flags&flagReply == 0) {
		return f, fmt.Errorf("decoding frame: bad flags %#x", f.flags)
	}
	r := b[2:]
	next := func(what string, max uint64) (uint64, error) {
		v, n := binary.Uvarint(r)
		if n <= 0 {
			return 0, fmt.Errorf("decoding frame %s: truncated", what)
		}
		if v > max {
			return 0, fmt.Errorf("decoding frame %s: %d out of range", what, v)
		}
		r = r[n:]
		return v, nil
	}
	from, err := next("sender", maxPNN)
	if err != nil {
		return f, err
	}
	if f.id, err = next("id", 1<<64-1); err != nil {
		return f, err
	}
	if f.timeout, err = next("timeout", 1<<64-1); err != nil {
		return f, err
	}
	kl, err := next("kind", maxKind)
	if err != nil {
		return f, err
	}
	if kl == 0 || uint64(len(r)) < kl {
		return f, errors.New("decoding frame kind: truncated or empty")
	}
	f.from = int(from)
	f.kind = string(r[:kl])
	f.payload = r[kl:]
	if (f.flags&(flagRequest|flagReply) != 0) != (f.id != 0) {
		return f, errors.New("decoding frame: request id does not match flags")
	}
	return f, nil
}
