package member

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"
)

var equateAddr = cmpopts.EquateComparable(netip.AddrPort{})

// waitTimeout bounds every wait for the cluster to reach a state. The
// waits poll; none is an assertion about how long something takes.
const waitTimeout = 15 * time.Second

// pollInterval is how often waitFor checks its condition. Gossip rounds
// are 20 ms apart in tests (fastConfig) and 1 ms in TestEventsBounded, so
// a coarser poll would be most of a wait.
const pollInterval = time.Millisecond

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(pollInterval)
	}
}

// logSink collects every log line of a test; they are printed only if the
// test fails.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func newLogSink(t *testing.T) *logSink {
	s := &logSink{}
	t.Cleanup(func() {
		if t.Failed() {
			s.mu.Lock()
			defer s.mu.Unlock()
			t.Logf("logs:\n%s", strings.Join(s.lines, ""))
		}
	})
	return s
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, string(p))
	return len(p), nil
}

func (s *logSink) logger(node string) *slog.Logger {
	return slog.New(slog.NewTextHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test_node", node)
}

// count returns how many lines contain all of the substrings.
func (s *logSink) count(subs ...string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.lines {
		if !slices.ContainsFunc(subs, func(sub string) bool { return !strings.Contains(l, sub) }) {
			n++
		}
	}
	return n
}

// testLabel is the pprof label that names the test a goroutine was started
// by: goroutines inherit their creator's labels, so every goroutine of a
// test's memberlists, transports and handlers carries it, and parallel
// tests each wait only for their own.
const testLabel = "member_test"

// checkLeaks fails the test if goroutines of memberlist or of this package
// that the test started outlive it. Call it first, so that its cleanup
// runs last, and before the test starts any goroutine. Goroutines no test
// started (a timer's callback) are left to TestMain's check.
func checkLeaks(t *testing.T) {
	labelTest(t)
	t.Cleanup(func() { waitGoroutines(t) })
}

// labelTest labels the calling goroutine, t's, with testLabel; goroutines
// it starts from now on inherit the label.
func labelTest(t *testing.T) {
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels(testLabel, t.Name())))
}

// waitGoroutines waits until no goroutine of memberlist or of this package
// that t started is left but those whose stacks contain one of except.
func waitGoroutines(t *testing.T, except ...string) {
	label := fmt.Sprintf("# labels: {%q:%q}", testLabel, t.Name())
	var leaked []string
	deadline := time.Now().Add(waitTimeout)
	for {
		leaked = slices.DeleteFunc(leakedGoroutines(), func(g string) bool {
			return !strings.Contains(g, label) ||
				slices.ContainsFunc(except, func(e string) bool { return strings.Contains(g, e) })
		})
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%d goroutines leaked:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
}

// leakedGoroutines returns the goroutines of memberlist and of this
// package but the test runner's and its own, in the goroutine profile's
// text form with labels (goroutines with the same stack and labels are one
// entry, counted).
func leakedGoroutines() []string {
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		panic(err)
	}
	var out []string
	for _, g := range strings.Split(buf.String(), "\n\n") {
		if strings.Contains(g, "testing.tRunner") || strings.Contains(g, "leakedGoroutines") {
			continue
		}
		if strings.Contains(g, "hashicorp/memberlist") || strings.Contains(g, "daemon/member.") {
			out = append(out, g)
		}
	}
	return out
}

// testNode is one Member of a test cluster.
type testNode struct {
	t      *testing.T
	cfg    Config
	tr     *testTransport
	m      *Member
	cancel context.CancelFunc
	runErr chan error
}

type cluster struct {
	t     *testing.T
	net   *testNet
	logs  *logSink
	nodes []*testNode
}

// fastConfig makes tests converge quickly; detection still goes through
// memberlist's probe, suspicion and dead path.
func fastConfig(c *Config) {
	c.ProbeInterval = 50 * time.Millisecond
	c.ProbeTimeout = 25 * time.Millisecond
	c.GossipInterval = 20 * time.Millisecond
	c.RejoinInterval = 50 * time.Millisecond
	c.PushPullInterval = 500 * time.Millisecond
}

// newCluster makes n nodes named pnn-0..n-1 on net (nil: a new testNet),
// each with every node in Config.Nodes, without a key (Insecure), and starts them unless start is
// false. tune may change each Config.
func newCluster(t *testing.T, net *testNet, name string, n int, start bool, tune func(*Config)) *cluster {
	t.Helper()
	if net == nil {
		checkLeaks(t)
		net = newTestNet(t)
	}
	c := &cluster{t: t, net: net, logs: newLogSink(t)}
	for i := range n {
		c.nodes = append(c.nodes, &testNode{t: t, tr: net.newTransport(fmt.Sprintf("%s-%d", name, i))})
	}
	for i, nd := range c.nodes {
		// No key: MockNetwork is no network, and memberlist's encryption
		// has tests of its own (real_test.go); frames are still sealed.
		nd.cfg = Config{Cluster: name, PNN: i, Transport: nd.tr, Insecure: true, Logger: c.logs.logger(fmt.Sprintf("%s/%d", name, i))}
		nd.cfg.Nodes = make(map[int]netip.AddrPort)
		for j, other := range c.nodes {
			nd.cfg.Nodes[j] = other.tr.addrPort()
		}
		fastConfig(&nd.cfg)
		if tune != nil {
			tune(&nd.cfg)
		}
		nd.newMember()
		if start {
			nd.start()
		}
	}
	return c
}

func (nd *testNode) newMember() {
	m, err := New(nd.cfg)
	if err != nil {
		nd.t.Fatalf("New(%+v) = %v", nd.cfg, err)
	}
	nd.m = m
	nd.t.Cleanup(func() { nd.stop() })
}

func (nd *testNode) start() {
	ctx, cancel := context.WithCancel(context.Background())
	nd.cancel = cancel
	nd.runErr = make(chan error, 1)
	go func() { nd.runErr <- nd.m.Run(ctx) }()
}

// stop cancels Run and checks it returned nil; Close must then return at once.
func (nd *testNode) stop() {
	nd.t.Helper()
	if nd.cancel == nil {
		nd.m.Close()
		return
	}
	nd.cancel()
	nd.cancel = nil
	if err := <-nd.runErr; err != nil {
		nd.t.Errorf("pnn %d: Run() = %v, want nil", nd.cfg.PNN, err)
	}
	nd.m.Close()
}

// alive returns the PNNs nd sees alive.
func (nd *testNode) alive() []int {
	var out []int
	for _, p := range nd.m.Members() {
		if p.Alive {
			out = append(out, p.PNN)
		}
	}
	return out
}

// waitAlive waits until each of the nodes sees exactly want alive.
func (c *cluster) waitAlive(want []int, nodes ...int) {
	c.t.Helper()
	for _, i := range nodes {
		waitFor(c.t, fmt.Sprintf("pnn %d to see %v alive", i, want), func() bool {
			return slices.Equal(c.nodes[i].alive(), want)
		})
	}
}

func (c *cluster) addrs() []netip.AddrPort {
	var out []netip.AddrPort
	for _, nd := range c.nodes {
		out = append(out, nd.tr.addrPort())
	}
	return out
}

// waitEvent reads nd's events until one matches, and returns it.
func (nd *testNode) waitEvent(what string, match func(Event) bool) Event {
	nd.t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case ev, ok := <-nd.m.Events():
			if !ok {
				nd.t.Fatalf("pnn %d: events closed waiting for %s", nd.cfg.PNN, what)
			}
			if match(ev) {
				return ev
			}
		case <-timeout:
			nd.t.Fatalf("pnn %d: timed out waiting for event %s", nd.cfg.PNN, what)
		}
	}
}
