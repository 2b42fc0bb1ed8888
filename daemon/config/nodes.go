package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"
)

// Node is one line of the nodes file. PNN is the line's index among the
// non-blank lines, counting deleted ones, so removing a node by commenting
// it out does not renumber the nodes after it.
type Node struct {
	PNN  int
	Addr netip.Addr // the private address; zero for a deleted node
	// Deleted is set for a line starting with "#": CTDB's DELETED node,
	// which keeps its PNN but is never contacted or given addresses.
	Deleted bool
}

// readLines reads a text file as lines without their line ends.
func readLines(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil, nil
	}
	return strings.Split(s, "\n"), nil
}

// fileProblem turns an error from reading a whole file into a message
// without the path (Error.File carries it).
func fileProblem(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Sprintf("cannot %s: %v", pe.Op, pe.Err)
	}
	return err.Error()
}

// parseNodes reads a nodes file the way CTDB does (conf/node.c): blanks
// around a line are stripped, blank lines are skipped, and every line that
// starts with "#" is a deleted node, even one that reads like a comment.
func parseNodes(path string, p *problems) []Node {
	lines, err := readLines(path)
	if err != nil {
		p.errorf(path, 0, "%s", fileProblem(err))
		return nil
	}
	var nodes []Node
	seen := map[netip.Addr]int{} // address -> line
	live := 0
	pnn := -1           // counts every non-blank line, even an invalid one
	var first *nodeLine // the first live node: the others use its address family
	for i, raw := range lines {
		n := i + 1
		line := strings.TrimSpace(raw)
		if line == "" {
			continue
		}
		pnn++
		if rest, ok := strings.CutPrefix(line, "#"); ok {
			nodes = append(nodes, Node{PNN: pnn, Deleted: true})
			rest = strings.TrimSpace(rest)
			if _, err := netip.ParseAddr(rest); rest != "" && err != nil {
				p.warnf(path, n, "line starting with \"#\" is deleted node %d, not a comment: every such line keeps a node number", pnn)
			}
			continue
		}
		addr, err := netip.ParseAddr(line)
		switch {
		case err != nil:
			p.errorf(path, n, "invalid node address %q", line)
			continue
		case addr.Zone() != "":
			p.errorf(path, n, "node address %s: zones are not supported", line)
			continue
		}
		addr = addr.Unmap()
		if problem := nodeAddrProblem(addr); problem != "" {
			p.errorf(path, n, "node address %s: %s", addr, problem)
			continue
		}
		if addr.Is4() && addr.IsLinkLocalUnicast() {
			p.warnf(path, n, "node address %s is link-local (169.254.0.0/16): make sure it is configured statically, not by autoconfiguration", addr)
		}
		if first != nil && first.addr.Is4() != addr.Is4() {
			p.errorf(path, n, "node address %s is %s, but node %d (line %d) is %s: all nodes must use one address family",
				addr, family(addr), first.pnn, first.line, family(first.addr))
			continue
		}
		if first, dup := seen[addr]; dup {
			p.errorf(path, n, "duplicate node address %s (also at line %d)", addr, first)
			continue
		}
		seen[addr] = n
		if first == nil {
			first = &nodeLine{addr, pnn, n}
		}
		nodes = append(nodes, Node{PNN: pnn, Addr: addr})
		live++
	}
	if live == 0 && !hasLineError(p, path) {
		p.errorf(path, 0, "no node addresses")
	}
	return nodes
}

// nodeLine is where a node's address was read.
type nodeLine struct {
	addr      netip.Addr
	pnn, line int
}

// nodeAddrProblem says why addr cannot be a node's private address, ""
// if it can. Gossip runs between these addresses, so each must reach one
// other host: not this host only (loopback), nobody (unspecified), all
// (broadcast, multicast), or a link without naming it (IPv6 link-local
// needs a zone, which the nodes file cannot carry).
func nodeAddrProblem(addr netip.Addr) string {
	switch {
	case addr.IsLoopback():
		return "a loopback address only reaches this host"
	case addr.IsUnspecified():
		return "the unspecified address is not a node's address"
	case addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "the broadcast address is not a node's address"
	case addr.IsMulticast():
		return "a multicast address is not a node's address"
	case addr.Is6() && addr.IsLinkLocalUnicast():
		return "an IPv6 link-local address needs an interface, which the nodes file cannot give; use a global or unique local address"
	}
	return ""
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// hasLineError reports whether an error was already recorded for path, so
// an empty-file error does not pile onto lines that were all invalid.
func hasLineError(p *problems, path string) bool {
	for _, e := range p.errs {
		if e.File == path {
			return true
		}
	}
	return false
}
