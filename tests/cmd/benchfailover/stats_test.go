package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func f(v float64) *float64 { return &v }

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []time.Duration
		want Summary
	}{
		{"none", nil, Summary{}},
		{"one", []time.Duration{1500 * time.Microsecond}, Summary{f(1.5), f(1.5), f(1.5)}},
		{"odd, unsorted", []time.Duration{30 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond}, Summary{f(10), f(20), f(30)}},
		{"even: mean of the middle two", []time.Duration{40 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 25 * time.Millisecond}, Summary{f(10), f(22.5), f(40)}},
		{"rounded to 0.1 ms", []time.Duration{12345678 * time.Nanosecond}, Summary{f(12.3), f(12.3), f(12.3)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, summarize(tc.in)); diff != "" {
				t.Errorf("summarize(%v) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

// The JSON is the benchmark's contract: an array of objects with these
// fields, a scenario that did not run has null figures.
func TestResultJSON(t *testing.T) {
	rs := []Result{
		{Scenario: "kill", Trials: 2, DetectMS: summarize([]time.Duration{time.Second, 3 * time.Second}), DuplicateSamples: 1, UnservedMSMax: f(7), Implementation: "ctdb-go"},
		{Scenario: "postgres-stop", Implementation: "ctdb-go", Notes: []string{"not run"}},
	}
	data, err := json.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{
			"scenario": "kill", "trials": 2.0,
			"detect_ms":         map[string]any{"min": 1000.0, "median": 2000.0, "max": 3000.0},
			"moved_ms":          map[string]any{"min": nil, "median": nil, "max": nil},
			"arp_ms":            map[string]any{"min": nil, "median": nil, "max": nil},
			"duplicate_samples": 1.0, "unserved_ms_max": 7.0, "implementation": "ctdb-go",
		},
		{
			"scenario": "postgres-stop", "trials": 0.0,
			"detect_ms":         map[string]any{"min": nil, "median": nil, "max": nil},
			"moved_ms":          map[string]any{"min": nil, "median": nil, "max": nil},
			"arp_ms":            map[string]any{"min": nil, "median": nil, "max": nil},
			"duplicate_samples": 0.0, "unserved_ms_max": nil, "implementation": "ctdb-go",
			"notes": []any{"not run"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}
}

func TestPrintTable(t *testing.T) {
	var buf bytes.Buffer
	printTable(&buf, "title", []Result{
		{Scenario: "public-cable", Trials: 10, DetectMS: Summary{f(1.25), f(40), f(120)}, ARPMS: Summary{f(50), f(60), f(70)}, UnservedMSMax: f(80)},
		{Scenario: "postgres-stop", Notes: []string{"not run: no PostgreSQL"}},
	})
	out := buf.String()
	for _, want := range []string{"public-cable", "1.2 / 40 / 120", "50 / 60 / 70", "postgres-stop", "postgres-stop: not run: no PostgreSQL"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
