package daemon

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/control"
	"github.com/ctdb-go/ctdb-go/daemon/eventscript"
	"github.com/ctdb-go/ctdb-go/daemon/netif"
)

// kernel is what the daemon needs from the kernel; netif.Linux is the real
// one and netif.Fake the test double.
type kernel interface {
	AddAddr(iface string, p netip.Prefix, lifetime time.Duration) error
	DelAddr(iface string, p netip.Prefix) error
	AllAddrs() (map[string][]netip.Prefix, error)
	LocalAddrs() ([]netip.Addr, error)
	LinkUp(iface string) (bool, error)
	LinkExists(iface string) bool
	WatchLinks(ctx context.Context) (<-chan netif.LinkEvent, error)
	Probe(ctx context.Context, iface string, ip netip.Addr, wait time.Duration) (net.HardwareAddr, error)
	Announce(iface string, ip netip.Addr) error
	PromoteSecondaries(iface string) error
	EstablishedTCP() (map[netip.Addr]int, error)
}

// events runs event scripts (eventscript.Runner).
type events interface {
	Run(ctx context.Context, event string, args ...string) eventscript.Result
	RunTimeout(ctx context.Context, timeout time.Duration, event string, args ...string) eventscript.Result
	Status(event string) (eventscript.Result, bool)
	Scripts() ([]control.Script, error)
	Enable(name string) error
	Disable(name string) error
	Flush()
	// SetTimeout changes EventScriptTimeout for runs from now on.
	SetTimeout(time.Duration)
	// Close removes what the runner set up to end every script's
	// processes (its cgroups); after Flush, at shutdown.
	Close()
}
