package bed

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
)

// NodeState is one node line of `ctdb -X status`.
type NodeState struct {
	PNN             int
	Addr            netip.Addr
	Flags           nodeflag.Flags
	PartiallyOnline bool
	ThisNode        bool
}

// OK reports whether the node has no flag set (`ctdb status` says OK).
func (n NodeState) OK() bool { return n.Flags == 0 }

// FlagString is the flags as `ctdb status` prints them.
func (n NodeState) FlagString() string { return n.Flags.String() }

// statusColumns maps `ctdb -X status` column names to node flags.
var statusColumns = map[string]nodeflag.Flags{
	"Disconnected": nodeflag.Disconnected,
	"Unknown":      nodeflag.Unknown,
	"Banned":       nodeflag.Banned,
	"Disabled":     nodeflag.PermanentlyDisabled,
	"Unhealthy":    nodeflag.Unhealthy,
	"Stopped":      nodeflag.Stopped,
}

// machineRows splits CTDB's -X output into rows of fields; lines that do
// not start with the separator (e.g. `ctdb status`'s trailing text) are
// skipped.
func machineRows(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			continue
		}
		line = strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|")
		rows = append(rows, strings.Split(line, "|"))
	}
	return rows
}

// ParseStatus parses `ctdb -X status` (CTDB's layout: a header row
// |Node|IP|Disconnected|…|ThisNode| and one row per node).
func ParseStatus(out string) ([]NodeState, error) {
	rows := machineRows(out)
	if len(rows) == 0 || len(rows[0]) < 2 || rows[0][0] != "Node" {
		return nil, errors.New("no |Node|IP|… header")
	}
	head := rows[0]
	var st []NodeState
	for _, r := range rows[1:] {
		if len(r) != len(head) {
			return nil, fmt.Errorf("row %q: %d fields, header has %d", strings.Join(r, "|"), len(r), len(head))
		}
		var n NodeState
		for c, name := range head {
			v := r[c]
			switch name {
			case "Node":
				pnn, err := strconv.Atoi(v)
				if err != nil {
					return nil, fmt.Errorf("node number %q: %w", v, err)
				}
				n.PNN = pnn
			case "IP":
				a, err := netip.ParseAddr(v)
				if err != nil {
					return nil, fmt.Errorf("node address: %w", err)
				}
				n.Addr = a
			case "ThisNode":
				n.ThisNode = v == "Y"
			case "PartiallyOnline":
				n.PartiallyOnline = v == "1"
			case "Inactive":
				// derived from the others
			default:
				f, known := statusColumns[name]
				if !known {
					return nil, fmt.Errorf("unknown column %q", name)
				}
				switch v {
				case "1":
					n.Flags |= f
				case "0":
				default:
					return nil, fmt.Errorf("column %s: %q, want 0 or 1", name, v)
				}
			}
		}
		st = append(st, n)
	}
	return st, nil
}

// ParseIPs parses `ctdb -X ip [all]` (|Public IP|Node| then
// |198.18.1.1|2|…) into address → holder PNN (-1: nobody).
func ParseIPs(out string) (map[netip.Addr]int, error) {
	rows := machineRows(out)
	if len(rows) == 0 || len(rows[0]) < 2 || rows[0][0] != "Public IP" || rows[0][1] != "Node" {
		return nil, errors.New("no |Public IP|Node| header")
	}
	ips := map[netip.Addr]int{}
	for _, r := range rows[1:] {
		if len(r) < 2 {
			return nil, fmt.Errorf("row %q: want address and node", strings.Join(r, "|"))
		}
		a, err := netip.ParseAddr(r[0])
		if err != nil {
			return nil, fmt.Errorf("public address: %w", err)
		}
		pnn, err := strconv.Atoi(r[1])
		if err != nil {
			return nil, fmt.Errorf("holder of %s: %w", a, err)
		}
		ips[a] = pnn
	}
	return ips, nil
}
