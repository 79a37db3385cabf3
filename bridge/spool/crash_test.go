package spool

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	crashDirEnv  = "M2MB_SPOOL_CRASH_DIR"
	crashBaseEnv = "M2MB_SPOOL_CRASH_BASE"
	crashSyncEnv = "M2MB_SPOOL_CRASH_SYNC"
)

var crashOptions = Options{MaxBytes: 256 << 20, SegmentBytes: 32 << 10, Sync: SyncEvery}

// TestCrashChild is the child process of TestCrashRecovery: it appends
// batches of random size and prints "ACK <last seq>" after each Append
// returns, until it is killed. It uses SyncEvery, or SyncInterval when asked:
// a process crash loses nothing Append returned for under either.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process of TestCrashRecovery")
	}
	base, err := strconv.ParseUint(os.Getenv(crashBaseEnv), 10, 64)
	require.NoError(t, err)
	o := crashOptions
	if os.Getenv(crashSyncEnv) == "interval" {
		o.Sync = SyncInterval
	}
	s, err := Open(dir, o)
	require.NoError(t, err)
	defer s.Close()
	rng := rand.New(rand.NewPCG(base, 1))
	seq := base
	deadline := time.Now().Add(30 * time.Second) // in case the parent died
	for time.Now().Before(deadline) {
		n := 1 + rng.IntN(300)
		require.NoError(t, s.Append(context.Background(), samplesFrom(seq, n)))
		seq += uint64(n)
		// One write per line, so the parent sees whole lines.
		_, err := fmt.Fprintf(os.Stdout, "ACK %d\n", seq-1)
		require.NoError(t, err)
	}
}

// ackWriter collects the child's output and the last acknowledged seq.
type ackWriter struct {
	mu      sync.Mutex
	partial []byte
	last    uint64
	acks    int
	first   chan struct{}
	other   strings.Builder
}

func (w *ackWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := string(w.partial[:i])
		w.partial = w.partial[i+1:]
		if v, ok := strings.CutPrefix(line, "ACK "); ok {
			if n, err := strconv.ParseUint(v, 10, 64); err == nil {
				w.last = n
				w.acks++
				if w.acks == 1 {
					close(w.first)
				}
				continue
			}
		}
		w.other.WriteString(line + "\n")
	}
	return len(p), nil
}

// TestCrashRecovery kills a child process with SIGKILL while it appends, at
// random moments, and checks after each kill that every sample whose Append
// returned is there, in order, with nothing missing and nothing dropped, and
// that acknowledgements made between rounds hold.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	var model []uint64 // seqs held from earlier rounds, in order
	const rounds = 5
	for r := 1; r <= rounds; r++ {
		base := uint64(r) << 40
		w := &ackWriter{first: make(chan struct{})}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		syncMode := "every"
		if r%2 == 0 {
			syncMode = "interval"
		}
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashBaseEnv+"="+strconv.FormatUint(base, 10), crashSyncEnv+"="+syncMode)
		cmd.Stdout, cmd.Stderr = w, w
		require.NoError(t, cmd.Start())
		select {
		case <-w.first:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("round %d: the child acknowledged nothing; output:\n%s", r, w.other.String())
		}
		// The random moment of the kill is the point of the test, not
		// a wait for something.
		time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
		require.NoError(t, cmd.Process.Kill())
		_ = cmd.Wait()
		w.mu.Lock()
		last, acks, other := w.last, w.acks, w.other.String()
		w.mu.Unlock()
		require.NotContains(t, other, "FAIL", "child output")

		s := mustOpen(t, dir, crashOptions)
		require.Zero(t, s.Dropped(), "round %d", r)
		got := peekAll(t, s)
		require.GreaterOrEqual(t, len(got), len(model), "round %d", r)
		for i, seq := range model {
			require.Equal(t, seq, got[i].Seq, "round %d: earlier sample %d", r, i)
		}
		fresh := got[len(model):]
		require.NotEmpty(t, fresh, "round %d", r)
		for i, g := range fresh {
			requireSame(t, sampleFor(base+uint64(i)), g)
		}
		require.GreaterOrEqual(t, fresh[len(fresh)-1].Seq, last,
			"round %d: the child's last acknowledged batch (seq %d after %d batches) must have survived", r, last, acks)
		t.Logf("round %d (sync %s): %d batches acknowledged, last seq %d; recovered %d new samples (%d past the last acknowledgement)",
			r, syncMode, acks, last-base, len(fresh), fresh[len(fresh)-1].Seq-last)

		// Acknowledge some and check the rest stays across the next crash.
		k := rng.IntN(len(got) + 1)
		if r == rounds {
			k = len(got)
		}
		require.NoError(t, s.Ack(k))
		model = model[:0]
		for _, g := range got[k:] {
			model = append(model, g.Seq)
		}
		require.EqualValues(t, len(model), s.Len())
		require.NoError(t, s.Close())
	}
	s := mustOpen(t, dir, crashOptions)
	defer s.Close()
	require.Zero(t, s.Len())
	require.Len(t, segFiles(t, dir), 1)
}

func TestPeekAfterCrashMidBatchGetsCompleteRecords(t *testing.T) {
	// A batch cut short by a crash inside the write system call leaves a
	// prefix of whole records and a torn one; the whole records count.
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	appendSeqs(t, s, 1, 10, 10)
	require.NoError(t, s.Close())
	var batch []byte
	for i := range uint64(5) {
		var err error
		batch, err = appendRecord(batch, new(sampleFor(11+i)))
		require.NoError(t, err)
	}
	files := segFiles(t, dir)
	f, err := os.OpenFile(files[0], os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write(batch[:len(batch)-7])
	require.NoError(t, err)
	require.NoError(t, f.Close())
	s = mustOpen(t, dir, Options{})
	defer s.Close()
	requireSeqs(t, drain(t, s, 7), 1, 14)
	require.Zero(t, s.Dropped())
}
