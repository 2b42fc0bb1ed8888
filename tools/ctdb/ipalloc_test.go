package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// runIPAllocCmd runs `ctdb ipalloc ARGS` in-process through the command
// table.
func runIPAllocCmd(t *testing.T, verbose bool, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	c, ok := commands["ipalloc"]
	if !ok {
		t.Fatal("ipalloc is not registered")
	}
	if !c.offline {
		t.Error("ipalloc must run without a daemon")
	}
	var out, errOut bytes.Buffer
	code = c.run(&env{stdout: &out, stderr: &errOut, sep: "|", verbose: verbose}, args)
	return out.String(), errOut.String(), code
}

// expectedOutput is what CTDB's test program prints for a case file: its
// expected lines, a step's after an empty line. Read straight from the
// JSON, independently of the casefile package.
func expectedOutput(t *testing.T, path string) string {
	t.Helper()
	type line struct {
		IP  string `json:"ip"`
		PNN int    `json:"pnn"`
	}
	var c struct {
		Expected []line `json:"expected"`
		Steps    []struct {
			Expected []line `json:"expected"`
		} `json:"steps"`
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	steps := [][]line{c.Expected}
	if len(c.Steps) > 0 {
		steps = nil
		for _, s := range c.Steps {
			steps = append(steps, s.Expected)
		}
	}
	var b strings.Builder
	for i, s := range steps {
		if len(s) == 0 {
			t.Fatalf("%s: step %d expects nothing", path, i)
		}
		if i > 0 {
			b.WriteString("\n")
		}
		for _, l := range s {
			b.WriteString(l.IP + " " + strconv.Itoa(l.PNN) + "\n")
		}
	}
	return b.String()
}

// TestIPAllocCTDBCases: for each of CTDB's cases the command prints
// exactly CTDB's result lines.
func TestIPAllocCTDBCases(t *testing.T) {
	files, err := filepath.Glob("../../ipalloc/testdata/ctdb/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 21 {
		t.Fatalf("found %d reference cases, want 21", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			stdout, stderr, code := runIPAllocCmd(t, false, f)
			if code != 0 || stderr != "" {
				t.Fatalf("ctdb ipalloc %s: exit %d, stderr %q", f, code, stderr)
			}
			if diff := cmp.Diff(expectedOutput(t, f), stdout); diff != "" {
				t.Errorf("ctdb ipalloc %s output mismatch (-want +got):\n%s", f, diff)
			}
		})
	}
}

func TestIPAllocVerboseNotes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "det.json")
	writeFile(t, path, `{"algorithm": "det", "tunables": {"NoIPTakeover": 0, "NoIPFailback": 1},
		"home_nodes": [{"ip": "198.18.1.1", "pnn": 5}],
		"nodes": [{"pnn": 0, "can_host_ips": true}, {"pnn": 1, "can_host_ips": true}],
		"ips": [{"ip": "198.18.1.1", "current_pnn": -1}, {"ip": "198.18.1.2", "current_pnn": 0}]}`)
	stdout, stderr, code := runIPAllocCmd(t, true, path)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if want := "198.18.1.2 0\n198.18.1.1 1\n"; stdout != want {
		t.Errorf("stdout = %q, want %q", stdout, want)
	}
	want := "ctdb ipalloc: " + path + ": note: NoIPFailback ignored: the deterministic algorithm always fails back\n" +
		"ctdb ipalloc: " + path + ": note: home node 5 of 198.18.1.1 ignored: no such node\n"
	if stderr != want {
		t.Errorf("stderr = %q, want %q", stderr, want)
	}
}

func TestIPAllocBadInput(t *testing.T) {
	dir := t.TempDir()
	const nodes = `"nodes": [{"pnn": 0, "can_host_ips": true}, {"pnn": 1, "can_host_ips": true}]`
	tests := []struct {
		name, content, want string // want: the problem after "ctdb ipalloc: FILE: "
	}{
		{"not-json", "192.168.1.1 0\n", "not a JSON case: invalid character '.' after top-level value"},
		{"truncated", `{"algorithm": "lcp2", `, "not a JSON case: unexpected end of JSON input"},
		{"unknown-algorithm", `{"algorithm": "lcp3", ` + nodes + `, "ips": [{"ip": "198.18.1.1", "current_pnn": 0}]}`,
			`unknown algorithm "lcp3" (want det, nondet, lcp2 or lcp2-rebalance)`},
		{"pnn-out-of-range", `{"algorithm": "lcp2", ` + nodes + `, "ips": [{"ip": "198.18.1.1", "current_pnn": 2}]}`,
			"ips[0] 198.18.1.1: current_pnn 2 out of range (2 nodes)"},
		{"known-out-of-range", `{"algorithm": "lcp2", ` + nodes + `, "ips": [{"ip": "198.18.1.1", "current_pnn": 0, "known_on": [0, 3]}]}`,
			"ips[0] 198.18.1.1: known_on node 3 out of range (2 nodes)"},
		{"bad-address", `{"algorithm": "lcp2", ` + nodes + `, "ips": [{"ip": "198.18.1.256", "current_pnn": 0}]}`,
			`ips[0]: bad address "198.18.1.256"`},
		{"address-twice", `{"algorithm": "nondet", ` + nodes + `, "ips": [{"ip": "198.18.1.1", "current_pnn": 0}, {"ip": "198.18.1.1", "current_pnn": 1}]}`,
			"address 198.18.1.1 listed twice"},
		{"step-problem", `{"algorithm": "lcp2", "steps": [{` + nodes + `, "ips": [{"ip": "198.18.1.1", "current_pnn": 0}]}, {` + nodes + `, "ips": [{"ip": "x", "current_pnn": 0}]}]}`,
			`steps[1]: ips[0]: bad address "x"`},
		{"no-nodes", `{"algorithm": "lcp2", "ips": [{"ip": "198.18.1.1", "current_pnn": 0}]}`, "no nodes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".json")
			writeFile(t, path, tt.content)
			stdout, stderr, code := runIPAllocCmd(t, false, path)
			if code != 2 || stdout != "" {
				t.Errorf("ctdb ipalloc %s: exit %d, stdout %q; want exit 2, no output", tt.name, code, stdout)
			}
			if want := "ctdb ipalloc: " + path + ": " + tt.want + "\n"; stderr != want {
				t.Errorf("stderr = %q, want %q", stderr, want)
			}
		})
	}

	t.Run("missing-file", func(t *testing.T) {
		path := filepath.Join(dir, "nonesuch.json")
		stdout, stderr, code := runIPAllocCmd(t, false, path)
		if want := "ctdb ipalloc: " + path + ": no such file or directory\n"; code != 2 || stdout != "" || stderr != want {
			t.Errorf("exit %d, stdout %q, stderr %q; want exit 2, stderr %q", code, stdout, stderr, want)
		}
	})
	for _, args := range [][]string{nil, {"a.json", "b.json"}, {"-x"}} {
		t.Run("usage "+strings.Join(args, " "), func(t *testing.T) {
			stdout, stderr, code := runIPAllocCmd(t, false, args...)
			if want := "usage: ctdb ipalloc FILE.json\n"; code != 2 || stdout != "" || stderr != want {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2, stderr %q", code, stdout, stderr, want)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
