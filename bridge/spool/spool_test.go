package spool

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
)

func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		s    bridge.Sample
	}{
		{"zero sample", bridge.Sample{}},
		{"zero time kept zero", bridge.Sample{Source: "m", Point: "p", Value: bridge.Float(1)}},
		{"unix epoch is not zero time", bridge.Sample{Time: time.Unix(0, 0)}},
		{"before 1970", bridge.Sample{Time: time.Date(1601, 1, 1, 0, 0, 0, 1, time.UTC)}},
		{"far future", bridge.Sample{Time: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)}},
		{"NaN", bridge.Sample{Value: bridge.Float(math.NaN())}},
		{"negative zero", bridge.Sample{Value: bridge.Float(math.Copysign(0, -1))}},
		{"inf", bridge.Sample{Value: bridge.Float(math.Inf(-1))}},
		{"min int", bridge.Sample{Value: bridge.Int(math.MinInt64)}},
		{"max uint", bridge.Sample{Value: bridge.Uint(math.MaxUint64), Seq: math.MaxUint64}},
		{"bool true", bridge.Sample{Value: bridge.Bool(true)}},
		{"bool false", bridge.Sample{Value: bridge.Bool(false)}},
		{"empty string value", bridge.Sample{Value: bridge.String("")}},
		{"unicode", bridge.Sample{Source: "Zähler", Point: "温度", Unit: "°C", Value: bridge.String("ok ✓")}},
		{"bad with reason and code", bridge.Sample{Quality: bridge.Bad, Reason: "modbus: exception 2 (illegal data address)", Code: 0x80340000}},
		{"unknown quality value kept", bridge.Sample{Quality: bridge.Quality(7)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := appendRecord(nil, &tt.s)
			require.NoError(t, err)
			n, ok := parseHeader(rec)
			require.True(t, ok)
			require.Len(t, rec, headerLen+n)
			require.True(t, checkRecord(rec))
			var got bridge.Sample
			require.NoError(t, decodePayload(rec[headerLen:], &got, &interner{}))
			requireSame(t, tt.s, got)
			if tt.s.Value.Kind() == bridge.KindFloat {
				require.Equal(t, math.Float64bits(tt.s.Value.Float()), math.Float64bits(got.Value.Float()))
			}
		})
	}
	for seq := range uint64(100) {
		want := sampleFor(seq)
		rec, err := appendRecord(nil, &want)
		require.NoError(t, err)
		var got bridge.Sample
		require.NoError(t, decodePayload(rec[headerLen:], &got, nil))
		requireSame(t, want, got)
	}
}

func TestDecodeErrorsNameTheField(t *testing.T) {
	s := sampleFor(4) // a string value
	rec, err := appendRecord(nil, &s)
	require.NoError(t, err)
	p := rec[headerLen:]
	var got bridge.Sample
	err = decodePayload(p[:len(p)-1], &got, nil)
	var de *DecodeError
	require.ErrorAs(t, err, &de)
	assert.Contains(t, de.Error(), "reason")

	bad := append([]byte(nil), p...)
	bad[8] = 99 // kind
	require.ErrorContains(t, decodePayload(bad, &got, nil), "unknown value kind 99")

	require.ErrorContains(t, decodePayload(append(append([]byte(nil), p...), 0), &got, nil), "1 trailing bytes")
}

func TestAppendPeekAck(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	defer s.Close()
	ctx := context.Background()
	require.NoError(t, s.Append(ctx, nil))
	n, err := s.Peek(make([]bridge.Sample, 10))
	require.NoError(t, err)
	require.Zero(t, n)

	require.NoError(t, s.Append(ctx, samplesFrom(1, 25)))
	require.EqualValues(t, 25, s.Len())

	buf := make([]bridge.Sample, 10)
	n, err = s.Peek(buf)
	require.NoError(t, err)
	requireSeqs(t, buf[:n], 1, 10)
	// A second Peek without Ack returns the same samples.
	buf2 := make([]bridge.Sample, 10)
	n, err = s.Peek(buf2)
	require.NoError(t, err)
	requireSeqs(t, buf2[:n], 1, 10)

	require.NoError(t, s.Ack(4))
	require.EqualValues(t, 21, s.Len())
	n, err = s.Peek(buf)
	require.NoError(t, err)
	requireSeqs(t, buf[:n], 5, 10)
	// Ack more than the Peek returned: the rest is skipped on disk.
	require.NoError(t, s.Ack(15))
	require.EqualValues(t, 6, s.Len())
	require.ErrorContains(t, s.Ack(7), "only 6 are held")
	require.Error(t, s.Ack(-1))
	requireSeqs(t, drain(t, s, 4), 20, 6)
	require.Zero(t, s.Len())
	require.Zero(t, s.Dropped())
}

func TestReopenResumesAtFirstUnacknowledged(t *testing.T) {
	dir := t.TempDir()
	o := Options{MaxBytes: 1 << 20, SegmentBytes: 8 << 10}
	s := mustOpen(t, dir, o)
	appendSeqs(t, s, 1, 1000, 37)
	buf := make([]bridge.Sample, 300)
	n, err := s.Peek(buf)
	require.NoError(t, err)
	require.Equal(t, 300, n)
	require.NoError(t, s.Ack(250)) // crosses segment boundaries
	require.NoError(t, s.Close())
	require.ErrorIs(t, s.Close(), bridge.ErrClosed)

	s = mustOpen(t, dir, o)
	require.EqualValues(t, 750, s.Len())
	n, err = s.Peek(buf[:10])
	require.NoError(t, err)
	requireSeqs(t, buf[:n], 251, 10)
	require.NoError(t, s.Close())

	// Peeked but not acknowledged: replayed again after reopening.
	s = mustOpen(t, dir, o)
	require.EqualValues(t, 750, s.Len())
	appendSeqs(t, s, 1001, 100, 100)
	got := drain(t, s, 64)
	requireSeqs(t, got, 251, 850)
	require.Zero(t, s.Dropped())
	require.NoError(t, s.Close())

	// Everything acknowledged: only the active segment is left.
	require.Len(t, segFiles(t, dir), 1)
	s = mustOpen(t, dir, o)
	require.Zero(t, s.Len())
	require.NoError(t, s.Close())
}

func TestSegmentsDeletedWhenAcknowledged(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{MaxBytes: 1 << 20, SegmentBytes: MinSegmentBytes})
	defer s.Close()
	appendSeqs(t, s, 1, 2000, 100)
	files := len(segFiles(t, dir))
	require.Greater(t, files, 10)
	bytes := s.Bytes()
	buf := make([]bridge.Sample, 1000)
	n, err := s.Peek(buf)
	require.NoError(t, err)
	require.NoError(t, s.Ack(n))
	require.Less(t, len(segFiles(t, dir)), files)
	require.Less(t, s.Bytes(), bytes)
	drain(t, s, 100)
	require.Len(t, segFiles(t, dir), 1)
}

// writeSegments fills a spool with n samples and closes it, returning the
// segment files, oldest first.
func writeSegments(t *testing.T, dir string, o Options, n int) []string {
	t.Helper()
	s := mustOpen(t, dir, o)
	appendSeqs(t, s, 1, n, 10)
	require.NoError(t, s.Close())
	return segFiles(t, dir)
}

// recordOffsets returns the offsets of the records of a segment file.
func recordOffsets(t *testing.T, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var offs []int64
	for off := segHeaderLen; off < len(b); {
		n, ok := parseHeader(b[off:])
		require.True(t, ok)
		offs = append(offs, int64(off))
		off += headerLen + n
	}
	return offs
}

func TestTornTailIsTruncated(t *testing.T) {
	for _, cut := range []int{1, headerLen - 1, headerLen + 3} {
		t.Run("", func(t *testing.T) {
			dir := t.TempDir()
			o := Options{MaxBytes: 1 << 20, SegmentBytes: 8 << 10}
			files := writeSegments(t, dir, o, 300)
			require.Greater(t, len(files), 1)
			last := files[len(files)-1]
			offs := recordOffsets(t, last)
			size := fileSize(t, last)
			// A crash in the middle of writing one more record: a
			// partial record at the end.
			rec, err := appendRecord(nil, new(sampleFor(301)))
			require.NoError(t, err)
			f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
			require.NoError(t, err)
			_, err = f.Write(rec[:cut])
			require.NoError(t, err)
			require.NoError(t, f.Close())

			s := mustOpen(t, dir, o)
			require.EqualValues(t, 300, s.Len())
			require.Zero(t, s.Dropped(), "a torn write is not a dropped sample")
			require.Equal(t, size, fileSize(t, last), "the torn tail is truncated")
			require.Len(t, recordOffsets(t, last), len(offs))
			appendSeqs(t, s, 301, 50, 7)
			requireSeqs(t, drain(t, s, 100), 1, 350)
			require.NoError(t, s.Close())
		})
	}
	t.Run("last segment cut inside a record", func(t *testing.T) {
		dir := t.TempDir()
		o := Options{MaxBytes: 1 << 20, SegmentBytes: 8 << 10}
		files := writeSegments(t, dir, o, 300)
		last := files[len(files)-1]
		offs := recordOffsets(t, last)
		require.NoError(t, os.Truncate(last, offs[len(offs)-1]+5))
		s := mustOpen(t, dir, o)
		defer s.Close()
		require.EqualValues(t, 299, s.Len())
		require.Zero(t, s.Dropped())
		requireSeqs(t, drain(t, s, 64), 1, 299)
	})
}

func TestDamagedRecordIsSkipped(t *testing.T) {
	tests := []struct {
		name  string
		where func(recOff int64, recLen int) int64 // byte to flip
	}{
		{"magic", func(off int64, _ int) int64 { return off + 1 }},
		{"length", func(off int64, _ int) int64 { return off + 6 }}, // a huge length
		{"length low bit", func(off int64, _ int) int64 { return off + 4 }},
		{"crc", func(off int64, _ int) int64 { return off + 9 }},
		{"seq", func(off int64, _ int) int64 { return off + headerLen }},
		{"last payload byte", func(off int64, n int) int64 { return off + int64(n) - 1 }},
	}
	for _, tt := range tests {
		for _, which := range []string{"sealed", "last"} {
			t.Run(tt.name+"/"+which, func(t *testing.T) {
				dir := t.TempDir()
				o := Options{MaxBytes: 1 << 20, SegmentBytes: 8 << 10}
				files := writeSegments(t, dir, o, 400)
				require.Greater(t, len(files), 2)
				path := files[0]
				if which == "last" {
					path = files[len(files)-1]
				}
				offs := recordOffsets(t, path)
				require.Greater(t, len(offs), 3)
				k := len(offs) / 2
				b, err := os.ReadFile(path)
				require.NoError(t, err)
				at := tt.where(offs[k], int(offs[k+1]-offs[k]))
				b[at] ^= 0x40
				require.NoError(t, os.WriteFile(path, b, 0o644))
				// Which seq did record k of that file hold?
				var lost uint64
				{
					n, _ := parseHeader(b[offs[k+1]:])
					var next bridge.Sample
					require.NoError(t, decodePayload(b[offs[k+1]+headerLen:offs[k+1]+headerLen+int64(n)], &next, nil))
					lost = next.Seq - 1
				}

				s := mustOpen(t, dir, o)
				defer s.Close()
				if which == "sealed" {
					// Open trusts the seal; replay finds the damage.
					require.Zero(t, s.Dropped())
					require.EqualValues(t, 400, s.Len())
				} else {
					require.EqualValues(t, 1, s.Dropped())
					require.EqualValues(t, 399, s.Len())
				}
				got := drain(t, s, 50)
				require.Len(t, got, 399)
				require.EqualValues(t, 1, s.Dropped())
				require.Zero(t, s.Len())
				want := uint64(1)
				for _, g := range got {
					if want == lost {
						want++
					}
					requireSame(t, sampleFor(want), g)
					want++
				}
				// The log goes on.
				appendSeqs(t, s, 401, 10, 10)
				requireSeqs(t, drain(t, s, 50), 401, 10)
			})
		}
	}
}

func TestDamagedSealMeansFullScan(t *testing.T) {
	dir := t.TempDir()
	o := Options{MaxBytes: 1 << 20, SegmentBytes: 8 << 10}
	files := writeSegments(t, dir, o, 400)
	require.Greater(t, len(files), 2)
	path := files[1]
	offs := recordOffsets(t, path)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	// The seal is the last record; damage it and one sample record.
	require.EqualValues(t, len(b)-sealRecordLen, offs[len(offs)-1])
	b[len(b)-3] ^= 0x01
	b[offs[3]+headerLen+1] ^= 0x01
	require.NoError(t, os.WriteFile(path, b, 0o644))
	s := mustOpen(t, dir, o)
	defer s.Close()
	require.EqualValues(t, 1, s.Dropped(), "the damaged sample; the seal is not a sample")
	require.EqualValues(t, 399, s.Len())
	got := drain(t, s, 64)
	require.Len(t, got, 399)
	require.EqualValues(t, 1, s.Dropped())
	require.EqualValues(t, 1, s.Lost())
}

func TestSealWithoutSuccessorIsUnsealed(t *testing.T) {
	// A crash after sealing the last segment and before creating the next:
	// the seal is cut off and appending goes on in that segment.
	dir := t.TempDir()
	o := Options{MaxBytes: 1 << 20, SegmentBytes: 8 << 10}
	files := writeSegments(t, dir, o, 400)
	last := files[len(files)-1]
	require.NoError(t, os.Remove(last))
	prev := files[len(files)-2]
	size := fileSize(t, prev)
	s := mustOpen(t, dir, o)
	require.Equal(t, size-sealRecordLen, fileSize(t, prev))
	n := s.Len()
	appendSeqs(t, s, 10001, 5, 5)
	require.NoError(t, s.Close())
	s = mustOpen(t, dir, o)
	defer s.Close()
	require.Equal(t, n+5, s.Len())
	got := drain(t, s, 64)
	requireSeqs(t, got[len(got)-5:], 10001, 5)
	requireSeqs(t, got[:n], 1, int(n))
	require.Zero(t, s.Dropped())
}

func TestDamagedTailOfLastSegment(t *testing.T) {
	dir := t.TempDir()
	o := Options{MaxBytes: 1 << 20, SegmentBytes: 8 << 10}
	files := writeSegments(t, dir, o, 100)
	last := files[len(files)-1]
	offs := recordOffsets(t, last)
	b, err := os.ReadFile(last)
	require.NoError(t, err)
	b[len(b)-2] ^= 1 // the last record is complete but damaged
	require.NoError(t, os.WriteFile(last, b, 0o644))
	s := mustOpen(t, dir, o)
	defer s.Close()
	require.EqualValues(t, 1, s.Dropped())
	require.EqualValues(t, 99, s.Len())
	require.Equal(t, offs[len(offs)-1], fileSize(t, last))
	requireSeqs(t, drain(t, s, 50), 1, 99)
}

func TestZeroFilledTailAfterPowerLoss(t *testing.T) {
	// A file system may extend a file and lose the data written into it:
	// the tail reads as zeros.
	dir := t.TempDir()
	o := Options{MaxBytes: 1 << 20, SegmentBytes: 64 << 10}
	files := writeSegments(t, dir, o, 100)
	last := files[len(files)-1]
	size := fileSize(t, last)
	f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write(make([]byte, 5000))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	s := mustOpen(t, dir, o)
	defer s.Close()
	require.Zero(t, s.Dropped())
	require.Equal(t, size, fileSize(t, last))
	requireSeqs(t, drain(t, s, 50), 1, 100)
}

func TestDamagedCursorReplaysFromOldest(t *testing.T) {
	dir := t.TempDir()
	o := Options{MaxBytes: 1 << 20, SegmentBytes: 64 << 10}
	s := mustOpen(t, dir, o)
	appendSeqs(t, s, 1, 100, 10)
	buf := make([]bridge.Sample, 10)
	for range 3 {
		_, err := s.Peek(buf)
		require.NoError(t, err)
		require.NoError(t, s.Ack(10))
	}
	require.NoError(t, s.Close())
	path := filepath.Join(dir, cursorFile)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	// Damage the newest slot: the previous position is used.
	c, err := func() (cursor, error) {
		f, err := os.Open(path)
		if err != nil {
			return cursor{}, err
		}
		defer f.Close()
		c, _, err := readCursor(f)
		return c, err
	}()
	require.NoError(t, err)
	b[int(c.gen%2)*cursorSlotSize+3] ^= 0xff
	require.NoError(t, os.WriteFile(path, b, 0o644))
	s = mustOpen(t, dir, o)
	require.EqualValues(t, 80, s.Len(), "one acknowledgement replayed")
	require.NoError(t, s.Close())
	// Both slots damaged: everything still held is replayed.
	require.NoError(t, os.WriteFile(path, make([]byte, 2*cursorSlotSize), 0o644))
	s = mustOpen(t, dir, o)
	defer s.Close()
	require.EqualValues(t, 100, s.Len())
	requireSeqs(t, drain(t, s, 30), 1, 100)
}

func TestFullDropOldest(t *testing.T) {
	dir := t.TempDir()
	var logged strings.Builder
	var mu sync.Mutex
	o := Options{MaxBytes: 64 << 10, Full: DropOldest, Logger: newTestLogger(&mu, &logged)}
	s := mustOpen(t, dir, o)
	defer s.Close()
	const total = 10000
	appendSeqs(t, s, 1, total, 50)
	require.LessOrEqual(t, s.Bytes(), o.MaxBytes)
	var disk int64
	for _, f := range segFiles(t, dir) {
		disk += fileSize(t, f)
	}
	require.Equal(t, s.Bytes(), disk)
	require.Positive(t, s.Dropped())
	require.EqualValues(t, total, uint64(s.Len())+s.Dropped(), "every sample is held or counted as dropped")
	got := drain(t, s, 100)
	// What is left is the newest samples, in order, without gaps.
	first := total - uint64(len(got)) + 1
	requireSeqs(t, got, first, len(got))
	mu.Lock()
	require.Contains(t, logged.String(), "dropped the oldest segment")
	mu.Unlock()
}

func TestFullDropOldestWhileReading(t *testing.T) {
	// A drop between Peek and Ack: the Ack of samples that were dropped
	// meanwhile must not acknowledge newer, undelivered ones.
	s := mustOpen(t, t.TempDir(), Options{MaxBytes: 64 << 10, Full: DropOldest})
	defer s.Close()
	appendSeqs(t, s, 1, 500, 50)
	buf := make([]bridge.Sample, 100)
	n, err := s.Peek(buf)
	require.NoError(t, err)
	require.Equal(t, 100, n)
	appendSeqs(t, s, 501, 5000, 50) // drops everything peeked
	before := s.Dropped()
	require.Positive(t, before)
	held := s.Len()
	require.NoError(t, s.Ack(n))
	require.Equal(t, held, s.Len(), "the acknowledged samples were dropped already")
	got := drain(t, s, 100)
	requireSeqs(t, got, 5500-uint64(len(got))+1, len(got))
}

func TestFullBlock(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{MaxBytes: 64 << 10, Full: Block})
	defer s.Close()
	var seq uint64 = 1
	// Fill until an Append would block.
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := s.Append(ctx, samplesFrom(seq, 10))
		cancel()
		if err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			var pe *PartialError
			require.False(t, errors.As(err, &pe), "under Block a batch is stored whole or not at all")
			break
		}
		seq += 10
	}
	require.LessOrEqual(t, s.Bytes(), int64(64<<10))
	require.Zero(t, s.Dropped())
	held := s.Len()

	done := make(chan error, 1)
	go func() { done <- s.Append(context.Background(), samplesFrom(seq, 10)) }()
	// Acknowledge samples until the blocked Append gets room.
	var got []bridge.Sample
	buf := make([]bridge.Sample, 50)
	require.Eventually(t, func() bool {
		select {
		case err := <-done:
			require.NoError(t, err)
			return true
		default:
		}
		n, err := s.Peek(buf)
		require.NoError(t, err)
		got = append(got, buf[:n]...)
		require.NoError(t, s.Ack(n))
		return false
	}, 5*time.Second, time.Millisecond)
	got = append(got, drain(t, s, 100)...)
	requireSeqs(t, got, 1, int(seq+10-1))
	require.Zero(t, s.Dropped())
	require.Positive(t, held)
}

func TestFullBlockCloseReleasesAppend(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{MaxBytes: 64 << 10, Full: Block})
	var seq uint64 = 1
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := s.Append(ctx, samplesFrom(seq, 10))
		cancel()
		if err != nil {
			break
		}
		seq += 10
	}
	done := make(chan error, 1)
	go func() { done <- s.Append(context.Background(), samplesFrom(seq, 10)) }()
	require.NoError(t, s.Close())
	select {
	case err := <-done:
		require.ErrorIs(t, err, bridge.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Append still blocked after Close")
	}
}

func TestConcurrentAppendAndReplay(t *testing.T) {
	for _, pol := range []FullPolicy{Block, DropOldest} {
		t.Run(pol.String(), func(t *testing.T) {
			s := mustOpen(t, t.TempDir(), Options{MaxBytes: 128 << 10, SegmentBytes: MinSegmentBytes, Full: pol, Sync: SyncInterval, Interval: time.Millisecond})
			defer s.Close()
			const total = 20000
			errc := make(chan error, 1)
			go func() {
				ctx := context.Background()
				for i := 0; i < total; i += 40 {
					if err := s.Append(ctx, samplesFrom(uint64(i+1), 40)); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
			buf := make([]bridge.Sample, 64)
			var last uint64
			var got int
			appended := false
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) {
				n, err := s.Peek(buf)
				require.NoError(t, err)
				for _, g := range buf[:n] {
					require.Greater(t, g.Seq, last, "order kept")
					if pol == Block {
						require.Equal(t, last+1, g.Seq, "nothing lost under Block")
					}
					requireSame(t, sampleFor(g.Seq), g)
					last = g.Seq
				}
				got += n
				require.NoError(t, s.Ack(n))
				if !appended {
					select {
					case err := <-errc:
						require.NoError(t, err)
						appended = true
					default:
					}
				}
				if appended && n == 0 && s.Len() == 0 {
					break
				}
			}
			require.True(t, appended)
			require.EqualValues(t, total, last)
			if pol == Block {
				require.EqualValues(t, total, got)
				require.Zero(t, s.Dropped())
			} else {
				// A sample dropped while a Peek held it is counted as
				// dropped and may still be delivered.
				require.GreaterOrEqual(t, uint64(got)+s.Dropped(), uint64(total))
			}
		})
	}
}

func TestClosedAndMisuse(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	_, err := Open(dir, Options{})
	require.ErrorContains(t, err, "already open")
	require.NoError(t, s.Close())
	require.ErrorIs(t, s.Append(context.Background(), samplesFrom(1, 1)), bridge.ErrClosed)
	_, err = s.Peek(make([]bridge.Sample, 1))
	require.ErrorIs(t, err, bridge.ErrClosed)
	require.ErrorIs(t, s.Ack(1), bridge.ErrClosed)
	require.ErrorIs(t, s.Close(), bridge.ErrClosed)

	_, err = Open(dir, Options{MaxBytes: 10, SegmentBytes: 10, Full: 9, Sync: 9})
	require.Error(t, err)
	for _, want := range []string{"max_bytes: 10B", "segment_bytes: 10B", "full policy 9", "sync policy 9"} {
		require.ErrorContains(t, err, want)
	}
	_, err = Open(dir, Options{Sync: SyncInterval, Interval: -time.Second})
	require.ErrorContains(t, err, "sync_interval: -1s is out of range")

	// A sample too large for a record is refused before anything is stored.
	s = mustOpen(t, dir, Options{MaxBytes: MinMaxBytes})
	defer s.Close()
	big := bridge.Sample{Source: "m", Point: "blob", Value: bridge.String(strings.Repeat("x", MinSegmentBytes))}
	err = s.Append(context.Background(), []bridge.Sample{sampleFor(1), big})
	require.ErrorIs(t, err, errRecordTooLarge)
	require.ErrorContains(t, err, "sample 1 (m/blob)")
	require.Zero(t, s.Len())
}

func TestForeignFormatVersionQuarantined(t *testing.T) {
	// A segment of a format this version does not know is not read (it
	// could be misread) and does not stop the spool: it is moved aside and
	// its samples are counted as lost.
	dir := t.TempDir()
	files := writeSegments(t, dir, Options{}, 3)
	require.Len(t, files, 1)
	b, err := os.ReadFile(files[0])
	require.NoError(t, err)
	b[8] = 3
	require.NoError(t, os.WriteFile(files[0], b, 0o644))
	s := mustOpen(t, dir, Options{})
	require.Zero(t, s.Len())
	require.GreaterOrEqual(t, s.Lost(), uint64(1), "the last segment: a lower bound")
	appendSeqs(t, s, 10, 5, 5)
	requireSeqs(t, drain(t, s, 10), 10, 5)
	require.NoError(t, s.Close())
	q, err := os.ReadFile(files[0] + quarantineSuffix)
	require.NoError(t, err)
	require.Equal(t, b, q, "kept as it was")
}

func TestSeqStart(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	now := uint64(time.Now().UnixNano())
	require.GreaterOrEqual(t, s.SeqStart(), now)
	future := now + uint64(time.Hour)
	require.NoError(t, s.Append(context.Background(), []bridge.Sample{{Seq: future}}))
	require.Greater(t, s.SeqStart(), future)
	drain(t, s, 1)
	require.NoError(t, s.Close())
	// Acknowledged and deleted, the highest Seq is still remembered.
	s = mustOpen(t, dir, Options{})
	defer s.Close()
	require.Zero(t, s.Len())
	require.Greater(t, s.SeqStart(), future)
}

func TestSyncIntervalSyncerStops(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{Sync: SyncInterval, Interval: time.Millisecond})
	appendSeqs(t, s, 1, 100, 10)
	require.Eventually(t, func() bool { return !s.dirty.Load() }, 5*time.Second, time.Millisecond)
	require.NoError(t, s.Close()) // goleak in TestMain checks the syncer ended
}

func TestSinkDownThenBack(t *testing.T) {
	// The sink fails for a while (its writer Peeks, fails and retries the
	// same samples without acknowledging), then recovers, while the source
	// keeps appending: everything arrives once, in order.
	s := mustOpen(t, t.TempDir(), Options{MaxBytes: 4 << 20, SegmentBytes: 16 << 10, Full: Block, Sync: SyncInterval, Interval: 5 * time.Millisecond})
	defer s.Close()
	const total = 30000
	appended := make(chan error, 1)
	go func() {
		for i := 0; i < total; i += 25 {
			if err := s.Append(context.Background(), samplesFrom(uint64(i+1), 25)); err != nil {
				appended <- err
				return
			}
		}
		appended <- nil
	}()
	buf := make([]bridge.Sample, 200)
	var delivered []uint64
	failures := 0
	sinkUp := func() bool { return s.Len() > 5000 || failures > 2000 } // down until a backlog built up
	down := true
	done := false
	deadline := time.Now().Add(20 * time.Second)
	for !done || s.Len() > 0 {
		require.True(t, time.Now().Before(deadline), "replay did not finish")
		n, err := s.Peek(buf)
		require.NoError(t, err)
		if n == 0 {
			select {
			case err := <-appended:
				require.NoError(t, err)
				done = true
			default:
			}
			continue
		}
		if down {
			if !sinkUp() {
				failures++
				continue // the sink failed: nothing acknowledged, retry the same samples
			}
			down = false
		}
		for _, g := range buf[:n] {
			delivered = append(delivered, g.Seq)
		}
		require.NoError(t, s.Ack(n))
	}
	require.Len(t, delivered, total)
	for i, seq := range delivered {
		require.EqualValues(t, i+1, seq)
	}
	require.Zero(t, s.Dropped())
	require.Positive(t, failures)
}

func TestDirectoryLockedAgainstOtherProcesses(t *testing.T) {
	if _, err := os.Stat("/proc/self"); err != nil {
		t.Skip("flock test written for Linux")
	}
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	defer s.Close()
	// Another open file description of the cursor, as another process
	// would have, cannot take the lock.
	f, err := os.OpenFile(filepath.Join(dir, cursorFile), os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	require.ErrorContains(t, lockFile(f), "in use by another process")
}

func TestSyncIntervalFsyncsEachInterval(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		s := mustOpen(t, dir, Options{Sync: SyncInterval, Interval: 100 * time.Millisecond})
		appendSeqs(t, s, 1, 10, 10)
		require.True(t, s.dirty.Load(), "SyncInterval: Append returns before the fsync")
		time.Sleep(99 * time.Millisecond)
		synctest.Wait()
		require.True(t, s.dirty.Load())
		time.Sleep(time.Millisecond)
		synctest.Wait()
		require.False(t, s.dirty.Load(), "fsynced when the interval passed")
		require.NoError(t, s.Ack(0))
		buf := make([]bridge.Sample, 4)
		n, err := s.Peek(buf)
		require.NoError(t, err)
		require.NoError(t, s.Ack(n))
		require.True(t, s.ackDirty.Load())
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		require.False(t, s.ackDirty.Load(), "the cursor is fsynced with the data")
		require.NoError(t, s.Close())
	})
	s := mustOpen(t, dir, Options{Sync: SyncEvery})
	defer s.Close()
	appendSeqs(t, s, 11, 10, 10)
	require.False(t, s.dirty.Load(), "SyncEvery: fsynced before Append returns")
	require.EqualValues(t, 16, s.Len())
}

func TestFullBlockHugeBatchIsStoredInChunks(t *testing.T) {
	// A batch larger than the spool can hold is stored chunk by chunk as
	// acknowledgements free room; if the wait ends, the error says how
	// much was stored.
	s := mustOpen(t, t.TempDir(), Options{MaxBytes: 64 << 10, Full: Block})
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := s.Append(ctx, samplesFrom(1, 3000))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var pe *PartialError
	require.ErrorAs(t, err, &pe)
	require.Positive(t, pe.Stored)
	require.Less(t, pe.Stored, 3000)
	require.EqualValues(t, pe.Stored, s.Len())
	require.ErrorContains(t, err, "stored")

	// With a reader acknowledging, the whole batch goes through.
	done := make(chan error, 1)
	go func() { done <- s.Append(context.Background(), samplesFrom(uint64(pe.Stored+1), 3000-pe.Stored)) }()
	var got []bridge.Sample
	buf := make([]bridge.Sample, 100)
	require.Eventually(t, func() bool {
		n, err := s.Peek(buf)
		require.NoError(t, err)
		got = append(got, buf[:n]...)
		require.NoError(t, s.Ack(n))
		select {
		case err := <-done:
			require.NoError(t, err)
			return true
		default:
			return false
		}
	}, 10*time.Second, time.Millisecond)
	got = append(got, drain(t, s, 100)...)
	requireSeqs(t, got, 1, 3000)
}
