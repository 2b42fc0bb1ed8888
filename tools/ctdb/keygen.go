package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
)

func init() {
	register(&command{
		name:    "keygen",
		usage:   "keygen",
		summary: "print a new gossip key for [cluster] gossip key file (offline, no daemon)",
		offline: true,
		run:     runKeygen,
	})
}

// runKeygen prints 32 random bytes as base64, the format of `[cluster]
// gossip key file` (AES-256). Write it on one node, copy it to every node,
// mode 0600:
//
//	umask 077; ctdb keygen > /etc/ctdb/gossip.key
func runKeygen(e *env, args []string) int {
	if len(args) != 0 {
		fmt.Fprintln(e.stderr, "usage: ctdb keygen")
		return 2
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		fmt.Fprintf(e.stderr, "ctdb keygen: %v\n", err)
		return 1
	}
	fmt.Fprintln(e.stdout, base64.StdEncoding.EncodeToString(key))
	return 0
}
