package netif

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestLinkChange(t *testing.T) {
	type report struct {
		index  int
		name   string
		up     bool
		exists bool
	}
	tests := []struct {
		name    string
		reports []report
		want    []LinkEvent
	}{
		{
			name:    "known link, same carrier: nothing (MTU, address changes…)",
			reports: []report{{2, "eth1", true, true}, {2, "eth1", true, true}},
			want:    nil,
		},
		{
			name:    "carrier lost and back",
			reports: []report{{2, "eth1", false, true}, {2, "eth1", true, true}},
			want:    []LinkEvent{{Iface: "eth1", Exists: true}, {Iface: "eth1", Up: true, Exists: true}},
		},
		{
			name:    "new link",
			reports: []report{{9, "eth9", false, true}},
			want:    []LinkEvent{{Iface: "eth9", Exists: true}},
		},
		{
			name:    "removed link",
			reports: []report{{2, "eth1", false, false}},
			want:    []LinkEvent{{Iface: "eth1"}},
		},
		{
			name:    "removal of a link never seen",
			reports: []report{{9, "eth9", false, false}},
			want:    nil,
		},
		{
			name:    "rename",
			reports: []report{{2, "pub0", true, true}},
			want:    []LinkEvent{{Iface: "eth1"}, {Iface: "pub0", Up: true, Exists: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			known := map[int]linkState{1: {"lo", true}, 2: {"eth1", true}}
			var got []LinkEvent
			for _, r := range tt.reports {
				got = append(got, linkChange(known, r.index, r.name, r.up, r.exists)...)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("events mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLinkResync(t *testing.T) {
	known := map[int]linkState{1: {"lo", true}, 2: {"eth1", true}, 3: {"eth2", true}, 4: {"eth3", false}}
	now := map[int]linkState{1: {"lo", true}, 2: {"eth1", false}, 4: {"eth3", false}, 7: {"eth0", true}}
	want := []LinkEvent{
		{Iface: "eth2"},
		{Iface: "eth0", Up: true, Exists: true},
		{Iface: "eth1", Exists: true},
	}
	got := linkResync(known, now)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("linkResync events mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(now, known, cmp.AllowUnexported(linkState{})); diff != "" {
		t.Errorf("known after linkResync mismatch (-want +got):\n%s", diff)
	}
}
