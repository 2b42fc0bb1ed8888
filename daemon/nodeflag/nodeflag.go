// Package nodeflag holds CTDB's node flags, with CTDB's values, so that
// every part of ctdb-go and the CLI agree on them.
package nodeflag

import "strings"

// Flags is a node's flag word, bit for bit CTDB's (protocol/protocol.h).
type Flags uint32

const (
	Disconnected        Flags = 0x01 // not reachable over the private network
	Unhealthy           Flags = 0x02 // monitor event failed (every node starts so)
	PermanentlyDisabled Flags = 0x04 // `ctdb disable`
	Banned              Flags = 0x08 // `ctdb ban`, or repeated takeover failures
	Deleted             Flags = 0x10 // line commented out in the nodes file
	Stopped             Flags = 0x20 // `ctdb stop`
	Unknown             Flags = 0x40 // display only: state not known yet

	// Disabled is CTDB's NODE_FLAGS_DISABLED mask.
	Disabled = Unhealthy | PermanentlyDisabled
	// Inactive is CTDB's NODE_FLAGS_INACTIVE mask.
	Inactive = Deleted | Disconnected | Banned | Stopped

	// Admin are the flags an administrator sets; they survive a restart.
	Admin = PermanentlyDisabled | Banned | Stopped
)

// CanHost reports whether a node with these flags may hold public addresses.
func (f Flags) CanHost() bool { return f&(Inactive|Disabled) == 0 }

// IsInactive reports whether any INACTIVE bit is set.
func (f Flags) IsInactive() bool { return f&Inactive != 0 }

// String renders the flags as `ctdb status` does: "OK", or names joined
// by "|" in CTDB's order, e.g. "DISCONNECTED|UNHEALTHY|INACTIVE".
func (f Flags) String() string {
	var names []string
	add := func(bit Flags, name string) {
		if f&bit != 0 {
			names = append(names, name)
		}
	}
	add(Disconnected, "DISCONNECTED")
	add(Unknown, "UNKNOWN")
	add(PermanentlyDisabled, "DISABLED")
	add(Banned, "BANNED")
	add(Unhealthy, "UNHEALTHY")
	add(Deleted, "DELETED")
	add(Stopped, "STOPPED")
	if f&(Disconnected|Banned|Stopped) != 0 {
		names = append(names, "INACTIVE")
	}
	if len(names) == 0 {
		return "OK"
	}
	return strings.Join(names, "|")
}
