package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/control"
	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
)

// setAdmin sets or clears an admin flag, persists it, and waits for the
// leader's takeover run, as CTDB's CLI does.
func (d *Daemon) setAdmin(ctx context.Context, bit nodeflag.Flags, set bool, word string, period time.Duration) control.Response {
	if notice, changed := d.changeAdmin(ctx, bit, set, word, period); !changed {
		return control.Response{Notice: notice}
	}
	// The leader runs with this node's new state and answers when done.
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := d.reallocateNow(wctx, false, true); err != nil {
		return control.Response{Notice: "takeover run not confirmed: " + err.Error()}
	}
	return ok(nil)
}

// changeAdmin sets or clears an admin flag and persists it; an inactive
// node (stopped, banned) drops its addresses itself. It does not wait for
// the leader: a ban the leader orders must not wait for a takeover run
// the leader cannot start until the ban is done. changed is false, with a
// notice, when the flag was already so.
func (d *Daemon) changeAdmin(ctx context.Context, bit nodeflag.Flags, set bool, word string, period time.Duration) (notice string, changed bool) {
	d.mu.Lock()
	has := d.admin&bit != 0
	if has == set {
		d.mu.Unlock()
		notice := fmt.Sprintf("Node %d is already %s", d.pnn, word)
		if !set {
			notice = fmt.Sprintf("Node %d is not %s", d.pnn, word)
		}
		return notice, false
	}
	if set {
		d.admin |= bit
	} else {
		d.admin &^= bit
	}
	if bit == nodeflag.Banned {
		if set {
			d.banUntil = time.Now().Add(period)
		} else {
			d.banUntil = time.Time{}
		}
	}
	flags, until := d.admin, d.banUntil
	d.mu.Unlock()
	if err := d.store.SetAdminFlags(flags, until); err != nil {
		// The flag holds in memory (a ban still ends: see expireBan);
		// a restart forgets it.
		d.log.Error("persisting admin flags; they hold until ctdbd restarts", "flags", flags.String(), "err", err)
	}
	d.log.Info("admin flags changed", "flags", flags.String())
	d.noteUrgent()
	if set && bit&(nodeflag.Stopped|nodeflag.Banned) != 0 {
		// An inactive node drops its addresses itself, leader or not.
		d.table.ReleaseAll(ctx, word)
	}
	return "", true
}

// expireBan lifts a ban whose period is over: a ban always ends, whether
// it was set in this run or restored from state.db, and whether or not
// persisting it worked.
func (d *Daemon) expireBan() {
	d.mu.Lock()
	if d.admin&nodeflag.Banned == 0 || time.Now().Before(d.banUntil) {
		d.mu.Unlock()
		return
	}
	d.admin &^= nodeflag.Banned
	d.banUntil = time.Time{}
	flags := d.admin
	d.mu.Unlock()
	d.log.Info("ban period over", "flags", flags.String())
	if err := d.store.SetAdminFlags(flags, time.Time{}); err != nil {
		d.log.Error("persisting admin flags after the ban", "err", err)
	}
	d.noteUrgent()
}
