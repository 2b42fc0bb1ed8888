package ipalloc_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ctdb-go/ctdb-go/ipalloc"
	"github.com/ctdb-go/ctdb-go/ipalloc/casefile"
)

// TestCTDBCases runs every case of CTDB's own allocation tests
// (testdata/ctdb, copied from the reference; see its README) and compares
// the whole allocation, address by address, in order.
func TestCTDBCases(t *testing.T) {
	files, err := filepath.Glob("testdata/ctdb/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 21 {
		t.Fatalf("testdata/ctdb holds %d cases, want CTDB's 21", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			c, err := casefile.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			for i, st := range c.Steps {
				if st.Expected == nil {
					t.Fatalf("step %d: no expected allocation", i)
				}
				if err := ipalloc.Check(st.Input); err != nil {
					t.Fatalf("step %d (%s): Check: %v", i, st.Label, err)
				}
				got := ipalloc.Allocate(st.Input)
				if diff := cmp.Diff(lines(st.Expected), lines(got.Assignments)); diff != "" {
					t.Errorf("step %d (%s): Allocate() mismatch (-want +got):\n%s", i, st.Label, diff)
				}
			}
		})
	}
}

// TestCTDBMultiMerge checks that merging lcp2.029's per-node views the way
// CTDB does gives the file's derived address list, so multi-mode files
// without one are read right too.
func TestCTDBMultiMerge(t *testing.T) {
	want, err := casefile.Load("testdata/ctdb/lcp2.029.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := casefile.Parse([]byte(withoutIPs(t, "testdata/ctdb/lcp2.029.json")))
	if err != nil {
		t.Fatal(err)
	}
	wantIPs, gotIPs := want.Steps[0].Input.IPs, got.Steps[0].Input.IPs
	// The file lists its derived view in ascending order; Merge returns
	// CTDB's order. Compare as allocations.
	if err := ipalloc.Check(want.Steps[0].Input); err != nil {
		t.Fatal(err)
	}
	r1 := ipalloc.Allocate(want.Steps[0].Input)
	if err := ipalloc.Check(got.Steps[0].Input); err != nil {
		t.Fatal(err)
	}
	r2 := ipalloc.Allocate(got.Steps[0].Input)
	if diff := cmp.Diff(holders(wantIPs), holders(gotIPs)); diff != "" {
		t.Errorf("merged holders mismatch (-derived +merged):\n%s", diff)
	}
	if diff := cmp.Diff(r1, r2, cmpAddr); diff != "" {
		t.Errorf("allocation from merged views differs (-derived +merged):\n%s", diff)
	}
}

func holders(ips []ipalloc.IP) map[string]int {
	m := map[string]int{}
	for _, ip := range ips {
		m[ip.Addr.String()] = ip.Current
	}
	return m
}

// withoutIPs returns the case file at path without its derived "ips".
func withoutIPs(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["per_node_view"]; !ok {
		t.Fatalf("%s has no per_node_view", path)
	}
	delete(m, "ips")
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
