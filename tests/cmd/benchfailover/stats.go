package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary is min, median and max in milliseconds; nil fields when there
// was no sample.
type Summary struct {
	Min    *float64 `json:"min"`
	Median *float64 `json:"median"`
	Max    *float64 `json:"max"`
}

// summarize computes a Summary (median of an even count: the mean of the
// two middle samples), rounded to 0.1 ms.
func summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) *float64 {
		v := math.Round(float64(d)/float64(time.Millisecond)*10) / 10
		return &v
	}
	mid := s[len(s)/2]
	if len(s)%2 == 0 {
		mid = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Summary{Min: ms(s[0]), Median: ms(mid), Max: ms(s[len(s)-1])}
}

// Result is one scenario's line of the benchmark, as written to the JSON
// file (an array of them). The first fields are the benchmark's contract;
// the rest say what the figures rest on.
type Result struct {
	Scenario         string   `json:"scenario"`
	Trials           int      `json:"trials"`
	DetectMS         Summary  `json:"detect_ms"`
	MovedMS          Summary  `json:"moved_ms"`
	ARPMS            Summary  `json:"arp_ms"`
	DuplicateSamples int      `json:"duplicate_samples"`
	UnservedMSMax    *float64 `json:"unserved_ms_max"`

	Implementation string `json:"implementation"`
	// Addresses is how many addresses moved per trial (the victim's).
	Addresses []int `json:"addresses_moved,omitempty"`
	// Incomplete counts trials in which something was not observed
	// within the trial's time limit (see Notes); their other figures
	// still count.
	Incomplete int      `json:"incomplete_trials,omitempty"`
	Notes      []string `json:"notes,omitempty"`
}

// fmtSummary renders a Summary as "min / median / max" in ms.
func fmtSummary(s Summary) string {
	if s.Min == nil {
		return "-"
	}
	return fmt.Sprintf("%s / %s / %s", fmtMS(*s.Min), fmtMS(*s.Median), fmtMS(*s.Max))
}

// fmtMS prints ms with one decimal below 10 ms and none above.
func fmtMS(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func fmtOptMS(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmtMS(*v)
}

// printTable writes the results as an aligned table.
func printTable(w io.Writer, title string, rs []Result) {
	fmt.Fprintf(w, "\n%s\n", title)
	fmt.Fprintln(w, "times in ms from the fault, min / median / max over trials; \"configured\" and \"ARP\": the last of the victim's addresses;")
	fmt.Fprintln(w, "dup samples: checker samples with an address on two nodes or answered by two MACs; unserved max: the longest")
	fmt.Fprintln(w, "any address had no holder or no ARP answer, from the fault until the cluster was healthy and balanced again")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\ttrials\tdetected\tconfigured on new node\tARP answered by new node\tdup samples\tunserved max")
	for _, r := range rs {
		trials := fmt.Sprint(r.Trials)
		if r.Incomplete > 0 {
			trials += fmt.Sprintf(" (%d incomplete)", r.Incomplete)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.Scenario, trials,
			fmtSummary(r.DetectMS), fmtSummary(r.MovedMS), fmtSummary(r.ARPMS), r.DuplicateSamples, fmtOptMS(r.UnservedMSMax))
	}
	tw.Flush()
	var notes []string
	for _, r := range rs {
		for _, n := range r.Notes {
			notes = append(notes, fmt.Sprintf("  %s: %s", r.Scenario, n))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w, "notes:")
		fmt.Fprintln(w, strings.Join(notes, "\n"))
	}
}

// printSideBySide writes the medians (and maxima) of two runs next to
// each other, by scenario.
func printSideBySide(w io.Writer, a, b []Result) {
	byName := map[string]Result{}
	for _, r := range b {
		byName[r.Scenario] = r
	}
	an, bn := "ctdb-go", "Debian ctdb"
	if len(a) > 0 && a[0].Implementation != "" {
		an = a[0].Implementation
	}
	if len(b) > 0 && b[0].Implementation != "" {
		bn = b[0].Implementation
	}
	fmt.Fprintf(w, "\nside by side (median / max ms; dup = duplicate samples): %s | %s\n", an, bn)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tdetected\t\tARP answered\t\tunserved max\t\tdup\t")
	fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", an, bn, an, bn, an, bn, an, bn)
	mm := func(s Summary) string {
		if s.Median == nil {
			return "-"
		}
		return fmtMS(*s.Median) + " / " + fmtMS(*s.Max)
	}
	for _, r := range a {
		o, ok := byName[r.Scenario]
		if !ok {
			fmt.Fprintf(tw, "%s\t%s\t-\t%s\t-\t%s\t-\t%d\t-\n", r.Scenario, mm(r.DetectMS), mm(r.ARPMS), fmtOptMS(r.UnservedMSMax), r.DuplicateSamples)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", r.Scenario, mm(r.DetectMS), mm(o.DetectMS),
			mm(r.ARPMS), mm(o.ARPMS), fmtOptMS(r.UnservedMSMax), fmtOptMS(o.UnservedMSMax), r.DuplicateSamples, o.DuplicateSamples)
	}
	tw.Flush()
}
