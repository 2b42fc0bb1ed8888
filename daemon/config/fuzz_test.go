package config

import (
	"bytes"
	"context"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// shSpecial are variables sh itself gives a meaning to: assigning them
// changes how sh runs, so the fuzz targets do not compare them.
var shSpecial = map[string]bool{
	"IFS": true, "OPTIND": true, "PATH": true, "PPID": true, "PS1": true, "PS2": true, "PS4": true,
	"LINENO": true, "HOME": true, "ENV": true, "MAIL": true, "MAILPATH": true, "HISTSIZE": true,
}

// FuzzScriptOptions checks that script.options lines the parser accepts
// are read by sh (dash here) as the parser reads them: for each accepted
// file, sh sources it and prints every variable, and the values must be
// ours. Values that use other variables ($NAME, ${NAME}) are left to sh
// and not compared. With -short, only the parser runs (no panics).
func FuzzScriptOptions(f *testing.F) {
	for _, s := range []string{
		"A=yes\n",
		"B='x $y `z`'\n",
		"C=\"q \\\"r\\\" \\$s \\\\ \\t\"\n",
		"D=ab'c d'\"e\"f\\ g   # c\n",
		"export E=1\n",
		"CTDB_NFS_CALLOUT=\"${CTDB_BASE}/nfs-callout\"\n",
		"P=/a:'~'/b:c\\~\n",
		"Q=\"5$\"\nR=$\n",
		"S=a#b\tT=1\n",
		"U=x\\\\\n",
		"V=\"\\a\\b\"\n",
		"W=~x\n",
		"X=\\\n",
		"Y=a\r\n",
	} {
		f.Add(s)
	}
	sh, shErr := exec.LookPath("sh")
	f.Fuzz(func(t *testing.T, file string) {
		dir := t.TempDir()
		path := filepath.Join(dir, "script.options")
		if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
			t.Fatal(err)
		}
		var p problems
		opts, shellText, _ := parseScriptOptions(path, &p)
		if len(p.errs) > 0 || testing.Short() {
			return
		}
		if shErr != nil {
			t.Skip("no sh")
		}
		for name := range shellText {
			if _, both := opts[name]; both {
				t.Fatalf("%s is in both maps", name)
			}
		}
		var names []string
		for _, n := range slices.Sorted(maps.Keys(opts)) {
			if !shSpecial[n] {
				names = append(names, n)
			}
		}
		var script strings.Builder
		script.WriteString(`. "$1" || exit 99` + "\n")
		for _, n := range names {
			script.WriteString(`printf '%s\0' "$` + n + `"` + "\n")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, sh, "-c", script.String(), "sh", path)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "CTDB_BASE=/etc/ctdb"}
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("sh cannot source a file the parser accepts: %v %s\nfile: %q", err, stderr.String(), file)
		}
		got := strings.Split(string(out), "\x00")
		if len(got) != len(names)+1 {
			t.Fatalf("sh printed %d values for %d names\nfile: %q\nout: %q", len(got)-1, len(names), file, out)
		}
		for i, n := range names {
			if got[i] != opts[n] {
				t.Errorf("%s: sh reads %q, the parser %q\nfile: %q", n, got[i], opts[n], file)
			}
		}
	})
}

// FuzzLoad runs the whole loader on a config dir made of the inputs:
// ctdb.conf, nodes, public_addresses, script.options, ctdb.tunables, and
// a gossip key when withKey. It must not panic, and a configuration it
// accepts must hold what Load promises and load again the same.
func FuzzLoad(f *testing.F) {
	example := func(name string) string {
		b, err := os.ReadFile(filepath.Join("testdata/example", name))
		if err != nil {
			f.Fatal(err)
		}
		return string(b)
	}
	f.Add(example("ctdb.conf"), example("nodes"), example("public_addresses"), example("script.options"), example("ctdb.tunables"), true)
	f.Add("[cluster]\ninsecure gossip = true\nquorum = none\n", "198.18.0.1\n198.18.0.2\n", "198.18.1.1/24 eth1\n", "", "LeaseTime=1\nLeaseRenewIntervalMs=499\n", false)
	f.Add("[failover]\nfence = true\n", "2001:db8::1\n", "2001:db8:1::1/64 eth1,eth2\n", "A=\"${B}\"\n", "", false)
	f.Add("[cluster]\ncluster lock = !/bin/true x\nnode address = 198.18.0.2\n", "#x\n198.18.0.2\n", "", "export A=1\n", "MonitorInterval=3600\n", true)
	f.Fuzz(func(t *testing.T, conf, nodes, public, options, tunables string, withKey bool) {
		dir := t.TempDir()
		files := map[string]string{
			"ctdb.conf": conf, "nodes": nodes, "public_addresses": public,
			"script.options": options, "ctdb.tunables": tunables,
		}
		if withKey {
			files[GossipKeyFileName] = testKey
		}
		for name, content := range files {
			mode := os.FileMode(0o644)
			if name == GossipKeyFileName {
				mode = 0o600
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), mode); err != nil {
				t.Fatal(err)
			}
		}
		c, err := Load(dir)
		if err != nil {
			if _, ok := err.(Errors); !ok {
				t.Fatalf("Load error %T is not an Errors: %v", err, err)
			}
			return
		}
		checkLoaded(t, c)
		again, err := Load(dir)
		if err != nil {
			t.Fatalf("a configuration Load accepted fails the second time: %v", err)
		}
		if diff := cmp.Diff(c, again, addrComparer, cmp.Comparer(func(x, y netip.Prefix) bool { return x == y }),
			cmp.Comparer(func(x, y *Tunables) bool { return slices.Equal(x.v, y.v) })); diff != "" {
			t.Fatalf("Load differs the second time (-first +second):\n%s", diff)
		}
		if _, err := c.ReloadPublicAddresses(); err != nil {
			t.Fatalf("ReloadPublicAddresses after Load: %v", err)
		}
	})
}

// checkLoaded checks what Load promises of a Config it returns.
func checkLoaded(t *testing.T, c *Config) {
	t.Helper()
	live := 0
	var family *bool
	seen := map[netip.Addr]bool{}
	for i, n := range c.Nodes {
		if n.PNN != i {
			t.Errorf("node %d has PNN %d", i, n.PNN)
		}
		if n.Deleted {
			continue
		}
		live++
		if !n.Addr.IsValid() || n.Addr.Zone() != "" || n.Addr.Is4In6() || nodeAddrProblem(n.Addr) != "" || seen[n.Addr] {
			t.Errorf("node %d: address %v", n.PNN, n.Addr)
		}
		seen[n.Addr] = true
		is4 := n.Addr.Is4()
		if family != nil && *family != is4 {
			t.Errorf("node %d: mixed address families", n.PNN)
		}
		family = &is4
	}
	if live == 0 {
		t.Error("no live node")
	}
	for _, pa := range c.PublicAddresses {
		if publicPrefixProblem(pa.Prefix) != "" || seen[pa.Prefix.Addr()] || len(pa.Ifaces) == 0 {
			t.Errorf("public address %v %v", pa.Prefix, pa.Ifaces)
		}
	}
	cl := c.Conf.Cluster
	if live > 1 && len(cl.GossipKeys) == 0 && !cl.InsecureGossip {
		t.Error("several nodes, no key, not insecure")
	}
	for _, k := range cl.GossipKeys {
		if l := len(k); l != 16 && l != 24 && l != 32 {
			t.Errorf("gossip key of %d bytes", l)
		}
	}
	if len(cl.GossipKeys) > 0 && !bytes.Equal(cl.GossipKey, cl.GossipKeys[0]) {
		t.Error("GossipKey is not GossipKeys[0]")
	}
	if strings.HasPrefix(cl.ClusterLock, "etcd://") {
		t.Error("etcd lock accepted")
	}
	if c.Conf.Failover.Fence {
		if s, err := FenceScripts(filepath.Join(c.Dir, "events.d")); err != nil || len(s) == 0 {
			t.Error("fence without a fence script")
		}
	}
	if cl.Quorum != QuorumMajority && cl.Quorum != QuorumNone {
		t.Errorf("quorum %q", cl.Quorum)
	}
	for i, d := range tunables {
		if v := c.Tunables.v[i]; !d.obsolete && (v < d.min || v > d.max) {
			t.Errorf("%s = %d outside %d..%d", d.name, v, d.min, d.max)
		}
	}
	c.Tunables.mu.Lock()
	rel := c.Tunables.relations()
	c.Tunables.mu.Unlock()
	if rel != "" {
		t.Errorf("tunables: %s", rel)
	}
	for name := range c.ScriptOptions {
		if !isShellName(name) {
			t.Errorf("script option name %q", name)
		}
		if _, both := c.ScriptOptionsShell[name]; both {
			t.Errorf("%s in both script option maps", name)
		}
	}
}
