//go:build linux

package spool

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
)

const fsizeDirEnv = "M2MB_SPOOL_FSIZE_DIR"

// fsizeLimit is the file size limit of the child: a segment cannot grow
// past it, so that Appends fail with EFBIG inside a segment: first in the
// middle of a batch larger than a write chunk, then at the start of small
// batches.
const fsizeLimit = 1<<20 + 512<<10

// TestAppendFileSizeLimitChild is the child process of
// TestAppendFailsCleanlyWhenFilesCannotGrow: it runs with RLIMIT_FSIZE set
// (the Go runtime ignores SIGXFSZ, so a write past the limit fails with
// EFBIG, the same as a full disk for the spool).
func TestAppendFileSizeLimitChild(t *testing.T) {
	dir := os.Getenv(fsizeDirEnv)
	if dir == "" {
		t.Skip("helper process of TestAppendFailsCleanlyWhenFilesCannotGrow")
	}
	var old syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old))
	o := Options{MaxBytes: 64 << 20, SegmentBytes: 4 << 20}
	s := mustOpen(t, dir, o)
	defer s.Close()
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: fsizeLimit, Max: old.Max}))

	var stored []uint64
	seq := uint64(1)
	failures, midBatch := 0, 0
	for attempt := 0; attempt < 1000 && failures < 3; attempt++ {
		n := 997
		if attempt == 0 {
			n = 40000 // about 2 MiB: two write chunks
		}
		batch := samplesFrom(seq, n)
		err := s.Append(context.Background(), batch)
		seq += uint64(len(batch))
		if err == nil {
			for _, b := range batch {
				stored = append(stored, b.Seq)
			}
			continue
		}
		failures++
		t.Logf("append failed: %v", err)
		require.ErrorIs(t, err, syscall.EFBIG)
		require.ErrorContains(t, err, dir, "names the spool")
		require.ErrorContains(t, err, ".seg", "names the file")
		require.ErrorContains(t, err, "file too large", "the OS error")
		var pe interface{ StoredSamples() int }
		require.True(t, errors.As(err, &pe), "says how many were stored: %v", err)
		k := pe.StoredSamples()
		require.True(t, k >= 0 && k < len(batch))
		require.ErrorContains(t, err, "stored ")
		if k > 0 {
			midBatch++
		}
		for _, b := range batch[:k] {
			stored = append(stored, b.Seq)
		}
		// What was stored reads back, and nothing else.
		got := peekAll(t, s)
		require.Len(t, got, len(stored))
		for i, g := range got {
			requireSame(t, sampleFor(stored[i]), g)
		}
	}
	require.Equal(t, 3, failures, "the limit was hit")
	require.Positive(t, midBatch, "a batch was stored in part")

	// Space is back: Appends work again and everything is in order.
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old))
	batch := samplesFrom(seq, 50)
	require.NoError(t, s.Append(context.Background(), batch))
	for _, b := range batch {
		stored = append(stored, b.Seq)
	}
	got := peekAll(t, s)
	require.Len(t, got, len(stored))
	for i, g := range got {
		requireSame(t, sampleFor(stored[i]), g)
	}
	require.NoError(t, s.Ack(len(got)/2))
	require.NoError(t, s.Close())
	// The parent checks the files; tell it what to expect.
	var sb strings.Builder
	for _, q := range stored[len(got)/2:] {
		sb.WriteString(bridge.Uint(q).String() + "\n")
	}
	require.NoError(t, os.WriteFile(dir+".want", []byte(sb.String()), 0o644))
}

// TestAppendFailsCleanlyWhenFilesCannotGrow appends under a real file size
// limit (RLIMIT_FSIZE, in a child process): each failed Append names the
// spool, the file and the OS error, wraps EFBIG, and says how many samples
// it stored; the spool stays consistent, works again once writes succeed,
// and reopens with exactly the stored samples and no partial record.
func TestAppendFailsCleanlyWhenFilesCannotGrow(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir() + "/spool"
	cmd := exec.Command(os.Args[0], "-test.run=^TestAppendFileSizeLimitChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), fsizeDirEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "child:\n%s", out)
	require.Contains(t, string(out), "--- PASS: TestAppendFileSizeLimitChild", "child:\n%s", out)

	b, err := os.ReadFile(dir + ".want")
	require.NoError(t, err)
	want := strings.Fields(string(b))
	s := mustOpen(t, dir, Options{MaxBytes: 64 << 20, SegmentBytes: 4 << 20})
	defer s.Close()
	got := drain(t, s, 1000)
	require.Len(t, got, len(want))
	for i, g := range got {
		require.Equal(t, want[i], bridge.Uint(g.Seq).String())
		requireSame(t, sampleFor(g.Seq), g)
	}
	require.Zero(t, s.Dropped())
}
