package bridge

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrClosed is returned by a Sink (and by the Bridge) for every call after
// Close. Sink packages may wrap it (fmt.Errorf("mqtt: %w", bridge.ErrClosed))
// so that errors.Is(err, bridge.ErrClosed) holds.
var ErrClosed = errors.New("bridge: closed")

// Sink receives batches of samples and delivers them somewhere: a file, a
// broker, a database.
//
// The contract, which callers and implementers may rely on:
//   - Write and Close are never called concurrently with each other; the
//     Bridge calls them from one goroutine per sink, though not always the
//     same goroutine.
//   - Write must not keep the batch slice, nor modify it, after it returns:
//     the caller reuses its backing array. Copying the samples (which are
//     plain values) is allowed.
//   - Write returns nil when every sample of the batch was delivered. A
//     [*BatchError] says which samples failed, all others having been
//     delivered; any other error means none of the batch may be assumed
//     delivered. Errors are retried unless marked with [Permanent].
//   - Write and Close honour ctx: when it ends they return promptly, with an
//     error that wraps ctx.Err() if the work was not done.
//   - Close is called once, after the last Write has returned. It flushes
//     what is buffered and releases the sink's resources and goroutines.
//     Every call after Close returns an error that wraps [ErrClosed].
type Sink interface {
	Write(ctx context.Context, batch []Sample) error
	Close(ctx context.Context) error
}

// Connector is implemented by sinks that dial a server. The Bridge calls
// Connect before the first Write and retries it with backoff while it fails;
// a sink that is not connected when Write is called connects there.
type Connector interface {
	Connect(ctx context.Context) error
}

// Flusher is implemented by sinks that buffer. The Bridge calls Flush when its
// queue for the sink runs empty and before Close.
type Flusher interface {
	Flush(ctx context.Context) error
}

// SinkFunc adapts a function to a [Sink], as http.HandlerFunc does for
// handlers. The function must follow the Write contract of [Sink]; Close does
// nothing, so a SinkFunc is for sinks that hold no resources.
type SinkFunc func(ctx context.Context, batch []Sample) error

// Write calls f(ctx, batch).
func (f SinkFunc) Write(ctx context.Context, batch []Sample) error { return f(ctx, batch) }

// Close does nothing and returns nil: a SinkFunc holds no resources.
func (f SinkFunc) Close(context.Context) error { return nil }

// BatchError reports that some samples of a batch failed while the others
// were delivered, like Benthos's BatchError. The Bridge retries only the
// failed samples.
type BatchError struct {
	// Failed holds the indexes, in the batch passed to Write, of the samples
	// that were not delivered, each with its error.
	Failed map[int]error
}

// NewBatchError returns an empty BatchError for a batch; add failures with
// [BatchError.Fail].
func NewBatchError() *BatchError { return &BatchError{Failed: make(map[int]error)} }

// Fail records that the sample at index i failed with err and returns e.
func (e *BatchError) Fail(i int, err error) *BatchError {
	e.Failed[i] = err
	return e
}

// Indexes returns the failed indexes in increasing order.
func (e *BatchError) Indexes() []int {
	idx := make([]int, 0, len(e.Failed))
	for i := range e.Failed {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	return idx
}

// Error summarises the failures: how many, and the first few with their
// reasons.
func (e *BatchError) Error() string {
	idx := e.Indexes()
	var b strings.Builder
	b.WriteString(strconv.Itoa(len(idx)))
	b.WriteString(" samples of the batch failed")
	for n, i := range idx {
		if n == 3 {
			b.WriteString("; ...")
			break
		}
		b.WriteString("; [")
		b.WriteString(strconv.Itoa(i))
		b.WriteString("]: ")
		if err := e.Failed[i]; err != nil {
			b.WriteString(err.Error())
		}
	}
	return b.String()
}

// Unwrap returns the distinct errors of the failures, so that errors.Is and
// errors.As reach them.
func (e *BatchError) Unwrap() []error {
	errs := make([]error, 0, len(e.Failed))
	for _, i := range e.Indexes() {
		if err := e.Failed[i]; err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying (a message the server rejected as
// malformed, an authorisation failure): the Bridge counts the samples as
// rejected instead of retrying them. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or any error it wraps, was marked with
// [Permanent].
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// IsRetriable reports whether a Write that failed with err is worth
// retrying: not when err is nil, permanent, or [ErrClosed].
func IsRetriable(err error) bool {
	return err != nil && !IsPermanent(err) && !errors.Is(err, ErrClosed)
}

// errorf is fmt.Errorf with the package prefix.
func errorf(format string, args ...any) error {
	return fmt.Errorf("bridge: "+format, args...)
}

type retryAfterError struct {
	err   error
	after time.Duration
}

func (e retryAfterError) Error() string { return e.err.Error() }
func (e retryAfterError) Unwrap() error { return e.err }

// RetryAfter marks a retriable err with the server's own word on when to try
// again (HTTP Retry-After on 429 or 503, a broker's throttle time): the Bridge
// waits at least d, and at most its Retry.Max, before the next attempt. The
// Bridge is the one owner of retries; a sink reports, it does not loop.
// RetryAfter(nil, d) is nil.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return retryAfterError{err, d}
}

// RetryAfterDelay returns the delay that err asks for with [RetryAfter], and
// whether it asks for one.
func RetryAfterDelay(err error) (time.Duration, bool) {
	var r retryAfterError
	if errors.As(err, &r) {
		return r.after, true
	}
	return 0, false
}

// DeadLetter keeps the samples a sink rejected for good ([Permanent] errors),
// so that a rejection never deletes data: they can be inspected and replayed
// by hand. Package bridge/spool provides a file implementation beside the
// spool. Put must not keep batch; it is called from the sink's writer
// goroutine only.
type DeadLetter interface {
	Put(batch []Sample, reason error) error
	Close() error
}
