package config

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNodes(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		name     string
		nodes    string // "-": no file
		want     []Node
		errs     []string
		warnings []string
	}{
		{
			name:  "ipv4",
			nodes: threeNodes,
			want:  []Node{{0, a("198.18.0.1"), false}, {1, a("198.18.0.2"), false}, {2, a("198.18.0.3"), false}},
		},
		{
			name:  "ipv6",
			nodes: "2001:db8::1\nfd00::2\n2001:DB8::3\n",
			want:  []Node{{0, a("2001:db8::1"), false}, {1, a("fd00::2"), false}, {2, a("2001:db8::3"), false}},
		},
		{
			name:  "mixed families",
			nodes: "#198.18.0.1\n2001:db8::1\n198.18.0.2\n2001:db8::3\n::ffff:198.18.0.4\n",
			errs: []string{
				"DIR/nodes:3: node address 198.18.0.2 is IPv4, but node 1 (line 2) is IPv6: all nodes must use one address family",
				"DIR/nodes:5: node address 198.18.0.4 is IPv4, but node 1 (line 2) is IPv6: all nodes must use one address family",
			},
		},
		{
			name:  "IPv4 link-local: a warning",
			nodes: "169.254.0.1\n169.254.0.2\n",
			want:  []Node{{0, a("169.254.0.1"), false}, {1, a("169.254.0.2"), false}},
			warnings: []string{
				"DIR/nodes:1: node address 169.254.0.1 is link-local (169.254.0.0/16): make sure it is configured statically, not by autoconfiguration",
				"DIR/nodes:2: node address 169.254.0.2 is link-local (169.254.0.0/16): make sure it is configured statically, not by autoconfiguration",
			},
		},
		{
			name:  "deleted nodes keep their PNN",
			nodes: "198.18.0.1\n#198.18.0.2\n# 198.18.0.3\n198.18.0.4\n#\n198.18.0.6\n",
			want: []Node{
				{0, a("198.18.0.1"), false}, {1, netip.Addr{}, true}, {2, netip.Addr{}, true},
				{3, a("198.18.0.4"), false}, {4, netip.Addr{}, true}, {5, a("198.18.0.6"), false},
			},
		},
		{
			name:  "blanks stripped, blank lines skipped, CRLF",
			nodes: "\n  198.18.0.1 \t\r\n\n\t198.18.0.2\r\n   \n",
			want:  []Node{{0, a("198.18.0.1"), false}, {1, a("198.18.0.2"), false}},
		},
		{
			name:  "no final newline",
			nodes: "198.18.0.1\n198.18.0.2",
			want:  []Node{{0, a("198.18.0.1"), false}, {1, a("198.18.0.2"), false}},
		},
		{
			name:     "a comment is a deleted node, with a warning",
			nodes:    "# cluster A\n198.18.0.1\n198.18.0.2\n",
			want:     []Node{{0, netip.Addr{}, true}, {1, a("198.18.0.1"), false}, {2, a("198.18.0.2"), false}},
			warnings: []string{`DIR/nodes:1: line starting with "#" is deleted node 0, not a comment: every such line keeps a node number`},
		},
		{
			name:  "v4-mapped is stored as IPv4",
			nodes: "::ffff:198.18.0.1\n",
			want:  []Node{{0, a("198.18.0.1"), false}},
		},
		{
			name:  "invalid addresses",
			nodes: "198.18.0.1\n198.18.0.256\n198.18.0.3:4379\nnode3\n0.0.0.0\n224.0.0.1\nfe80::1%eth0\n198.18.0.9/24\n127.0.0.1\n127.1.2.3\n255.255.255.255\n",
			errs: []string{
				`DIR/nodes:2: invalid node address "198.18.0.256"`,
				`DIR/nodes:3: invalid node address "198.18.0.3:4379"`,
				`DIR/nodes:4: invalid node address "node3"`,
				`DIR/nodes:5: node address 0.0.0.0: the unspecified address is not a node's address`,
				`DIR/nodes:6: node address 224.0.0.1: a multicast address is not a node's address`,
				`DIR/nodes:7: node address fe80::1%eth0: zones are not supported`,
				`DIR/nodes:8: invalid node address "198.18.0.9/24"`,
				`DIR/nodes:9: node address 127.0.0.1: a loopback address only reaches this host`,
				`DIR/nodes:10: node address 127.1.2.3: a loopback address only reaches this host`,
				`DIR/nodes:11: node address 255.255.255.255: the broadcast address is not a node's address`,
			},
		},
		{
			name:  "invalid IPv6 addresses",
			nodes: "2001:db8::1\n::\n::1\nff02::1\nfe80::1\n",
			errs: []string{
				`DIR/nodes:2: node address ::: the unspecified address is not a node's address`,
				`DIR/nodes:3: node address ::1: a loopback address only reaches this host`,
				`DIR/nodes:4: node address ff02::1: a multicast address is not a node's address`,
				`DIR/nodes:5: node address fe80::1: an IPv6 link-local address needs an interface, which the nodes file cannot give; use a global or unique local address`,
			},
		},
		{
			name:  "duplicates",
			nodes: "198.18.0.1\n198.18.0.2\n 198.18.0.1\n::ffff:198.18.0.2\n",
			errs: []string{
				`DIR/nodes:3: duplicate node address 198.18.0.1 (also at line 1)`,
				`DIR/nodes:4: duplicate node address 198.18.0.2 (also at line 2)`,
			},
		},
		{
			name:  "IPv6 duplicates",
			nodes: "2001:db8::1\n2001:0db8::0001\n",
			errs:  []string{`DIR/nodes:2: duplicate node address 2001:db8::1 (also at line 1)`},
		},
		{
			name:  "deleted nodes may repeat an address",
			nodes: "#198.18.0.1\n198.18.0.1\n",
			want:  []Node{{0, netip.Addr{}, true}, {1, a("198.18.0.1"), false}},
		},
		{name: "empty", nodes: "", errs: []string{"DIR/nodes: no node addresses"}},
		{name: "blank", nodes: "\n \n\t\n", errs: []string{"DIR/nodes: no node addresses"}},
		{name: "only deleted", nodes: "#198.18.0.1\n#198.18.0.2\n", errs: []string{"DIR/nodes: no node addresses"}},
		{name: "missing", nodes: "-", errs: []string{"DIR/nodes: cannot open: no such file or directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeDir(t, map[string]string{"nodes": tt.nodes})
			c, err := Load(dir)
			if diff := cmp.Diff(tt.errs, errorLines(t, err, dir)); diff != "" {
				t.Fatalf("Load errors (-want +got):\n%s", diff)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, c.Nodes, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
				t.Errorf("Nodes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.warnings, warningLines(c.Warnings, dir)); diff != "" {
				t.Errorf("Warnings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNodesListRelative(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"nodes":            "-",
		"ctdb.conf":        "[cluster]\nnodes list = conf/nodes.txt\n",
		"conf/nodes.txt":   "198.18.0.7\n",
		"public_addresses": "-",
	})
	c, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := []Node{{PNN: 0, Addr: netip.MustParseAddr("198.18.0.7")}}
	if diff := cmp.Diff(want, c.Nodes, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
		t.Errorf("Nodes (-want +got):\n%s", diff)
	}
}
