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
// given away while a node that lost contact may still hold it.
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
			*now = now.Add(300 * time.Millisecond)
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
			p := r.computeLocked(*now, true)
			seen := map[netip.Addr]bool{}
			for _, o := range p.ops {
				if seen[o.addr] {
					t.Fatalf("two orders for %s in one plan: %+v", o.addr, p.ops)
				}
				seen[o.addr] = true
				if o.take < 0 {
					continue
				}
				if !p.canHost[o.take] {
					t.Fatalf("take of %s on node %d, which cannot host", o.addr, o.take)
				}
				st := r.states[o.take]
				if st == nil || !slices.Contains(st.Available, o.addr) {
					t.Fatalf("take of %s on node %d, which does not have it available", o.addr, o.take)
				}
				for pnn, st := range r.states {
					if pnn == o.take || !slices.Contains(r.heldByLocked(pnn, st), o.addr) {
						continue
					}
					if r.peers[pnn].Alive && !slices.Contains(o.release, pnn) {
						t.Fatalf("take of %s on %d without releasing it on live holder %d", o.addr, o.take, pnn)
					}
					if !r.peers[pnn].Alive && now.Before(r.safeTimeLocked(pnn)) {
						t.Fatalf("take of %s on %d while lost node %d may hold it until %v (now %v)",
							o.addr, o.take, pnn, r.safeTimeLocked(pnn), *now)
					}
				}
			}
			r.mu.Unlock()
		}
	})
}
