package bed

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
)

// Layouts from Debian's CTDB 4.17 (reference ctdb-cli-samples.txt).
const (
	statusOneUnhealthy = `|Node|IP|Disconnected|Unknown|Banned|Disabled|Unhealthy|Stopped|Inactive|PartiallyOnline|ThisNode|
|0|198.18.0.1|0|0|0|0|1|0|0|0|N|
|1|198.18.0.2|0|0|0|0|0|0|0|0|Y|
|2|198.18.0.3|1|0|0|1|1|0|1|1|N|
`
	ipsVerbose = `|Public IP|Node|ActiveInterfaces|AvailableInterfaces|ConfiguredInterfaces|
|198.18.1.1|1|eth0|eth0|eth0|
|198.18.1.2|-1||eth0|eth0|
`
)

func TestParseStatus(t *testing.T) {
	got, err := ParseStatus(statusOneUnhealthy)
	if err != nil {
		t.Fatal(err)
	}
	want := []NodeState{
		{PNN: 0, Addr: netip.MustParseAddr("198.18.0.1"), Flags: nodeflag.Unhealthy},
		{PNN: 1, Addr: netip.MustParseAddr("198.18.0.2"), ThisNode: true},
		{PNN: 2, Addr: netip.MustParseAddr("198.18.0.3"), Flags: nodeflag.Disconnected | nodeflag.PermanentlyDisabled | nodeflag.Unhealthy, PartiallyOnline: true},
	}
	if diff := cmp.Diff(want, got, cmpAddr); diff != "" {
		t.Errorf("ParseStatus (-want +got):\n%s", diff)
	}
	if got[0].OK() || !got[1].OK() || got[2].FlagString() != "DISCONNECTED|DISABLED|UNHEALTHY|INACTIVE" {
		t.Errorf("OK/FlagString: %v %v %q", got[0].OK(), got[1].OK(), got[2].FlagString())
	}
	for _, bad := range []string{
		"",
		"Number of nodes:3\npnn:0 198.18.0.1 OK\n",
		"|Node|IP|Weird|\n|0|198.18.0.1|0|\n",
		"|Node|IP|Banned|\n|0|198.18.0.1|2|\n",
		"|Node|IP|Banned|\n|0|198.18.0.1|\n",
		"|Node|IP|Banned|\n|x|198.18.0.1|0|\n",
	} {
		if st, err := ParseStatus(bad); err == nil {
			t.Errorf("ParseStatus(%q) = %+v, want an error", bad, st)
		}
	}
}

func TestParseIPs(t *testing.T) {
	got, err := ParseIPs(ipsVerbose)
	if err != nil {
		t.Fatal(err)
	}
	want := map[netip.Addr]int{netip.MustParseAddr("198.18.1.1"): 1, netip.MustParseAddr("198.18.1.2"): -1}
	if diff := cmp.Diff(want, got, cmpAddr); diff != "" {
		t.Errorf("ParseIPs (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", "Public IPs on ALL nodes\n198.18.1.1 2\n", "|Public IP|Node|\n|nope|1|\n", "|Public IP|Node|\n|198.18.1.1|x|\n"} {
		if ips, err := ParseIPs(bad); err == nil {
			t.Errorf("ParseIPs(%q) = %v, want an error", bad, ips)
		}
	}
}
