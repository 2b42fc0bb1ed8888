package bed

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// confParams is what ctdb.conf is written from.
type confParams struct {
	LogFile     string
	LogLevel    string
	ClusterLock string // "" writes no cluster lock line
	Name        string // cluster name (memberlist label)
	GossipPort  int    // 0: the daemon's default
	Fence       bool
	KeyFile     string // [cluster] gossip key file; "" writes none
	Insecure    bool   // [cluster] insecure gossip = true
	Extra       string
}

// ctdbConf renders ctdb.conf. It is the one place that knows ctdb.conf's
// keys: the daemon's own keys are still being settled, so change them here.
func ctdbConf(p confParams) string {
	var s strings.Builder
	s.WriteString("# written by the ctdb-go test bed (tests/bed)\n")
	s.WriteString("[logging]\n")
	fmt.Fprintf(&s, "\tlocation = file:%s\n", p.LogFile)
	fmt.Fprintf(&s, "\tlog level = %s\n", p.LogLevel)
	s.WriteString("[cluster]\n")
	if p.ClusterLock != "" {
		fmt.Fprintf(&s, "\tcluster lock = %s\n", p.ClusterLock)
	}
	fmt.Fprintf(&s, "\tname = %s\n", p.Name)
	if p.GossipPort != 0 {
		fmt.Fprintf(&s, "\tgossip port = %d\n", p.GossipPort)
	}
	if p.KeyFile != "" {
		fmt.Fprintf(&s, "\tgossip key file = %s\n", p.KeyFile)
	}
	if p.Insecure {
		s.WriteString("\tinsecure gossip = true\n")
	}
	if p.Fence {
		s.WriteString("[failover]\n\tfence = true\n")
	}
	if p.Extra != "" {
		s.WriteString(p.Extra)
		if !strings.HasSuffix(p.Extra, "\n") {
			s.WriteString("\n")
		}
	}
	return s.String()
}

// nodesFile renders the nodes file: one private address per line, PNN =
// line number.
func nodesFile(addrs []netip.Addr) string {
	var s strings.Builder
	for _, a := range addrs {
		s.WriteString(a.String() + "\n")
	}
	return s.String()
}

// publicAddressesFile renders public_addresses, every address on iface.
func publicAddressesFile(ps []netip.Prefix, iface string) string {
	var s strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&s, "%s %s\n", p, iface)
	}
	return s.String()
}

// tunablesFile renders ctdb.tunables, NAME=VALUE sorted by name.
func tunablesFile(t map[string]uint32) string {
	names := make([]string, 0, len(t))
	for n := range t {
		names = append(names, n)
	}
	sort.Strings(names)
	var s strings.Builder
	for _, n := range names {
		fmt.Fprintf(&s, "%s=%d\n", n, t[n])
	}
	return s.String()
}

// GossipKeyName is the gossip key file's name in every node's config
// directory.
const GossipKeyName = "gossip.key"

// file is one file to write into a node's config dir.
type file struct {
	Path string // relative to the config dir
	Data string
	Mode os.FileMode
}

// nodeFiles lists node pnn's config files. repoEvents is the repo's
// events.d (functions and shipped scripts are read from it).
func (b *Bed) nodeFiles(pnn int) ([]file, error) {
	cfg := &b.cfg
	np := b.Paths(pnn)
	lock := cfg.ClusterLock
	switch lock {
	case "", "file":
		lock = filepath.Join(b.root, "reclock")
	case "none":
		lock = ""
	}
	keyFile := ""
	if len(cfg.GossipKey) > 0 {
		keyFile = filepath.Join(np.Config, GossipKeyName)
	}
	addrs := make([]netip.Addr, cfg.Nodes)
	for i := range addrs {
		addrs[i] = b.NodeAddr(i)
	}
	fs := []file{
		{"ctdb.conf", ctdbConf(confParams{
			LogFile:     np.Log,
			LogLevel:    cfg.LogLevel,
			ClusterLock: lock,
			Name:        b.id,
			GossipPort:  cfg.GossipPort,
			Fence:       cfg.Fence,
			KeyFile:     keyFile,
			Insecure:    cfg.InsecureGossip && b.insecureKnown,
			Extra:       cfg.ConfExtra,
		}), 0o644},
		{"nodes", nodesFile(addrs), 0o644},
		{"public_addresses", publicAddressesFile(cfg.PublicAddrs, PublicIface), 0o644},
		{"script.options", cfg.ScriptOptions, 0o644},
	}
	if keyFile != "" {
		// The daemon's format: the key in standard base64 on one line
		// (daemon/config readGossipKey); 0600 as it asks.
		fs = append(fs, file{GossipKeyName, base64.StdEncoding.EncodeToString(cfg.GossipKey) + "\n", 0o600})
	}
	if len(cfg.Tunables) > 0 {
		fs = append(fs, file{"ctdb.tunables", tunablesFile(cfg.Tunables), 0o644})
	}
	repoEvents := filepath.Join(cfg.RepoDir, "events.d")
	// functions lives beside ctdb.conf, where scripts source it from
	// ($CTDB_BASE/functions), as `make install` puts it.
	fn, err := os.ReadFile(filepath.Join(repoEvents, "functions"))
	switch {
	case err == nil:
		fs = append(fs, file{"functions", string(fn), 0o644})
	case len(cfg.InstallShipped) > 0:
		return nil, fmt.Errorf("reading events.d/functions for the shipped scripts: %w", err)
	}
	for _, name := range cfg.InstallShipped {
		body, err := os.ReadFile(filepath.Join(repoEvents, name))
		if err != nil {
			return nil, fmt.Errorf("installing shipped script %s: %w", name, err)
		}
		fs = append(fs, file{filepath.Join("events.d", name), string(body), 0o755})
	}
	names := make([]string, 0, len(cfg.EventScripts))
	for n := range cfg.EventScripts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fs = append(fs, file{filepath.Join("events.d", n), cfg.EventScripts[n], 0o755})
	}
	return fs, nil
}

// writeNodeFiles creates node pnn's directories and config files.
func (b *Bed) writeNodeFiles(pnn int) error {
	np := b.Paths(pnn)
	for _, d := range []string{np.Config, filepath.Join(np.Config, "events.d"), np.Run, np.State} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("creating node %d's directories: %w", pnn, err)
		}
	}
	fs, err := b.nodeFiles(pnn)
	if err != nil {
		return fmt.Errorf("node %d's config: %w", pnn, err)
	}
	for _, f := range fs {
		p := filepath.Join(np.Config, f.Path)
		if err := os.WriteFile(p, []byte(f.Data), f.Mode); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
		// WriteFile's mode is filtered by the umask and ignored for an
		// existing file; scripts must end up exactly executable.
		if err := os.Chmod(p, f.Mode); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
	}
	return nil
}
