package netif

import (
	"bufio"
	"fmt"
	"strings"
)

// BondStatus is what /proc/net/bonding/<bond> says about a bond.
type BondStatus struct {
	Name string
	// Mode is the "Bonding Mode" line as the driver prints it, e.g.
	// "fault-tolerance (active-backup)".
	Mode string
	// ActiveSlave is the "Currently Active Slave", "" when there is none
	// or the mode has no such line (802.3ad, balance-*).
	ActiveSlave string
	// NoActiveSlave is true when the driver prints "Currently Active
	// Slave: None".
	NoActiveSlave bool
	// MIIUp is the bond's own "MII Status".
	MIIUp  bool
	Slaves []BondSlave
}

// BondSlave is one "Slave Interface" section.
type BondSlave struct {
	Name  string
	MIIUp bool
}

// Mode8023AD is how the driver names 802.3ad (LACP) mode.
const Mode8023AD = "IEEE 802.3ad Dynamic link aggregation"

// Problem returns why CTDB's 10.interface would call this bond down, in
// its words without the "ERROR: " prefix, or "" when the bond is fine:
//   - "Currently Active Slave: None";
//   - no "MII Status: up" line at all (the bond's or a slave's);
//   - 802.3ad with no slave up (the bond itself can stay "up" then, a
//     driver bug CTDB works around).
func (b BondStatus) Problem() string {
	if b.NoActiveSlave {
		return fmt.Sprintf("No active slaves for bond device %s", b.Name)
	}
	anySlaveUp := false
	for _, s := range b.Slaves {
		anySlaveUp = anySlaveUp || s.MIIUp
	}
	if !b.MIIUp && !anySlaveUp {
		return fmt.Sprintf("public network interface %s is down", b.Name)
	}
	if b.Mode == Mode8023AD && !anySlaveUp {
		return fmt.Sprintf("No active slaves for 802.ad bond device %s", b.Name)
	}
	return ""
}

// parseBond reads the text of /proc/net/bonding/<name>. Only unindented
// "Key: value" lines count: indented ones belong to sub-sections (802.3ad
// aggregator info, LACP PDU details) that reuse the same keys.
func parseBond(name, text string) BondStatus {
	b := BondStatus{Name: name}
	var slave *BondSlave
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch key {
		case "Slave Interface":
			b.Slaves = append(b.Slaves, BondSlave{Name: value})
			slave = &b.Slaves[len(b.Slaves)-1]
		case "MII Status":
			if slave != nil {
				slave.MIIUp = value == "up"
			} else {
				b.MIIUp = value == "up"
			}
		case "Bonding Mode":
			b.Mode = value
		case "Currently Active Slave":
			if value == "None" {
				b.NoActiveSlave = true
			} else {
				b.ActiveSlave = value
			}
		}
	}
	return b
}
