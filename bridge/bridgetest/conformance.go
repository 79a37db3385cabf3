package bridgetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// Readback returns the samples that reached a sink's destination, waiting
// until at least want have arrived or ctx ends (then it returns what it has
// and ctx.Err()).
type Readback func(ctx context.Context, want int) ([]bridge.Sample, error)

// Harness describes a Sink implementation to [TestSink].
type Harness struct {
	// New returns a new sink writing to a fresh destination (a unique topic,
	// subject, database...) and a Readback for that destination, or nil when
	// it cannot be read back. Register clean-ups with t.Cleanup.
	New func(t *testing.T) (bridge.Sink, Readback)
	// Timeout bounds each step of the suite; default 20s.
	Timeout time.Duration
}

// TestSink runs the Sink conformance suite as subtests, as
// testing/fstest.TestFS does for file systems. It checks the contract written
// on [bridge.Sink]:
//   - close semantics: Close returns nil, a second Close and a Write after
//     Close return errors wrapping bridge.ErrClosed;
//   - context cancellation: Write and Close with a cancelled context return
//     promptly, with an error wrapping context.Canceled if they did not do
//     the work;
//   - no retained batch: the suite scribbles over each batch after Write
//     returns and, with a Readback, checks that what arrived is what was
//     written (Good samples compared on Source, Point, Value, Time, in any
//     order);
//   - no goroutine leak after Close;
//   - Writes from different goroutines, one at a time, are race-free.
func TestSink(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("bridgetest: Harness.New is nil")
	}
	if h.Timeout <= 0 {
		h.Timeout = 20 * time.Second
	}
	t.Run("CloseSemantics", func(t *testing.T) { testClose(t, h) })
	t.Run("CancelledContext", func(t *testing.T) { testCancel(t, h) })
	t.Run("NoRetainedBatch", func(t *testing.T) { testRetain(t, h) })
	t.Run("GoroutineLeak", func(t *testing.T) { testLeak(t, h) })
	t.Run("WritesFromManyGoroutines", func(t *testing.T) { testGoroutines(t, h) })
}

// Samples returns n distinct Good samples of every value kind with the given
// source name, timestamps a microsecond apart from base.
func Samples(source string, n int, base time.Time) []bridge.Sample {
	out := make([]bridge.Sample, n)
	for i := range out {
		s := bridge.Sample{
			Source: source,
			Point:  fmt.Sprintf("p%d", i%7),
			Time:   base.Add(time.Duration(i) * time.Microsecond),
			Unit:   "V",
		}
		switch i % 5 {
		case 0:
			s.Value = bridge.Float(float64(i) + 0.25)
		case 1:
			s.Value = bridge.Int(-int64(i) * 1000003)
		case 2:
			s.Value = bridge.Int(math.MaxInt64 - int64(i))
		case 3:
			s.Value = bridge.Bool(i%2 == 0)
		case 4:
			s.Value = bridge.String(fmt.Sprintf("text %d", i))
		}
		out[i] = s
	}
	return out
}

func (h Harness) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), h.Timeout)
	t.Cleanup(cancel)
	return ctx
}

func connect(t *testing.T, ctx context.Context, s bridge.Sink) {
	t.Helper()
	if c, ok := s.(bridge.Connector); ok {
		if err := c.Connect(ctx); err != nil {
			t.Fatalf("Connect: %v", err)
		}
	}
}

func testClose(t *testing.T, h Harness) {
	ctx := h.ctx(t)
	s, _ := h.New(t)
	connect(t, ctx, s)
	if err := s.Write(ctx, Samples(t.Name(), 3, time.Now())); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Write(ctx, Samples(t.Name(), 1, time.Now())); !errors.Is(err, bridge.ErrClosed) {
		t.Errorf("Write after Close: got %v, want an error wrapping bridge.ErrClosed", err)
	}
	if err := s.Close(ctx); !errors.Is(err, bridge.ErrClosed) {
		t.Errorf("second Close: got %v, want an error wrapping bridge.ErrClosed", err)
	}
}

func testCancel(t *testing.T, h Harness) {
	ctx := h.ctx(t)
	s, _ := h.New(t)
	connect(t, ctx, s)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	start := time.Now()
	err := s.Write(cancelled, Samples(t.Name(), 10, time.Now()))
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Write with a cancelled context: got %v, want nil or an error wrapping context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Write with a cancelled context took %v", d)
	}
	start = time.Now()
	err = s.Close(cancelled)
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Close with a cancelled context: got %v, want nil or an error wrapping context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close with a cancelled context took %v", d)
	}
}

func testRetain(t *testing.T, h Harness) {
	ctx := h.ctx(t)
	s, readback := h.New(t)
	connect(t, ctx, s)
	source := fmt.Sprintf("conformance-%d", time.Now().UnixNano())
	want := Samples(source, 60, time.Now().Truncate(time.Microsecond))
	batch := make([]bridge.Sample, 20)
	for off := 0; off < len(want); off += len(batch) {
		copy(batch, want[off:off+len(batch)])
		if err := s.Write(ctx, batch); err != nil {
			t.Fatalf("Write: %v", err)
		}
		for i := range batch { // a sink that kept the batch now holds junk
			batch[i] = bridge.Sample{Source: "scribbled", Point: "scribbled", Value: bridge.String("scribbled"), Quality: bridge.Bad}
		}
	}
	if f, ok := s.(bridge.Flusher); ok {
		if err := f.Flush(ctx); err != nil {
			t.Fatalf("Flush: %v", err)
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if readback == nil {
		return
	}
	got, err := readback(ctx, len(want))
	if err != nil {
		t.Fatalf("read back %d samples: got %d: %v", len(want), len(got), err)
	}
	if msg := Match(want, got); msg != "" {
		t.Error(msg)
	}
}

// Match compares what was written with what arrived, in any order, on Source,
// Point, Value (Value.Equal) and Time (to the nanosecond); extra samples of
// other sources in got are ignored. It returns "" when every wanted sample
// arrived, or a description of the differences.
func Match(want, got []bridge.Sample) string {
	type key struct {
		source, point string
		time          int64
	}
	arrived := make(map[key][]bridge.Value)
	sources := make(map[string]bool)
	for _, w := range want {
		sources[w.Source] = true
	}
	for _, g := range got {
		if !sources[g.Source] {
			continue
		}
		k := key{g.Source, g.Point, g.Time.UnixNano()}
		arrived[k] = append(arrived[k], g.Value)
	}
	var missing []string
	for _, w := range want {
		k := key{w.Source, w.Point, w.Time.UnixNano()}
		vals := arrived[k]
		found := false
		for i, v := range vals {
			if v.Equal(w.Value) {
				arrived[k] = append(vals[:i], vals[i+1:]...)
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, fmt.Sprintf("%s/%s=%v@%s (arrived there: %v)", w.Source, w.Point, w.Value, w.Time.Format(time.RFC3339Nano), vals))
		}
	}
	n := len(missing)
	if n == 0 {
		return ""
	}
	if n > 5 {
		missing = append(missing[:5], fmt.Sprintf("... %d more", n-5))
	}
	return fmt.Sprintf("%d of %d samples did not arrive as written: %v", n, len(want), missing)
}

func testLeak(t *testing.T, h Harness) {
	ignore := goleak.IgnoreCurrent()
	ctx := h.ctx(t)
	func() {
		s, _ := h.New(t)
		connect(t, ctx, s)
		if err := s.Write(ctx, Samples(t.Name(), 5, time.Now())); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if err := s.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}()
	if err := goleak.Find(ignore); err != nil {
		t.Errorf("goroutines left after Close: %v", err)
	}
}

func testGoroutines(t *testing.T, h Harness) {
	ctx := h.ctx(t)
	s, readback := h.New(t)
	connect(t, ctx, s)
	source := fmt.Sprintf("conformance-g-%d", time.Now().UnixNano())
	want := Samples(source, 40, time.Now().Truncate(time.Microsecond))
	var mu sync.Mutex // the contract: one Write at a time
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err := s.Write(ctx, want[g*10:(g+1)*10]); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Write: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if readback == nil {
		return
	}
	got, err := readback(ctx, len(want))
	if err != nil {
		t.Fatalf("read back %d samples: got %d: %v", len(want), len(got), err)
	}
	if msg := Match(want, got); msg != "" {
		t.Error(msg)
	}
}
