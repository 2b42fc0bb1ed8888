package ipalloc_test

import (
	"net/netip"
	"strconv"

	"github.com/google/go-cmp/cmp"

	"github.com/ctdb-go/ctdb-go/ipalloc"
)

// cmpAddr lets go-cmp compare netip.Addr values.
var cmpAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// lines renders an allocation as `ctdb ipalloc` prints it, one "IP PNN"
// per address, for readable diffs.
func lines(as []ipalloc.Assignment) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Addr.String() + " " + strconv.Itoa(a.PNN)
	}
	return out
}
