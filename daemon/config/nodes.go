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
	pnn := -1 // counts every non-blank line, even an invalid one
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
		case addr.Unmap().IsUnspecified() || addr.Unmap().IsMulticast():
			p.errorf(path, n, "node address %s cannot be a node's address", line)
			continue
		}
		addr = addr.Unmap()
		if first, dup := seen[addr]; dup {
			p.errorf(path, n, "duplicate node address %s (also at line %d)", addr, first)
			continue
		}
		seen[addr] = n
		nodes = append(nodes, Node{PNN: pnn, Addr: addr})
		live++
	}
	if live == 0 && !hasLineError(p, path) {
		p.errorf(path, 0, "no node addresses")
	}
	return nodes
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
