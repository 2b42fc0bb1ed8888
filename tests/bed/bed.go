package bed

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

// Network plan. Everything the bed configures lies in 198.18.0.0/15.
var (
	// TestNet is the only range the bed ever configures.
	TestNet = netip.MustParsePrefix("198.18.0.0/15")
	// PrivateNet is the nodes' private (cluster) network on eth0; node i
	// is 198.18.0.(i+1).
	PrivateNet = netip.MustParsePrefix("198.18.0.0/24")
	// PublicNet is the client's network on br-pub; the default public
	// addresses are in it.
	PublicNet = netip.MustParsePrefix("198.18.1.0/24")
	// ClientAddr is the client's address on PublicNet.
	ClientAddr = netip.MustParsePrefix("198.18.1.200/24")
	// ClientARPAddrs (198.18.1.240-254) are the client's further
	// addresses on PublicNet: each ARP socket of the bed (the checker,
	// WatchARP, ARP, ARPAll) asks with one of its own, so that it reads
	// the answers to its own requests only. (An answer goes to the
	// request's sender address; every socket on the client sees it.)
	ClientARPAddrs = netip.MustParsePrefix("198.18.1.240/28")
)

// IsClientAddr reports whether a is one of the client's addresses.
func IsClientAddr(a netip.Addr) bool {
	return a == ClientAddr.Addr() || clientARPAddr(a)
}

func clientARPAddr(a netip.Addr) bool {
	return ClientARPAddrs.Contains(a) && a.As4()[3] != 255
}

// arpSenders lists ClientARPAddrs but PublicNet's broadcast address.
func arpSenders() []netip.Addr {
	var out []netip.Addr
	for a := ClientARPAddrs.Addr(); ClientARPAddrs.Contains(a); a = a.Next() {
		if clientARPAddr(a) {
			out = append(out, a)
		}
	}
	return out
}

// Interface names inside the node namespaces.
const (
	PrivateIface = "eth0"
	PublicIface  = "eth1"
)

// DefaultPrefix starts every namespace name the bed creates.
const DefaultPrefix = "cg"

// ErrNotRoot is returned by New when the process cannot create namespaces.
var ErrNotRoot = errors.New("bed: needs root to create network namespaces")

// Config describes a bed. The zero value is a 3-node cluster with six
// public addresses and the binaries in <repo>/bin.
type Config struct {
	// Nodes is the number of nodes, 1 to 64; 0 means 3.
	Nodes int
	// PublicAddrs are the public addresses every node lists on eth1;
	// nil means 198.18.1.1-6/24. They must lie in 198.18.0.0/15 outside
	// the private 198.18.0.0/24 and not be the client's 198.18.1.200.
	PublicAddrs []netip.Prefix
	// Bin is the directory holding ctdbd and ctdb; "" means
	// $CTDB_BED_BIN, or <repo>/bin when that is unset (set it to run the
	// tests against another build, e.g. an older commit's).
	Bin string
	// RepoDir is the repository root (events.d is read from it); ""
	// means the nearest directory above the working directory whose
	// go.mod is ctdb-go's.
	RepoDir string
	// ClusterLock is ctdb.conf's [cluster] cluster lock: "" or "file"
	// means a file in the run directory, "none" writes no lock line, and
	// anything else is written as it is (e.g. "!/path/helper args").
	ClusterLock string
	// ConfExtra is appended to ctdb.conf as it is; include section
	// headers.
	ConfExtra string
	// LogLevel is ctdb.conf's [logging] log level; "" means INFO.
	LogLevel string
	// GossipPort, when not 0, is written as [cluster] gossip port.
	GossipPort int
	// Fence writes [failover] fence = true.
	Fence bool
	// GossipKey is the cluster's gossip key, 16, 24 or 32 bytes, written
	// in base64 to <config>/gossip.key (mode 0600) on every node and
	// named by [cluster] gossip key file; nil means 32 random bytes.
	// The daemon refuses a multi-node cluster without a key.
	GossipKey []byte
	// InsecureGossip writes no key file; [cluster] insecure gossip = true
	// instead, when the daemon knows that key (New asks ctdbd
	// --check-config; see Bed.InsecureGossip).
	InsecureGossip bool
	// Tunables are written to ctdb.tunables as NAME=VALUE.
	Tunables map[string]uint32
	// ScriptOptions is script.options, as it is.
	ScriptOptions string
	// EventScripts are installed executable into every node's events.d:
	// name → script body.
	EventScripts map[string]string
	// InstallShipped names scripts of the repo's events.d (e.g.
	// "10.interface") to install executable into every node's events.d.
	// The repo's events.d/functions is installed as <config>/functions
	// whenever it exists.
	InstallShipped []string
	// Prefix starts every namespace name; "" means DefaultPrefix. It
	// must be letters only, so names parse back for Sweep.
	Prefix string
	// Logf, when set, gets a line for every command the bed runs and
	// every fault it injects (t.Logf fits).
	Logf func(format string, args ...any)
}

// seq numbers the beds of one process, for unique names.
var seq atomic.Int64

// Bed is a running test bed. Its methods may be called from several
// goroutines.
type Bed struct {
	cfg  Config
	id   string // cg<pid>-<seq>: namespace prefix and cluster name
	root string // run directory

	sw, cl string   // switch and client namespaces
	nodes  []string // node namespaces
	// intruder is the intruder's namespace (AddIntruder), "" until made.
	// Written once under mu, before any use of it.
	intruder string
	macs     []net.HardwareAddr

	// handles holds an open namespace handle and netlink handle per
	// namespace name; filled by New, closed by Close.
	nsh      map[string]netns.NsHandle
	nl       map[string]*netlink.Handle
	clientHW net.HardwareAddr

	// mu guards the fields below it.
	mu        sync.Mutex
	procs     []*Proc // every process started, for Close
	daemons   []*Proc // per node: the current ctdbd, nil if never started
	checkers  []*Checker
	arpFree   []netip.Addr   // ClientARPAddrs no ARP socket uses
	closers   []func() error // Close runs them first, newest first (ghosts, PostgreSQL)
	partition bool           // group bridges exist
	// insecureKnown: ctdbd knows [cluster] insecure gossip (see
	// Config.InsecureGossip); set by build before the files are written.
	insecureKnown bool
	closed        bool
	closeErr      error
}

// open lists the beds not yet closed, for CloseAll.
var open struct {
	sync.Mutex
	beds map[*Bed]bool
}

// New builds the topology and writes every node's configuration; it starts
// no daemon. On error nothing is left behind.
func New(cfg Config) (*Bed, error) {
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("bed: the ip command (iproute2) is needed: %w", err)
	}
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	b := &Bed{
		cfg:     cfg,
		id:      fmt.Sprintf("%s%d-%d", cfg.Prefix, os.Getpid(), seq.Add(1)),
		nsh:     map[string]netns.NsHandle{},
		nl:      map[string]*netlink.Handle{},
		daemons: make([]*Proc, cfg.Nodes),
		arpFree: arpSenders(),
	}
	b.sw = b.id + "-sw"
	b.cl = b.id + "-cl"
	for i := range cfg.Nodes {
		b.nodes = append(b.nodes, fmt.Sprintf("%s-n%d", b.id, i))
	}
	root, err := os.MkdirTemp("", "ctdb-go-bed-"+b.id+"-")
	if err != nil {
		return nil, fmt.Errorf("bed: creating the run directory: %w", err)
	}
	b.root = root
	// The socket path must fit a sockaddr_un.
	if s := b.Paths(cfg.Nodes - 1).Socket; len(s) > 107 {
		os.RemoveAll(root)
		return nil, fmt.Errorf("bed: socket path %s is too long for a unix socket; set TMPDIR shorter", s)
	}
	open.Lock()
	if open.beds == nil {
		open.beds = map[*Bed]bool{}
	}
	open.beds[b] = true
	open.Unlock()
	if err := b.build(); err != nil {
		if cerr := b.Close(); cerr != nil {
			err = fmt.Errorf("%w (and cleaning up: %v)", err, cerr)
		}
		return nil, err
	}
	b.logf("bed %s: %d nodes, run directory %s", b.id, cfg.Nodes, b.root)
	return b, nil
}

// fill checks c and fills its defaults.
func (c *Config) fill() error {
	if c.Nodes == 0 {
		c.Nodes = 3 // the smallest cluster with a majority after one loss
	}
	if c.Nodes < 1 || c.Nodes > 64 {
		return fmt.Errorf("bed: %d nodes: want 1 to 64", c.Nodes)
	}
	if c.PublicAddrs == nil {
		for i := 1; i <= 6; i++ {
			c.PublicAddrs = append(c.PublicAddrs, netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}), 24))
		}
	}
	seen := map[netip.Addr]bool{}
	for _, p := range c.PublicAddrs {
		a := p.Addr()
		switch {
		case !a.Is4() || !TestNet.Contains(a) || p.Bits() < TestNet.Bits():
			return fmt.Errorf("bed: public address %s: want IPv4 inside %s", p, TestNet)
		case p.Overlaps(PrivateNet):
			return fmt.Errorf("bed: public address %s overlaps the private network %s", p, PrivateNet)
		case a == ClientAddr.Addr() || ClientARPAddrs.Contains(a):
			return fmt.Errorf("bed: public address %s is one of the client's addresses (%s, %s)", p, ClientAddr.Addr(), ClientARPAddrs)
		case seen[a]:
			return fmt.Errorf("bed: public address %s listed twice", p)
		}
		seen[a] = true
	}
	if c.RepoDir == "" {
		d, err := findRepo()
		if err != nil {
			return err
		}
		c.RepoDir = d
	}
	if c.Bin == "" {
		c.Bin = os.Getenv("CTDB_BED_BIN")
	}
	if c.Bin == "" {
		c.Bin = filepath.Join(c.RepoDir, "bin")
	}
	if c.LogLevel == "" {
		c.LogLevel = "INFO"
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	for _, r := range c.Prefix {
		if r < 'a' || r > 'z' {
			return fmt.Errorf("bed: prefix %q: want lower-case letters only", c.Prefix)
		}
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	switch {
	case c.InsecureGossip:
		c.GossipKey = nil
	case c.GossipKey == nil:
		c.GossipKey = make([]byte, 32)
		if _, err := rand.Read(c.GossipKey); err != nil {
			return fmt.Errorf("bed: making a gossip key: %w", err)
		}
	default:
		switch len(c.GossipKey) {
		case 16, 24, 32:
		default:
			return fmt.Errorf("bed: gossip key of %d bytes: want 16, 24 or 32", len(c.GossipKey))
		}
	}
	return nil
}

// findRepo walks up from the working directory to ctdb-go's go.mod.
func findRepo() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("bed: finding the repository: %w", err)
	}
	for {
		f, err := os.Open(filepath.Join(d, "go.mod"))
		if err == nil {
			sc := bufio.NewScanner(f)
			ok := sc.Scan() && strings.TrimSpace(sc.Text()) == "module github.com/ctdb-go/ctdb-go"
			f.Close()
			if ok {
				return d, nil
			}
		}
		up := filepath.Dir(d)
		if up == d {
			return "", errors.New("bed: no ctdb-go go.mod above the working directory; set Config.RepoDir")
		}
		d = up
	}
}

// switchOffBridgeNetfilter stops the calling thread's namespace (the
// switch) from passing bridged frames through iptables, ip6tables and
// arptables, as a switch would not: with br_netfilter loaded (the
// sysctls are per namespace and default to 1) every frame of the
// checker's ARP flood went through the hooks. Without br_netfilter there
// is nothing to do. Before Linux 5.3 the sysctls were global, so there
// it leaves them alone rather than change the host's.
func switchOffBridgeNetfilter() error {
	if !kernelAtLeast(5, 3) {
		return nil
	}
	for _, f := range []string{"bridge-nf-call-iptables", "bridge-nf-call-ip6tables", "bridge-nf-call-arptables"} {
		err := os.WriteFile("/proc/sys/net/bridge/"+f, []byte("0\n"), 0o644)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("setting net.bridge.%s: %w", f, err)
		}
	}
	return nil
}

// kernelAtLeast reports whether the running kernel is major.minor or
// newer (false when its release cannot be read).
func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	var ma, mi int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// build creates the namespaces, bridges and veths and writes the nodes'
// files.
func (b *Bed) build() error {
	// Namespaces first: the veths are created with their peer inside them.
	var lines []string
	for _, ns := range b.Namespaces() {
		lines = append(lines, "netns add "+ns)
	}
	if err := b.ipBatch("", lines); err != nil {
		return err
	}
	// The switch: both bridges, and a veth per node and network whose
	// switch end stays here and whose other end goes straight into the
	// node's namespace; no link ever exists in the root namespace.
	sw := []string{
		"link set lo up",
		"link add br-priv type bridge stp_state 0 forward_delay 0",
		"link add br-pub type bridge stp_state 0 forward_delay 0",
		"link set br-priv up",
		"link set br-pub up",
	}
	for i, ns := range b.nodes {
		sw = append(sw,
			fmt.Sprintf("link add %s type veth peer name %s netns %s", privPort(i), PrivateIface, ns),
			fmt.Sprintf("link add %s type veth peer name %s netns %s", pubPort(i), PublicIface, ns),
			fmt.Sprintf("link set %s master br-priv up", privPort(i)),
			fmt.Sprintf("link set %s master br-pub up", pubPort(i)),
		)
	}
	sw = append(sw,
		fmt.Sprintf("link add cl-pub type veth peer name eth0 netns %s", b.cl),
		"link set cl-pub master br-pub up",
	)
	if err := b.ipBatch(b.sw, sw); err != nil {
		return err
	}
	for i, ns := range b.nodes {
		if err := b.ipBatch(ns, []string{
			"link set lo up",
			fmt.Sprintf("addr add %s dev %s", netip.PrefixFrom(b.NodeAddr(i), PrivateNet.Bits()), PrivateIface),
			"link set " + PrivateIface + " up",
			"link set " + PublicIface + " up",
		}); err != nil {
			return err
		}
	}
	cl := []string{
		"link set lo up",
		fmt.Sprintf("addr add %s dev eth0", ClientAddr),
		"link set eth0 up",
	}
	for _, a := range arpSenders() {
		cl = append(cl, fmt.Sprintf("addr add %s dev eth0", netip.PrefixFrom(a, ClientAddr.Bits())))
	}
	// The client ARPs only for addresses it sees on-link.
	routed := map[netip.Prefix]bool{ClientAddr.Masked(): true}
	for _, p := range b.cfg.PublicAddrs {
		m := p.Masked()
		if routed[m] || ClientAddr.Masked().Contains(p.Addr()) && m.Bits() >= ClientAddr.Bits() {
			continue
		}
		routed[m] = true
		cl = append(cl, fmt.Sprintf("route add %s dev eth0", m))
	}
	if err := b.ipBatch(b.cl, cl); err != nil {
		return err
	}
	for _, ns := range b.Namespaces() {
		h, err := netns.GetFromName(ns)
		if err != nil {
			return fmt.Errorf("bed: opening namespace %s: %w", ns, err)
		}
		b.nsh[ns] = h
		nh, err := netlink.NewHandleAt(h, netlinkRoute)
		if err != nil {
			return fmt.Errorf("bed: netlink in namespace %s: %w", ns, err)
		}
		b.nl[ns] = nh
	}
	if err := inNS(b.nsh[b.sw], switchOffBridgeNetfilter); err != nil {
		return fmt.Errorf("bed: the switch: %w", err)
	}
	for i, ns := range b.nodes {
		l, err := b.nl[ns].LinkByName(PublicIface)
		if err != nil {
			return fmt.Errorf("bed: node %d's %s: %w", i, PublicIface, err)
		}
		b.macs = append(b.macs, l.Attrs().HardwareAddr)
	}
	l, err := b.nl[b.cl].LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("bed: the client's eth0: %w", err)
	}
	b.clientHW = l.Attrs().HardwareAddr
	if b.cfg.InsecureGossip {
		b.insecureKnown = !b.debianMode() // ctdb-go's key; Debian's ctdb has none
	}
	for i := range b.nodes {
		if err := b.writeNodeFiles(i); err != nil {
			return fmt.Errorf("bed: %w", err)
		}
	}
	return nil
}

// InsecureGossip reports whether the nodes' ctdb.conf says [cluster]
// insecure gossip = true: Config.InsecureGossip was set and the daemon
// knows the key. With InsecureGossip set and this false, the nodes run
// with no key and no such line, as the daemon's default was before.
func (b *Bed) InsecureGossip() bool { return b.insecureKnown }

// GossipKey is the cluster's gossip key; nil with Config.InsecureGossip.
func (b *Bed) GossipKey() []byte { return append([]byte(nil), b.cfg.GossipKey...) }

func privPort(i int) string { return fmt.Sprintf("n%d-priv", i) }
func pubPort(i int) string  { return fmt.Sprintf("n%d-pub", i) }

// ipBatch runs `ip [-n ns] -batch -` with lines on stdin.
func (b *Bed) ipBatch(ns string, lines []string) error {
	argv := []string{"ip"}
	if ns != "" {
		argv = append(argv, "-n", ns)
	}
	argv = append(argv, "-batch", "-")
	for _, l := range lines {
		b.logf("ip %s%s", nsFlag(ns), l)
	}
	out, err := run(argv, strings.Join(lines, "\n")+"\n")
	if err != nil {
		return fmt.Errorf("bed: setting up %s: %w", nsOrRoot(ns), err)
	}
	if out.Code != 0 {
		return fmt.Errorf("bed: setting up %s: ip exited %d: %s", nsOrRoot(ns), out.Code, strings.TrimSpace(out.Stderr))
	}
	return nil
}

func nsFlag(ns string) string {
	if ns == "" {
		return ""
	}
	return "-n " + ns + " "
}

func nsOrRoot(ns string) string {
	if ns == "" {
		return "namespaces"
	}
	return ns
}

func (b *Bed) logf(format string, args ...any) { b.cfg.Logf(format, args...) }

// Close stops every checker, kills every process the bed started (by PID),
// deletes the namespaces and removes the run directory unless KEEP_BED=1.
// It is idempotent and safe to call from a t.Cleanup and a signal handler.
func (b *Bed) Close() error {
	b.mu.Lock()
	if b.closed {
		err := b.closeErr
		b.mu.Unlock()
		return err
	}
	b.closed = true
	checkers := append([]*Checker(nil), b.checkers...)
	procs := append([]*Proc(nil), b.procs...)
	closers := append([]func() error(nil), b.closers...)
	b.mu.Unlock()

	for _, c := range checkers {
		c.Stop()
	}
	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		if err := closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range procs {
		if err := p.kill(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, h := range b.nl {
		h.Close()
	}
	for _, h := range b.nsh {
		h.Close()
	}
	for _, ns := range b.Namespaces() {
		if _, err := os.Stat(filepath.Join(netnsDir, ns)); err != nil {
			continue // never created
		}
		if err := deleteNS(ns); err != nil {
			errs = append(errs, err)
		}
	}
	if b.root != "" {
		if os.Getenv("KEEP_BED") == "1" {
			b.logf("bed %s: KEEP_BED=1: run directory kept at %s", b.id, b.root)
		} else if err := os.RemoveAll(b.root); err != nil {
			errs = append(errs, fmt.Errorf("bed: removing %s: %w", b.root, err))
		}
	}
	open.Lock()
	delete(open.beds, b)
	open.Unlock()
	err := errors.Join(errs...)
	b.mu.Lock()
	b.closeErr = err
	b.mu.Unlock()
	b.logf("bed %s: closed", b.id)
	return err
}

// CloseAll closes every bed of this process that is still open (for signal
// handlers).
func CloseAll() error {
	open.Lock()
	var bs []*Bed
	for b := range open.beds {
		bs = append(bs, b)
	}
	open.Unlock()
	var errs []error
	for _, b := range bs {
		errs = append(errs, b.Close())
	}
	return errors.Join(errs...)
}

// ID is the bed's name: the namespaces' prefix and the cluster name.
func (b *Bed) ID() string { return b.id }

// Dir is the run directory (node directories, lock file).
func (b *Bed) Dir() string { return b.root }

// Nodes is the number of nodes.
func (b *Bed) Nodes() int { return b.cfg.Nodes }

// Config is the bed's configuration with its defaults filled in.
func (b *Bed) Config() Config { return b.cfg }

// Namespaces lists every namespace of the bed: switch, client, nodes,
// and the intruder once AddIntruder made it.
func (b *Bed) Namespaces() []string {
	ns := append([]string{b.sw, b.cl}, b.nodes...)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.intruder != "" {
		ns = append(ns, b.intruder)
	}
	return ns
}

// NodeNS is node i's namespace name.
func (b *Bed) NodeNS(i int) string { return b.nodes[i] }

// ClientNS is the client's namespace name.
func (b *Bed) ClientNS() string { return b.cl }

// SwitchNS is the switch's namespace name.
func (b *Bed) SwitchNS() string { return b.sw }

// NodeAddr is node i's private address (198.18.0.(i+1)).
func (b *Bed) NodeAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)})
}

// NodeMAC is the MAC address of node i's public interface, the one that
// answers ARP for the public addresses it holds.
func (b *Bed) NodeMAC(i int) net.HardwareAddr { return b.macs[i] }

// NodeByMAC is the node whose public MAC is hw, or -1.
func (b *Bed) NodeByMAC(hw net.HardwareAddr) int {
	for i, m := range b.macs {
		if m.String() == hw.String() {
			return i
		}
	}
	return -1
}

// ClientMAC is the client's MAC address.
func (b *Bed) ClientMAC() net.HardwareAddr { return b.clientHW }

// PublicAddrs are the public addresses, as configured.
func (b *Bed) PublicAddrs() []netip.Prefix { return append([]netip.Prefix(nil), b.cfg.PublicAddrs...) }

// NodePaths are a node's directories and files.
type NodePaths struct {
	Dir    string // the node's directory under the run directory
	Config string // --config-dir (CTDB_BASE)
	Run    string // --run-dir
	State  string // --state-dir
	Socket string // the control socket
	Log    string // ctdbd's log: [logging] location and its stdout/stderr
}

// Paths returns node i's directories and files.
func (b *Bed) Paths(i int) NodePaths {
	d := filepath.Join(b.root, fmt.Sprintf("n%d", i))
	return NodePaths{
		Dir:    d,
		Config: filepath.Join(d, "config"),
		Run:    filepath.Join(d, "run"),
		State:  filepath.Join(d, "state"),
		Socket: filepath.Join(d, "run", control.SocketName),
		Log:    filepath.Join(d, "log.ctdbd"),
	}
}

// Netlink is a netlink handle inside namespace ns (one of Namespaces),
// for tests that read or change what the bed's helpers do not cover. The
// bed owns and closes it.
func (b *Bed) Netlink(ns string) (*netlink.Handle, error) {
	h, ok := b.nl[ns]
	if !ok {
		return nil, fmt.Errorf("bed: %s is not one of this bed's namespaces", ns)
	}
	return h, nil
}
