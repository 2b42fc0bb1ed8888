// Package ipalloc decides which node serves each public address: CTDB's IP
// allocation algorithms (deterministic, non-deterministic and LCP2, the
// default) re-created as a pure function.
//
// ipalloc owns the decision only. It gets plain values (nodes and whether
// each may host addresses, every address with its current holder and the
// nodes that could host it, the tunables that steer the algorithms) and
// returns the plan: every address with its new holder or -1, in CTDB's
// order. It does no I/O, keeps no state between calls, reads no clock and
// logs nothing (warnings CTDB would log come back as Result.Notes); the
// leader in recoverd gathers the inputs and pushes the plan, the daemon
// executes it. A test fails if the package comes to depend on os, net,
// syscall, time or log/slog, even indirectly.
//
// Allocate computes a plan (and never fails: inconsistent input is
// repaired and noted); Check reports such input for callers that would
// rather refuse it; Merge builds the address list from every node's own
// view the way CTDB does; Compare is CTDB's address order. The simulator
// `ctdb ipalloc FILE` runs Allocate on a case file read by ipalloc/casefile.
//
// Answers are CTDB's: the 21 cases of CTDB's own unit tests (testdata/ctdb)
// give the same allocation, address for address, in the same order. Where
// CTDB is wrong, ipalloc differs only outside those cases:
//
//   - LCP2's imbalance is a 32-bit sum in CTDB, which wraps at roughly 750
//     addresses on one node and then stops rebalancing (measured: 900
//     addresses stuck at 784/58/58 on three nodes). ipalloc sums in 64 bits,
//     enough for 2^20 addresses on one node.
//   - CTDB keys an IPv4 address as the IPv6 address ::a.b.c.d, so IPv4
//     addresses and IPv6 addresses in ::/96 share one key space and LCP2
//     scores an IPv4 address as close to low IPv6 addresses. ipalloc keeps
//     the families apart: IPv6 addresses sort before all IPv4 ones (as they
//     do in CTDB unless they lie in ::/96, which public addresses never do),
//     and the LCP2 distance between an IPv4 and an IPv6 address is a fixed
//     96, that of two IPv4 addresses with no common prefix, whatever their
//     bits: such a pair still counts towards a node's load, but no
//     IPv4 address looks "close" to an IPv6 one.
//   - With NoIPTakeover set the deterministic algorithm keeps every address
//     where it is (or unassigns it), as the tunable promises; CTDB would
//     still move addresses to their home nodes. No CTDB case covers this.
//   - Algorithm 3, LCP2Rebalance, is ctdb-go's own: LCP2 whose failback may
//     also move addresses onto nodes that already hold some, so a cluster
//     does not stay unbalanced after a node rejoins (CTDB's lcp2.028).
//
// Starting from nothing assigned, with every node able to host every
// address, LCP2 ends with address counts within one of each other; a test
// checks this on random IPv4 sets and on IPv6 sets inside one /32. CTDB's
// IPv6 distance adds up the four words separately, so IPv6 addresses that
// differ in several words can score far below any IPv4 pair (96) and end
// more than one apart, in CTDB as here.
//
// Speed: LCP2 keeps, for every address and node, the cost of placing the
// address there, and updates it when an address is placed or moved, instead
// of recomputing sums over all addresses as CTDB does; the answers are the
// naive algorithm's (a test compares both on random inputs). 256 nodes and
// 4096 addresses take well under a second.
package ipalloc
