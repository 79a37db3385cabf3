package spool

import (
	"context"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/m2mbridge/m2mbridge/bridge"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// sampleFor returns a deterministic sample for seq, exercising every field
// and every value kind, so that a test can check a recovered sample by its
// Seq alone.
func sampleFor(seq uint64) bridge.Sample {
	s := bridge.Sample{
		Source:  "meter" + strconv.FormatUint(seq%3, 10),
		Point:   "point_" + strconv.FormatUint(seq%7, 10),
		Unit:    []string{"V", "kWh", "°C", ""}[seq%4],
		Time:    time.Unix(1_700_000_000+int64(seq), int64(seq%1e9)),
		Quality: bridge.Quality(seq % 3),
		Code:    uint32(seq * 2654435761),
		Seq:     seq,
	}
	switch seq % 6 {
	case 0:
		s.Value = bridge.Float(float64(seq) + 0.25)
	case 1:
		s.Value = bridge.Int(-int64(seq) * 1_000_003)
	case 2:
		s.Value = bridge.Uint(math.MaxUint64 - seq)
	case 3:
		s.Value = bridge.Bool(seq%4 == 3)
	case 4:
		s.Value = bridge.String("state-" + strconv.FormatUint(seq, 10))
	case 5: // no value
	}
	if s.Quality != bridge.Good {
		s.Reason = "timeout"
	}
	if seq%13 == 0 {
		s.Time = time.Time{}
	}
	return s
}

func samplesFrom(first uint64, n int) []bridge.Sample {
	out := make([]bridge.Sample, n)
	for i := range out {
		out[i] = sampleFor(first + uint64(i))
	}
	return out
}

// requireSame checks that got is want exactly: same value kind and bits,
// same instant (and zero-ness) of time, same everything else.
func requireSame(t testing.TB, want, got bridge.Sample) {
	t.Helper()
	require.Equal(t, want.Seq, got.Seq)
	require.Equal(t, want.Source, got.Source, "seq %d", want.Seq)
	require.Equal(t, want.Point, got.Point, "seq %d", want.Seq)
	require.Equal(t, want.Unit, got.Unit, "seq %d", want.Seq)
	require.Equal(t, want.Quality, got.Quality, "seq %d", want.Seq)
	require.Equal(t, want.Reason, got.Reason, "seq %d", want.Seq)
	require.Equal(t, want.Code, got.Code, "seq %d", want.Seq)
	require.Equal(t, want.Value.Kind(), got.Value.Kind(), "seq %d", want.Seq)
	require.True(t, want.Value.Equal(got.Value), "seq %d: value %v, want %v", want.Seq, got.Value, want.Value)
	require.Equal(t, want.Time.IsZero(), got.Time.IsZero(), "seq %d", want.Seq)
	require.True(t, want.Time.Equal(got.Time), "seq %d: time %v, want %v", want.Seq, got.Time, want.Time)
}

// drain reads and acknowledges everything in s, n samples per Peek.
func drain(t testing.TB, s *Spool, n int) []bridge.Sample {
	t.Helper()
	var out []bridge.Sample
	buf := make([]bridge.Sample, n)
	for {
		k, err := s.Peek(buf)
		require.NoError(t, err)
		if k == 0 {
			return out
		}
		out = append(out, buf[:k]...)
		require.NoError(t, s.Ack(k))
	}
}

// peekAll reads everything in s without acknowledging it.
func peekAll(t testing.TB, s *Spool) []bridge.Sample {
	t.Helper()
	buf := make([]bridge.Sample, s.Len()+1)
	k, err := s.Peek(buf)
	require.NoError(t, err)
	return buf[:k]
}

func mustOpen(t testing.TB, dir string, o Options) *Spool {
	t.Helper()
	s, err := Open(dir, o)
	require.NoError(t, err)
	return s
}

func appendSeqs(t testing.TB, s *Spool, first uint64, n, batch int) {
	t.Helper()
	for i := 0; i < n; i += batch {
		require.NoError(t, s.Append(context.Background(), samplesFrom(first+uint64(i), min(batch, n-i))))
	}
}

func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.NoError(t, err)
	return m
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Size()
}

func requireSeqs(t testing.TB, got []bridge.Sample, first uint64, n int) {
	t.Helper()
	require.Len(t, got, n)
	for i, g := range got {
		requireSame(t, sampleFor(first+uint64(i)), g)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func newTestLogger(mu *sync.Mutex, b *strings.Builder) *slog.Logger {
	return slog.New(slog.NewTextHandler(lockedWriter{mu, b}, nil))
}
