package recoverd

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/nodeflag"
	"github.com/ctdb-go/ctdb-go/ipalloc"
)

// parseView builds a View from a case's lines (see TestDecide).
func parseView(lines []string) (View, error) {
	v := View{
		LeaderSince: decideNow.Add(-time.Minute), MaxLease: 2 * time.Second,
		Started: decideNow.Add(-time.Hour), Algorithm: ipalloc.LCP2,
		RenewInterval: 250 * time.Millisecond, FenceDelay: 2 * time.Second,
		FenceStartupGrace: 10 * time.Second,
		Alive:             map[int]bool{}, States: map[int]NodeState{},
		Overrides: map[netip.Addr]map[int]Override{}, Assigned: map[netip.Addr]int{},
		Moving: map[netip.Addr]bool{}, MovingTo: map[netip.Addr]int{},
		Suspect: map[netip.Addr][]int{}, Prefer: map[netip.Addr]int{}, CouldHost: map[int]bool{},
		GrantEnd: map[int]time.Time{}, LastGrant: map[int]time.Time{},
		LostAt: map[int]time.Time{}, Fencing: map[int]FenceState{}, Loss: map[int]uint64{}, Seen: map[int]bool{},
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "view") {
		return v, errors.New("the first line is not a view line")
	}
	if err := parseViewOptions(&v, strings.Fields(lines[0])[1:]); err != nil {
		return v, err
	}
	var ips []netip.Addr
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 2 {
			return v, fmt.Errorf("%q: too short", l)
		}
		var err error
		switch f[0] {
		case "ips":
			ips, err = parseAddrs(f[1])
		case "node":
			err = parseNode(&v, ips, f[1:])
		case "deleted":
			var p int
			p, err = strconv.Atoi(f[1])
			v.Deleted = append(v.Deleted, p)
		case "assigned", "moving", "suspect", "prefer":
			err = eachPair(f[1:], func(a netip.Addr, p string) error {
				if f[0] == "moving" {
					v.Moving[a] = true
					if p == "?" {
						return nil
					}
				}
				n, err := strconv.Atoi(p)
				switch f[0] {
				case "assigned":
					v.Assigned[a] = n
				case "moving":
					v.MovingTo[a] = n
				case "suspect":
					v.Suspect[a] = append(v.Suspect[a], n)
				case "prefer":
					v.Prefer[a] = n
				}
				return err
			})
		case "override":
			err = parseOverride(&v, f[1:])
		default:
			err = errors.New("unknown line")
		}
		if err != nil {
			return v, fmt.Errorf("%q: %w", l, err)
		}
	}
	return v, nil
}

func parseViewOptions(v *View, opts []string) error {
	for _, o := range opts {
		k, val, _ := strings.Cut(o, "=")
		var err error
		switch k {
		case "self":
			v.Self, err = strconv.Atoi(val)
		case "since":
			v.LeaderSince, err = parseTime(val)
		case "started":
			v.Started, err = parseTime(val)
		case "maxlease":
			v.MaxLease, err = time.ParseDuration(val)
		case "renew":
			v.RenewInterval, err = time.ParseDuration(val)
		case "fencedelay":
			v.FenceDelay, err = time.ParseDuration(val)
		case "grace":
			v.FenceStartupGrace, err = time.ParseDuration(val)
		case "quorum":
			v.Quorum = true
		case "fencing":
			v.Fence = true
		case "failover-disabled":
			v.FailoverDisabled = true
		case "noiptakeover":
			v.NoIPTakeover = true
		case "noipfailback":
			v.NoIPFailback = true
		case "alloc":
			i := slices.IndexFunc([]ipalloc.Algorithm{0, 1, 2, 3}, func(a ipalloc.Algorithm) bool { return a.String() == val })
			if i < 0 {
				i, err = strconv.Atoi(val)
			}
			v.Algorithm = ipalloc.Algorithm(i)
		default:
			err = errors.New("unknown view option")
		}
		if err != nil {
			return fmt.Errorf("%q: %w", o, err)
		}
	}
	return nil
}

// parseNode reads a node line's fields after "node".
func parseNode(v *View, ips []netip.Addr, f []string) error {
	pnn, err := strconv.Atoi(f[0])
	if err != nil {
		return err
	}
	v.Nodes = append(v.Nodes, pnn)
	v.Alive[pnn] = !slices.Contains(f, "down")
	v.Seen[pnn] = !slices.Contains(f, "unseen")
	if v.Alive[pnn] && !slices.Contains(f, "nolease") {
		v.GrantEnd[pnn] = decideNow.Add(1900 * time.Millisecond)
		v.LastGrant[pnn] = decideNow.Add(-100 * time.Millisecond)
	}
	st := NodeState{PNN: pnn, Boot: 1, Version: 1, RunState: RunStateRunning}
	var known, avail []netip.Addr = ips, nil
	availSet := false
	for _, o := range f[1:] {
		k, val, _ := strings.Cut(o, "=")
		var err error
		switch k {
		case "down", "unseen", "noreport", "nolease":
		case "flags":
			st.Flags, err = parseFlags(val)
		case "runstate":
			st.RunState = val
		case "holds":
			st.Held, err = parseAddrs(val)
		case "knows":
			known, err = parseAddrs(val)
		case "avail":
			avail, err = parseAddrs(val)
			availSet = true
		case "lease":
			v.GrantEnd[pnn], err = parseTime(val)
		case "granted":
			v.LastGrant[pnn], err = parseTime(val)
		case "could", "couldnot":
			v.CouldHost[pnn] = k == "could"
		case "lost":
			v.LostAt[pnn], err = parseTime(val)
		case "fence":
			v.Fencing[pnn], err = parseFenceState(val)
		case "loss":
			v.Loss[pnn], err = strconv.ParseUint(val, 10, 64)
		case "boot":
			st.Boot, err = strconv.ParseInt(val, 10, 64)
		case "version":
			st.Version, err = strconv.ParseUint(val, 10, 64)
		default:
			err = errors.New("unknown node field")
		}
		if err != nil {
			return fmt.Errorf("%q: %w", o, err)
		}
	}
	if slices.Contains(f, "noreport") {
		return nil
	}
	if !availSet {
		avail = known
	}
	for _, a := range known {
		st.Known = append(st.Known, PublicAddr{Prefix: netip.PrefixFrom(a, 24), Ifaces: []string{"eth1"}})
	}
	st.Available = avail
	v.States[pnn] = st
	return nil
}

// parseOverride reads "ADDR=PNN taken|released version=N [boot=N]".
func parseOverride(v *View, f []string) error {
	if len(f) < 3 {
		return errors.New("want ADDR=PNN taken|released version=N")
	}
	o := Override{Held: f[1] == "taken", Boot: 1}
	for _, x := range f[2:] {
		k, val, _ := strings.Cut(x, "=")
		var err error
		switch k {
		case "version":
			o.Version, err = strconv.ParseUint(val, 10, 64)
		case "boot":
			o.Boot, err = strconv.ParseInt(val, 10, 64)
		default:
			err = errors.New("unknown override field")
		}
		if err != nil {
			return fmt.Errorf("%q: %w", x, err)
		}
	}
	return eachPair(f[:1], func(a netip.Addr, p string) error {
		n, err := strconv.Atoi(p)
		if v.Overrides[a] == nil {
			v.Overrides[a] = map[int]Override{}
		}
		v.Overrides[a][n] = o
		return err
	})
}

// parseFenceState reads new, running/TRIES, done or failed/TRIES/NEXTTRY,
// each optionally followed by @LOSS (the loss it is for) [0].
func parseFenceState(s string) (FenceState, error) {
	if s, loss, ok := strings.Cut(s, "@"); ok {
		fs, err := parseFenceState(s)
		if err == nil {
			fs.Loss, err = strconv.ParseUint(loss, 10, 64)
		}
		return fs, err
	}
	f := strings.Split(s, "/")
	var fs FenceState
	var err error
	if len(f) > 1 {
		fs.Tries, err = strconv.Atoi(f[1])
	}
	switch {
	case f[0] == "new" && len(f) == 1:
	case f[0] == "done" && len(f) == 1:
		fs.Done, fs.Tries = true, 1
	case f[0] == "running" && len(f) == 2:
		fs.Running = true
	case f[0] == "failed" && len(f) == 3:
		fs.LastErr = "ipmi: no answer"
		if err == nil {
			fs.NextTry, err = parseTime(f[2])
		}
	default:
		return fs, errors.New("want new, running/TRIES, done or failed/TRIES/NEXTTRY")
	}
	return fs, err
}

func parseFlags(s string) (nodeflag.Flags, error) {
	names := map[string]nodeflag.Flags{"unhealthy": nodeflag.Unhealthy, "disabled": nodeflag.PermanentlyDisabled,
		"banned": nodeflag.Banned, "stopped": nodeflag.Stopped, "disconnected": nodeflag.Disconnected}
	var fl nodeflag.Flags
	for _, n := range strings.Split(s, ",") {
		b, ok := names[n]
		if !ok {
			return 0, fmt.Errorf("unknown flag %q", n)
		}
		fl |= b
	}
	return fl, nil
}

// parseTime reads an offset from decideNow.
func parseTime(s string) (time.Time, error) {
	d, err := time.ParseDuration(s)
	return decideNow.Add(d), err
}

// parseAddrs reads a LIST: addresses and ranges A-N (last byte up to N),
// comma-separated, or "-" for none.
func parseAddrs(s string) ([]netip.Addr, error) {
	out := []netip.Addr{}
	if s == "-" {
		return out, nil
	}
	for _, item := range strings.Split(s, ",") {
		first, last, isRange := strings.Cut(item, "-")
		a, err := netip.ParseAddr(first)
		if err != nil {
			return nil, err
		}
		if !isRange {
			out = append(out, a)
			continue
		}
		n, err := strconv.Atoi(last)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("bad range %q", item)
		}
		for b := a.As4(); int(b[3]) <= n; b[3]++ {
			out = append(out, netip.AddrFrom4(b))
			if b[3] == 255 {
				break
			}
		}
	}
	return out, nil
}

// eachPair calls fn for each ADDR=VALUE.
func eachPair(pairs []string, fn func(netip.Addr, string) error) error {
	for _, p := range pairs {
		as, val, ok := strings.Cut(p, "=")
		if !ok {
			return fmt.Errorf("%q: want ADDR=VALUE", p)
		}
		a, err := netip.ParseAddr(as)
		if err != nil {
			return err
		}
		if err := fn(a, val); err != nil {
			return fmt.Errorf("%q: %w", p, err)
		}
	}
	return nil
}
