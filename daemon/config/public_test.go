package config

import (
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPublicAddresses(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name string
		file string // "-": no file
		want []PublicAddress
		errs []string
	}{
		{name: "missing file: none", file: "-", want: []PublicAddress{}},
		{name: "empty file: none", file: "", want: []PublicAddress{}},
		{
			name: "ipv4, ipv6, comments, blanks, several ifaces",
			file: "# public\n\n198.18.1.1/24 eth1 # first\n  198.18.1.2/24\teth1,eth2  \n\t# indented comment\n2001:db8:1::10/64 eth1\n198.18.2.1/32 bond0.100\r\n",
			want: []PublicAddress{
				{p("198.18.1.1/24"), []string{"eth1"}},
				{p("198.18.1.2/24"), []string{"eth1", "eth2"}},
				{p("2001:db8:1::10/64"), []string{"eth1"}},
				{p("198.18.2.1/32"), []string{"bond0.100"}},
			},
		},
		{
			name: "address keeps its host bits",
			file: "198.18.1.77/16 eth1\n",
			want: []PublicAddress{{p("198.18.1.77/16"), []string{"eth1"}}},
		},
		{
			name: "v4-mapped is stored as IPv4",
			file: "::ffff:198.18.1.1/120 eth1\n",
			want: []PublicAddress{{p("198.18.1.1/24"), []string{"eth1"}}},
		},
		{
			name: "every error class",
			file: "198.18.1.1 eth1\n" +
				"198.18.1.2/33 eth1\n" +
				"bogus/24 eth1\n" +
				"198.18.1.4/24\n" +
				"198.18.1.5/24 eth1 eth2\n" +
				"198.18.1.6/24 eth1,,eth2\n" +
				"198.18.1.7/24 averyveryverylongname\n" +
				"198.18.1.8/24 eth1:0\n" +
				"198.18.1.9/24 eth1,eth1\n" +
				"198.18.1.10/24 eth1\n" +
				"198.18.1.10/25 eth2\n" +
				"2001:db8::10/64 eth1\n" +
				"2001:db8:0::10/64 eth1\n" +
				"127.0.0.1/8 lo\n" +
				"0.0.0.0/0 eth1\n" +
				"198.18.0.2/24 eth0\n" +
				"::ffff:198.18.1.20/64 eth1\n" +
				"198.18.1.21/0 eth1\n" +
				"10.0.0.1/7 eth1\n" +
				"10.0.0.1/8 eth1\n" +
				"2001:db8::1/15 eth1\n" +
				"2001:db8::2/16 eth1\n" +
				"198.18.2.0/24 eth1\n" +
				"198.18.2.255/24 eth1\n" +
				"198.18.3.0/31 eth1\n" +
				"198.18.4.0/32 eth1\n" +
				"255.255.255.255/32 eth1\n" +
				"224.0.0.5/24 eth1\n" +
				"::1/128 lo\n" +
				"fe80::5/64 eth1\n" +
				"ff02::1/64 eth1\n",
			errs: []string{
				`DIR/public_addresses:1: public address "198.18.1.1" has no /BITS`,
				`DIR/public_addresses:2: invalid public address "198.18.1.2/33"`,
				`DIR/public_addresses:3: invalid public address "bogus/24"`,
				`DIR/public_addresses:4: no interface for public address 198.18.1.4/24`,
				`DIR/public_addresses:5: unexpected "eth2" after the interfaces of 198.18.1.5/24 (interfaces are separated by commas, without blanks)`,
				`DIR/public_addresses:6: empty interface name in "eth1,,eth2"`,
				`DIR/public_addresses:7: invalid interface name "averyveryverylongname"`,
				`DIR/public_addresses:8: invalid interface name "eth1:0"`,
				`DIR/public_addresses:9: interface eth1 listed twice`,
				`DIR/public_addresses:11: duplicate public address 198.18.1.10 (also at line 10)`,
				`DIR/public_addresses:13: duplicate public address 2001:db8::10 (also at line 12)`,
				`DIR/public_addresses:14: public address 127.0.0.1/8: a loopback address only reaches this host`,
				`DIR/public_addresses:15: public address 0.0.0.0/0: the unspecified address is not an address clients can use`,
				`DIR/public_addresses:16: public address 198.18.0.2 is node 1's private address in DIR/nodes`,
				`DIR/public_addresses:17: invalid public address "::ffff:198.18.1.20/64"`,
				`DIR/public_addresses:18: public address 198.18.1.21/0: a /0 prefix would route every address to this interface`,
				`DIR/public_addresses:19: public address 10.0.0.1/7: a /7 prefix is too wide (the route covers 10.0.0.0/7); want /8 to /32`,
				`DIR/public_addresses:21: public address 2001:db8::1/15: a /15 prefix is too wide (the route covers 2000::/15); want /16 to /128`,
				`DIR/public_addresses:23: public address 198.18.2.0/24: 198.18.2.0 is the network address of 198.18.2.0/24`,
				`DIR/public_addresses:24: public address 198.18.2.255/24: 198.18.2.255 is the broadcast address of 198.18.2.0/24`,
				`DIR/public_addresses:27: public address 255.255.255.255/32: the broadcast address cannot be a public address`,
				`DIR/public_addresses:28: public address 224.0.0.5/24: a multicast address cannot be a public address`,
				`DIR/public_addresses:29: public address ::1/128: a loopback address only reaches this host`,
				`DIR/public_addresses:30: public address fe80::5/64: an IPv6 link-local address cannot be a public address`,
				`DIR/public_addresses:31: public address ff02::1/64: a multicast address cannot be a public address`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeDir(t, map[string]string{"public_addresses": tt.file})
			c, err := Load(dir)
			if diff := cmp.Diff(tt.errs, errorLines(t, err, dir)); diff != "" {
				t.Fatalf("Load errors (-want +got):\n%s", diff)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, c.PublicAddresses, cmp.Comparer(func(x, y netip.Prefix) bool { return x == y })); diff != "" {
				t.Errorf("PublicAddresses (-want +got):\n%s", diff)
			}
			if c.PublicAddresses == nil {
				t.Errorf("PublicAddresses = nil, want empty slice")
			}
		})
	}
}

func TestLoadPublicAddresses(t *testing.T) {
	dir := writeDir(t, map[string]string{"public_addresses": "198.18.1.1/24 eth1\n198.18.1.2 eth1\n"})
	path := filepath.Join(dir, "public_addresses")
	_, err := LoadPublicAddresses(path)
	want := []string{`DIR/public_addresses:2: public address "198.18.1.2" has no /BITS`}
	if diff := cmp.Diff(want, errorLines(t, err, dir)); diff != "" {
		t.Errorf("LoadPublicAddresses errors (-want +got):\n%s", diff)
	}

	got, err := LoadPublicAddresses(filepath.Join(dir, "absent"))
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("LoadPublicAddresses(missing) = %v, %v; want [], nil", got, err)
	}
}

func TestReloadPublicAddresses(t *testing.T) {
	dir := writeDir(t, map[string]string{"public_addresses": "198.18.1.1/24 eth1\n"})
	c, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	writeFile(t, c.PublicAddressesFile, "198.18.1.1/24 eth1\n198.18.1.2/24 eth2\n198.18.0.3/24 eth0\n")
	_, err = c.ReloadPublicAddresses()
	want := []string{`DIR/public_addresses:3: public address 198.18.0.3 is node 2's private address in DIR/nodes`}
	if diff := cmp.Diff(want, errorLines(t, err, dir)); diff != "" {
		t.Errorf("ReloadPublicAddresses errors (-want +got):\n%s", diff)
	}

	writeFile(t, c.PublicAddressesFile, "198.18.1.1/24 eth1\n198.18.1.2/24 eth2\n")
	got, err := c.ReloadPublicAddresses()
	if err != nil {
		t.Fatalf("ReloadPublicAddresses: %v", err)
	}
	wantAddrs := []PublicAddress{
		{netip.MustParsePrefix("198.18.1.1/24"), []string{"eth1"}},
		{netip.MustParsePrefix("198.18.1.2/24"), []string{"eth2"}},
	}
	if diff := cmp.Diff(wantAddrs, got, cmp.Comparer(func(x, y netip.Prefix) bool { return x == y })); diff != "" {
		t.Errorf("ReloadPublicAddresses (-want +got):\n%s", diff)
	}
}
