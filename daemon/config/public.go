package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"strings"
)

// PublicAddress is one line of a node's public_addresses file: an address
// clients use, with its prefix length, and the interfaces this node may
// put it on, in the file's order.
type PublicAddress struct {
	Prefix netip.Prefix // the address itself, not masked: 198.18.1.5/24
	Ifaces []string
}

// ifaceNameMax is IFNAMSIZ-1: the longest Linux interface name.
const ifaceNameMax = 15

// LoadPublicAddresses reads a public_addresses file: "ADDRESS/BITS
// IFACE[,IFACE...]" per line, optionally followed by a "# comment"; "#"
// comment lines and blank lines are skipped.
// A missing file means no public addresses (an empty, non-nil slice). The
// error, if any, is an Errors with every bad line. Interfaces are not
// checked against the host here; the daemon does that.
//
// ctdb reloadips calls this to re-read the file of a running node.
func LoadPublicAddresses(path string) ([]PublicAddress, error) {
	var p problems
	addrs := parsePublicAddresses(path, nil, &p)
	if err := p.err(); err != nil {
		return nil, err
	}
	return addrs, nil
}

// parsePublicAddresses reads public_addresses; reserved are addresses
// that must not be public ones (the nodes' private addresses: releasing
// one would cut a node off), with what each is.
func parsePublicAddresses(path string, reserved map[netip.Addr]string, p *problems) []PublicAddress {
	addrs := []PublicAddress{}
	lines, err := readLines(path)
	if errors.Is(err, fs.ErrNotExist) {
		return addrs
	}
	if err != nil {
		p.errorf(path, 0, "%s", fileProblem(err))
		return addrs
	}
	seen := map[netip.Addr]int{} // address -> line
	for i, raw := range lines {
		n := i + 1
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if !strings.Contains(fields[0], "/") {
			p.errorf(path, n, "public address %q has no /BITS", fields[0])
			continue
		}
		prefix, err := netip.ParsePrefix(fields[0])
		if err != nil {
			p.errorf(path, n, "invalid public address %q", fields[0])
			continue
		}
		addr := prefix.Addr()
		if addr.Is4In6() {
			if prefix.Bits() < 96 {
				p.errorf(path, n, "invalid public address %q", fields[0])
				continue
			}
			addr = addr.Unmap()
			prefix = netip.PrefixFrom(addr, prefix.Bits()-96)
		}
		if problem := publicPrefixProblem(netip.PrefixFrom(addr, prefix.Bits())); problem != "" {
			p.errorf(path, n, "public address %s: %s", fields[0], problem)
			continue
		}
		if len(fields) < 2 {
			p.errorf(path, n, "no interface for public address %s", prefix)
			continue
		}
		if len(fields) > 2 && !strings.HasPrefix(fields[2], "#") {
			p.errorf(path, n, "unexpected %q after the interfaces of %s (interfaces are separated by commas, without blanks)", fields[2], prefix)
			continue
		}
		ifaces, ok := parseIfaces(fields[1], path, n, p)
		if !ok {
			continue
		}
		if first, dup := seen[addr]; dup {
			p.errorf(path, n, "duplicate public address %s (also at line %d)", addr, first)
			continue
		}
		if what, ok := reserved[addr]; ok {
			p.errorf(path, n, "public address %s is %s", addr, what)
			continue
		}
		seen[addr] = n
		addrs = append(addrs, PublicAddress{Prefix: prefix, Ifaces: ifaces})
	}
	return addrs
}

// publicPrefixProblem says why p cannot be a public address, "" if it
// can. Clients must reach the address, and the prefix becomes a route on
// the interface: a short one would send much of the Internet there.
func publicPrefixProblem(p netip.Prefix) string {
	a := p.Addr()
	switch {
	case a.Zone() != "":
		return "zones are not supported"
	case a.IsLoopback():
		return "a loopback address only reaches this host"
	case a.IsUnspecified():
		return "the unspecified address is not an address clients can use"
	case a.IsMulticast():
		return "a multicast address cannot be a public address"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "the broadcast address cannot be a public address"
	case a.Is6() && a.IsLinkLocalUnicast():
		return "an IPv6 link-local address cannot be a public address"
	case p.Bits() == 0:
		return "a /0 prefix would route every address to this interface"
	case a.Is4() && p.Bits() < minIPv4Bits:
		return fmt.Sprintf("a /%d prefix is too wide (the route covers %s); want /%d to /32", p.Bits(), p.Masked(), minIPv4Bits)
	case a.Is6() && p.Bits() < minIPv6Bits:
		return fmt.Sprintf("a /%d prefix is too wide (the route covers %s); want /%d to /128", p.Bits(), p.Masked(), minIPv6Bits)
	case a.Is4() && p.Bits() <= 30 && a == p.Masked().Addr():
		return fmt.Sprintf("%s is the network address of %s", a, p.Masked())
	case a.Is4() && p.Bits() <= 30 && a == lastAddr(p):
		return fmt.Sprintf("%s is the broadcast address of %s", a, p.Masked())
	}
	return ""
}

// The widest public prefixes: a /8 (IPv4) or /16 (IPv6) is already more
// than any subnet a cluster's clients sit on.
const (
	minIPv4Bits = 8
	minIPv6Bits = 16
)

// lastAddr is the highest address of p's subnet.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	for i := bits; i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		a = a.Unmap()
	}
	return a
}

// parseIfaces splits "eth1,eth2" and checks each name is one Linux could
// have; whether it exists is the daemon's question.
func parseIfaces(s, path string, n int, p *problems) ([]string, bool) {
	var ifaces []string
	for name := range strings.SplitSeq(s, ",") {
		switch {
		case name == "":
			p.errorf(path, n, "empty interface name in %q", s)
			return nil, false
		case len(name) > ifaceNameMax || strings.ContainsAny(name, "/:") || name == "." || name == "..":
			p.errorf(path, n, "invalid interface name %q", name)
			return nil, false
		}
		for _, have := range ifaces {
			if have == name {
				p.errorf(path, n, "interface %s listed twice", name)
				return nil, false
			}
		}
		ifaces = append(ifaces, name)
	}
	return ifaces, true
}
