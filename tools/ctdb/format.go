package main

import "net/netip"

// addrText is an address as CTDB prints it; a node without one (a deleted
// node) shows CTDB's placeholder 0.0.0.0.
func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return "0.0.0.0"
	}
	return a.Unmap().String()
}
