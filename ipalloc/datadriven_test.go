package ipalloc_test

import (
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ctdb-go/ctdb-go/ipalloc"
)

var update = flag.Bool("update", false, "rewrite the results in testdata/*.txt")

// TestDataDriven runs the cases in testdata/*.txt. A case is:
//
//	# What the case shows (at least one comment line).
//	ALGORITHM [nodes=STATE,...] [noiptakeover] [noipfailback] [force=PNN,...]
//	home ADDR PNN                      (optional, repeated; deterministic)
//	ADDR HOLDER [KNOWN_ON [AVAILABLE_ON]]
//	...
//	----
//	the result, as the test renders it
//
// and a blank line ends it. ALGORITHM is det, nondet, lcp2, lcp2-rebalance
// or an IPAllocAlgorithm number. A node STATE is ok (can host) or why it
// cannot (unhealthy, disabled, banned, stopped, disconnected, deleted,
// inactive); nodes default to three ok nodes. Address lines are CTDB's
// test-program format: HOLDER -1 for none, KNOWN_ON a comma list (default:
// every node), AVAILABLE_ON a comma list or "-" (default: the known nodes
// that are ok). The result lists every address with its new holder, "(was
// N)" when it moved, then the notes; before them, what Check says of
// inconsistent input. `go test ./ipalloc -update` rewrites the results.
func TestDataDriven(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.txt")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cases, err := parseCases(string(data))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			for i := range cases {
				c := &cases[i]
				got := c.run()
				if *update {
					c.output = got
					continue
				}
				if diff := cmp.Diff(c.output, got); diff != "" {
					t.Errorf("%s:%d: %s: result mismatch (-file +got):\n%s", f, c.line, c.header, diff)
				}
			}
			if *update {
				if err := os.WriteFile(f, []byte(renderCases(cases)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// ddCase is one case of a testdata/*.txt file.
type ddCase struct {
	line    int // of the header, for messages
	comment []string
	header  string
	input   []string
	output  []string
}

func parseCases(text string) ([]ddCase, error) {
	var cases []ddCase
	var c *ddCase
	inOutput := false
	for i, l := range strings.Split(text, "\n") {
		lineNo := i + 1
		switch {
		case l == "":
			if c != nil {
				if !inOutput {
					return nil, errors.New("line " + strconv.Itoa(lineNo) + ": case without ----")
				}
				cases = append(cases, *c)
				c = nil
			}
		case c == nil:
			if !strings.HasPrefix(l, "#") {
				return nil, errors.New("line " + strconv.Itoa(lineNo) + ": a case starts with a comment saying what it shows")
			}
			c = &ddCase{comment: []string{l}}
			inOutput = false
		case c.header == "" && strings.HasPrefix(l, "#"):
			c.comment = append(c.comment, l)
		case c.header == "":
			c.header, c.line = l, lineNo
		case l == "----":
			inOutput = true
		case inOutput:
			c.output = append(c.output, l)
		default:
			c.input = append(c.input, l)
		}
	}
	if c != nil {
		return nil, errors.New("last case does not end with a blank line")
	}
	return cases, nil
}

func renderCases(cases []ddCase) string {
	var b strings.Builder
	for i, c := range cases {
		if i > 0 {
			b.WriteString("\n")
		}
		for _, l := range c.comment {
			b.WriteString(l + "\n")
		}
		b.WriteString(c.header + "\n")
		for _, l := range c.input {
			b.WriteString(l + "\n")
		}
		b.WriteString("----\n")
		for _, l := range c.output {
			b.WriteString(l + "\n")
		}
	}
	b.WriteString("\n")
	return b.String()
}

// run allocates and renders the result; a malformed case renders as
// "bad case: ...", which the file will then show.
func (c *ddCase) run() []string {
	in, err := c.build()
	if err != nil {
		return []string{"bad case: " + err.Error()}
	}
	var out []string
	if err := ipalloc.Check(in); err != nil {
		out = append(out, "check: "+err.Error())
	}
	res := ipalloc.Allocate(in)
	was := map[netip.Addr]int{}
	for _, m := range res.Moves {
		was[m.Addr] = m.From
	}
	for _, a := range res.Assignments {
		l := a.Addr.String() + " " + strconv.Itoa(a.PNN)
		if from, ok := was[a.Addr]; ok {
			l += " (was " + strconv.Itoa(from) + ")"
		}
		out = append(out, l)
	}
	for _, n := range res.Notes {
		out = append(out, "note: "+n)
	}
	return out
}

func (c *ddCase) build() (ipalloc.Input, error) {
	var in ipalloc.Input
	f := strings.Fields(c.header)
	if len(f) == 0 {
		return in, errors.New("empty header")
	}
	switch f[0] {
	case "det", "nondet", "lcp2", "lcp2-rebalance":
		for _, a := range []ipalloc.Algorithm{0, 1, 2, 3} {
			if a.String() == f[0] {
				in.Algorithm = a
			}
		}
	default:
		n, err := strconv.Atoi(f[0])
		if err != nil {
			return in, errors.New("unknown algorithm " + f[0])
		}
		in.Algorithm = ipalloc.Algorithm(n)
	}
	states := []string{"ok", "ok", "ok"}
	for _, opt := range f[1:] {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "nodes":
			states = nil
			if v != "" {
				states = strings.Split(v, ",")
			}
		case "noiptakeover":
			in.NoIPTakeover = true
		case "noipfailback":
			in.NoIPFailback = true
		case "force":
			ps, err := pnns(v)
			if err != nil {
				return in, err
			}
			in.ForceRebalance = ps
		default:
			return in, errors.New("unknown option " + opt)
		}
	}
	ok := make([]bool, len(states))
	for p, s := range states {
		switch s {
		case "ok":
			ok[p] = true
		case "unhealthy", "disabled", "banned", "stopped", "disconnected", "deleted", "inactive":
		default:
			return in, errors.New("unknown node state " + s)
		}
		in.Nodes = append(in.Nodes, ipalloc.Node{PNN: p, CanHost: ok[p]})
	}
	for _, l := range c.input {
		f := strings.Fields(l)
		if f[0] == "home" {
			if len(f) != 3 {
				return in, errors.New("want: home ADDR PNN: " + l)
			}
			a, err := netip.ParseAddr(f[1])
			if err != nil {
				return in, err
			}
			p, err := strconv.Atoi(f[2])
			if err != nil {
				return in, err
			}
			if in.HomeNodes == nil {
				in.HomeNodes = map[netip.Addr]int{}
			}
			in.HomeNodes[a] = p
			continue
		}
		if len(f) < 2 || len(f) > 4 {
			return in, errors.New("want: ADDR HOLDER [KNOWN_ON [AVAILABLE_ON]]: " + l)
		}
		a, err := netip.ParseAddr(f[0])
		if err != nil {
			return in, err
		}
		h, err := strconv.Atoi(f[1])
		if err != nil {
			return in, err
		}
		ip := ipalloc.IP{Addr: a, Current: h}
		if len(f) > 2 {
			if ip.KnownOn, err = pnns(f[2]); err != nil {
				return in, err
			}
		} else {
			for p := range states {
				ip.KnownOn = append(ip.KnownOn, p)
			}
		}
		if len(f) > 3 {
			if ip.AvailableOn, err = pnns(f[3]); err != nil {
				return in, err
			}
		} else {
			for _, p := range ip.KnownOn {
				if p >= 0 && p < len(ok) && ok[p] {
					ip.AvailableOn = append(ip.AvailableOn, p)
				}
			}
		}
		in.IPs = append(in.IPs, ip)
	}
	return in, nil
}

// pnns parses "0,2,3"; "-" is the empty list.
func pnns(s string) ([]int, error) {
	if s == "-" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		p, err := strconv.Atoi(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
