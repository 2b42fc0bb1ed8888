// Package daemon is ctdbd's node runtime: it wires configuration, local
// state, the kernel seam, event scripts, the monitor, membership, the
// control socket and recoverd, and executes recoverd's orders.
//
// What it owns: the public addresses configured on this node (added and
// refreshed with a kernel lifetime that never outlives the node's lease),
// this node's flags and run state, and the reports of both to the leader.
package daemon
