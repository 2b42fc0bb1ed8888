package bed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// daemonArgv is how ctdbd is started for node paths np; it runs in the
// foreground.
func (b *Bed) daemonArgv(np NodePaths) (argv, env []string) {
	if b.debianMode() { // Debian's ctdb: see ctdb.go
		return b.debianDaemonArgv(np)
	}
	env = []string{"CTDB_BASE=" + np.Config, "CTDB_SOCKET=" + np.Socket}
	if os.Getenv("CTDB_HELPER_BINDIR") == "" {
		// The scripts look for CTDB's helpers (ctdb_killtcp) here: an
		// empty directory of the bed's, so that a ctdb package installed
		// on the host does not change what the tests run. Set
		// CTDB_HELPER_BINDIR to run with the host's.
		env = append(env, "CTDB_HELPER_BINDIR="+filepath.Join(b.root, "libexec"))
	}
	return []string{filepath.Join(b.cfg.Bin, "ctdbd"),
		"--config-dir", np.Config, "--run-dir", np.Run, "--state-dir", np.State}, env
}

// ctdbArgv is how the ctdb CLI is run against node paths np.
func (b *Bed) ctdbArgv(np NodePaths, args []string) (argv, env []string) {
	if b.debianMode() {
		return b.debianCtdbArgv(np, args)
	}
	return append([]string{filepath.Join(b.cfg.Bin, "ctdb"), "--socket", np.Socket}, args...),
		[]string{"CTDB_BASE=" + np.Config, "CTDB_SOCKET=" + np.Socket}
}

func (b *Bed) checkNode(i int) error {
	if i < 0 || i >= b.cfg.Nodes {
		return fmt.Errorf("bed: no node %d (nodes 0-%d)", i, b.cfg.Nodes-1)
	}
	return nil
}

// Start starts ctdbd on node i, in the foreground inside the node's
// namespace, its output appended to Paths(i).Log.
func (b *Bed) Start(i int) error {
	if err := b.checkNode(i); err != nil {
		return err
	}
	b.mu.Lock()
	cur := b.daemons[i]
	b.mu.Unlock()
	if cur != nil {
		if exited, _ := cur.Exited(); !exited {
			return fmt.Errorf("bed: node %d: ctdbd already running (pid %d)", i, cur.PID)
		}
	}
	np := b.Paths(i)
	argv, env := b.daemonArgv(np)
	if _, err := os.Stat(argv[0]); err != nil {
		return fmt.Errorf("bed: node %d: %w (run make build first)", i, err)
	}
	p, err := b.spawn(b.nodes[i], fmt.Sprintf("node %d ctdbd", i), np.Log, env, argv)
	if err != nil {
		return fmt.Errorf("bed: node %d: %w", i, err)
	}
	b.mu.Lock()
	b.daemons[i] = p
	b.mu.Unlock()
	return nil
}

// StartAll starts ctdbd on every node.
func (b *Bed) StartAll() error {
	for i := range b.cfg.Nodes {
		if err := b.Start(i); err != nil {
			return err
		}
	}
	return nil
}

// Daemon is node i's current ctdbd process, nil if never started.
func (b *Bed) Daemon(i int) *Proc {
	if b.checkNode(i) != nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.daemons[i]
}

// Running reports whether node i's ctdbd has been started and not exited
// (a stopped one is running).
func (b *Bed) Running(i int) bool {
	p := b.Daemon(i)
	if p == nil {
		return false
	}
	exited, _ := p.Exited()
	return !exited
}

func (b *Bed) signal(i int, sig syscall.Signal) (*Proc, error) {
	p := b.Daemon(i)
	if p == nil {
		return nil, fmt.Errorf("bed: node %d: ctdbd not started", i)
	}
	b.logf("node %d: %v to ctdbd pid %d", i, sig, p.PID)
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		p.intended.Store(true)
	}
	return p, p.Signal(sig)
}

// Signal sends sig to node i's ctdbd (SIGHUP to reload, say) and does
// not wait.
func (b *Bed) Signal(i int, sig syscall.Signal) error {
	_, err := b.signal(i, sig)
	return err
}

// Kill SIGKILLs node i's ctdbd and waits until it is gone.
func (b *Bed) Kill(i int) error {
	p, err := b.signal(i, syscall.SIGKILL)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), CmdTimeout)
	defer cancel()
	if err := p.Wait(ctx); err != nil && ctx.Err() != nil {
		return err
	}
	return nil
}

// Stop SIGSTOPs node i's ctdbd (a hung daemon).
func (b *Bed) Stop(i int) error {
	_, err := b.signal(i, syscall.SIGSTOP)
	return err
}

// Cont SIGCONTs node i's ctdbd.
func (b *Bed) Cont(i int) error {
	_, err := b.signal(i, syscall.SIGCONT)
	return err
}

// Terminate SIGTERMs node i's ctdbd and waits for it to exit; after
// TermTimeout it SIGKILLs it and says so. It returns nil when the daemon
// exited by itself with status 0, and the exit otherwise.
func (b *Bed) Terminate(i int) error {
	p, err := b.signal(i, syscall.SIGTERM)
	if err != nil {
		return err
	}
	// A stopped daemon cannot act on SIGTERM.
	_ = p.Signal(syscall.SIGCONT)
	ctx, cancel := context.WithTimeout(context.Background(), TermTimeout)
	defer cancel()
	werr := p.Wait(ctx)
	if ctx.Err() != nil {
		kerr := p.kill()
		return errors.Join(fmt.Errorf("bed: node %d: ctdbd did not exit within %v of SIGTERM; killed", i, TermTimeout), kerr)
	}
	if werr != nil {
		return fmt.Errorf("bed: node %d: ctdbd exited after SIGTERM: %w", i, werr)
	}
	return nil
}

// Restart terminates node i's ctdbd if it runs, then starts it again. An
// unclean exit of the old daemon is returned together with any start
// error, but the start is tried regardless.
func (b *Bed) Restart(i int) error {
	var terr error
	if b.Running(i) {
		terr = b.Terminate(i)
	}
	return errors.Join(terr, b.Start(i))
}

// Logs is node i's ctdbd log (the daemon's log file, which its stdout and
// stderr share).
func (b *Bed) Logs(i int) string {
	if b.checkNode(i) != nil {
		return ""
	}
	data, err := os.ReadFile(b.Paths(i).Log)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(data)
}

// LogTail is the last n lines of node i's log.
func (b *Bed) LogTail(i, n int) string {
	lines := strings.Split(strings.TrimRight(b.Logs(i), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Ctdb runs `ctdb --socket <node i's socket> args…` inside node i's
// namespace and returns what it printed; a non-zero exit is not an error.
func (b *Bed) Ctdb(i int, args ...string) (Output, error) {
	return b.CtdbContext(context.Background(), i, args...)
}

// CtdbContext is Ctdb with a context.
func (b *Bed) CtdbContext(ctx context.Context, i int, args ...string) (Output, error) {
	return b.ctdb(ctx, i, true, args)
}

// ctdb runs the CLI; log is false for the polls of WaitFor conditions,
// whose outcome ends up in the wait's error instead.
func (b *Bed) ctdb(ctx context.Context, i int, log bool, args []string) (Output, error) {
	if err := b.checkNode(i); err != nil {
		return Output{}, err
	}
	argv, env := b.ctdbArgv(b.Paths(i), args)
	full := append([]string{"ip", "netns", "exec", b.nodes[i]}, argv...)
	out, err := runContext(ctx, full, "", env)
	if log {
		b.logf("node %d: ctdb %s: %s", i, strings.Join(args, " "), out)
	}
	if err != nil {
		return out, fmt.Errorf("bed: node %d: %w", i, err)
	}
	return out, nil
}

// Status is node i's view of the cluster, from `ctdb -X status`.
// It does not log the command: it is meant for polling.
func (b *Bed) Status(ctx context.Context, i int) ([]NodeState, error) {
	out, err := b.ctdb(ctx, i, false, []string{"-X", "status"})
	if err != nil {
		return nil, err
	}
	st, perr := ParseStatus(out.Stdout)
	if perr != nil {
		return nil, fmt.Errorf("bed: node %d: ctdb -X status: %w: %s", i, perr, out)
	}
	return st, nil
}

// IPs is node i's view of who holds each public address, from `ctdb -X ip
// all` (-1: nobody). Like Status, it does not log.
func (b *Bed) IPs(ctx context.Context, i int) (map[netip.Addr]int, error) {
	out, err := b.ctdb(ctx, i, false, []string{"-X", "ip", "all"})
	if err != nil {
		return nil, err
	}
	ips, perr := ParseIPs(out.Stdout)
	if perr != nil {
		return nil, fmt.Errorf("bed: node %d: ctdb -X ip all: %w: %s", i, perr, out)
	}
	return ips, nil
}

// WaitHealthy waits until every node's ctdbd runs, every node sees every
// node OK (`ctdb -X status`), every node's `ctdb -X ip all` gives every
// public address a holder and they agree, and each address is configured
// on that holder and no other node (netlink). It polls every 100 ms; a
// daemon that exits makes it fail at once, with the end of its log.
func (b *Bed) WaitHealthy(ctx context.Context) error {
	return b.WaitFor(ctx, "a healthy cluster", b.healthy)
}

// WaitFor polls cond every 100 ms until it returns "" or ctx ends. cond
// returns why the wait goes on; that reason ends up in the error. It
// fails at once when a started ctdbd has exited.
func (b *Bed) WaitFor(ctx context.Context, what string, cond func(ctx context.Context) string) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if err := b.daemonsExited(); err != nil {
			return fmt.Errorf("bed: waiting for %s: %w", what, err)
		}
		reason := cond(ctx)
		if reason == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bed: waiting for %s: %s: %w", what, reason, ctx.Err())
		case <-t.C:
		}
	}
}

// daemonsExited is an error naming every node whose current ctdbd exited
// other than by the bed's Kill or Terminate, with its log's tail.
func (b *Bed) daemonsExited() error {
	var errs []error
	for i := range b.cfg.Nodes {
		p := b.Daemon(i)
		if p == nil {
			continue
		}
		if exited, err := p.Exited(); exited && !p.intended.Load() {
			errs = append(errs, fmt.Errorf("node %d: ctdbd exited (%v); log ends:\n%s", i, err, b.LogTail(i, 20)))
		}
	}
	return errors.Join(errs...)
}

// healthy is WaitHealthy's condition.
func (b *Bed) healthy(ctx context.Context) string {
	vips := b.cfg.PublicAddrs
	var agreed map[netip.Addr]int
	for i := range b.cfg.Nodes {
		if !b.Running(i) {
			return fmt.Sprintf("node %d: ctdbd not running", i)
		}
		st, err := b.Status(ctx, i)
		if err != nil {
			return err.Error()
		}
		if len(st) != b.cfg.Nodes {
			return fmt.Sprintf("node %d sees %d nodes, want %d", i, len(st), b.cfg.Nodes)
		}
		for _, n := range st {
			if !n.OK() {
				return fmt.Sprintf("node %d sees node %d as %s", i, n.PNN, n.FlagString())
			}
		}
		ips, err := b.IPs(ctx, i)
		if err != nil {
			return err.Error()
		}
		for _, p := range vips {
			pnn, ok := ips[p.Addr()]
			switch {
			case !ok:
				return fmt.Sprintf("node %d does not list %s", i, p.Addr())
			case pnn < 0:
				return fmt.Sprintf("node %d: %s has no holder", i, p.Addr())
			case agreed != nil && agreed[p.Addr()] != pnn:
				return fmt.Sprintf("nodes disagree on %s's holder: %d and %d", p.Addr(), agreed[p.Addr()], pnn)
			}
		}
		if agreed == nil {
			agreed = ips
		}
	}
	held, err := b.Holders()
	if err != nil {
		return err.Error()
	}
	for _, p := range vips {
		h := held[p.Addr()]
		if len(h) != 1 || h[0] != agreed[p.Addr()] {
			return fmt.Sprintf("%s is configured on nodes %v, ctdb says node %d", p.Addr(), h, agreed[p.Addr()])
		}
	}
	return ""
}

// NodeAddrs lists the IPv4 addresses configured on node i's public
// interface (it has none of its own, so these are public addresses).
func (b *Bed) NodeAddrs(i int) ([]netip.Prefix, error) {
	if err := b.checkNode(i); err != nil {
		return nil, err
	}
	h := b.nl[b.nodes[i]]
	l, err := h.LinkByName(PublicIface)
	if err != nil {
		return nil, fmt.Errorf("bed: node %d: %w", i, err)
	}
	as, err := addrList(h, l)
	if err != nil {
		return nil, fmt.Errorf("bed: node %d: listing addresses: %w", i, err)
	}
	var ps []netip.Prefix
	for _, a := range as {
		if p, ok := prefixOf(a); ok {
			ps = append(ps, p)
		}
	}
	sort.Slice(ps, func(x, y int) bool { return ps[x].Addr().Less(ps[y].Addr()) })
	return ps, nil
}

// Holders maps each public address to the nodes that have it configured
// (on any interface), read from each node's namespace one after another.
// Addresses nobody holds are absent.
func (b *Bed) Holders() (map[netip.Addr][]int, error) {
	want := map[netip.Addr]bool{}
	for _, p := range b.cfg.PublicAddrs {
		want[p.Addr()] = true
	}
	held := map[netip.Addr][]int{}
	for i, ns := range b.nodes {
		as, err := addrList(b.nl[ns], nil)
		if err != nil {
			return nil, fmt.Errorf("bed: node %d: listing addresses: %w", i, err)
		}
		for _, a := range as {
			if p, ok := prefixOf(a); ok && want[p.Addr()] {
				held[p.Addr()] = append(held[p.Addr()], i)
			}
		}
	}
	return held, nil
}

// addrList lists IPv4 addresses, retrying a dump the kernel interrupted
// (an address changed meanwhile; the result may be incomplete).
func addrList(h *netlink.Handle, l netlink.Link) ([]netlink.Addr, error) {
	var err error
	for range 5 {
		var as []netlink.Addr
		as, err = h.AddrList(l, netlink.FAMILY_V4)
		if err == nil {
			return as, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return nil, err
		}
	}
	return nil, err
}

func prefixOf(a netlink.Addr) (netip.Prefix, bool) {
	if a.IPNet == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := a.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), bits), true
}

func ipNet(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
}

// AddAddr configures p on node i's public interface by hand, as a stale
// holder or another host would (the bed's own tests; fault scenarios).
func (b *Bed) AddAddr(i int, p netip.Prefix) error {
	return b.changeAddr(i, p, true)
}

// DelAddr removes p from node i's public interface; absent is not an
// error.
func (b *Bed) DelAddr(i int, p netip.Prefix) error {
	return b.changeAddr(i, p, false)
}

func (b *Bed) changeAddr(i int, p netip.Prefix, add bool) error {
	if err := b.checkNode(i); err != nil {
		return err
	}
	h := b.nl[b.nodes[i]]
	l, err := h.LinkByName(PublicIface)
	if err != nil {
		return fmt.Errorf("bed: node %d: %w", i, err)
	}
	if add {
		b.logf("node %d: addr add %s dev %s", i, p, PublicIface)
		if err := h.AddrAdd(l, ipNet(p)); err != nil {
			return fmt.Errorf("bed: adding %s to node %d: %w", p, i, err)
		}
		return nil
	}
	b.logf("node %d: addr del %s dev %s", i, p, PublicIface)
	if err := h.AddrDel(l, ipNet(p)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("bed: deleting %s from node %d: %w", p, i, err)
	}
	return nil
}

// Carrier reports whether iface in node i's namespace has carrier
// (IFF_LOWER_UP), as the daemon would see it.
func (b *Bed) Carrier(i int, iface string) (bool, error) {
	if err := b.checkNode(i); err != nil {
		return false, err
	}
	l, err := b.nl[b.nodes[i]].LinkByName(iface)
	if err != nil {
		return false, fmt.Errorf("bed: node %d: %w", i, err)
	}
	return l.Attrs().RawFlags&unix.IFF_LOWER_UP != 0, nil
}

// setPort sets a switch-side veth end down or up.
func (b *Bed) setPort(name string, up bool) error {
	h := b.nl[b.sw]
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("bed: switch port %s: %w", name, err)
	}
	if up {
		err = h.LinkSetUp(l)
	} else {
		err = h.LinkSetDown(l)
	}
	if err != nil {
		return fmt.Errorf("bed: setting switch port %s up=%v: %w", name, up, err)
	}
	return nil
}

// PullPublic pulls node i's public cable: its switch-side veth end goes
// down, so the node's eth1 loses carrier.
func (b *Bed) PullPublic(i int) error {
	if err := b.checkNode(i); err != nil {
		return err
	}
	b.logf("node %d: pulling the public cable", i)
	return b.setPort(pubPort(i), false)
}

// RestorePublic plugs node i's public cable back in.
func (b *Bed) RestorePublic(i int) error {
	if err := b.checkNode(i); err != nil {
		return err
	}
	b.logf("node %d: restoring the public cable", i)
	return b.setPort(pubPort(i), true)
}

// PullPrivate pulls node i's private cable (eth0 loses carrier).
func (b *Bed) PullPrivate(i int) error {
	if err := b.checkNode(i); err != nil {
		return err
	}
	b.logf("node %d: pulling the private cable", i)
	return b.setPort(privPort(i), false)
}

// RestorePrivate plugs node i's private cable back in.
func (b *Bed) RestorePrivate(i int) error {
	if err := b.checkNode(i); err != nil {
		return err
	}
	b.logf("node %d: restoring the private cable", i)
	return b.setPort(privPort(i), true)
}

// Partition cuts the private network between groups of nodes: each group's
// switch-side private veth ends move onto a bridge of its own
// (br-part<k>); nodes in no group stay together on br-priv. Links stay up,
// so no node sees carrier loss, only silence. The public network is left
// as it is. A partition in place is healed first.
func (b *Bed) Partition(groups ...[]int) error {
	seen := map[int]bool{}
	for _, g := range groups {
		for _, i := range g {
			if err := b.checkNode(i); err != nil {
				return err
			}
			if seen[i] {
				return fmt.Errorf("bed: partition: node %d in two groups", i)
			}
			seen[i] = true
		}
	}
	if err := b.Heal(); err != nil {
		return err
	}
	b.logf("partitioning the private network: %v (others stay on br-priv)", groups)
	h := b.nl[b.sw]
	b.mu.Lock()
	b.partition = true
	b.mu.Unlock()
	for k, g := range groups {
		if err := b.bridgePorts(h, fmt.Sprintf("br-part%d", k), g, privPort); err != nil {
			return err
		}
	}
	return nil
}

// bridgePorts makes a bridge in the switch namespace and moves the given
// nodes' ports (privPort or pubPort) onto it. A new bridge has STP off;
// with STP off a port forwards at once.
func (b *Bed) bridgePorts(h *netlink.Handle, name string, nodes []int, port func(int) string) error {
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
	if err := h.LinkAdd(br); err != nil {
		return fmt.Errorf("bed: partition: adding %s: %w", name, err)
	}
	if err := h.LinkSetUp(br); err != nil {
		return fmt.Errorf("bed: partition: %s up: %w", name, err)
	}
	for _, i := range nodes {
		if err := b.setMaster(port(i), br); err != nil {
			return err
		}
	}
	return nil
}

// FullPartition cuts groups of nodes off on both networks, as a switch
// failure or a pulled pair of cables that leave the links up would: the
// private ports move as Partition moves them, and the public ports of
// every side but the largest move onto a bridge of their own
// (br-pubpart<k>). The largest side keeps br-pub, and with it the client
// and the checker's ARP: the client sees only the majority. Nodes named
// in no group form a side of their own, which wins ties; among groups the
// first listed wins. So FullPartition([]int{0}) cuts node 0 off and
// leaves the others with the client. Heal restores both networks.
func (b *Bed) FullPartition(groups ...[]int) error {
	if err := b.Partition(groups...); err != nil {
		return err
	}
	keep, size := -1, b.cfg.Nodes
	for _, g := range groups {
		size -= len(g)
	}
	for k, g := range groups {
		if len(g) > size {
			keep, size = k, len(g)
		}
	}
	b.logf("partitioning the public network too: side %d keeps br-pub and the client (-1: the nodes in no group)", keep)
	h := b.nl[b.sw]
	for k, g := range groups {
		if k == keep {
			continue
		}
		if err := b.bridgePorts(h, fmt.Sprintf("br-pubpart%d", k), g, pubPort); err != nil {
			return err
		}
	}
	if keep >= 0 {
		// The nodes in no group are a minority: off br-pub with them.
		var rest []int
		in := map[int]bool{}
		for _, g := range groups {
			for _, i := range g {
				in[i] = true
			}
		}
		for i := range b.cfg.Nodes {
			if !in[i] {
				rest = append(rest, i)
			}
		}
		if len(rest) > 0 {
			if err := b.bridgePorts(h, "br-pubpart-rest", rest, pubPort); err != nil {
				return err
			}
		}
	}
	return nil
}

// Heal undoes Partition and FullPartition: every private port back on
// br-priv and every public port on br-pub, the group bridges deleted.
// Without a partition it does nothing.
func (b *Bed) Heal() error {
	b.mu.Lock()
	parted := b.partition
	b.mu.Unlock()
	if !parted {
		return nil
	}
	b.logf("healing the private network")
	h := b.nl[b.sw]
	priv, err := h.LinkByName("br-priv")
	if err != nil {
		return fmt.Errorf("bed: heal: %w", err)
	}
	pub, err := h.LinkByName("br-pub")
	if err != nil {
		return fmt.Errorf("bed: heal: %w", err)
	}
	for i := range b.cfg.Nodes {
		if err := b.setMaster(privPort(i), priv); err != nil {
			return err
		}
		if err := b.setMaster(pubPort(i), pub); err != nil {
			return err
		}
	}
	links, err := h.LinkList()
	if err != nil {
		return fmt.Errorf("bed: heal: %w", err)
	}
	for _, l := range links {
		if n := l.Attrs().Name; strings.HasPrefix(n, "br-part") || strings.HasPrefix(n, "br-pubpart") {
			if err := h.LinkDel(l); err != nil {
				return fmt.Errorf("bed: heal: deleting %s: %w", l.Attrs().Name, err)
			}
		}
	}
	b.mu.Lock()
	b.partition = false
	b.mu.Unlock()
	return nil
}

func (b *Bed) setMaster(port string, br netlink.Link) error {
	h := b.nl[b.sw]
	l, err := h.LinkByName(port)
	if err != nil {
		return fmt.Errorf("bed: switch port %s: %w", port, err)
	}
	if l.Attrs().MasterIndex == br.Attrs().Index {
		return nil
	}
	if err := h.LinkSetMasterByIndex(l, br.Attrs().Index); err != nil {
		return fmt.Errorf("bed: moving %s to %s: %w", port, br.Attrs().Name, err)
	}
	return nil
}

// PortBridge is the bridge node i's private port is on (br-priv, or
// br-part<k> during a partition).
func (b *Bed) PortBridge(i int) (string, error) {
	if err := b.checkNode(i); err != nil {
		return "", err
	}
	return b.master(privPort(i))
}

// PublicBridge is the bridge node i's public port is on (br-pub, the
// client's, or br-pubpart<k> / br-pubpart-rest during a FullPartition).
func (b *Bed) PublicBridge(i int) (string, error) {
	if err := b.checkNode(i); err != nil {
		return "", err
	}
	return b.master(pubPort(i))
}

// master is the name of the bridge a switch port is on.
func (b *Bed) master(port string) (string, error) {
	h := b.nl[b.sw]
	l, err := h.LinkByName(port)
	if err != nil {
		return "", fmt.Errorf("bed: switch port %s: %w", port, err)
	}
	m, err := h.LinkByIndex(l.Attrs().MasterIndex)
	if err != nil {
		return "", fmt.Errorf("bed: master of %s: %w", port, err)
	}
	return m.Attrs().Name, nil
}

// InNS runs fn on a thread inside namespace ns (one of Namespaces). A
// socket opened in fn stays in ns after fn returns, so this is how a test
// opens a probe socket (UDP, TCP) in a node or the client.
func (b *Bed) InNS(ns string, fn func() error) error {
	h, ok := b.nsh[ns]
	if !ok {
		return fmt.Errorf("bed: %s is not one of this bed's namespaces", ns)
	}
	return inNS(h, fn)
}

// inNS runs fn with the calling goroutine's thread in namespace h. If the
// thread cannot be switched back it is left locked, and Go ends it with
// the goroutine rather than reuse a thread in the wrong namespace.
func inNS(h netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("bed: reading the thread's namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(h); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("bed: entering namespace: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("bed: leaving namespace: %w", err))
			return // still locked: the thread dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
