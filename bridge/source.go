package bridge

import "context"

// Emitter accepts samples from a [Source]. The Bridge hands one to each
// source it runs.
//
// Emit copies the samples before it returns, so the caller may reuse the
// batch's backing array at once. It is safe for concurrent use. It returns
// an error only when the samples were not accepted: ctx ended while the
// Bridge was blocked on a full queue (overflow policy [OverflowBlock]), or the Bridge
// is shutting down ([ErrClosed]).
type Emitter interface {
	Emit(ctx context.Context, batch []Sample) error
}

// EmitterFunc adapts a function to an [Emitter].
type EmitterFunc func(ctx context.Context, batch []Sample) error

// Emit calls f(ctx, batch).
func (f EmitterFunc) Emit(ctx context.Context, batch []Sample) error { return f(ctx, batch) }

// Source produces samples: a polled Modbus device, an OPC UA subscription.
//
// Run produces samples into out until ctx ends, then returns nil; it returns
// earlier only with an error that makes going on pointless (a configuration
// the device rejects for good). Failures that may pass (a timeout, a lost
// connection) are reported as Bad samples and retried inside Run, not
// returned. Run owns its goroutines and ends them all before returning. Run
// is called once.
type Source interface {
	Run(ctx context.Context, out Emitter) error
}

// SourceFunc adapts a function to a [Source].
type SourceFunc func(ctx context.Context, out Emitter) error

// Run calls f(ctx, out).
func (f SourceFunc) Run(ctx context.Context, out Emitter) error { return f(ctx, out) }
