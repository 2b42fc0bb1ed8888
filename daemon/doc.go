// Package daemon is ctdbd's node runtime. It owns little itself: this
// node's flags and run state, its public_addresses, and its state reports
// to the leader. It wires the components that own the rest, each in its
// own package with Config → New → Run(ctx):
//
//   - addrtable: the public addresses on this node's interfaces, each
//     one's take and release sequence, kernel lifetimes within the lease;
//   - lease: this node's lease with the leader;
//   - monitor and eventscript: the monitor schedule and the event scripts;
//   - member: membership and the sealed node-to-node channel;
//   - recoverd: the election and, on the leader, the takeover decisions;
//   - control: the CLI's socket.
//
// The package's files form layers, each using only those below it:
// daemon.go (the Daemon, New) ← events.go, orders.go, eventcmd.go ←
// peer.go (the node-to-node protocol), fence.go ← admin.go, reload.go,
// metrics.go ← cluster.go (membership, leases, reports) ← status.go ←
// controls.go (the CLI's commands) ← run.go (Run wires and stops it all).
package daemon
