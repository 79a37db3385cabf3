package bridge

import "context"

// Spool is durable store-and-forward storage for one sink: a log of samples on
// local disk that survives the sink being down and the process dying. With
// the overflow policy [OverflowSpool] every sample accepted for the sink is
// appended to its Spool first, and the sink's writer reads the log oldest
// first, acknowledging each batch only after the sink delivered it; so
// delivery is at-least-once and in order. Package bridge/spool provides the
// implementation.
//
// A Spool is used by two goroutines: the Emit path calls Append, the sink's
// writer calls Peek and Ack. Implementations must allow that.
type Spool interface {
	// Append stores batch durably (within the spool's sync policy) after
	// every sample already stored. It must not keep batch. When the spool is
	// full it applies its own full policy: drop its oldest samples (counted),
	// or block until there is room or ctx ends. An error that stored the
	// first part of the batch has a method StoredSamples() int saying how
	// many, so that they are counted.
	Append(ctx context.Context, batch []Sample) error
	// Peek copies the oldest samples not yet acknowledged into buf, without
	// removing them, and returns how many it copied; 0 when the spool is
	// empty. Successive Peeks without Ack return the same samples.
	Peek(buf []Sample) (int, error)
	// Ack removes the n oldest samples: the sink has delivered them.
	Ack(n int) error
	// Len returns the number of samples held and not acknowledged.
	Len() int64
	// Dropped returns how many samples the spool has dropped because it was
	// full (or skipped as corrupt on recovery) since it was opened.
	Dropped() uint64
	// Close syncs and closes the spool; later calls return ErrClosed.
	Close() error
}
