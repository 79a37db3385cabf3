package spool

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"os"
)

// The cursor file holds the read position: the first unacknowledged record
// is at or after (seg, off). Two fixed slots are written alternately in place,
// each with a generation and a CRC-32C; Open takes the valid slot with the
// higher generation. A write torn by a crash damages only the slot being
// written, so the previous position survives.
const (
	cursorFile     = "cursor"
	cursorSlotSize = 64
	cursorDataLen  = 32 // gen, seg, off, maxSeq
	// An extension after the first CRC (ignored by readers that predate
	// it): the record number at the position plus one (0: unknown), and a
	// CRC-32C of everything before it.
	cursorExtLen = cursorDataLen + 4 + 8
)

type cursor struct {
	gen    uint64
	seg    uint64
	off    int64
	maxSeq uint64
	// rn is the record number of the record at (seg, off), when rnOK: the
	// base from which Open counts samples lost in later segments.
	rn   uint64
	rnOK bool
}

func (c cursor) encode() []byte {
	b := make([]byte, 0, cursorSlotSize)
	b = binary.LittleEndian.AppendUint64(b, c.gen)
	b = binary.LittleEndian.AppendUint64(b, c.seg)
	b = binary.LittleEndian.AppendUint64(b, uint64(c.off))
	b = binary.LittleEndian.AppendUint64(b, c.maxSeq)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	var rn uint64
	if c.rnOK {
		rn = c.rn + 1
	}
	b = binary.LittleEndian.AppendUint64(b, rn)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	return b[:cursorSlotSize]
}

func decodeCursor(b []byte) (cursor, bool) {
	if len(b) < cursorDataLen+4 {
		return cursor{}, false
	}
	if crc32.Checksum(b[:cursorDataLen], castagnoli) != binary.LittleEndian.Uint32(b[cursorDataLen:]) {
		return cursor{}, false
	}
	c := cursor{
		gen:    binary.LittleEndian.Uint64(b[0:]),
		seg:    binary.LittleEndian.Uint64(b[8:]),
		off:    int64(binary.LittleEndian.Uint64(b[16:])),
		maxSeq: binary.LittleEndian.Uint64(b[24:]),
	}
	if len(b) >= cursorExtLen+4 && crc32.Checksum(b[:cursorExtLen], castagnoli) == binary.LittleEndian.Uint32(b[cursorExtLen:]) {
		if rn := binary.LittleEndian.Uint64(b[cursorDataLen+4:]); rn > 0 {
			c.rn, c.rnOK = rn-1, true
		}
	}
	return c, c.gen > 0 && c.off >= 0
}

// readCursor returns the newest valid cursor in f, or a zero cursor when
// there is none (a new spool, or both slots damaged: replay then starts at
// the oldest segment, which may deliver duplicates but loses nothing).
//
// fresh reports that the file is empty: a new spool that never removed a
// segment (or a cursor file deleted by hand).
func readCursor(f *os.File) (c cursor, fresh bool, err error) {
	b := make([]byte, 2*cursorSlotSize)
	n, err := f.ReadAt(b, 0)
	if err != nil && err != io.EOF {
		return cursor{}, false, err
	}
	b = b[:n]
	var best cursor
	for i := 0; i+cursorDataLen+4 <= len(b) && i < 2*cursorSlotSize; i += cursorSlotSize {
		if c, ok := decodeCursor(b[i:]); ok && c.gen > best.gen {
			best = c
		}
	}
	return best, n == 0, nil
}

// writeCursor writes c (whose gen the caller advanced) into its slot.
func writeCursor(f *os.File, c cursor) error {
	_, err := f.WriteAt(c.encode(), int64(c.gen%2)*cursorSlotSize)
	return err
}
