package spool

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
)

func TestOptionsValidate(t *testing.T) {
	require.NoError(t, Options{Dir: "x"}.Validate())
	require.NoError(t, Options{Dir: "x", MaxBytes: MinMaxBytes, SegmentBytes: MinSegmentBytes, Full: Block, Sync: SyncInterval, Interval: time.Second}.Validate())
	for _, tc := range []struct {
		name string
		o    Options
		path string
	}{
		{"no dir", Options{}, "dir"},
		{"max_bytes too small", Options{Dir: "x", MaxBytes: 100}, "max_bytes"},
		{"max_bytes negative", Options{Dir: "x", MaxBytes: -1}, "max_bytes"},
		{"max_bytes too large", Options{Dir: "x", MaxBytes: MaxMaxBytes + 1}, "max_bytes"},
		{"segment_bytes too small", Options{Dir: "x", SegmentBytes: 100}, "segment_bytes"},
		{"segment_bytes too large", Options{Dir: "x", MaxBytes: 4 << 30, SegmentBytes: 2 << 30}, "segment_bytes"},
		{"segment_bytes above max_bytes", Options{Dir: "x", MaxBytes: 1 << 20, SegmentBytes: 2 << 20}, "segment_bytes"},
		{"segment_bytes above the default max_bytes", Options{Dir: "x", SegmentBytes: MaxSegmentBytes}, ""},
		{"unknown full", Options{Dir: "x", Full: 7}, "full"},
		{"unknown sync", Options{Dir: "x", Sync: 7}, "sync"},
		{"sync_interval with sync every", Options{Dir: "x", Interval: time.Second}, "sync_interval"},
		{"sync_interval too short", Options{Dir: "x", Sync: SyncInterval, Interval: time.Microsecond}, "sync_interval"},
		{"sync_interval negative", Options{Dir: "x", Sync: SyncInterval, Interval: -time.Second}, "sync_interval"},
		{"sync_interval too long", Options{Dir: "x", Sync: SyncInterval, Interval: time.Hour}, "sync_interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if tc.path == "" {
				require.NoError(t, err)
				return
			}
			fes := bridge.FieldErrors(err)
			require.Len(t, fes, 1, "%v", err)
			assert.Equal(t, tc.path, fes[0].Path)
			// Open refuses the same (but needs no Dir).
			if tc.path != "dir" {
				tc.o.Dir = ""
				_, err := Open(t.TempDir(), tc.o)
				require.ErrorContains(t, err, tc.path)
			}
		})
	}
	// Every problem at once.
	fes := bridge.FieldErrors(Options{MaxBytes: 1, SegmentBytes: 1, Full: 9, Sync: 9}.Validate())
	require.Len(t, fes, 5)
}

func TestPoliciesUnmarshalText(t *testing.T) {
	var f FullPolicy
	require.NoError(t, f.UnmarshalText([]byte("block")))
	require.Equal(t, Block, f)
	require.NoError(t, f.UnmarshalText([]byte("drop_oldest")))
	require.Equal(t, DropOldest, f)
	err := f.UnmarshalText([]byte("drop"))
	require.ErrorContains(t, err, "want drop_oldest or block")
	b, err := Block.MarshalText()
	require.NoError(t, err)
	require.Equal(t, "block", string(b))

	var s SyncPolicy
	require.NoError(t, s.UnmarshalText([]byte("interval")))
	require.Equal(t, SyncInterval, s)
	require.NoError(t, s.UnmarshalText([]byte("every")))
	require.Equal(t, SyncEvery, s)
	require.ErrorContains(t, s.UnmarshalText([]byte("always")), "want every or interval")
}

func TestByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
		err  bool
	}{
		{"1GiB", 1 << 30, false},
		{"1gib", 1 << 30, false},
		{"512MiB", 512 << 20, false},
		{"100MB", 100e6, false},
		{"64k", 64 << 10, false},
		{"1.5GiB", 3 << 29, false},
		{"4096", 4096, false},
		{"10 B", 10, false},
		{" 2TiB ", 2 << 40, false},
		{"1 gigabyte", 0, true},
		{"-1GiB", 0, true},
		{"GiB", 0, true},
		{"", 0, true},
		{".5k", 0, true},
		{"1.2.3k", 0, true},
		{"99999999999TiB", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var b ByteSize
			err := b.UnmarshalText([]byte(tc.in))
			if tc.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, b)
		})
	}
	assert.Equal(t, "1GiB", ByteSize(1<<30).String())
	assert.Equal(t, "16KiB", ByteSize(16<<10).String())
	assert.Equal(t, "1000B", ByteSize(1000).String())
	assert.Equal(t, "0B", ByteSize(0).String())
	b, err := ByteSize(512 << 20).MarshalText()
	require.NoError(t, err)
	assert.Equal(t, "512MiB", string(b))
}
