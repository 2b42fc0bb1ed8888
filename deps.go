//go:build tools

// Package tools pins the modules ctdb-go is built on, so `go mod tidy` keeps
// them while the packages that use them are being written.
package tools

import (
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/hashicorp/memberlist"
	_ "github.com/mdlayher/arp"
	_ "github.com/safchain/ethtool"
	_ "github.com/vishvananda/netlink"
	_ "go.etcd.io/bbolt"
	_ "golang.org/x/sync/errgroup"
	_ "golang.org/x/sys/unix"
)
