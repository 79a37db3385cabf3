package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// Framing constants; the layout is described in the package documentation.
const (
	// headerLen is the record header: magic, payload length, CRC-32C.
	headerLen = 12
	// segHeaderLen is the segment file header: "m2mspool", version, reserved.
	segHeaderLen = 16
	// formatVersion is written in every segment header. Version 2 added the
	// start record after the header; version 1 segments (no start record)
	// are still read.
	formatVersion = 2
	// oldestFormatVersion is the oldest version this package reads.
	oldestFormatVersion = 1
	// minPayload is the smallest valid payload: seq, kind, quality, flags,
	// code (one varint byte) and four empty strings.
	minPayload = 8 + 3 + 1 + 4
)

// MaxRecordBytes is the largest encoded sample (payload) the spool accepts:
// 1 MiB. It bounds the memory a reader needs for one record. Append rejects
// a sample whose strings make it larger.
const MaxRecordBytes = 1 << 20

// recordMagic starts every record. Bytes unlikely in text, varints and
// zero-filled blocks, so that resynchronising after damage rarely stops on a
// false start (and a false start must still pass the length and CRC checks).
var recordMagic = [4]byte{0xC5, 0x9A, 0x3E, 0xD1}

// segMagic starts every segment file.
var segMagic = [8]byte{'m', '2', 'm', 's', 'p', 'o', 'o', 'l'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errRecordTooLarge is wrapped by Append's error for an oversized sample.
var errRecordTooLarge = errors.New("spool: sample too large")

// appendSegHeader appends a segment file header to dst.
func appendSegHeader(dst []byte) []byte {
	dst = append(dst, segMagic[:]...)
	dst = binary.LittleEndian.AppendUint32(dst, formatVersion)
	return binary.LittleEndian.AppendUint32(dst, 0)
}

// appendRecord appends one framed record holding s to dst. On error dst is
// returned unchanged in length.
func appendRecord(dst []byte, s *bridge.Sample) ([]byte, error) {
	start := len(dst)
	dst = append(dst, recordMagic[0], recordMagic[1], recordMagic[2], recordMagic[3], 0, 0, 0, 0, 0, 0, 0, 0)
	dst = appendPayload(dst, s)
	n := len(dst) - start - headerLen
	if n > MaxRecordBytes {
		return dst[:start], fmt.Errorf("%w: encodes to %d bytes, limit %d", errRecordTooLarge, n, MaxRecordBytes)
	}
	binary.LittleEndian.PutUint32(dst[start+4:], uint32(n))
	crc := crc32.Update(0, castagnoli, dst[start+4:start+8])
	crc = crc32.Update(crc, castagnoli, dst[start+headerLen:])
	binary.LittleEndian.PutUint32(dst[start+8:], crc)
	return dst, nil
}

// appendPayload appends the record payload for s.
func appendPayload(dst []byte, s *bridge.Sample) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, s.Seq)
	kind := s.Value.Kind()
	var flags byte
	if !s.Time.IsZero() {
		flags |= 1
	}
	dst = append(dst, byte(kind), byte(s.Quality), flags)
	if flags&1 != 0 {
		dst = binary.AppendVarint(dst, s.Time.Unix())
		dst = binary.AppendUvarint(dst, uint64(s.Time.Nanosecond()))
	}
	dst = binary.AppendUvarint(dst, uint64(s.Code))
	switch kind {
	case bridge.KindFloat:
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.Value.Float()))
	case bridge.KindInt:
		i, _ := s.Value.Int()
		dst = binary.AppendVarint(dst, i)
	case bridge.KindUint:
		u, _ := s.Value.Uint()
		dst = binary.AppendUvarint(dst, u)
	case bridge.KindBool:
		b, _ := s.Value.Bool()
		if b {
			dst = append(dst, 1)
		} else {
			dst = append(dst, 0)
		}
	case bridge.KindString:
		dst = appendString(dst, s.Value.Str())
	}
	dst = appendString(dst, s.Source)
	dst = appendString(dst, s.Point)
	dst = appendString(dst, s.Unit)
	return appendString(dst, s.Reason)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// payloadBound is an upper bound of the payload size of s, cheap to compute.
func payloadBound(s *bridge.Sample) int {
	return 8 + 3 + 2*binary.MaxVarintLen64 + binary.MaxVarintLen32 + binary.MaxVarintLen64 +
		5*binary.MaxVarintLen64 + len(s.Value.Str()) + len(s.Source) + len(s.Point) + len(s.Unit) + len(s.Reason)
}

// parseHeader checks a record header (at least headerLen bytes) and returns
// the payload length it declares.
func parseHeader(h []byte) (int, bool) {
	if h[0] != recordMagic[0] || h[1] != recordMagic[1] || h[2] != recordMagic[2] || h[3] != recordMagic[3] {
		return 0, false
	}
	n := binary.LittleEndian.Uint32(h[4:8])
	if n < minPayload || n > MaxRecordBytes {
		return 0, false
	}
	return int(n), true
}

// checkRecord reports whether rec (header and payload) carries a valid CRC.
func checkRecord(rec []byte) bool {
	crc := crc32.Update(0, castagnoli, rec[4:8])
	crc = crc32.Update(crc, castagnoli, rec[headerLen:])
	return crc == binary.LittleEndian.Uint32(rec[8:12])
}

// A seal record ends every sealed segment: it has the record framing, and a
// payload no sample has (the kind byte 0xFF): the segment's record count and
// highest Seq. Open trusts it instead of reading the whole segment.
const (
	sealKind       = 0xFF
	sealPayloadLen = 8 + 1 + 8
	sealRecordLen  = headerLen + sealPayloadLen
)

// appendSeal appends a seal record to dst.
func appendSeal(dst []byte, count, maxSeq uint64) []byte {
	start := len(dst)
	dst = append(dst, recordMagic[:]...)
	dst = binary.LittleEndian.AppendUint32(dst, sealPayloadLen)
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	dst = binary.LittleEndian.AppendUint64(dst, count)
	dst = append(dst, sealKind)
	dst = binary.LittleEndian.AppendUint64(dst, maxSeq)
	crc := crc32.Update(0, castagnoli, dst[start+4:start+8])
	crc = crc32.Update(crc, castagnoli, dst[start+headerLen:])
	binary.LittleEndian.PutUint32(dst[start+8:], crc)
	return dst
}

// isSeal reports whether a valid payload is a seal's.
func isSeal(p []byte) bool { return len(p) == sealPayloadLen && p[8] == sealKind }

// A start record follows the header of every version 2 segment: the record
// framing and a payload of the seal's size with the kind byte 0xFE, holding
// the record number of the segment's first sample (records appended to the
// spool directory before it, numbered across segments and restarts) and
// flags. Recovery counts the samples lost between two segments from their
// record numbers, however much lies damaged or missing between them.
const (
	startKind = 0xFE
	// startContinues: the record number follows on exactly from the
	// previous segment's (or from the cursor's); without it the number
	// starts a new count and no loss can be computed up to this segment.
	startContinues = 1
	// segStartLen is where the first sample record of a version 2
	// segment starts: the header and the start record.
	segStartLen = segHeaderLen + sealRecordLen
)

// appendStart appends a start record to dst.
func appendStart(dst []byte, rn uint64, continues bool) []byte {
	start := len(dst)
	var flags uint64
	if continues {
		flags |= startContinues
	}
	dst = append(dst, recordMagic[:]...)
	dst = binary.LittleEndian.AppendUint32(dst, sealPayloadLen)
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	dst = binary.LittleEndian.AppendUint64(dst, rn)
	dst = append(dst, startKind)
	dst = binary.LittleEndian.AppendUint64(dst, flags)
	crc := crc32.Update(0, castagnoli, dst[start+4:start+8])
	crc = crc32.Update(crc, castagnoli, dst[start+headerLen:])
	binary.LittleEndian.PutUint32(dst[start+8:], crc)
	return dst
}

// isStart reports whether a valid payload is a start record's.
func isStart(p []byte) bool { return len(p) == sealPayloadLen && p[8] == startKind }

// isMarker reports whether a valid payload is a seal or start record, not a
// sample.
func isMarker(p []byte) bool { return isSeal(p) || isStart(p) }

// parseStart returns the record number and continuity flag of a start
// record (header and payload), if rec is one.
func parseStart(rec []byte) (rn uint64, continues, ok bool) {
	if len(rec) != sealRecordLen {
		return 0, false, false
	}
	if n, ok := parseHeader(rec); !ok || n != sealPayloadLen || !checkRecord(rec) || !isStart(rec[headerLen:]) {
		return 0, false, false
	}
	p := rec[headerLen:]
	return binary.LittleEndian.Uint64(p), binary.LittleEndian.Uint64(p[9:])&startContinues != 0, true
}

// parseSeal returns the count and highest Seq of a seal record (header and
// payload), if rec is one.
func parseSeal(rec []byte) (count, maxSeq uint64, ok bool) {
	if len(rec) != sealRecordLen {
		return 0, 0, false
	}
	if n, ok := parseHeader(rec); !ok || n != sealPayloadLen || !checkRecord(rec) || !isSeal(rec[headerLen:]) {
		return 0, 0, false
	}
	p := rec[headerLen:]
	return binary.LittleEndian.Uint64(p), binary.LittleEndian.Uint64(p[9:]), true
}

// payloadSeq returns the Seq of a valid payload without decoding the rest.
func payloadSeq(p []byte) uint64 { return binary.LittleEndian.Uint64(p) }

// DecodeError reports a record payload that passed its checksum but does not
// decode: written by an incompatible version, or damaged in a way the CRC
// did not catch.
type DecodeError struct {
	// Offset is the byte offset in the payload where decoding failed.
	Offset int
	// What says what was wrong.
	What string
}

// Error names what was wrong and where.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("spool: record payload: %s at byte %d", e.What, e.Offset)
}

// decoder reads a payload; the first error sticks.
type decoder struct {
	p   []byte
	off int
	err *DecodeError
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = &DecodeError{Offset: d.off, What: what}
	}
	d.p = nil
}

func (d *decoder) u64(what string) uint64 {
	if len(d.p) < 8 {
		d.fail("short " + what)
		return 0
	}
	v := binary.LittleEndian.Uint64(d.p)
	d.p, d.off = d.p[8:], d.off+8
	return v
}

func (d *decoder) byte(what string) byte {
	if len(d.p) < 1 {
		d.fail("short " + what)
		return 0
	}
	v := d.p[0]
	d.p, d.off = d.p[1:], d.off+1
	return v
}

func (d *decoder) uvarint(what string) uint64 {
	v, n := binary.Uvarint(d.p)
	if n <= 0 {
		d.fail("bad varint " + what)
		return 0
	}
	d.p, d.off = d.p[n:], d.off+n
	return v
}

func (d *decoder) varint(what string) int64 {
	v, n := binary.Varint(d.p)
	if n <= 0 {
		d.fail("bad varint " + what)
		return 0
	}
	d.p, d.off = d.p[n:], d.off+n
	return v
}

func (d *decoder) bytes(what string) []byte {
	n := d.uvarint(what + " length")
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.p)) {
		d.fail(what + " length past the end")
		return nil
	}
	b := d.p[:n]
	d.p, d.off = d.p[n:], d.off+int(n)
	return b
}

// decodePayload decodes a record payload into s. Short strings (names,
// units, reasons) go through in, so that a replay of many samples of the
// same points does not allocate a string per field.
func decodePayload(p []byte, s *bridge.Sample, in *interner) error {
	d := decoder{p: p}
	seq := d.u64("seq")
	kind := bridge.Kind(d.byte("kind"))
	quality := bridge.Quality(d.byte("quality"))
	flags := d.byte("flags")
	if d.err == nil && flags&^1 != 0 {
		d.off--
		d.fail(fmt.Sprintf("unknown flags %#x", flags))
	}
	var t time.Time
	if flags&1 != 0 {
		sec := d.varint("time seconds")
		ns := d.uvarint("time nanoseconds")
		if d.err == nil && ns >= 1e9 {
			d.fail("time nanoseconds out of range")
		}
		t = time.Unix(sec, int64(ns)).UTC()
	}
	code := d.uvarint("code")
	if d.err == nil && code > math.MaxUint32 {
		d.fail("code out of range")
	}
	var v bridge.Value
	switch kind {
	case bridge.KindNone:
	case bridge.KindFloat:
		v = bridge.Float(math.Float64frombits(d.u64("float value")))
	case bridge.KindInt:
		v = bridge.Int(d.varint("int value"))
	case bridge.KindUint:
		v = bridge.Uint(d.uvarint("uint value"))
	case bridge.KindBool:
		switch d.byte("bool value") {
		case 0:
			v = bridge.Bool(false)
		case 1:
			v = bridge.Bool(true)
		default:
			d.fail("bool value not 0 or 1")
		}
	case bridge.KindString:
		v = bridge.String(string(d.bytes("string value")))
	default:
		d.fail(fmt.Sprintf("unknown value kind %d", kind))
	}
	source := in.get(d.bytes("source"))
	point := in.get(d.bytes("point"))
	unit := in.get(d.bytes("unit"))
	reason := in.get(d.bytes("reason"))
	if d.err == nil && len(d.p) != 0 {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.p)))
	}
	if d.err != nil {
		return d.err
	}
	*s = bridge.Sample{
		Source: source, Point: point, Value: v, Unit: unit, Time: t,
		Quality: quality, Reason: reason, Code: uint32(code), Seq: seq,
	}
	return nil
}

// interner returns one string for equal short byte strings, bounded in size.
type interner struct {
	m map[string]string
}

const (
	internMaxLen     = 64
	internMaxEntries = 4096
)

func (in *interner) get(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if in == nil || len(b) > internMaxLen {
		return string(b)
	}
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	if in.m == nil {
		in.m = make(map[string]string)
	} else if len(in.m) >= internMaxEntries {
		clear(in.m)
	}
	s := string(b)
	in.m[s] = s
	return s
}
