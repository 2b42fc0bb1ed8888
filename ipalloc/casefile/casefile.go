// Package casefile reads IP-allocation cases in the JSON format of CTDB's
// allocation cases (ipalloc/testdata/ctdb): nodes and their flags, each
// address with its holder and the nodes that list it, the tunables, and
// optionally the expected allocation. It turns a case into ipalloc.Inputs;
// `ctdb ipalloc` and ipalloc's tests use it. It is kept out of ipalloc,
// which does no I/O.
//
// A case is single-step (top-level nodes, ips, expected), multi-step
// (steps[], each an independent allocation) or multi mode (multi: true,
// with per_node_view: every node's own view of the holders, merged as
// CTDB does; the file's derived ips are used when present).
package casefile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/ctdb-go/ctdb-go/ipalloc"
)

// Case is one case file.
type Case struct {
	Name        string
	Description string
	// Steps holds one step for a single-step case.
	Steps []Step
}

// Step is one allocation of a case.
type Step struct {
	Label string // the step's label in multi-step cases, else ""
	Input ipalloc.Input
	// Expected is the allocation the case expects, in CTDB's order; nil
	// when the case gives none.
	Expected []ipalloc.Assignment
}

// Load reads and parses the case file at path.
func Load(path string) (*Case, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// Node flags (CTDB's NODE_FLAGS_*) and the run state in which a node may
// host addresses; used when a node has no can_host_ips.
const (
	flagDisconnected = 0x01
	flagUnhealthy    = 0x02
	flagDisabled     = 0x04
	flagBanned       = 0x08
	flagDeleted      = 0x10
	flagStopped      = 0x20
	runstateRunning  = 5
)

// The JSON shapes. Fields the format has but allocation does not need
// (input_text, expected_log, flag_names, ...) are ignored.
type (
	fileCase struct {
		Name        string        `json:"name"`
		Description string        `json:"description"`
		Algorithm   *string       `json:"algorithm"`
		Tunable     *int          `json:"algorithm_tunable_value"`
		Tunables    *fileTunables `json:"tunables"`
		Force       []int         `json:"force_rebalance_nodes"`
		HomeNodes   []fileHolder  `json:"home_nodes"`
		Steps       []fileStep    `json:"steps"`
		fileStep
	}
	fileStep struct {
		Label       string        `json:"step_label"`
		Tunables    *fileTunables `json:"tunables"`
		Nodes       []fileNode    `json:"nodes"`
		Multi       bool          `json:"multi"`
		PerNodeView []fileView    `json:"per_node_view"`
		IPs         []fileIP      `json:"ips"`
		Expected    []fileHolder  `json:"expected"`
	}
	fileTunables struct {
		NoIPTakeover int `json:"NoIPTakeover"`
		NoIPFailback int `json:"NoIPFailback"`
	}
	fileNode struct {
		PNN      *int  `json:"pnn"`
		Flags    int   `json:"flags"`
		Runstate *int  `json:"runstate"`
		CanHost  *bool `json:"can_host_ips"`
	}
	fileIP struct {
		IP          string `json:"ip"`
		CurrentPNN  *int   `json:"current_pnn"`
		KnownOn     []int  `json:"known_on"`
		AvailableOn []int  `json:"available_on"`
	}
	fileHolder struct {
		IP         string `json:"ip"`
		PNN        *int   `json:"pnn"`
		CurrentPNN *int   `json:"current_pnn"`
	}
	fileView struct {
		PNN int          `json:"pnn"`
		IPs []fileHolder `json:"ips"`
	}
)

// Parse parses one case. Errors name the offending part, e.g.
// `steps[2]: ips[3]: current_pnn 7 out of range (4 nodes)`.
func Parse(data []byte) (*Case, error) {
	// Syntax first, so that an error says what is wrong with the text
	// rather than with its type.
	if !json.Valid(data) {
		var v any
		return nil, fmt.Errorf("not a JSON case: %w", json.Unmarshal(data, &v))
	}
	if t := bytes.TrimLeft(data, " \t\r\n"); t[0] != '{' {
		return nil, errors.New("not a JSON case: want an object")
	}
	var f fileCase
	if err := json.Unmarshal(data, &f); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			// The field path names the embedded fileStep; the file does not.
			field := strings.ReplaceAll(te.Field, "fileStep.", "")
			return nil, fmt.Errorf("not a JSON case: %s: got a JSON %s, want %s", field, te.Value, te.Type)
		}
		return nil, fmt.Errorf("not a JSON case: %w", err)
	}
	alg, err := algorithm(f.Algorithm, f.Tunable)
	if err != nil {
		return nil, err
	}
	home := map[netip.Addr]int{}
	for i, h := range f.HomeNodes {
		a, err := addr(h.IP)
		if err != nil {
			return nil, fmt.Errorf("home_nodes[%d]: %w", i, err)
		}
		if h.PNN == nil {
			return nil, fmt.Errorf("home_nodes[%d]: no pnn", i)
		}
		home[a] = *h.PNN // a PNN naming no node is ignored, as CTDB does
	}
	c := &Case{Name: f.Name, Description: f.Description}
	base := ipalloc.Input{Algorithm: alg, ForceRebalance: f.Force}
	if alg == ipalloc.Deterministic {
		base.HomeNodes = home
	}
	if len(f.Steps) == 0 {
		st, err := step(f.fileStep, f.Tunables, base)
		if err != nil {
			return nil, err
		}
		c.Steps = []Step{st}
		return c, nil
	}
	for i, fs := range f.Steps {
		st, err := step(fs, f.Tunables, base)
		if err != nil {
			return nil, fmt.Errorf("steps[%d]: %w", i, err)
		}
		c.Steps = append(c.Steps, st)
	}
	return c, nil
}

// algorithm takes the algorithm from its name, or else from the tunable
// value (any unknown value meaning LCP2, as in CTDB).
func algorithm(name *string, tunable *int) (ipalloc.Algorithm, error) {
	if name == nil {
		if tunable == nil {
			return 0, errors.New("no algorithm")
		}
		return ipalloc.Algorithm(*tunable), nil
	}
	for _, a := range []ipalloc.Algorithm{ipalloc.Deterministic, ipalloc.NonDeterministic, ipalloc.LCP2, ipalloc.LCP2Rebalance} {
		if *name == a.String() {
			return a, nil
		}
	}
	return 0, fmt.Errorf("unknown algorithm %q (want det, nondet, lcp2 or lcp2-rebalance)", *name)
}

func addr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("bad address %q", s)
	}
	return a, nil
}

// step builds one allocation. tun is the case's tunables, used when the
// step has none.
func step(fs fileStep, tun *fileTunables, in ipalloc.Input) (Step, error) {
	if fs.Tunables != nil {
		tun = fs.Tunables
	}
	if tun != nil {
		in.NoIPTakeover = tun.NoIPTakeover != 0
		in.NoIPFailback = tun.NoIPFailback != 0
	}
	n := len(fs.Nodes)
	if n == 0 {
		return Step{}, errors.New("no nodes")
	}
	canHost := make([]bool, n)
	for i, fn := range fs.Nodes {
		if fn.PNN != nil && *fn.PNN != i {
			return Step{}, fmt.Errorf("nodes[%d]: pnn %d, want %d (nodes are listed in PNN order)", i, *fn.PNN, i)
		}
		if fn.CanHost != nil {
			canHost[i] = *fn.CanHost
		} else {
			rs := runstateRunning
			if fn.Runstate != nil {
				rs = *fn.Runstate
			}
			const noHost = flagDisconnected | flagUnhealthy | flagDisabled | flagBanned | flagDeleted | flagStopped
			canHost[i] = rs == runstateRunning && fn.Flags&noHost == 0
		}
		in.Nodes = append(in.Nodes, ipalloc.Node{PNN: i, CanHost: canHost[i]})
	}
	checkPNN := func(what string, p int) error {
		if p < 0 || p >= n {
			return fmt.Errorf("%s %d out of range (%d nodes)", what, p, n)
		}
		return nil
	}

	fips := fs.IPs
	if fips == nil && fs.Multi {
		var err error
		if fips, err = merged(fs.PerNodeView, n); err != nil {
			return Step{}, err
		}
	}
	if len(fips) == 0 {
		return Step{}, errors.New("no ips")
	}
	for i, fi := range fips {
		a, err := addr(fi.IP)
		if err != nil {
			return Step{}, fmt.Errorf("ips[%d]: %w", i, err)
		}
		ip := ipalloc.IP{Addr: a, Current: -1, KnownOn: fi.KnownOn, AvailableOn: fi.AvailableOn}
		if fi.CurrentPNN != nil && *fi.CurrentPNN != -1 {
			if err := checkPNN("current_pnn", *fi.CurrentPNN); err != nil {
				return Step{}, fmt.Errorf("ips[%d] %s: %w", i, a, err)
			}
			ip.Current = *fi.CurrentPNN
		}
		if ip.KnownOn == nil {
			for p := range n {
				ip.KnownOn = append(ip.KnownOn, p)
			}
		}
		for _, p := range ip.KnownOn {
			if err := checkPNN("known_on node", p); err != nil {
				return Step{}, fmt.Errorf("ips[%d] %s: %w", i, a, err)
			}
		}
		if ip.AvailableOn == nil {
			// CTDB's test program: the known nodes that can host.
			ip.AvailableOn = []int{}
			for _, p := range ip.KnownOn {
				if canHost[p] {
					ip.AvailableOn = append(ip.AvailableOn, p)
				}
			}
		}
		for _, p := range ip.AvailableOn {
			if err := checkPNN("available_on node", p); err != nil {
				return Step{}, fmt.Errorf("ips[%d] %s: %w", i, a, err)
			}
		}
		in.IPs = append(in.IPs, ip)
	}

	// What the checks above do not cover, e.g. an address listed twice.
	if err := ipalloc.Check(in); err != nil {
		return Step{}, errors.New(strings.TrimPrefix(err.Error(), "ipalloc: "))
	}

	st := Step{Label: fs.Label, Input: in}
	if fs.Expected != nil {
		st.Expected = []ipalloc.Assignment{}
	}
	for i, e := range fs.Expected {
		a, err := addr(e.IP)
		if err != nil {
			return Step{}, fmt.Errorf("expected[%d]: %w", i, err)
		}
		if e.PNN == nil {
			return Step{}, fmt.Errorf("expected[%d]: no pnn", i)
		}
		if *e.PNN != -1 {
			if err := checkPNN("pnn", *e.PNN); err != nil {
				return Step{}, fmt.Errorf("expected[%d] %s: %w", i, a, err)
			}
		}
		st.Expected = append(st.Expected, ipalloc.Assignment{Addr: a, PNN: *e.PNN})
	}
	return st, nil
}

// merged turns per-node views (multi mode) into the address list with
// ipalloc.Merge; every node knows every address it lists, and may host it
// if it can host at all (the per-node view has no interface state).
func merged(views []fileView, n int) ([]fileIP, error) {
	if len(views) == 0 {
		return nil, errors.New("multi mode without per_node_view")
	}
	var vs []ipalloc.View
	for i, fv := range views {
		if fv.PNN < 0 || fv.PNN >= n {
			return nil, fmt.Errorf("per_node_view[%d]: pnn %d out of range (%d nodes)", i, fv.PNN, n)
		}
		v := ipalloc.View{PNN: fv.PNN}
		for j, h := range fv.IPs {
			a, err := addr(h.IP)
			if err != nil {
				return nil, fmt.Errorf("per_node_view[%d].ips[%d]: %w", i, j, err)
			}
			p := -1
			if h.CurrentPNN != nil {
				p = *h.CurrentPNN
			}
			v.Known = append(v.Known, ipalloc.Claim{Addr: a, PNN: p})
		}
		vs = append(vs, v)
	}
	var out []fileIP
	for _, ip := range ipalloc.Merge(vs) {
		p := ip.Current
		out = append(out, fileIP{IP: ip.Addr.String(), CurrentPNN: &p, KnownOn: ip.KnownOn})
	}
	return out, nil
}

// Format writes an allocation as `ctdb ipalloc` and CTDB's test program
// print it: one "IP PNN" line per address, -1 for none.
func Format(as []ipalloc.Assignment) string {
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "%s %d\n", a.Addr, a.PNN)
	}
	return b.String()
}
