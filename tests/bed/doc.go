// Package bed is ctdb-go's test bed: a cluster of network namespaces on one
// host, the faults the end-to-end tests inject into it, and an invariant
// checker that watches every public address while they do.
//
// Topology, for a bed with id cg<pid>-<seq> (one per New):
//
//	cg…-sw   the "switch": bridges br-priv and br-pub (STP off, forward delay 0)
//	         and the switch-side veth ends n<i>-priv, n<i>-pub, cl-pub
//	cg…-n<i> node i (PNN i): eth0 private 198.18.0.(i+1)/24 on br-priv,
//	         eth1 public on br-pub with no address of its own
//	cg…-cl   the client: eth0 198.18.1.200/24 on br-pub, plus an on-link
//	         route for every public-address subnet outside 198.18.1.0/24
//
// Public addresses default to 198.18.1.1-6/24 and are listed, on eth1, in every
// node's public_addresses. Every node's config directory holds gossip.key
// (mode 0600, 32 random bytes per bed in base64), named by [cluster] gossip
// key file, unless Config.InsecureGossip.
//
// Network safety: every link is created inside a bed namespace (veths are made
// in the switch namespace with their peer placed straight into the node or
// client namespace), so the root namespace never gets a link, an address or a
// route on the test networks, and every probe (ARP, UDP) runs from a socket
// opened inside a bed namespace. Addresses come only from 198.18.0.0/15.
// Namespace names carry the creating process's PID and a per-process
// sequence number, so two runs never collide and Sweep can tell a dead run's
// leftovers from a live one's.
//
// Faults: PullPublic/PullPrivate set the node's switch-side veth end down,
// so the node's eth1/eth0 loses carrier as a pulled cable would. Partition
// moves the switch-side private ends of each group onto a bridge of its own
// (br-part<k>) in the switch namespace; nodes named in no group stay on
// br-priv, and Heal moves every end back and deletes the group bridges. The
// nodes' links never change state, only who they can reach. Partition
// leaves the public network as it is; FullPartition also moves the public
// ports of every side but the largest onto bridges of their own
// (br-pubpart<k>), so a cut-off minority can neither gossip nor be seen by
// the client, whose ARP then cannot tell a lingering old holder (the case
// the lease alone must cover). Kill, Stop, Cont and Terminate signal the ctdbd
// process by PID (SIGKILL, SIGSTOP, SIGCONT, SIGTERM).
//
// Processes: every child is started from one OS thread locked for the life
// of the process, with Pdeathsig SIGKILL, so the daemons die with the
// harness even when it is killed without cleanup; each child gets its own
// process group, so a Ctrl-C in the terminal reaches only the harness, which
// decides. Close kills the processes it started (by PID), deletes the
// namespaces (the veths and bridges go with them) and removes the run
// directory unless KEEP_BED=1. HandleSignals makes SIGINT/SIGTERM close every
// open bed before the process exits; Sweep removes what a crashed earlier run
// left behind.
package bed
