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
	// ScriptOptions is script.options as NAME -> value; empty when the
	// file is missing.
	ScriptOptions map[string]string
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
	c.ScriptOptions, found = parseScriptOptions(soPath, &p)
	if found {
		c.ScriptOptionsFile = soPath
	}

	loadTunables(dir, c.Tunables, &p)

	if kf := c.Conf.Cluster.GossipKeyFile; kf != "" {
		c.Conf.Cluster.GossipKey = readGossipKey(kf, confPath, where["cluster/gossip key file"], &p)
	}

	c.Warnings = p.warnings
	if err := p.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// readGossipKey reads the gossip encryption key: the file holds the key in
// standard base64 (as `head -c 32 /dev/urandom | base64` writes it, the
// format of serf and consul keys), blanks and newlines around it ignored;
// it must decode to 16, 24 or 32 bytes (AES-128, -192 or -256). A file
// others may read is allowed, with a warning.
func readGossipKey(path, confPath string, line int, p *problems) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		p.errorf(confPath, line, "[cluster] gossip key file = %q: %s", path, fileProblem(err))
		return nil
	}
	text := strings.TrimSpace(string(b))
	key, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		p.errorf(path, 0, "gossip key is not base64 text (make one with: head -c 32 /dev/urandom | base64)")
		return nil
	}
	switch len(key) {
	case 16, 24, 32:
	default:
		p.errorf(path, 0, "gossip key is %d bytes; want 16, 24 or 32", len(key))
		return nil
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		p.warnf(path, 0, "gossip key file mode is %04o: others may read or change it (chmod 600)", fi.Mode().Perm())
	}
	return key
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
