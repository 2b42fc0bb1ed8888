// Package recoverd is ctdb-go's decision maker: it elects the leader
// ("recovery master") under the cluster lock, grants the leases that keep
// every public address on at most one node, and runs takeover runs that
// move addresses with ipalloc's plan.
//
// It runs on every node; only the node that holds the cluster lock acts as
// leader. It decides and sends orders; the daemon executes them (adds and
// removes addresses, runs event scripts) and reports its state back.
//
// Safety rests on three rules (DESIGN.md, "Leases"):
//   - a node holds an address only while its lease, granted by the leader,
//     runs; the kernel lifetime of the address never outlives the lease;
//   - the leader gives an address to a new node only once no other node can
//     still hold it: every reachable claimant has released it, and every
//     unreachable one has had no grant for LeaseTime + LeaseMargin;
//   - a leader without the lock or without quorum grants nothing.
//
// The takeover decision is Decide, a pure function of a View (what the
// leader knows: reports, leases granted, fence states, tunables) and a
// time, returning a Decision (moves, blocked addresses, fences to start,
// state to record). The leader's loop builds the view, calls Decide and
// carries the decision out; testdata/decide holds its cases as text
// (`go test ./recoverd -update` rewrites their decisions).
package recoverd
