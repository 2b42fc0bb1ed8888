package member

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/hashicorp/memberlist"
)

// Handle registers fn for messages of kind, requests and one-way messages
// alike. Register before Run, so that no message finds no handler. It
// panics on an empty or over-long kind, a nil fn, or a kind registered
// twice: those are programming errors.
func (m *Member) Handle(kind string, fn Handler) {
	if err := checkKind(kind); err != nil {
		panic(err)
	}
	if fn == nil {
		panic("member: nil handler for " + kind)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.handlers[kind]; dup {
		panic("member: handler for " + kind + " registered twice")
	}
	m.handlers[kind] = fn
}

func checkKind(kind string) error {
	if kind == "" || len(kind) > maxKind {
		return fmt.Errorf("member: message kind %q: want 1 to %d bytes", kind, maxKind)
	}
	return nil
}

// Send sends a one-way message to pnn's handler for kind. Reliable sends
// over TCP (a new connection per message, about 1-3 ms on a LAN): a nil
// error means the peer received and accepted it (it authenticated it). Otherwise it
// is one UDP packet, which may be lost, and the sealed frame must fit in
// 1400 bytes (about 1330 of payload). A message to this node's own PNN is
// dispatched locally. Messages are not ordered: each is served on its own
// goroutine.
func (m *Member) Send(pnn int, kind string, payload []byte, reliable bool) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	f := frame{from: m.cfg.PNN, kind: kind, payload: payload}
	if err := m.sendFrame(pnn, &f, reliable); err != nil {
		return fmt.Errorf("sending %s to pnn %d: %w", kind, pnn, err)
	}
	return nil
}

// Request sends a request to pnn's handler for kind over TCP and waits for
// its reply, until ctx ends (ctx's deadline also bounds the remote
// handler's context). A handler error comes back as a *RemoteError, as
// does a missing handler; ErrPeerLeft if the peer left or was declared dead
// meanwhile. A request to this node's own PNN is served locally.
func (m *Member) Request(ctx context.Context, pnn int, kind string, payload []byte) ([]byte, error) {
	if err := checkKind(kind); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("requesting %s from pnn %d: %w", kind, pnn, err)
	}
	c := &call{pnn: pnn, ch: make(chan result, 1)}
	id := m.nextID.Add(1)
	m.mu.Lock()
	switch m.state {
	case stateNew:
		m.mu.Unlock()
		return nil, ErrNotRunning
	case stateStopped:
		m.mu.Unlock()
		return nil, ErrClosed
	}
	m.pending[id] = c
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.pending, id)
		m.mu.Unlock()
	}()

	f := frame{flags: flagRequest, from: m.cfg.PNN, id: id, kind: kind, payload: payload}
	if dl, ok := ctx.Deadline(); ok {
		// Round up, so a request with time left never says "no timeout".
		f.timeout = uint64(max(1, (time.Until(dl)+time.Millisecond-1)/time.Millisecond))
	}
	if err := m.sendFrame(pnn, &f, true); err != nil {
		return nil, fmt.Errorf("requesting %s from pnn %d: %w", kind, pnn, err)
	}
	select {
	case r := <-c.ch:
		if r.err != nil {
			var re *RemoteError
			if errors.As(r.err, &re) {
				if err := expired(ctx); err != nil {
					// The handler gave up at our deadline (it has it) and
					// its answer beat our own timer: say both.
					return nil, fmt.Errorf("waiting for %s reply from pnn %d: %w (%w)", kind, pnn, err, r.err)
				}
				return nil, r.err
			}
			return nil, fmt.Errorf("requesting %s from pnn %d: %w", kind, pnn, r.err)
		}
		return r.payload, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for %s reply from pnn %d: %w", kind, pnn, ctx.Err())
	}
}

// expired is ctx.Err(), or DeadlineExceeded once ctx's deadline has
// passed even if its timer has not fired yet.
func expired(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// sendFrame seals f and sends it to pnn over our channel of the gossip
// port (transport.go), or dispatches it locally when pnn is us.
func (m *Member) sendFrame(pnn int, f *frame, reliable bool) error {
	b := f.encode()
	switch {
	case !reliable && 1+sealOverhead+len(b) > maxBestEffort:
		return fmt.Errorf("best-effort message of %d bytes, limit %d: send it reliably", len(b), maxBestEffort-1-sealOverhead)
	case len(b) > maxReliable:
		return fmt.Errorf("message of %d bytes, limit %d", len(b), maxReliable)
	}
	m.mu.Lock()
	state, ml, tr := m.state, m.ml, m.tr
	if state != stateRunning || ml == nil || pnn == m.cfg.PNN {
		m.mu.Unlock()
		switch {
		case state == stateStopped:
			return ErrClosed
		case state == stateNew || ml == nil:
			return ErrNotRunning
		}
		local, err := decodeFrame(b) // a copy: the handler owns its payload
		if err != nil {
			return err
		}
		m.deliver(local)
		return nil
	}
	node, ok := m.nodes[pnn]
	dest := m.boots[pnn]
	m.seq[pnn]++
	env := envelope{boot: m.boot, seq: m.seq[pnn], dest: dest}
	m.mu.Unlock()
	if !ok || dest == 0 {
		return fmt.Errorf("pnn %d: %w", pnn, ErrUnknownPeer)
	}
	sealed := m.sealer.Load().seal(env, b)
	a := memberlist.Address{Addr: node.Address(), Name: node.Name}
	if reliable {
		return tr.sendStream(a, sealed)
	}
	return tr.sendPacket(a, sealed)
}

// receiveSealed takes a sealed frame from src off our channel (it owns
// sealed) and delivers it if it is authentic, from the node it names, and
// new (seal.go). It never blocks; nil means delivered.
func (m *Member) receiveSealed(src netip.AddrPort, stream bool, sealed []byte) error {
	env, b, err := m.sealer.Load().open(sealed)
	if err != nil {
		m.warnRefused("open", "dropping message", "from", src, "err", err)
		return err
	}
	if env.dest != m.boot {
		// Sent before this node restarted, by a peer that has not yet seen
		// its new meta, or replayed from then.
		m.log.Debug("dropping message", "from", src, "err", errWrongDest)
		return errWrongDest
	}
	f, err := decodeFrame(b)
	if err != nil {
		m.warnRefused("decode", "dropping message", "from", src, "err", err)
		return err
	}
	if f.from == m.cfg.PNN || !sourceMatches(f.from, src, stream, m.addrs()) {
		err := fmt.Errorf("claims to be from pnn %d", f.from)
		m.warnRefused("source", "dropping forged message", "from", src, "kind", f.kind, "err", err)
		return err
	}
	if err := m.replay.check(f.from, env.boot, env.seq); err != nil {
		m.warnRefused("replay", "dropping message", "pnn", f.from, "from", src, "kind", f.kind, "err", err)
		return err
	}
	m.deliver(f)
	return nil
}

// addrs returns every other node's gossip address by PNN: Config.Nodes,
// or with Config.Peers the alive members' addresses.
func (m *Member) addrs() map[int]netip.AddrPort {
	if m.nodeAddrs != nil {
		return m.nodeAddrs
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[int]netip.AddrPort, len(m.nodes))
	for pnn, n := range m.nodes {
		if a, ok := nodeAddr(&n); ok && pnn != m.cfg.PNN {
			out[pnn] = a
		}
	}
	return out
}

// warnRefused logs a refused message at Warn, but at most once a second
// per reason (the rest at Debug), so a flood of forged packets cannot
// flood the log.
func (m *Member) warnRefused(reason, msg string, args ...any) {
	level := slog.LevelDebug
	now := time.Now()
	m.mu.Lock()
	if now.Sub(m.lastWarn[reason]) >= time.Second {
		m.lastWarn[reason] = now
		level = slog.LevelWarn
	}
	m.mu.Unlock()
	m.log.Log(context.Background(), level, msg, args...)
}

// deliver handles a frame: a reply goes to its waiting Request, anything
// else to its handler on a new goroutine. It never blocks.
func (m *Member) deliver(f frame) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != stateRunning {
		return
	}
	if f.flags&flagReply != 0 {
		c := m.pending[f.id]
		if c == nil || c.pnn != f.from {
			// Late (the requester gave up) or not for us.
			m.log.Debug("dropping reply", "pnn", f.from, "kind", f.kind, "id", f.id)
			return
		}
		r := result{payload: f.payload}
		if f.flags&flagError != 0 {
			r = result{err: &RemoteError{PNN: f.from, Kind: f.kind, Msg: string(f.payload)}}
		}
		select {
		case c.ch <- r:
		default:
		}
		return
	}
	if m.inflight >= maxInflight {
		m.log.Warn("too many messages in flight, dropping one", "pnn", f.from, "kind", f.kind)
		return
	}
	m.inflight++
	m.wg.Add(1)
	go m.serve(f, m.handlers[f.kind])
}

// serve runs h for f and, for a request, sends the reply.
func (m *Member) serve(f frame, h Handler) {
	defer func() {
		m.mu.Lock()
		m.inflight--
		m.mu.Unlock()
		m.wg.Done()
	}()
	ctx := m.stopCtx
	if f.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(f.timeout)*time.Millisecond)
		defer cancel()
	}
	var (
		out []byte
		err error
	)
	if h == nil {
		err = fmt.Errorf("no handler for %s", f.kind)
	} else {
		out, err = m.call(ctx, h, f)
	}
	if f.flags&flagRequest == 0 {
		if err != nil {
			m.log.Warn("handling message", "pnn", f.from, "kind", f.kind, "err", err)
		}
		return
	}
	reply := frame{flags: flagReply, from: m.cfg.PNN, id: f.id, kind: f.kind, payload: out}
	if err != nil {
		reply.flags |= flagError
		reply.payload = []byte(err.Error())
	}
	if err := m.sendFrame(f.from, &reply, true); err != nil && !errors.Is(err, ErrClosed) {
		m.log.Warn("replying", "pnn", f.from, "kind", f.kind, "err", err)
	}
}

// call runs a handler, turning a panic into an error so that one bad
// message cannot take the daemon down.
func (m *Member) call(ctx context.Context, h Handler, f frame) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("handler panicked", "pnn", f.from, "kind", f.kind, "panic", r, "stack", string(debug.Stack()))
			out, err = nil, fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return h(ctx, f.from, f.payload)
}
