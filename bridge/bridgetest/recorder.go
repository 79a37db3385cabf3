package bridgetest

import (
	"context"
	"sync"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// Recorder is a [bridge.Sink] and a [bridge.Emitter] that records a copy of
// every sample it is given. Use it to test a Source (pass it as the
// Emitter) or a pipeline (add it as a sink). Its methods are safe for
// concurrent use.
type Recorder struct {
	mu      sync.Mutex
	samples []bridge.Sample
	closed  bool
	changed chan struct{} // closed and replaced on every change
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{changed: make(chan struct{})}
}

// Write records the batch. It fails with bridge.ErrClosed after Close.
func (r *Recorder) Write(ctx context.Context, batch []bridge.Sample) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return r.record(batch)
}

// Emit records the batch, as an Emitter.
func (r *Recorder) Emit(ctx context.Context, batch []bridge.Sample) error {
	return r.Write(ctx, batch)
}

func (r *Recorder) record(batch []bridge.Sample) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return bridge.ErrClosed
	}
	r.samples = append(r.samples, batch...)
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

// Close marks the recorder closed; the recorded samples stay readable.
func (r *Recorder) Close(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return bridge.ErrClosed
	}
	r.closed = true
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

// Closed reports whether Close was called.
func (r *Recorder) Closed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// Samples returns a copy of every sample recorded so far, in order.
func (r *Recorder) Samples() []bridge.Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bridge.Sample(nil), r.samples...)
}

// Len returns how many samples were recorded.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.samples)
}

// Reset forgets the recorded samples.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = nil
}

// Wait waits until at least n samples are recorded and returns a copy of all
// of them. When ctx ends first it returns what it has and ctx.Err().
func (r *Recorder) Wait(ctx context.Context, n int) ([]bridge.Sample, error) {
	for {
		r.mu.Lock()
		if len(r.samples) >= n {
			out := append([]bridge.Sample(nil), r.samples...)
			r.mu.Unlock()
			return out, nil
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return r.Samples(), ctx.Err()
		}
	}
}
