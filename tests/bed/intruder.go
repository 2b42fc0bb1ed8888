package bed

import (
	"fmt"
	"net/netip"
)

// IntruderAddr is the intruder's address on the private network: inside
// PrivateNet but no node's (nodes are 198.18.0.1-64).
var IntruderAddr = netip.MustParsePrefix("198.18.0.250/24")

// AddIntruder makes the intruder: namespace <id>-x, a host that is not a
// node, with eth0 on the private bridge (br-priv) at IntruderAddr, so it
// can send to every node's gossip port as any host on the cluster network
// could. It has no key and no files of the bed. It returns the namespace's
// name; run programs in it with Exec or Spawn. Close deletes it with the
// others. A second call returns the same namespace.
func (b *Bed) AddIntruder() (string, error) {
	b.mu.Lock()
	if b.intruder != "" {
		ns := b.intruder
		b.mu.Unlock()
		return ns, nil
	}
	if b.closed {
		b.mu.Unlock()
		return "", fmt.Errorf("bed: intruder: %w", errClosed)
	}
	ns := b.id + "-x"
	// Recorded before it exists, so that Close deletes whatever part of
	// it was made (Close skips a namespace that was never created).
	b.intruder = ns
	b.mu.Unlock()
	b.logf("adding the intruder %s at %s on br-priv", ns, IntruderAddr)
	if err := b.ipBatch("", []string{"netns add " + ns}); err != nil {
		return "", err
	}
	if err := b.ipBatch(b.sw, []string{
		"link add x-priv type veth peer name eth0 netns " + ns,
		"link set x-priv master br-priv up",
	}); err != nil {
		return "", err
	}
	if err := b.ipBatch(ns, []string{
		"link set lo up",
		fmt.Sprintf("addr add %s dev eth0", IntruderAddr),
		"link set eth0 up",
	}); err != nil {
		return "", err
	}
	return ns, nil
}
