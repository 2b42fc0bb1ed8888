package recoverd

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
)

// FuzzLeaderPlan feeds the leader state reports as a node could forge
// them (any flags, addresses held that it does not list, reports out of
// order, nodes coming and going) and checks every plan: at most one order
// per address, a take only on a node that can host it and lists it as
// available, every other live claimant released first, and no address
// given away while a node that lost contact, or one that has not
// reported, may still hold it.
//
// Each 5 bytes of input are one report: node (mod 4), alive bits of the
// 4 nodes, flags, held and available address bitmasks (6 addresses).
func FuzzLeaderPlan(f *testing.F) {
	f.Add([]byte{0, 0xf, 0, 0x03, 0x3f, 1, 0xf, 0, 0x0c, 0x3f, 2, 0xf, 0, 0x30, 0x3f, 3, 0xf, 0, 0, 0x3f})
	f.Add([]byte{1, 0xf, 0, 0x3f, 0x3f, 2, 0xf, 0, 0x3f, 0x3f, 1, 0x7, 0, 0x3f, 0})
	f.Add([]byte{3, 0xb, byte(nodeflag.Unhealthy), 0x3f, 0x3f, 0, 0xb, byte(nodeflag.Banned), 0x01, 0x3f})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 5*64 {
			return
		}
		r, fc, now := newTestLeader(t, 4)
		ips := addrs(6)
		bits := func(m byte) []netip.Addr {
			var out []netip.Addr
			for i, a := range ips {
				if m&(1<<i) != 0 {
					out = append(out, a)
				}
			}
			return out
		}
		ctx := context.Background()
		var version uint64
		for len(data) >= 5 {
			b := data[:5]
			data = data[5:]
			now.Advance(300 * time.Millisecond)
			fc.mu.Lock()
			for p := range 4 {
				fc.alive[p] = p == 0 || b[1]&(1<<p) != 0
			}
			fc.mu.Unlock()
			r.tick(ctx)
			for p := range 4 {
				if fc.alive[p] {
					r.HandleLease(LeaseRequest{PNN: p, Seq: 1})
				}
			}
			version++
			var known []PublicAddr
			for _, a := range ips {
				known = append(known, PublicAddr{Prefix: netip.PrefixFrom(a, 24), Ifaces: []string{"eth1"}})
			}
			r.UpdateState(NodeState{PNN: int(b[0] % 4), Boot: 1, Version: version,
				Flags: nodeflag.Flags(b[2]), RunState: RunStateRunning,
				Known: known, Held: bits(b[3] & 0x3f), Available: bits(b[4] & 0x3f)})

			r.mu.Lock()
			v := r.viewLocked()
			p := Decide(v, now.Now())
			checkPlan(t, v, p, now.Now())
			r.mu.Unlock()
		}
	})
}

// checkPlan checks decision p for view v against the rules every plan
// keeps, whatever the view.
func checkPlan(t *testing.T, v View, p Decision, now time.Time) {
	t.Helper()
	seen := map[netip.Addr]bool{}
	for _, o := range p.Ops {
		if seen[o.Addr] {
			t.Fatalf("two orders for %s in one plan: %+v", o.Addr, p.Ops)
		}
		seen[o.Addr] = true
		if v.Moving[o.Addr] {
			t.Fatalf("order for %s, which is moving already", o.Addr)
		}
		if o.Take < 0 {
			continue
		}
		if !p.CanHost[o.Take] {
			t.Fatalf("take of %s on node %d, which cannot host", o.Addr, o.Take)
		}
		st, ok := v.States[o.Take]
		if !ok || !slices.Contains(st.Available, o.Addr) {
			t.Fatalf("take of %s on node %d, which does not have it available", o.Addr, o.Take)
		}
		for _, pnn := range v.Nodes {
			if pnn == o.Take {
				continue
			}
			if _, ok := v.States[pnn]; !ok {
				if (v.Alive[pnn] || !v.Fence) && now.Before(v.safeTime(pnn)) {
					t.Fatalf("take of %s on %d while node %d, which has not reported, may hold it until %v (now %v)",
						o.Addr, o.Take, pnn, v.safeTime(pnn), now)
				}
				if !v.Alive[pnn] && v.Fence && !fenced(v, pnn) {
					t.Fatalf("take of %s on %d while node %d, which has not reported, is not fenced", o.Addr, o.Take, pnn)
				}
				continue
			}
			if !slices.Contains(v.held(pnn), o.Addr) && !slices.Contains(v.Suspect[o.Addr], pnn) {
				continue
			}
			if v.Alive[pnn] && !slices.Contains(o.Release, pnn) {
				t.Fatalf("take of %s on %d without releasing it on live holder %d", o.Addr, o.Take, pnn)
			}
			if !v.Alive[pnn] && now.Before(v.safeTime(pnn)) {
				t.Fatalf("take of %s on %d while lost node %d may hold it until %v (now %v)",
					o.Addr, o.Take, pnn, v.safeTime(pnn), now)
			}
			if !v.Alive[pnn] && v.Fence && !fenced(v, pnn) {
				t.Fatalf("take of %s on %d while lost node %d is not fenced", o.Addr, o.Take, pnn)
			}
		}
	}
	if !p.Wake.IsZero() && !p.Wake.After(now) {
		t.Fatalf("wake at %v, not after now (%v): the loop would rerun on every tick", p.Wake, now)
	}
	for _, o := range p.Ops {
		if _, kept := p.Keep[o.Addr]; kept && o.Take >= 0 {
			t.Fatalf("%s both kept on %d and taken by %d", o.Addr, p.Keep[o.Addr], o.Take)
		}
	}
}

// fenced: a fence of node pnn's current loss succeeded.
func fenced(v View, pnn int) bool {
	fs := v.Fencing[pnn]
	return fs.Done && fs.Loss == v.Loss[pnn]
}
