package member

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
)

// NoLeader is Meta.Leader when a node knows of no leader (CTDB's
// CTDB_UNKNOWN_PNN).
const NoLeader = -1

// Meta is what every node gossips about itself in its memberlist meta.
// memberlist caps meta at 512 bytes; the encoding below is at most 51.
type Meta struct {
	PNN        int            // the node's PNN; SetMeta fills it in
	Flags      nodeflag.Flags // CTDB's node flags as the node sees itself
	Generation uint64         // the leader's generation the node last saw; only grows
	Leader     int            // PNN of the leader the node follows, or NoLeader
}

// metaVersion is the first byte of an encoded Meta. Fields are only ever
// appended, so a decoder reads the fields it knows and ignores the rest;
// a change that is not an append takes a new version.
const metaVersion = 1

// maxMetaSize bounds an encoding: version, then PNN, Flags, Generation,
// Leader and run id as varints.
const maxMetaSize = 1 + 5*binary.MaxVarintLen64

// encodeMeta renders m and the node's run id (Member.boot) as: version
// byte 1, uvarint PNN, uvarint Flags, uvarint Generation, zig-zag varint
// Leader (so NoLeader is one byte), uvarint run id. The run id is not
// part of Meta: it is this package's, for sealing messages (seal.go).
func encodeMeta(m Meta, boot uint64) []byte {
	b := make([]byte, 0, maxMetaSize)
	b = append(b, metaVersion)
	b = binary.AppendUvarint(b, uint64(m.PNN))
	b = binary.AppendUvarint(b, uint64(m.Flags))
	b = binary.AppendUvarint(b, m.Generation)
	b = binary.AppendVarint(b, int64(m.Leader))
	b = binary.AppendUvarint(b, boot)
	return b
}

var errShortMeta = errors.New("truncated")

// decodeMeta parses what encodeMeta wrote; trailing bytes are fields of a
// later version and are ignored. A meta without a run id (of a node from
// before message sealing, which could not talk to this one) is refused.
func decodeMeta(b []byte) (Meta, uint64, error) {
	if len(b) == 0 {
		return Meta{}, 0, errors.New("decoding meta: empty")
	}
	if b[0] != metaVersion {
		return Meta{}, 0, fmt.Errorf("decoding meta: unknown version %d", b[0])
	}
	r := b[1:]
	uvarint := func(max uint64) (uint64, error) {
		v, n := binary.Uvarint(r)
		if n <= 0 {
			return 0, errShortMeta
		}
		if v > max {
			return 0, fmt.Errorf("value %d out of range", v)
		}
		r = r[n:]
		return v, nil
	}
	var m Meta
	pnn, err := uvarint(maxPNN)
	if err != nil {
		return Meta{}, 0, fmt.Errorf("decoding meta PNN: %w", err)
	}
	flags, err := uvarint(1<<32 - 1)
	if err != nil {
		return Meta{}, 0, fmt.Errorf("decoding meta flags: %w", err)
	}
	gen, err := uvarint(1<<64 - 1)
	if err != nil {
		return Meta{}, 0, fmt.Errorf("decoding meta generation: %w", err)
	}
	leader, n := binary.Varint(r)
	if n <= 0 {
		return Meta{}, 0, fmt.Errorf("decoding meta leader: %w", errShortMeta)
	}
	if leader < NoLeader || leader > maxPNN {
		return Meta{}, 0, fmt.Errorf("decoding meta leader: value %d out of range", leader)
	}
	r = r[n:]
	boot, err := uvarint(1<<64 - 1)
	if err != nil {
		return Meta{}, 0, fmt.Errorf("decoding meta run id: %w", err)
	}
	if boot == 0 {
		return Meta{}, 0, errors.New("decoding meta run id: zero")
	}
	m.PNN, m.Flags, m.Generation, m.Leader = int(pnn), nodeflag.Flags(flags), gen, int(leader)
	return m, boot, nil
}
