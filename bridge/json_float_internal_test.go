package bridge

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// appendFloatRef is appendFloat by strconv alone.
func appendFloatRef(f float64) string {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	s := strconv.FormatFloat(f, format, -1, 64)
	for _, c := range s {
		if c == '.' || c == 'e' {
			return s
		}
	}
	return s + ".0"
}

// TestAppendFloatFastPathMatchesStrconv: the short-decimal fast path writes
// exactly what strconv's shortest formatting writes, for the values devices
// report (float32 readings, registers scaled by powers of ten), for random
// float64s of every magnitude and at the edges of the fast path.
func TestAppendFloatFastPathMatchesStrconv(t *testing.T) {
	check := func(f float64) {
		t.Helper()
		if f != f || math.IsInf(f, 0) {
			return
		}
		got, want := string(appendFloat(nil, f)), appendFloatRef(f)
		if got != want {
			t.Fatalf("appendFloat(%#016x) = %s, want %s", math.Float64bits(f), got, want)
		}
	}
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 230.1, 1e-6, 9.99999e-7, 1e-7, 0.000123,
		1e15, 999999999999999, 1e15 + 1, 123456789012345.6, 9007199254740991, 9007199254740993, 1e20, 1e21,
		4.35e-5, 49.98, 0.953, 1.0000000000000002, 2.5, 1e300, 5e-324,
		// 15 significant digits from 10^-6: 20 fraction digits, where
		// 10^20 does not fit a uint64 (a divide by zero on 386).
		1.23456789012345e-6, 9.87654321098765e-6, 1.0000000000001e-6} {
		check(f)
		check(-f)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 200_000 {
		check(math.Float64frombits(r.Uint64())) // any float64
		f32 := math.Float32frombits(r.Uint32())
		check(float64(f32)) // a float32 widened as is
		if v, err := strconv.ParseFloat(strconv.FormatFloat(float64(f32), 'g', -1, 32), 64); err == nil {
			check(v) // a float32 reading as the poller decodes it
		}
		raw := float64(int64(r.Uint64()) >> r.IntN(64))
		check(raw / pow10[r.IntN(10)]) // a scaled register
		check(raw * pow10[r.IntN(5)])
	}
}

func BenchmarkAppendFloat(b *testing.B) {
	fs := []float64{230.1, 49.98, 0.953, 12345.678, 1.5e-3, 4021.7}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for i := range b.N {
		buf = appendFloat(buf[:0], fs[i%len(fs)])
	}
}

// TestJSONSafe: the eight-bytes-at-a-time check agrees with the byte
// loop on every byte value at every position of strings of 1 to 20 bytes.
func TestJSONSafe(t *testing.T) {
	ref := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
				return false
			}
		}
		return true
	}
	for n := 1; n <= 20; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte("abcdefghijklmnopqrstuvwxyz")[:n]
				b[pos] = byte(c)
				s := string(b)
				if got, want := jsonSafe(s), ref(s); got != want {
					t.Fatalf("jsonSafe(%q) = %v, want %v", s, got, want)
				}
			}
		}
	}
	assert.True(t, jsonSafe(""))
}

// TestJSONLinesHeadCache: lines written through the cache of encoded
// sources and points, and encoded in the sink's buffer, are the lines
// AppendJSON writes, for samples whose strings repeat (the same strings, and
// equal strings made anew), collide in the cache, need escaping, or are
// empty, and for lines longer than the buffer.
func TestJSONLinesHeadCache(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var names []string
	for i := range 700 {
		names = append(names, fmt.Sprintf("p%d", i))
	}
	names = append(names, "", `quo"te`, "tab\there", "ünï", strings.Repeat("long", 100))
	sources := []string{"meter1", "plc", "", `a\b`}
	var buf bytes.Buffer
	sink := NewJSONLines(&buf)
	var want []byte
	now := time.Now()
	for range 50 {
		batch := make([]Sample, 200)
		for i := range batch {
			src, pt := sources[r.IntN(len(sources))], names[r.IntN(len(names))]
			if r.IntN(4) == 0 {
				pt = string([]byte(pt)) // equal text at another address
			}
			batch[i] = Sample{Source: src, Point: pt, Value: Float(r.Float64()), Time: now}
			if r.IntN(50) == 0 { // a line longer than the sink's buffer has room for
				batch[i].Value = String(strings.Repeat("x", r.IntN(70_000)))
			}
			want = append(AppendJSON(want, &batch[i]), '\n')
		}
		require.NoError(t, sink.Write(t.Context(), batch))
		runtime.GC() // strings made anew are freed, their memory reused
	}
	require.NoError(t, sink.Close(t.Context()))
	assert.Equal(t, string(want), buf.String())
}
