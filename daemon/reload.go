package daemon

import (
	"context"
	"errors"
	"fmt"
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

// Reload rereads what can change without a restart, as on SIGHUP: the
// gossip keys (a key being rotated) and public_addresses (as ctdb
// reloadips). Nothing else moves: addresses that stay configured stay
// where they are.
func (d *Daemon) Reload(ctx context.Context) error {
	if !d.running.Load() {
		return errors.New("ctdbd is still starting: nothing reloaded")
	}
	var errs []error
	keys, err := d.conf.ReloadGossipKeys()
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("gossip keys: %w", err))
	case len(keys) > 0:
		if err := d.mem.SetKeys(keys[0], keys[1:]...); err != nil {
			errs = append(errs, fmt.Errorf("installing gossip keys: %w", err))
		} else {
			d.log.Info("gossip keys reloaded", "keys", len(keys))
		}
	}
	if r := d.reloadIPs(ctx); r.ExitCode != 0 {
		errs = append(errs, fmt.Errorf("public addresses: %s", r.Error))
	} else if r.Notice != "" {
		d.log.Warn("public addresses reloaded", "notice", r.Notice)
	}
	return errors.Join(errs...)
}
