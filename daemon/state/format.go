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
		return walkTree(b, *best)
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
	return walkTree(b, *best)
}

// walkTree walks the B+tree of buckets from the meta's root the way a
// bbolt cursor would, with bounds: every page once (a page reached twice
// makes bbolt's cursor loop, growing its stack until memory runs out:
// measured), no deeper than maxTreeDepth, every element inside its page,
// every child inside the file.
func walkTree(b []byte, m boltMeta) error {
	w := treeWalker{b: b, ps: uint64(m.pageSize), pages: m.pgid, seen: map[uint64]bool{}}
	return w.page(m.root, 0)
}

// maxTreeDepth bounds the nesting of pages and buckets; state.db has a
// few small buckets, so a real file is two or three deep.
const maxTreeDepth = 32

// bbolt page and element flags.
const (
	boltBranchFlag = 0x01
	boltLeafFlag   = 0x02
	boltBucketLeaf = 0x01 // a leaf element that is a bucket
	boltElemSize   = 16   // branch and leaf elements alike
)

type treeWalker struct {
	b     []byte
	ps    uint64
	pages uint64 // the meta's high-water mark
	seen  map[uint64]bool
}

// page checks page id and what hangs below it.
func (w *treeWalker) page(id uint64, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("tree deeper than %d", maxTreeDepth)
	}
	if id < 2 || id >= w.pages {
		return fmt.Errorf("page %d is outside the file's %d pages", id, w.pages)
	}
	off := id * w.ps
	if off+boltPageHeader > uint64(len(w.b)) {
		return fmt.Errorf("page %d is past the end of the file", id)
	}
	overflow := uint64(binary.LittleEndian.Uint32(w.b[off+12:]))
	if overflow >= w.pages || id+overflow >= w.pages || off+(overflow+1)*w.ps > uint64(len(w.b)) {
		return fmt.Errorf("page %d overflows past the file", id)
	}
	for i := id; i <= id+overflow; i++ {
		if w.seen[i] {
			return fmt.Errorf("page %d is reached twice", i)
		}
		w.seen[i] = true
	}
	if got := binary.LittleEndian.Uint64(w.b[off:]); got != id {
		return fmt.Errorf("page %d says it is page %d", id, got)
	}
	return w.elements(w.b[off:off+(overflow+1)*w.ps], fmt.Sprintf("page %d", id), depth)
}

// elements checks the branch or leaf page p (a file page, or an inline
// bucket's page, which holds only leaf elements).
func (w *treeWalker) elements(p []byte, name string, depth int) error {
	if len(p) < boltPageHeader {
		return fmt.Errorf("%s: shorter than a page header", name)
	}
	flags := binary.LittleEndian.Uint16(p[8:])
	count := uint64(binary.LittleEndian.Uint16(p[10:]))
	if boltPageHeader+count*boltElemSize > uint64(len(p)) {
		return fmt.Errorf("%s: %d elements do not fit", name, count)
	}
	if flags != boltBranchFlag && flags != boltLeafFlag {
		// bbolt's cursor takes any page without the leaf bit for a branch.
		return fmt.Errorf("%s: not a branch or leaf page (flags %#x)", name, flags)
	}
	if flags == boltBranchFlag && count == 0 {
		// bbolt never writes one, and its cursor descends into element 0
		// of a branch page whatever the count says.
		return fmt.Errorf("%s: a branch page without elements", name)
	}
	for i := range count {
		at := boltPageHeader + i*boltElemSize
		e := p[at:]
		switch flags {
		case boltBranchFlag:
			pos, ksize := uint64(binary.LittleEndian.Uint32(e[0:])), uint64(binary.LittleEndian.Uint32(e[4:]))
			if at+pos+ksize > uint64(len(p)) {
				return fmt.Errorf("%s: element %d's key is outside the page", name, i)
			}
			if err := w.page(binary.LittleEndian.Uint64(e[8:]), depth+1); err != nil {
				return err
			}
		case boltLeafFlag:
			ef := binary.LittleEndian.Uint32(e[0:])
			pos := uint64(binary.LittleEndian.Uint32(e[4:]))
			ksize := uint64(binary.LittleEndian.Uint32(e[8:]))
			vsize := uint64(binary.LittleEndian.Uint32(e[12:]))
			start := at + pos
			if start+ksize+vsize > uint64(len(p)) {
				return fmt.Errorf("%s: element %d is outside the page", name, i)
			}
			if ef&boltBucketLeaf == 0 {
				continue
			}
			v := p[start+ksize : start+ksize+vsize]
			if len(v) < 16 {
				return fmt.Errorf("%s: element %d: a bucket header of %d bytes", name, i, len(v))
			}
			if root := binary.LittleEndian.Uint64(v[0:]); root != 0 {
				if err := w.page(root, depth+1); err != nil {
					return err
				}
			} else if err := w.elements(v[16:], fmt.Sprintf("%s: inline bucket %d", name, i), depth+1); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: not a branch or leaf page (flags %#x)", name, flags)
		}
	}
	return nil
}

// boltMeta is the part of a bbolt meta page checkFormat reads.
type boltMeta struct {
	pageSize uint32
	root     uint64 // the root bucket's page
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
		root:     binary.LittleEndian.Uint64(m[16:]),
		freelist: binary.LittleEndian.Uint64(m[32:]),
		pgid:     binary.LittleEndian.Uint64(m[40:]),
		txid:     binary.LittleEndian.Uint64(m[48:]),
	}
	if meta.pageSize < 512 || meta.pageSize > boltMaxPageSize {
		return boltMeta{}, false
	}
	return meta, true
}
