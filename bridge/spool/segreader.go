package spool

import (
	"bytes"
	"io"
	"os"
)

// readBufSize is the reader's buffer: records are streamed through it, never
// indexed in memory. It grows only for a record larger than itself (at most
// headerLen+MaxRecordBytes).
const readBufSize = 128 << 10

// segReader streams the records of one segment file through a small buffer.
// It finds the next valid record, skipping damaged bytes by searching for the
// next record magic whose length and CRC check out.
type segReader struct {
	f    *os.File
	src  io.ReaderAt // f, or bytes in tests
	id   uint64
	buf  []byte
	base int64 // file offset of buf[0]
	r, w int   // unread window buf[r:w]
	// skips counts damaged regions skipped before a valid record.
	skips int
}

// reset points the reader at file f (segment id) at offset off.
func (r *segReader) reset(f *os.File, id uint64, off int64) {
	r.f, r.src, r.id = f, f, id
	if r.buf == nil {
		r.buf = make([]byte, readBufSize)
	}
	r.base, r.r, r.w = off, 0, 0
	r.skips = 0
}

// close closes the file, keeping the buffer for reuse.
func (r *segReader) close() {
	if r.f != nil {
		_ = r.f.Close()
		r.f, r.src = nil, nil
	}
	if len(r.buf) > readBufSize {
		r.buf = make([]byte, readBufSize) // give back a buffer grown for a big record
	}
}

// pos returns the file offset of the next unread byte.
func (r *segReader) pos() int64 { return r.base + int64(r.r) }

// seek moves to file offset off, keeping buffered bytes when off is inside
// the window.
func (r *segReader) seek(off int64) {
	if off >= r.base && off <= r.base+int64(r.w) {
		r.r = int(off - r.base)
		return
	}
	r.base, r.r, r.w = off, 0, 0
}

// fill makes at least n bytes available at buf[r:], reading no byte at or
// past limit, and reports whether it could.
func (r *segReader) fill(n int, limit int64) (bool, error) {
	if r.w-r.r >= n {
		return true, nil
	}
	if r.pos()+int64(n) > limit {
		return false, nil
	}
	if r.r > 0 {
		copy(r.buf, r.buf[r.r:r.w])
		r.base += int64(r.r)
		r.w -= r.r
		r.r = 0
	}
	if n > len(r.buf) {
		nb := make([]byte, n)
		copy(nb, r.buf[:r.w])
		r.buf = nb
	}
	want := len(r.buf)
	if rem := limit - r.base; rem < int64(want) {
		want = int(rem)
	}
	for r.w < n {
		m, err := r.src.ReadAt(r.buf[r.w:want], r.base+int64(r.w))
		r.w += m
		if err == io.EOF {
			// The file is shorter than limit: only when it was
			// truncated under us; report what is there.
			return r.w-r.r >= n, nil
		}
		if err != nil {
			return false, err
		}
	}
	return true, nil
}

// validHere reports whether a complete, checksummed record starts at pos()
// and ends at or before limit, and returns its total length.
func (r *segReader) validHere(limit int64) (int, bool, error) {
	ok, err := r.fill(headerLen, limit)
	if !ok || err != nil {
		return 0, false, err
	}
	n, ok := parseHeader(r.buf[r.r:])
	if !ok {
		return 0, false, nil
	}
	ok, err = r.fill(headerLen+n, limit)
	if !ok || err != nil {
		return 0, false, err
	}
	return headerLen + n, checkRecord(r.buf[r.r : r.r+headerLen+n]), nil
}

// next returns the payload of the next valid record before limit, or io.EOF
// when there is none. The payload aliases the buffer: it is valid until the
// next call. Damaged bytes followed by a valid record are skipped (counted in
// skips); damaged bytes with no valid record after them are left unread, so
// that after io.EOF pos() < limit tells there is an invalid tail.
func (r *segReader) next(limit int64) ([]byte, error) {
	for {
		if r.pos() >= limit {
			return nil, io.EOF
		}
		n, ok, err := r.validHere(limit)
		if err != nil {
			return nil, err
		}
		if ok {
			p := r.buf[r.r+headerLen : r.r+n]
			r.r += n
			return p, nil
		}
		at := r.pos()
		q, err := r.resync(at+1, limit)
		if err != nil {
			return nil, err
		}
		if q < 0 {
			r.seek(at)
			return nil, io.EOF
		}
		r.skips++
		r.seek(q)
	}
}

// resync returns the offset of the first valid record at or after from and
// before limit, or -1.
func (r *segReader) resync(from, limit int64) (int64, error) {
	r.seek(from)
	for {
		ok, err := r.fill(len(recordMagic), limit)
		if err != nil {
			return -1, err
		}
		if !ok {
			return -1, nil
		}
		i := bytes.Index(r.buf[r.r:r.w], recordMagic[:])
		if i < 0 {
			r.r = r.w - (len(recordMagic) - 1)
			continue
		}
		r.r += i
		cand := r.pos()
		if _, ok, err := r.validHere(limit); err != nil {
			return -1, err
		} else if ok {
			return cand, nil
		}
		r.seek(cand + 1)
	}
}

// completeAt reports whether the bytes at pos() carry a record header whose
// declared record fits before limit: a whole record that fails its checksum
// (damage) rather than one cut short by a crash (a torn write).
func (r *segReader) completeAt(limit int64) bool {
	ok, err := r.fill(headerLen, limit)
	if !ok || err != nil {
		return false
	}
	n, ok := parseHeader(r.buf[r.r:])
	return ok && r.pos()+int64(headerLen+n) <= limit
}
