package spool

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
)

func readDeadLetters(t *testing.T, path string) ([]bridge.Sample, []string) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var samples []bridge.Sample
	var reasons []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		s, err := bridge.DecodeJSON(sc.Bytes())
		require.NoError(t, err, "line %q", sc.Text())
		var extra struct {
			Reason string `json:"reason"`
			DeadAt string `json:"dead_at"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &extra))
		require.NotEmpty(t, extra.DeadAt)
		samples = append(samples, s)
		reasons = append(reasons, extra.Reason)
	}
	require.NoError(t, sc.Err())
	return samples, reasons
}

func TestDeadLetterKeepsRejectedSamples(t *testing.T) {
	dir := t.TempDir()
	path := DeadLetterPath(dir)
	d, err := OpenDeadLetter(path, DeadLetterOptions{})
	require.NoError(t, err)
	require.NoError(t, d.Put(samplesFrom(1, 3), errors.New(`http 422: "value" out of range`)))
	require.NoError(t, d.Put(samplesFrom(4, 2), nil))
	require.NoError(t, d.Put(nil, errors.New("nothing")))
	require.EqualValues(t, 5, d.Written())
	require.NoError(t, d.Close())
	require.ErrorIs(t, d.Put(samplesFrom(6, 1), errors.New("x")), bridge.ErrClosed)
	require.ErrorIs(t, d.Close(), bridge.ErrClosed)

	got, reasons := readDeadLetters(t, path)
	require.Len(t, got, 5)
	for i, g := range got {
		want := sampleFor(uint64(i + 1))
		require.Equal(t, want.Seq, g.Seq)
		require.Equal(t, want.Source, g.Source)
		require.True(t, want.Value.Equal(g.Value) || want.Value.Kind() == bridge.KindFloat, "seq %d", want.Seq)
	}
	require.Equal(t, []string{`http 422: "value" out of range`, `http 422: "value" out of range`, `http 422: "value" out of range`, "unknown", "unknown"}, reasons)

	// Reopening appends after what is there; the spool ignores the file.
	d, err = OpenDeadLetter(path, DeadLetterOptions{})
	require.NoError(t, err)
	require.NoError(t, d.Put(samplesFrom(6, 1), errors.New("again")))
	require.NoError(t, d.Close())
	got, _ = readDeadLetters(t, path)
	require.Len(t, got, 6)
	var mu sync.Mutex
	var logs strings.Builder
	s := mustOpen(t, dir, Options{Logger: newTestLogger(&mu, &logs)})
	require.NoError(t, s.Close())
	require.NotContains(t, logs.String(), DeadLetterName)
}

func TestDeadLetterIsBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dl.jsonl")
	var mu sync.Mutex
	var logs strings.Builder
	d, err := OpenDeadLetter(path, DeadLetterOptions{MaxBytes: MinDeadLetterMaxBytes, Logger: newTestLogger(&mu, &logs)})
	require.NoError(t, err)
	defer d.Close()
	stored := 0
	for i := 0; ; i++ {
		err := d.Put(samplesFrom(uint64(1+10*i), 10), errors.New("rejected"))
		if err != nil {
			require.ErrorIs(t, err, ErrDeadLetterFull)
			require.ErrorContains(t, err, path)
			break
		}
		stored += 10
	}
	require.Positive(t, stored)
	size := fileSize(t, path)
	require.LessOrEqual(t, size, int64(MinDeadLetterMaxBytes))
	require.ErrorIs(t, d.Put(samplesFrom(1000, 10), errors.New("rejected")), ErrDeadLetterFull)
	require.EqualValues(t, stored, d.Written())
	require.EqualValues(t, 20, d.Refused())
	require.Equal(t, size, fileSize(t, path), "a refused batch writes nothing")
	mu.Lock()
	require.Equal(t, 1, strings.Count(logs.String(), "level=ERROR"), "logged once")
	mu.Unlock()
	got, _ := readDeadLetters(t, path)
	require.Len(t, got, stored)
}

func TestDeadLetterCutsTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dl.jsonl")
	d, err := OpenDeadLetter(path, DeadLetterOptions{})
	require.NoError(t, err)
	require.NoError(t, d.Put(samplesFrom(1, 2), errors.New("r")))
	require.NoError(t, d.Close())
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"source":"m","poi`)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	d, err = OpenDeadLetter(path, DeadLetterOptions{})
	require.NoError(t, err)
	require.NoError(t, d.Put(samplesFrom(3, 1), errors.New("r")))
	require.NoError(t, d.Close())
	got, _ := readDeadLetters(t, path)
	require.Len(t, got, 3)
}

func TestDeadLetterOptionsValidate(t *testing.T) {
	require.NoError(t, DeadLetterOptions{}.Validate())
	err := DeadLetterOptions{MaxBytes: 10}.Validate()
	fes := bridge.FieldErrors(err)
	require.Len(t, fes, 1)
	require.Equal(t, "max_bytes", fes[0].Path)
	_, err = OpenDeadLetter(filepath.Join(t.TempDir(), "x"), DeadLetterOptions{MaxBytes: 10})
	require.ErrorContains(t, err, "max_bytes")
}
