// Package config reads a node's configuration directory (CTDB_BASE,
// ctdbd --config-dir, default /etc/ctdb) in CTDB's formats, so that a
// CTDB configuration carries over:
//
//	ctdb.conf           INI: [logging] [cluster] [failover] [event] [legacy] [database]
//	nodes               one private address per line; PNN = line index
//	public_addresses    ADDRESS/BITS IFACE[,IFACE...] per line, this node's own
//	script.options      NAME=value shell assignments for the event scripts
//	ctdb.tunables       NAME=VALUE tunables, then tunables.d/*.tunables
//
// testdata/example is a complete configuration directory whose comments
// document every ctdb.conf key; it is the configuration reference.
//
// Load reads it all and reports every problem at once, as "FILE:LINE:
// problem" lines (Errors), so that ctdbd --check-config shows them
// together. Nothing is silently ignored: unknown sections and keys, bad
// values and malformed lines are errors; keys accepted only for CTDB
// compatibility, and deprecated ones, are Warnings.
//
// Where ctdb-go differs from CTDB in what it reads:
//   - nodes: as in CTDB, every line starting with "#" is a deleted node
//     that keeps its PNN, even a line meant as a comment (that gets a
//     warning). Addresses have no port; "nodes list = !command" is not
//     supported. All nodes use one address family; loopback,
//     unspecified, broadcast, multicast and IPv6 link-local addresses are
//     errors (IPv4 link-local, a warning).
//   - public_addresses: interfaces are checked for form here and for
//     existence by the daemon; a node's own private address cannot be a
//     public address; nor can loopback, unspecified, broadcast,
//     multicast or IPv6 link-local addresses, an IPv4 subnet's network
//     or broadcast address (up to /30), or a prefix wider than /8 (IPv4)
//     or /16 (IPv6), whose route would capture others' traffic.
//   - ctdb.conf: keys are case-insensitive and blanks inside them are
//     folded ("Log  Level" is "log level"); a value runs to the end of the
//     line (no trailing comments); setting a key twice is an error;
//     booleans are true/false, yes/no, on/off or 1/0. [logging] location
//     defaults to stderr. ctdb-go's own keys are [cluster] name, gossip
//     port, gossip key file, quorum; [failover] fence; [logging] metrics
//     address. [database] and [legacy] realtime scheduling / lmaster
//     capability are accepted and ignored: ctdb-go has no databases.
//     cluster lock: a "!HELPER ARGS" helper must be an executable file
//     given by absolute path; etcd:// locks are refused until built.
//   - gossip keys: a cluster of more than one node needs a key file
//     ([cluster] gossip key file, default gossip.key here if it exists;
//     one base64 key per line, the first primary: GossipKeys), not
//     readable by other users, or the explicit, loudly warned opt-out
//     [cluster] insecure gossip = true.
//   - fencing: [failover] fence = true needs an enabled events.d script
//     carrying FenceMarker ("# ctdb-go: handles fence"); FenceScripts
//     lists them, for the daemon too.
//   - script.options: each line must read the same to sh (dash) and to
//     this package; what might not (CR, control characters, an unquoted
//     ~, $(...), `...`, ${X:-y}, $1) is an error. $NAME and ${NAME} are
//     left to sh: those values are in ScriptOptionsShell, not
//     ScriptOptions. FuzzScriptOptions checks the agreement against sh.
//   - tunables: CTDB's names and defaults, in `ctdb listvars` order, then
//     ctdb-go's (LeaseTime, LeaseRenewIntervalMs, ProbeIntervalMs, ...).
//     Each has a range (TunableRange; testdata/example/ctdb.tunables
//     lists those ctdb-go uses) that files and ctdb setvar enforce.
//     Tunables is safe for concurrent use: ctdb setvar changes it live.
//
// The package reads files only; it looks at no interface and starts
// nothing. FindPNN and CheckLocal take the host's addresses as an
// argument.
package config
