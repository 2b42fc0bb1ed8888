package daemon

import (
	"context"
	"net/netip"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

// reloadIPs rereads public_addresses: new addresses become available,
// removed ones are released here first, then the leader reallocates.
func (d *Daemon) reloadIPs(ctx context.Context) control.Response {
	pas, err := d.conf.ReloadPublicAddresses()
	if err != nil {
		return fail(1, "%v", err)
	}
	for _, pa := range pas {
		for _, ifc := range pa.Ifaces {
			if !d.k.LinkExists(ifc) {
				return fail(1, "%s: unknown interface %s for public address %s", d.conf.PublicAddressesFile, ifc, pa.Prefix)
			}
		}
	}
	keep := map[netip.Addr]bool{}
	for _, pa := range pas {
		keep[pa.Prefix.Addr()] = true
	}
	var gone []netip.Addr
	d.mu.Lock()
	for a := range d.public {
		if !keep[a] {
			gone = append(gone, a)
		}
	}
	d.mu.Unlock()
	known := d.table.Snapshot().Links
	for ifc := range publicIfacesOf(pas) {
		if _, ok := known[ifc]; !ok {
			up, _ := d.k.LinkUp(ifc)
			_ = d.k.PromoteSecondaries(ifc)
			d.table.SetLink(ifc, up)
		}
	}
	for _, a := range gone {
		if err := d.table.Release(ctx, a, -1); err != nil {
			d.log.Warn("releasing removed public address", "ip", a, "err", err)
		}
	}
	d.setPublic(pas)
	if err := d.table.SetPublic(pas); err != nil {
		return fail(1, "%v", err)
	}
	d.log.Info("public addresses reloaded", "count", len(pas), "removed", len(gone))
	d.noteChange()
	if _, err := d.reallocateNow(ctx, false, true); err != nil {
		return control.Response{Notice: "takeover run not confirmed: " + err.Error()}
	}
	return ok(nil)
}
