package recoverd

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the decisions in testdata/decide/*.txt")

// decideNow is the "now" of every case: the times in a case are offsets
// from it (-1s: a second ago).
var decideNow = time.Unix(1_000_000, 0)

// TestDecide runs the cases in testdata/decide/*.txt. A case is:
//
//	# What the case shows (at least one comment line).
//	view [OPTION...]
//	LINE...
//	----
//	the decision, as the test renders it
//
// and a blank line ends it. Times are offsets from now (-10s, 1.9s).
// View options (defaults in brackets): self=PNN [0], since=D (leader
// since) [-1m], maxlease=D [2s], started=D [-1h], quorum, fencing,
// failover-disabled, alloc=lcp2|det|nondet|lcp2-rebalance|N [lcp2],
// noiptakeover, noipfailback, renew=D [250ms], fencedelay=D [2s],
// grace=D (FenceStartupGrace) [10s]. Lines:
//
//	ips LIST                the addresses every node knows unless it says
//	node PNN [FIELD...]     one node; fields below
//	deleted PNN             a DELETED node
//	assigned ADDR=PNN...    where this leader put addresses
//	moving ADDR=PNN|?...    orders in flight, and where to (?: MoveIP's)
//	suspect ADDR=PNN...     takes whose result is unknown
//	prefer ADDR=PNN...      moveip's wishes
//	override ADDR=PNN taken|released version=N [boot=N]
//
// LIST is comma-separated addresses or ranges (198.18.1.1-3), "-" for
// none. Node fields: down (not alive), noreport (no state report),
// flags=unhealthy,disabled,banned,stopped,disconnected, runstate=NAME
// [RUNNING], holds=LIST, knows=LIST [ips], avail=LIST [knows],
// lease=D (grant end) and granted=D (last grant) [1.9s and -100ms when
// up, none when down or with nolease], could / couldnot (the previous run's canHost),
// lost=D, unseen, fence=new|running/TRIES|done|failed/TRIES/NEXTTRY
// [@LOSS, the loss it is for: 0], loss=N (the node's current loss) [0],
// boot=N [1], version=N [1].
//
// The decision lists which nodes can host, the ops, the kept addresses
// per node, the blocked ones, duplicates, fences, state updates, ipalloc's
// notes and the wake time. `go test ./recoverd -update` rewrites it. Each
// case also checks that Decide leaves its view alone and answers the same
// twice, and the invariants FuzzLeaderPlan checks.
func TestDecide(t *testing.T) {
	files, err := filepath.Glob("testdata/decide/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/decide/*.txt")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cases, err := parseDecideCases(string(data))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			for i := range cases {
				c := &cases[i]
				got := c.run(t)
				if *update {
					c.output = got
					continue
				}
				if diff := cmp.Diff(c.output, got); diff != "" {
					t.Errorf("%s:%d: %s: Decide() mismatch (-file +got):\n%s", f, c.line, c.comment[0], diff)
				}
			}
			if *update {
				if err := os.WriteFile(f, []byte(renderDecideCases(cases)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// decideCase is one case of a testdata/decide/*.txt file.
type decideCase struct {
	line    int // of the view line, for messages
	comment []string
	input   []string // the view line first
	output  []string
}

func parseDecideCases(text string) ([]decideCase, error) {
	var cases []decideCase
	var c *decideCase
	inOutput := false
	for i, l := range strings.Split(text, "\n") {
		lineNo := i + 1
		switch {
		case l == "":
			if c != nil {
				if !inOutput {
					return nil, fmt.Errorf("line %d: case without ----", lineNo)
				}
				cases = append(cases, *c)
				c = nil
			}
		case c == nil:
			if !strings.HasPrefix(l, "#") {
				return nil, fmt.Errorf("line %d: a case starts with a comment saying what it shows", lineNo)
			}
			c = &decideCase{comment: []string{l}}
			inOutput = false
		case len(c.input) == 0 && strings.HasPrefix(l, "#"):
			c.comment = append(c.comment, l)
		case l == "----":
			inOutput = true
		case inOutput:
			c.output = append(c.output, l)
		default:
			if len(c.input) == 0 {
				c.line = lineNo
			}
			c.input = append(c.input, l)
		}
	}
	if c != nil {
		return nil, errors.New("last case does not end with a blank line")
	}
	return cases, nil
}

func renderDecideCases(cases []decideCase) string {
	var b strings.Builder
	for i, c := range cases {
		if i > 0 {
			b.WriteString("\n")
		}
		for _, l := range slices.Concat(c.comment, c.input, []string{"----"}, c.output) {
			b.WriteString(l + "\n")
		}
	}
	b.WriteString("\n")
	return b.String()
}

// run decides the case and renders the decision; a malformed case
// renders as "bad case: ...", which the file will then show.
func (c *decideCase) run(t *testing.T) []string {
	v, err := parseView(c.input)
	if err != nil {
		return []string{"bad case: " + err.Error()}
	}
	again, _ := parseView(c.input)
	d := Decide(v, decideNow)
	if !reflect.DeepEqual(v, again) {
		t.Errorf("line %d: Decide() changed its view", c.line)
	}
	if d2 := Decide(v, decideNow); !reflect.DeepEqual(d, d2) {
		t.Errorf("line %d: Decide() answered differently the second time:\n%v\n%v", c.line, renderDecision(d), renderDecision(d2))
	}
	checkPlan(t, v, d, decideNow)
	return renderDecision(d)
}

// offset renders t as an offset from decideNow.
func offset(t time.Time) string {
	d := t.Sub(decideNow)
	if d >= 0 {
		return "+" + d.String()
	}
	return d.String()
}

func pnns(ps []int) string {
	if len(ps) == 0 {
		return "none"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

func sortedKeys[K interface{ comparable }, V any](m map[K]V, cmp func(a, b K) int) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, cmp)
	return ks
}

func cmpInt(a, b int) int { return a - b }

func renderDecision(d Decision) []string {
	var out []string
	var can []int
	for _, p := range sortedKeys(d.CanHost, cmpInt) {
		if d.CanHost[p] {
			can = append(can, p)
		}
	}
	out = append(out, "canhost "+pnns(can))
	for _, o := range d.Ops {
		s := "op " + o.Addr.String() + ":"
		if len(o.Release) > 0 {
			s += " release on " + pnns(o.Release)
			if o.Take >= 0 {
				s += ", then"
			}
		}
		if o.Take >= 0 {
			s += " take on " + strconv.Itoa(o.Take)
		}
		out = append(out, s)
	}
	keep := map[int][]string{}
	for _, a := range sortedKeys(d.Keep, netip.Addr.Compare) {
		keep[d.Keep[a]] = append(keep[d.Keep[a]], a.String())
	}
	for _, p := range sortedKeys(keep, cmpInt) {
		out = append(out, fmt.Sprintf("keep on %d: %s", p, strings.Join(keep[p], " ")))
	}
	for _, a := range sortedKeys(d.Blocked, netip.Addr.Compare) {
		out = append(out, fmt.Sprintf("blocked %s: %s", a, d.Blocked[a]))
	}
	for _, s := range d.Duplicates {
		out = append(out, "duplicate "+s)
	}
	for _, p := range d.Fence {
		out = append(out, fmt.Sprintf("fence %d", p))
	}
	for _, p := range sortedKeys(d.FenceStates, cmpInt) {
		out = append(out, fmt.Sprintf("fence state %d: %s", p, renderFenceState(d.FenceStates[p])))
	}
	for _, p := range sortedKeys(d.LostAt, cmpInt) {
		out = append(out, fmt.Sprintf("lost %d at %s", p, offset(d.LostAt[p])))
	}
	for _, n := range d.Notes {
		out = append(out, "note "+n)
	}
	if d.Wake.IsZero() {
		out = append(out, "wake at the next interval")
	} else {
		out = append(out, "wake at "+offset(d.Wake))
	}
	return out
}

func renderFenceState(fs FenceState) string {
	if fs.Loss != 0 {
		l := fs.Loss
		fs.Loss = 0
		return fmt.Sprintf("%s (loss %d)", renderFenceState(fs), l)
	}
	switch {
	case fs.Done:
		return fmt.Sprintf("done after %d tries", fs.Tries)
	case fs.Running:
		return fmt.Sprintf("running, try %d", fs.Tries)
	case fs.LastErr != "":
		return fmt.Sprintf("failed %d tries, next at %s", fs.Tries, offset(fs.NextTry))
	}
	return "waiting"
}
