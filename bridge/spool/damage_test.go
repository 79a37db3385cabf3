package spool

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// segSeqs returns the Seqs of the sample records in a segment file, in
// order (seal and start records are not samples).
func segSeqs(t *testing.T, path string) []uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var seqs []uint64
	for _, off := range recordOffsets(t, path) {
		n, _ := parseHeader(b[off:])
		var s bridge.Sample
		if decodePayload(b[off+headerLen:off+headerLen+int64(n)], &s, nil) == nil {
			seqs = append(seqs, s.Seq)
		}
	}
	return seqs
}

// sampleRecordOffsets returns the offsets of the sample records of a
// segment file (not its seal or start record) and their Seqs.
func sampleRecordOffsets(t *testing.T, path string) ([]int64, []uint64) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var offs []int64
	var seqs []uint64
	for _, off := range recordOffsets(t, path) {
		n, _ := parseHeader(b[off:])
		var s bridge.Sample
		if decodePayload(b[off+headerLen:off+headerLen+int64(n)], &s, nil) == nil {
			offs = append(offs, off)
			seqs = append(seqs, s.Seq)
		}
	}
	return offs, seqs
}

func flipByte(t testing.TB, path string, at int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[at] ^= 0x40
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

// TestDamageIsCountedAndLogged damages a spool directory in each way a disk,
// a file system or a person can, and checks that the spool opens, keeps
// every undamaged sample in order, counts every lost sample exactly, and
// logs the damage naming the file.
func TestDamageIsCountedAndLogged(t *testing.T) {
	const n = 1200
	const acked = 10
	o := Options{MaxBytes: 1 << 20, SegmentBytes: 8 << 10}
	type result struct {
		file string   // a log record names it
		lost []uint64 // Seqs lost
		want []uint64 // survivors, when not all of 1..n but lost and acked
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string, files []string) result
	}{
		{"delete a middle segment", func(t *testing.T, dir string, files []string) result {
			lost := segSeqs(t, files[2])
			require.NoError(t, os.Remove(files[2]))
			return result{file: files[2], lost: lost}
		}},
		{"delete two middle segments", func(t *testing.T, dir string, files []string) result {
			lost := append(segSeqs(t, files[2]), segSeqs(t, files[3])...)
			require.NoError(t, os.Remove(files[2]))
			require.NoError(t, os.Remove(files[3]))
			return result{file: files[2], lost: lost}
		}},
		{"delete the segment holding the read position", func(t *testing.T, dir string, files []string) result {
			lost := segSeqs(t, files[0])[acked:]
			require.NoError(t, os.Remove(files[0]))
			return result{file: files[0], lost: lost}
		}},
		{"truncate a middle segment to 0 bytes", func(t *testing.T, dir string, files []string) result {
			lost := segSeqs(t, files[2])
			require.NoError(t, os.Truncate(files[2], 0))
			return result{file: files[2], lost: lost}
		}},
		{"truncate a middle segment inside a record", func(t *testing.T, dir string, files []string) result {
			offs, seqs := sampleRecordOffsets(t, files[2])
			k := len(offs) / 2
			require.NoError(t, os.Truncate(files[2], offs[k]+5))
			return result{file: files[2], lost: seqs[k:]}
		}},
		{"zero-fill a middle segment", func(t *testing.T, dir string, files []string) result {
			lost := segSeqs(t, files[2])
			require.NoError(t, os.WriteFile(files[2], make([]byte, fileSize(t, files[2])), 0o644))
			return result{file: files[2], lost: lost}
		}},
		{"zero-fill the segment holding the read position", func(t *testing.T, dir string, files []string) result {
			lost := segSeqs(t, files[0])[acked:]
			require.NoError(t, os.WriteFile(files[0], make([]byte, fileSize(t, files[0])), 0o644))
			return result{file: files[0], lost: lost}
		}},
		{"zero-fill records inside a middle segment", func(t *testing.T, dir string, files []string) result {
			offs, seqs := sampleRecordOffsets(t, files[2])
			b, err := os.ReadFile(files[2])
			require.NoError(t, err)
			clear(b[offs[3]:offs[9]])
			require.NoError(t, os.WriteFile(files[2], b, 0o644))
			return result{file: files[2], lost: seqs[3:9]}
		}},
		{"flip a byte in a record of a middle segment", func(t *testing.T, dir string, files []string) result {
			offs, seqs := sampleRecordOffsets(t, files[2])
			flipByte(t, files[2], offs[7]+headerLen+2)
			return result{file: files[2], lost: seqs[7:8]}
		}},
		{"flip a byte in a record and in the seal of a middle segment", func(t *testing.T, dir string, files []string) result {
			offs, seqs := sampleRecordOffsets(t, files[2])
			flipByte(t, files[2], offs[7]+headerLen+2)
			flipByte(t, files[2], fileSize(t, files[2])-3)
			return result{file: files[2], lost: seqs[7:8]}
		}},
		{"flip a byte in a record of the last segment", func(t *testing.T, dir string, files []string) result {
			last := files[len(files)-1]
			offs, seqs := sampleRecordOffsets(t, last)
			flipByte(t, last, offs[1]+headerLen+2)
			return result{file: last, lost: seqs[1:2]}
		}},
		{"bad magic in a segment header", func(t *testing.T, dir string, files []string) result {
			flipByte(t, files[2], 1)
			return result{file: files[2]}
		}},
		{"unknown format version in a segment header", func(t *testing.T, dir string, files []string) result {
			lost := segSeqs(t, files[2])
			b, err := os.ReadFile(files[2])
			require.NoError(t, err)
			b[8] = 9
			require.NoError(t, os.WriteFile(files[2], b, 0o644))
			return result{file: files[2], lost: lost}
		}},
		{"a stray file", func(t *testing.T, dir string, files []string) result {
			p := filepath.Join(dir, "notes.txt")
			require.NoError(t, os.WriteFile(p, []byte("hello"), 0o644))
			return result{file: p}
		}},
		{"a file named like a segment that is not one", func(t *testing.T, dir string, files []string) result {
			p := filepath.Join(dir, "12.seg")
			require.NoError(t, os.WriteFile(p, []byte("hello"), 0o644))
			return result{file: p}
		}},
		{"a lock file left behind", func(t *testing.T, dir string, files []string) result {
			p := filepath.Join(dir, "LOCK")
			require.NoError(t, os.WriteFile(p, nil, 0o644))
			return result{file: p}
		}},
		{"both cursor slots damaged", func(t *testing.T, dir string, files []string) result {
			p := filepath.Join(dir, cursorFile)
			require.NoError(t, os.WriteFile(p, make([]byte, 2*cursorSlotSize), 0o644))
			// Replayed from the oldest: the acknowledged ones again.
			var all []uint64
			for i := uint64(1); i <= n; i++ {
				all = append(all, i)
			}
			return result{file: p, want: all}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := mustOpen(t, dir, o)
			appendSeqs(t, s, 1, n, 10)
			buf := make([]bridge.Sample, acked)
			k, err := s.Peek(buf)
			require.NoError(t, err)
			require.NoError(t, s.Ack(k))
			require.NoError(t, s.Close())
			files := segFiles(t, dir)
			require.GreaterOrEqual(t, len(files), 6)

			r := tt.damage(t, dir, files)
			want := r.want
			if want == nil {
				for i := uint64(acked + 1); i <= n; i++ {
					if !slices.Contains(r.lost, i) {
						want = append(want, i)
					}
				}
			}

			var mu sync.Mutex
			var logs strings.Builder
			o := o
			o.Logger = newTestLogger(&mu, &logs)
			s, err = Open(dir, o)
			require.NoError(t, err, "the spool opens")
			got := drain(t, s, 64)
			gotSeqs := make([]uint64, len(got))
			for i, g := range got {
				requireSame(t, sampleFor(g.Seq), g)
				gotSeqs[i] = g.Seq
			}
			require.Equal(t, want, gotSeqs, "the undamaged samples, in order")
			require.EqualValues(t, len(r.lost), s.Lost(), "every lost sample is counted")
			require.EqualValues(t, len(r.lost), s.Dropped(), "Dropped includes Lost")
			mu.Lock()
			out := logs.String()
			mu.Unlock()
			require.Contains(t, out, filepath.Base(r.file), "a log record names the file")

			// The spool goes on.
			appendSeqs(t, s, 5001, 20, 7)
			requireSeqs(t, drain(t, s, 64), 5001, 20)
			require.NoError(t, s.Close())
			s = mustOpen(t, dir, Options{MaxBytes: o.MaxBytes, SegmentBytes: o.SegmentBytes})
			require.Zero(t, s.Len())
			require.NoError(t, s.Close())
		})
	}
}

func TestVersion1SegmentsAreRead(t *testing.T) {
	// Segments written before record numbers (format version 1: no start
	// record) are read, and the spool goes on in version 2 segments.
	dir := t.TempDir()
	b := appendSegHeader(nil)
	b[8] = 1
	for seq := uint64(1); seq <= 20; seq++ {
		var err error
		b, err = appendRecord(b, new(sampleFor(seq)))
		require.NoError(t, err)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "0000000000000001.seg"), b, 0o644))
	o := Options{MaxBytes: 1 << 20, SegmentBytes: 8 << 10}
	s := mustOpen(t, dir, o)
	require.EqualValues(t, 20, s.Len())
	appendSeqs(t, s, 21, 400, 10)
	require.NoError(t, s.Close())
	s = mustOpen(t, dir, o)
	defer s.Close()
	requireSeqs(t, drain(t, s, 64), 1, 420)
	require.Zero(t, s.Dropped())
}

func TestCursorWithoutRecordNumber(t *testing.T) {
	// A cursor slot written before the record-number extension still
	// reads, with the record number unknown; a damaged extension only
	// loses the record number.
	c := cursor{gen: 3, seg: 7, off: 99, maxSeq: 5, rn: 1234, rnOK: true}
	b := c.encode()
	got, ok := decodeCursor(b)
	require.True(t, ok)
	require.Equal(t, c, got)
	old := append([]byte(nil), b[:cursorDataLen+4]...)
	old = append(old, make([]byte, cursorSlotSize-len(old))...)
	got, ok = decodeCursor(old)
	require.True(t, ok)
	require.False(t, got.rnOK)
	require.Equal(t, c.seg, got.seg)
	b[cursorDataLen+5] ^= 1
	got, ok = decodeCursor(b)
	require.True(t, ok)
	require.False(t, got.rnOK)
}
