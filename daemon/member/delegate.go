package member

import (
	"fmt"
	"slices"

	"github.com/hashicorp/memberlist"

	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
)

// delegate is the Member as memberlist's Delegate, EventDelegate and
// AliveDelegate. memberlist calls the event and alive methods with its
// node lock held and the others on its packet and stream goroutines: none
// of them may block or call back into memberlist.
type delegate struct{ m *Member }

var (
	_ memberlist.Delegate      = (*delegate)(nil)
	_ memberlist.EventDelegate = (*delegate)(nil)
	_ memberlist.AliveDelegate = (*delegate)(nil)
)

// NodeMeta returns this node's encoded meta.
func (d *delegate) NodeMeta(limit int) []byte {
	d.m.mu.Lock()
	b := encodeMeta(d.m.meta, d.m.boot)
	d.m.mu.Unlock()
	if len(b) > limit {
		// Cannot happen (maxMetaSize is far below memberlist's 512), and
		// memberlist panics on an oversized meta.
		return nil
	}
	return b
}

// NotifyMsg drops memberlist user messages: their sender is unknown, so
// our frames travel on our own channel (transport.go), and whoever sends
// one of these is not a node of ours or is forging.
func (d *delegate) NotifyMsg(b []byte) {
	d.m.warnRefused("memberlist user message", "dropping message", "reason", "a memberlist user message, whose sender is unknown")
}

// GetBroadcasts: we queue no broadcasts of our own.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState sends nothing of ours in memberlist's push/pull, which still
// exchanges the membership list. Its receiver could not tell who sent
// what we added: memberlist does not say, and a PNN written into the state
// would be the sender's word.
func (d *delegate) LocalState(join bool) []byte { return nil }

// MergeRemoteState ignores a peer's push/pull state: we send none (see
// LocalState), and what a node that is not ours sends is not to be trusted.
func (d *delegate) MergeRemoteState(b []byte, join bool) {}

// NotifyAlive refuses nodes that are not ours: a name other than "pnn-N",
// a meta that does not decode or names another PNN, an address that is not
// node N's (Config.Nodes) or not a configured peer (Config.Peers).
// memberlist then ignores the node (and logs why).
func (d *delegate) NotifyAlive(n *memberlist.Node) error {
	pnn, ok := parsePNN(n.Name)
	if !ok {
		return fmt.Errorf("node name %q is not pnn-N", n.Name)
	}
	meta, _, err := decodeMeta(n.Meta)
	if err != nil {
		return err
	}
	if meta.PNN != pnn {
		return fmt.Errorf("meta names pnn %d", meta.PNN)
	}
	if n.Name == d.m.name {
		// Ourselves, or an impostor under our name at another address:
		// memberlist refutes that itself.
		return nil
	}
	ap, ok := nodeAddr(n)
	if d.m.nodeAddrs != nil {
		if want, known := d.m.nodeAddrs[pnn]; !ok || !known || ap != want {
			return fmt.Errorf("address %v is not pnn %d's", ap, pnn)
		}
		return nil
	}
	if !ok || !d.m.peerSet[ap] {
		return fmt.Errorf("address %v is not a configured peer", ap)
	}
	return nil
}

func (d *delegate) NotifyJoin(n *memberlist.Node)   { d.m.noteNode(Join, n) }
func (d *delegate) NotifyLeave(n *memberlist.Node)  { d.m.noteNode(Leave, n) }
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.m.noteNode(Update, n) }

// noteNode records a membership change and queues its Event.
func (m *Member) noteNode(kind EventKind, n *memberlist.Node) {
	pnn, ok := parsePNN(n.Name)
	if !ok {
		// NotifyAlive refuses such nodes; never let one in regardless.
		m.log.Warn("ignoring node with foreign name", "node", n.Name)
		return
	}
	p := Peer{PNN: pnn, Alive: kind != Leave}
	p.Addr, _ = nodeAddr(n)
	meta, boot, err := decodeMeta(n.Meta)
	switch {
	case err == nil:
		p.Meta = meta
		if pnn != m.cfg.PNN {
			// A new run retires the old one's messages (seal.go).
			m.replay.sawBoot(pnn, boot)
		}
	case kind == Leave:
		m.mu.Lock()
		p.Meta = m.peers[pnn].Meta
		m.mu.Unlock()
	default:
		m.log.Warn("bad meta", "pnn", pnn, "err", err)
		p.Meta = Meta{PNN: pnn, Flags: nodeflag.Unknown, Leader: NoLeader}
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != stateRunning {
		return
	}
	if pnn == m.cfg.PNN {
		p.Meta = m.meta // ours is the newest
	}
	m.peers[pnn] = p
	if kind == Leave {
		delete(m.nodes, pnn)
	} else {
		node := *n
		node.Addr = slices.Clone(n.Addr)
		node.Meta = slices.Clone(n.Meta)
		m.nodes[pnn] = node
		if err == nil {
			m.boots[pnn] = boot
		}
	}
	m.queueEvent(Event{Kind: kind, Peer: p})
	switch kind {
	case Join:
		m.log.Info("node joined", "pnn", pnn, "addr", p.Addr)
	case Leave:
		// Left or failed: memberlist does not say (the Node it passes has
		// a stale State field).
		m.log.Info("node gone", "pnn", pnn, "addr", p.Addr)
		if pnn != m.cfg.PNN {
			for _, c := range m.pending {
				if c.pnn == pnn {
					select {
					case c.ch <- result{err: fmt.Errorf("pnn %d: %w", pnn, ErrPeerLeft)}:
					default:
					}
				}
			}
		}
	case Update:
		m.log.Debug("node updated", "pnn", pnn, "flags", p.Meta.Flags, "generation", p.Meta.Generation, "leader", p.Meta.Leader)
	}
}
