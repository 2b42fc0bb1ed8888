package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// Config is a node's whole configuration, read from its config dir.
type Config struct {
	Dir   string // the config dir (CTDB_BASE), absolute
	Nodes []Node // the nodes file, in PNN order, deleted nodes included
	// PublicAddresses is this node's public_addresses, in file order;
	// empty (not nil) when the file is missing.
	PublicAddresses     []PublicAddress
	PublicAddressesFile string // its path, for ctdb reloadips
	Conf                Conf   // ctdb.conf, defaults filled in
	// ScriptOptions is script.options as NAME -> value, as sh assigns
	// it; empty when the file is missing. A value that uses another
	// variable ($NAME, ${NAME}) is not here but in ScriptOptionsShell.
	ScriptOptions map[string]string
	// ScriptOptionsShell is NAME -> value as written, for the values only
	// sh can expand (CTDB_NFS_CALLOUT="${CTDB_BASE}/nfs-callout" is
	// ${CTDB_BASE}/nfs-callout); the scripts source the file and see them
	// expanded, ctdbd does not use them.
	ScriptOptionsShell map[string]string
	// ScriptOptionsFile is script.options' path, which the event scripts
	// source themselves; "" when the file is missing.
	ScriptOptionsFile string
	Tunables          *Tunables // ctdb.tunables and tunables.d applied
	// Warnings are problems that do not stop the daemon: deprecated or
	// ignored keys, a nodes-file "comment" that is really a deleted node.
	Warnings []Error
}

// Load reads the config dir: ctdb.conf, the nodes file, public_addresses,
// script.options, ctdb.tunables and tunables.d/*.tunables, and the gossip
// key file if one is set. It reports every problem in every file, not
// just the first: the error is an Errors (errors.As takes an Errors or a
// *Errors target), one "FILE:LINE: problem" each. On error the Config is
// nil.
func Load(dir string) (*Config, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("finding config dir %s: %w", dir, err)
	}
	dir = abs
	var p problems
	c := &Config{
		Dir:                 dir,
		Conf:                DefaultConf(dir),
		PublicAddressesFile: filepath.Join(dir, "public_addresses"),
		Tunables:            DefaultTunables(),
	}
	confPath := filepath.Join(dir, "ctdb.conf")
	where := parseConf(confPath, dir, &c.Conf, &p)

	nodesPath := c.Conf.Cluster.NodesList
	c.Nodes = parseNodes(nodesPath, &p)
	live := map[netip.Addr]bool{}
	for _, n := range c.Nodes {
		if !n.Deleted {
			live[n.Addr] = true
		}
	}
	if c.Conf.Cluster.Quorum == "" {
		c.Conf.Cluster.Quorum = QuorumNone
		if len(live) >= 3 {
			c.Conf.Cluster.Quorum = QuorumMajority
		}
	}
	if a := c.Conf.Cluster.NodeAddress; a.IsValid() && len(live) > 0 {
		if !live[a] {
			p.errorf(confPath, where["cluster/node address"], "[cluster] node address = %q: not an address in %s", a, nodesPath)
		}
	}

	c.PublicAddresses = parsePublicAddresses(c.PublicAddressesFile, c.reservedAddrs(), &p)

	soPath := filepath.Join(dir, "script.options")
	var found bool
	c.ScriptOptions, c.ScriptOptionsShell, found = parseScriptOptions(soPath, &p)
	if found {
		c.ScriptOptionsFile = soPath
	}

	loadTunables(dir, c.Tunables, &p)

	c.loadGossipKeys(confPath, where, len(live), &p)
	c.checkFence(confPath, where, &p)

	c.Warnings = p.warnings
	if err := p.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// GossipKeyFileName is the gossip key file's name in the config dir,
// read when ctdb.conf names none.
const GossipKeyFileName = "gossip.key"

// loadGossipKeys reads the gossip keys, and refuses a cluster of more
// than one node without them unless [cluster] insecure gossip is set.
func (c *Config) loadGossipKeys(confPath string, where confLines, live int, p *problems) {
	cl := &c.Conf.Cluster
	line, named := where["cluster/gossip key file"]
	if !named {
		def := filepath.Join(c.Dir, GossipKeyFileName)
		if _, err := os.Lstat(def); err == nil {
			cl.GossipKeyFile = def
		}
	}
	if cl.GossipKeyFile != "" {
		cl.GossipKeys = readGossipKeys(cl.GossipKeyFile, confPath, line, p)
		if len(cl.GossipKeys) > 0 {
			cl.GossipKey = cl.GossipKeys[0]
		}
		if cl.InsecureGossip {
			p.warnf(confPath, where["cluster/insecure gossip"], "[cluster] insecure gossip = true has no effect: gossip uses the key in %s", cl.GossipKeyFile)
		}
		return
	}
	if live <= 1 {
		return
	}
	if cl.InsecureGossip {
		p.warnf(confPath, where["cluster/insecure gossip"],
			"INSECURE: gossip between the %d nodes is neither encrypted nor authenticated ([cluster] insecure gossip = true): any host that can reach port %d can join the cluster and move its addresses",
			live, cl.GossipPort)
		return
	}
	p.errorf(confPath, where["cluster"],
		"%d nodes would gossip without a key: make one with \"ctdb keygen > %s\" and copy it to every node (mode 0600), or name a key file with [cluster] gossip key file; to run without one, set [cluster] insecure gossip = true",
		live, filepath.Join(c.Dir, GossipKeyFileName))
}

// readGossipKeys reads a gossip key file: one key per line, in standard
// base64 (as `ctdb keygen` or `head -c 32 /dev/urandom | base64` writes
// it, the format of serf and consul keys), blank and "#" lines skipped.
// Each key must decode to 16, 24 or 32 bytes (AES-128, -192 or -256). The
// first is the primary key. A file other users may read or change is an
// error (it holds the cluster's secret); one the group may read, a
// warning. line is the ctdb.conf line naming the file, 0 if none did.
func readGossipKeys(path, confPath string, line int, p *problems) [][]byte {
	fi, err := os.Stat(path)
	if err == nil && !fi.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err != nil {
		p.errorf(confPath, line, "[cluster] gossip key file = %q: %s", path, fileProblem(err))
		return nil
	}
	switch perm := fi.Mode().Perm(); {
	case perm&0o007 != 0:
		p.errorf(path, 0, "gossip key file mode is %04o: every user of this host may read or change the cluster's key (chmod 600 %s)", perm, path)
	case perm&0o070 != 0:
		p.warnf(path, 0, "gossip key file mode is %04o: its group may read or change the cluster's key (chmod 600 %s)", perm, path)
	}
	lines, err := readLines(path)
	if err != nil {
		p.errorf(confPath, line, "[cluster] gossip key file = %q: %s", path, fileProblem(err))
		return nil
	}
	var keys [][]byte
	bad := false
	for i, raw := range lines {
		n := i + 1
		text := strings.TrimSpace(raw)
		if text == "" || text[0] == '#' {
			continue
		}
		key, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			p.errorf(path, n, "gossip key is not base64 text (make one with: ctdb keygen)")
			bad = true
			continue
		}
		switch len(key) {
		case 16, 24, 32:
		default:
			p.errorf(path, n, "gossip key is %d bytes; want 16, 24 or 32", len(key))
			bad = true
			continue
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 && !bad {
		p.errorf(path, 0, "no gossip key in the file (make one with: ctdb keygen > %s)", path)
	}
	if bad {
		return nil
	}
	return keys
}

// checkExecutable says what is wrong with path as a script to run, "" if
// nothing.
func checkExecutable(path string) string {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return path + " does not exist"
	case err != nil:
		return err.Error()
	case !fi.Mode().IsRegular():
		return path + " is not a file"
	case fi.Mode().Perm()&0o100 == 0:
		return path + " is not executable"
	}
	return ""
}

// FindPNN finds this node's PNN from local, the addresses configured on
// this host's interfaces: the node whose nodes-file address is [cluster]
// node address if that is set (it must be local too), else the first
// node, in file order, whose address is local. Deleted nodes never match.
func (c *Config) FindPNN(local []netip.Addr) (int, error) {
	pnn, miss := c.findPNN(local)
	if miss != nil {
		return -1, errors.New(miss.sentence)
	}
	return pnn, nil
}

// CheckLocal checks the configuration against this host, for ctdbd
// --check-config: that FindPNN(local) finds this node, reported as a
// problem with the nodes file (or with ctdb.conf's node address).
// Interfaces of public addresses are the daemon's to check. nil means no
// problem.
func (c *Config) CheckLocal(local []netip.Addr) Errors {
	if _, miss := c.findPNN(local); miss != nil {
		return Errors{miss.problem}
	}
	return nil
}

// pnnMiss is why findPNN found no PNN: as a file's problem, and as a
// sentence of its own.
type pnnMiss struct {
	problem  Error
	sentence string
}

func (c *Config) findPNN(local []netip.Addr) (int, *pnnMiss) {
	nodesPath := c.Conf.Cluster.NodesList
	confPath := filepath.Join(c.Dir, "ctdb.conf")
	here := make(map[netip.Addr]bool, len(local))
	for _, a := range local {
		here[a.Unmap().WithZone("")] = true
	}
	if want := c.Conf.Cluster.NodeAddress; want.IsValid() {
		for _, n := range c.Nodes {
			if n.Deleted || n.Addr != want {
				continue
			}
			if !here[want] {
				msg := fmt.Sprintf("[cluster] node address %s is not configured on this host", want)
				return -1, &pnnMiss{Error{File: confPath, Msg: msg}, msg}
			}
			return n.PNN, nil
		}
		msg := fmt.Sprintf("[cluster] node address %s is not in %s", want, nodesPath)
		return -1, &pnnMiss{Error{File: confPath, Msg: msg}, msg}
	}
	for _, n := range c.Nodes {
		if !n.Deleted && here[n.Addr] {
			return n.PNN, nil
		}
	}
	return -1, &pnnMiss{
		Error{File: nodesPath, Msg: "none of these addresses is configured on this host"},
		fmt.Sprintf("no address from %s is configured on this host", nodesPath),
	}
}

// ReloadPublicAddresses re-reads this node's public_addresses file with
// the checks Load makes (including that no public address is a node's
// private address), for ctdb reloadips.
func (c *Config) ReloadPublicAddresses() ([]PublicAddress, error) {
	var p problems
	addrs := parsePublicAddresses(c.PublicAddressesFile, c.reservedAddrs(), &p)
	if err := p.err(); err != nil {
		return nil, err
	}
	return addrs, nil
}

// ReloadGossipKeys reads the gossip key file again (a key being rotated:
// see GossipKeys); nil, nil when the cluster runs without one.
func (c *Config) ReloadGossipKeys() ([][]byte, error) {
	path := c.Conf.Cluster.GossipKeyFile
	if path == "" {
		return nil, nil
	}
	var p problems
	keys := readGossipKeys(path, filepath.Join(c.Dir, "ctdb.conf"), 0, &p)
	if err := p.err(); err != nil {
		return nil, err
	}
	return keys, nil
}

// reservedAddrs is the live nodes' private addresses, which no public
// address may be, each with what it is.
func (c *Config) reservedAddrs() map[netip.Addr]string {
	reserved := map[netip.Addr]string{}
	for _, n := range c.Nodes {
		if !n.Deleted {
			reserved[n.Addr] = fmt.Sprintf("node %d's private address in %s", n.PNN, c.Conf.Cluster.NodesList)
		}
	}
	return reserved
}
