package ipalloc

import (
	"math/bits"
	"net/netip"
)

// key is CTDB's 128-bit address key (four 32-bit words, most significant
// first; IPv4 in w[3]) plus the family, which CTDB leaves out: with it an
// IPv4 address and the IPv6 address ::a.b.c.d are different keys.
type key struct {
	v6 bool
	w  [4]uint32
}

func keyOf(a netip.Addr) key {
	if a.Is4() {
		b := a.As4()
		return key{w: [4]uint32{3: uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])}}
	}
	b := a.As16()
	var k key
	k.v6 = true
	for i := range k.w {
		k.w[i] = uint32(b[4*i])<<24 | uint32(b[4*i+1])<<16 | uint32(b[4*i+2])<<8 | uint32(b[4*i+3])
	}
	return k
}

// compare orders keys as CTDB lists addresses: descending, and (ctdb-go)
// every IPv6 key before every IPv4 key.
func (k key) compare(o key) int {
	if k.v6 != o.v6 {
		if k.v6 {
			return -1
		}
		return 1
	}
	for i := range k.w {
		if k.w[i] != o.w[i] {
			if k.w[i] > o.w[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// distance is LCP2's closeness of two different addresses, CTDB's
// ip_distance: over the four key words, 32 for an equal word, else the
// number of leading zero bits of their XOR. Two IPv4 addresses score 96
// plus their common prefix length (96..127); IPv6 words after the first
// difference still count, as in CTDB. Addresses of different families
// (ctdb-go; CTDB compares IPv4 as ::a.b.c.d) score crossFamily.
func distance(a, b *key) uint64 {
	if a.v6 || b.v6 {
		return distance6(a, b)
	}
	// IPv4: words 0..2 are zero. (This path is kept small so that it
	// inlines: LCP2 computes I distances per address placed.)
	if x := a.w[3] ^ b.w[3]; x != 0 {
		return 96 + uint64(bits.LeadingZeros32(x))
	}
	return 128
}

// distance6 is distance when a or b is an IPv6 address.
func distance6(a, b *key) uint64 {
	if a.v6 != b.v6 {
		return crossFamily
	}
	var d uint64
	for i := range a.w {
		x := a.w[i] ^ b.w[i]
		if x == 0 {
			d += 32
		} else {
			d += uint64(bits.LeadingZeros32(x))
		}
	}
	return d
}

// crossFamily is the distance of an IPv4 and an IPv6 address: that of two
// IPv4 addresses with no common prefix, the least two IPv4 addresses score.
// They share nothing, yet the pair must cost something, as every pair does
// in LCP2 (IPv4 pairs never score below 96): a zero would let a node
// holding only IPv4 addresses take IPv6 ones for free, piling them up on
// the lowest PNN.
const crossFamily = 96

// distance2 is the square of distance: LCP2's cost of a pair of addresses
// on one node.
func distance2(a, b *key) uint64 {
	d := distance(a, b)
	return d * d
}
