// Command ctdb is ctdb-go's command-line tool, CTDB's `ctdb` for ctdb-go:
// it talks to the local ctdbd over its control socket and prints what it
// learns in CTDB's layouts, so that people and scripts used to CTDB read
// it as they always have.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

// version is set at build time: -ldflags "-X main.version=0.1.0".
var version = "ctdb-go dev"

const (
	defaultTimeout    = 10 * time.Second  // -t, CTDB's default
	defaultMaxRuntime = 120 * time.Second // -T, CTDB's default
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole CLI: it parses args, runs one command and returns the
// exit code. Tests call it in-process.
func run(args []string, stdout, stderr io.Writer) int {
	return runEnv(args, stdout, stderr, os.Getenv)
}

func runEnv(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	e, err := newEnv(stdout, stderr, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "ctdb: %v\n", err)
		return 2
	}
	p, err := parseArgs(e, args)
	if err != nil {
		fmt.Fprintf(stderr, "ctdb: %v\n", err)
		return 2
	}
	if p.help {
		if p.name == "" {
			writeHelp(stdout)
			return 0
		}
		return runHelp(e, []string{p.name})
	}
	if p.name == "" {
		writeUsage(stderr)
		return 2
	}
	c, ok := commands[p.name]
	if !ok {
		fmt.Fprintf(stderr, "ctdb: unknown command '%s'; 'ctdb help' lists the commands\n", p.name)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.maxRuntime)
	defer cancel()
	e.ctx = ctx
	return dispatch(e, c, p.args)
}

// newEnv is the environment before the command line: CTDB's defaults,
// $CTDB_SOCKET and $CTDB_TIMEOUT.
func newEnv(stdout, stderr io.Writer, getenv func(string) string) (*env, error) {
	e := &env{
		stdout:     stdout,
		stderr:     stderr,
		sep:        "|",
		socket:     control.DefaultSocket,
		timeout:    defaultTimeout,
		maxRuntime: defaultMaxRuntime,
		target:     control.ThisNode,
		loc:        time.Local,
	}
	if s := getenv("CTDB_SOCKET"); s != "" {
		e.socket = s
	}
	if s := getenv("CTDB_TIMEOUT"); s != "" {
		d, err := seconds(s)
		if err != nil {
			return nil, fmt.Errorf("invalid CTDB_TIMEOUT %q: %w", s, err)
		}
		e.maxRuntime = d
	}
	return e, nil
}

// parsed is the command line once the global options are taken out.
type parsed struct {
	name string   // the command; "" if none
	args []string // its arguments
	help bool     // -h / --help
}

// Global options as CTDB's popt table has them, plus --socket and --json.
var (
	boolShort = "XYjvh"
	valShort  = "nxtTd"
	longOpts  = map[string]bool{ // name -> takes a value
		"node": true, "timelimit": true, "maxruntime": true, "separator": true,
		"debug": true, "socket": true,
		"machinereadable": false, "verbose": false, "json": false, "help": false,
	}
	shortOf = map[string]byte{
		"node": 'n', "timelimit": 't', "maxruntime": 'T', "separator": 'x',
		"debug": 'd', "machinereadable": 'Y', "verbose": 'v', "json": 'j', "help": 'h',
	}
)

// parseArgs takes the global options out of args, wherever they are (as
// popt does for CTDB: `ctdb ip -v` works), until "--". Arguments of an
// offline command are left alone; other arguments that look like options
// but are not global ones are left to the command.
func parseArgs(e *env, args []string) (parsed, error) {
	var p parsed
	raw := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		positional := raw || a == "-" || !strings.HasPrefix(a, "-")
		if !positional && a == "--" {
			raw = true
			continue
		}
		if positional {
			if p.name == "" {
				p.name = a
				if c, ok := commands[a]; ok && c.offline {
					raw = true
				}
				continue
			}
			p.args = append(p.args, a)
			continue
		}

		// The option's name, and its value if it is given in the same word.
		var opt byte
		var val string
		hasVal := false
		if strings.HasPrefix(a, "--") {
			name, v, eq := strings.Cut(a[2:], "=")
			wantsVal, known := longOpts[name]
			if !known || (eq && !wantsVal) {
				if p.name != "" {
					p.args = append(p.args, a) // the command's own option
					continue
				}
				return p, fmt.Errorf("invalid option %s", a)
			}
			if name == "socket" {
				opt = 's'
			} else {
				opt = shortOf[name]
			}
			val, hasVal = v, eq
		} else {
			// A cluster of short options: -Xv, -n1, -x:.
			cluster := a[1:]
			n := 0
			for n < len(cluster) && strings.IndexByte(boolShort, cluster[n]) >= 0 {
				n++
			}
			if n < len(cluster) && strings.IndexByte(valShort, cluster[n]) < 0 {
				if p.name != "" {
					p.args = append(p.args, a) // e.g. a negative number
					continue
				}
				return p, fmt.Errorf("invalid option %s", a)
			}
			for _, b := range []byte(cluster[:n]) {
				setBool(e, &p, b)
			}
			if n == len(cluster) {
				continue
			}
			opt = cluster[n]
			if rest := cluster[n+1:]; rest != "" {
				val, hasVal = rest, true
			}
		}
		if strings.IndexByte(boolShort, opt) >= 0 {
			setBool(e, &p, opt)
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return p, fmt.Errorf("option %s needs a value", a)
			}
			i++
			val = args[i]
		}
		if err := setValue(e, opt, val); err != nil {
			return p, err
		}
	}
	return p, nil
}

func setBool(e *env, p *parsed, b byte) {
	switch b {
	case 'X', 'Y':
		e.machine = true
	case 'j':
		e.json = true
	case 'v':
		e.verbose = true
	case 'h':
		p.help = true
	}
}

func setValue(e *env, opt byte, v string) error {
	var err error
	switch opt {
	case 'n':
		if _, err := parseNodes(v); err != nil {
			return err
		}
		e.node = v
	case 'x':
		e.sep = v
	case 't':
		e.timeout, err = seconds(v)
		if err != nil {
			return fmt.Errorf("invalid -t %q: %w", v, err)
		}
	case 'T':
		e.maxRuntime, err = seconds(v)
		if err != nil {
			return fmt.Errorf("invalid -T %q: %w", v, err)
		}
	case 'd':
		e.debug = v
	case 's':
		if v == "" {
			return fmt.Errorf("--socket needs a path")
		}
		e.socket = v
	}
	return nil
}

// seconds parses a positive whole number of seconds.
func seconds(s string) (time.Duration, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("want a positive number of seconds")
	}
	return time.Duration(n) * time.Second, nil
}

// parseNodes reads a -n value: "all" (nil, nil) or PNN[,PNN...].
func parseNodes(s string) ([]int, error) {
	if s == "all" {
		return nil, nil
	}
	var pnns []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseUint(f, 0, 31)
		if err != nil {
			return nil, fmt.Errorf("invalid node %q: want a PNN, PNN,PNN,... or all", s)
		}
		pnns = append(pnns, int(n))
	}
	return pnns, nil
}

// looksLikeOption tells "-v" and "--dry-run" from "-" and "-5".
func looksLikeOption(a string) bool {
	if len(a) < 2 || a[0] != '-' {
		return false
	}
	c := a[1]
	return c == '-' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// dispatch runs c for the node(s) -n names.
func dispatch(e *env, c *command, args []string) int {
	if c.offline {
		if e.node != "" {
			fmt.Fprintf(e.stderr, "ctdb: cannot specify node for command %s\n", c.name)
			return 2
		}
		return c.run(e, args)
	}
	for _, a := range args {
		if looksLikeOption(a) && !slices.Contains(c.flags, a) {
			fmt.Fprintf(e.stderr, "ctdb: invalid option %s for %s\n", a, c.name)
			return e.usage(c.name)
		}
	}
	e.callTimeout = e.timeout
	if c.slow {
		e.callTimeout = e.maxRuntime
	}
	if e.node == "" {
		return c.run(e, args)
	}
	pnns, code, ok := e.nodes()
	if !ok {
		return code
	}
	if len(pnns) == 1 && e.node != "all" {
		e.target = pnns[0]
		return c.run(e, args)
	}
	if !c.multi {
		fmt.Fprintf(e.stderr, "ctdb: %s runs on one node: give -n one PNN\n", c.name)
		return 2
	}
	if e.json {
		return perNodeJSON(e, c, args, pnns)
	}
	worst := 0
	for _, pnn := range pnns {
		en := *e
		en.target = pnn
		var buf bytes.Buffer
		if !c.named {
			en.stdout = &buf
		}
		if code := c.run(&en, args); worst == 0 {
			worst = code
		}
		if buf.Len() > 0 {
			fmt.Fprintf(e.stdout, ">> NODE: %d <<\n", pnn)
			e.stdout.Write(buf.Bytes())
		}
	}
	return worst
}

// perNodeJSON runs c on each node and prints one JSON array:
// [{"pnn": 0, "data": ...}, ...]; errors still go to stderr.
func perNodeJSON(e *env, c *command, args []string, pnns []int) int {
	type nodeResult struct {
		PNN      int             `json:"pnn"`
		ExitCode int             `json:"exit_code,omitempty"`
		Data     json.RawMessage `json:"data,omitempty"`
	}
	results := []nodeResult{}
	worst := 0
	for _, pnn := range pnns {
		var buf bytes.Buffer
		en := *e
		en.target = pnn
		en.stdout = &buf
		code := c.run(&en, args)
		if worst == 0 {
			worst = code
		}
		r := nodeResult{PNN: pnn, ExitCode: code}
		if out := bytes.TrimSpace(buf.Bytes()); json.Valid(out) {
			r.Data = out
		}
		results = append(results, r)
	}
	b, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		fmt.Fprintf(e.stderr, "ctdb: encoding JSON: %v\n", err)
		return 1
	}
	fmt.Fprintf(e.stdout, "%s\n", b)
	return worst
}
