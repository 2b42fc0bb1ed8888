package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
)

// bbolt's on-disk layout, as far as checkFormat needs it (go.etcd.io/bbolt
// internal/common: page.go, meta.go). A page starts with a 16-byte header:
// id uint64, flags uint16, count uint16, overflow uint32. Pages 0 and 1
// are meta pages: after the header, magic uint32, version uint32, pageSize
// uint32, flags uint32, root bucket (root pgid uint64, sequence uint64),
// freelist pgid uint64, high-water pgid uint64, txid uint64 and an FNV-64a
// checksum of the meta's bytes before it.
const (
	boltPageHeader   = 16
	boltMetaSize     = 64 // meta fields up to and including the checksum
	boltMagic        = 0xED0CDAED
	boltFreelistFlag = 0x10
	boltNoFreelist   = ^uint64(0) // freelist not synced to disk
	// boltMaxPageSize bounds a meta's page size; bbolt uses the OS page
	// size (4 KiB here), and more than 64 KiB is not a file of ours.
	boltMaxPageSize = 64 << 10
)

// checkFormat reads what bbolt trusts when it opens a file and would turn
// into an allocation without bound: the freelist's length. A damaged
// freelist page can claim up to 2^64 free pages, and bbolt allocates
// room for a copy of them before it looks at the file's size (measured:
// one damaged state.db drove a process to 24 GB and the OOM killer). It
// returns a problem to move the file aside for, or nil; a file it cannot
// read at all is left to bbolt to report.
func checkFormat(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var best *boltMeta
	for i := range 2 {
		if m, ok := readBoltMeta(b, i); ok && (best == nil || m.txid > best.txid) {
			best = &m
		}
	}
	if best == nil {
		return errors.New("no valid bbolt meta page")
	}
	size := uint64(len(b))
	ps := uint64(best.pageSize)
	if best.pgid > size/ps+1 {
		return fmt.Errorf("meta says %d pages, the file has %d", best.pgid, size/ps)
	}
	if best.freelist == boltNoFreelist {
		return nil
	}
	off := best.freelist * ps
	if best.freelist >= best.pgid || off+boltPageHeader > size {
		return fmt.Errorf("freelist page %d is outside the file", best.freelist)
	}
	p := b[off:]
	flags := binary.LittleEndian.Uint16(p[8:])
	count := uint64(binary.LittleEndian.Uint16(p[10:]))
	overflow := uint64(binary.LittleEndian.Uint32(p[12:]))
	if flags != boltFreelistFlag {
		return fmt.Errorf("page %d is not a freelist page (flags %#x)", best.freelist, flags)
	}
	start := uint64(boltPageHeader)
	if count == 0xFFFF {
		if off+boltPageHeader+8 > size {
			return errors.New("freelist count is outside the file")
		}
		count = binary.LittleEndian.Uint64(p[boltPageHeader:])
		start += 8
	}
	end := (overflow + 1) * ps
	if overflow > size/ps || count > (end-start)/8 || off+end > size+ps {
		return fmt.Errorf("freelist claims %d pages in %d bytes", count, end)
	}
	return nil
}

// boltMeta is the part of a bbolt meta page checkFormat reads.
type boltMeta struct {
	pageSize uint32
	freelist uint64
	pgid     uint64
	txid     uint64
}

// readBoltMeta reads meta page i (0 or 1), if its magic, page size and
// checksum are right. Meta page 1 sits at the page size meta page 0
// names, or the common 4 KiB.
func readBoltMeta(b []byte, i int) (boltMeta, bool) {
	off := 0
	if i == 1 {
		off = 4096
		if len(b) >= boltPageHeader+12 {
			if ps := binary.LittleEndian.Uint32(b[boltPageHeader+8:]); ps >= 512 && ps <= boltMaxPageSize {
				off = int(ps)
			}
		}
	}
	if off+boltPageHeader+boltMetaSize > len(b) {
		return boltMeta{}, false
	}
	m := b[off+boltPageHeader : off+boltPageHeader+boltMetaSize]
	if binary.LittleEndian.Uint32(m[0:]) != boltMagic {
		return boltMeta{}, false
	}
	h := fnv.New64a()
	h.Write(m[:56])
	if h.Sum64() != binary.LittleEndian.Uint64(m[56:]) {
		return boltMeta{}, false
	}
	meta := boltMeta{
		pageSize: binary.LittleEndian.Uint32(m[8:]),
		freelist: binary.LittleEndian.Uint64(m[32:]),
		pgid:     binary.LittleEndian.Uint64(m[40:]),
		txid:     binary.LittleEndian.Uint64(m[48:]),
	}
	if meta.pageSize < 512 || meta.pageSize > boltMaxPageSize {
		return boltMeta{}, false
	}
	return meta, true
}
