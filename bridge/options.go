package bridge

import (
	"log/slog"
	"math/rand/v2"
	"time"
)

// Overflow is what a sink's queue does when a sample arrives and the queue is
// full. There is no default that loses data silently: the zero value blocks.
type Overflow uint8

// The overflow policies.
const (
	// OverflowBlock makes Emit wait for room, so a slow sink slows the
	// sources (and, through them, every other sink). Nothing is lost.
	OverflowBlock Overflow = iota
	// OverflowDropOldest drops the oldest queued samples to make room and
	// counts them in SinkStats.Dropped. The sources never wait.
	OverflowDropOldest
	// OverflowSpool appends every sample for the sink to its durable
	// [Spool] (SinkOptions.Spool) before anything else; the sink is fed from
	// the spool, oldest first, and a batch is removed from it only after the
	// sink delivered it. The spool's own full policy applies when it is
	// full.
	OverflowSpool
)

// String returns the policy's name as used in configuration files: "block",
// "drop_oldest" or "spool".
func (o Overflow) String() string {
	switch o {
	case OverflowBlock:
		return "block"
	case OverflowDropOldest:
		return "drop_oldest"
	case OverflowSpool:
		return "spool"
	}
	return "overflow(?)"
}

// ParseOverflow parses the configuration name of an overflow policy.
func ParseOverflow(s string) (Overflow, error) {
	switch s {
	case "block", "":
		return OverflowBlock, nil
	case "drop_oldest":
		return OverflowDropOldest, nil
	case "spool":
		return OverflowSpool, nil
	}
	return 0, errorf("unknown overflow policy %q (want block, drop_oldest or spool)", s)
}

// Retry is the backoff between attempts to write a batch that failed with a
// retriable error, or to connect a sink. The n-th delay is
// Initial*Multiplier^(n-1), capped at Max, of which a random part
// (Jitter*delay) is subtracted so that many bridges do not retry in step.
type Retry struct {
	Initial    time.Duration // first delay; default 100ms
	Max        time.Duration // longest delay; default 30s
	Multiplier float64       // default 2
	Jitter     float64       // 0..1, the fraction of each delay that is random; default 0.5
	// MaxAttempts is how many times a batch is written before its samples
	// are given up and counted as Failed; 0 means retry until shutdown.
	// With OverflowSpool it is ignored: samples stay in the spool.
	MaxAttempts int
}

func (r Retry) withDefaults() Retry {
	if r.Initial <= 0 {
		r.Initial = 100 * time.Millisecond
	}
	if r.Max <= 0 {
		r.Max = 30 * time.Second
	}
	if r.Max < r.Initial {
		r.Max = r.Initial
	}
	if r.Multiplier < 1 {
		r.Multiplier = 2
	}
	if r.Jitter <= 0 || r.Jitter > 1 {
		r.Jitter = 0.5
	}
	return r
}

// Delay returns the delay before attempt n+1 after n failed attempts (n ≥ 1).
func (r Retry) Delay(n int) time.Duration {
	r = r.withDefaults()
	d := float64(r.Initial)
	for i := 1; i < n && d < float64(r.Max); i++ {
		d *= r.Multiplier
	}
	if d > float64(r.Max) {
		d = float64(r.Max)
	}
	d -= d * r.Jitter * rand.Float64()
	return time.Duration(d)
}

// SinkOptions configure how the Bridge feeds one sink.
type SinkOptions struct {
	// QueueSize is the most samples held in memory for the sink; default
	// 10,000.
	QueueSize int
	// BatchSize is the most samples per Write; default 500.
	BatchSize int
	// Linger is how long the writer waits for a batch to fill before it
	// writes a smaller one. Zero writes whatever is queued at once (batches
	// then grow by themselves under load).
	Linger time.Duration
	// Overflow is the policy when the queue is full.
	Overflow Overflow
	// Spool is the durable store for OverflowSpool; required with it and
	// not allowed without it. The Bridge closes it at the end of Run.
	Spool Spool
	// Retry is the backoff between attempts.
	Retry Retry
}

// Options configure a Bridge.
type Options struct {
	// Logger receives one record per state change (sink up/down, a source
	// ending with an error, shutdown), never one per sample. Nil means
	// slog.Default().
	Logger *slog.Logger
	// DrainTimeout bounds the graceful shutdown: how long the sinks get to
	// deliver what is queued after the sources stopped. Default 10s.
	DrainTimeout time.Duration
	// CloseTimeout bounds each sink's Close after draining. Default 5s.
	CloseTimeout time.Duration
	// SeqStart is the first sequence number given to each source's samples
	// (Sample.Seq) when the sample has none. Zero means the bridge's start
	// time in Unix nanoseconds, so numbers keep growing across restarts as
	// long as the clock does not go back (no source emits more than one
	// sample per nanosecond). With durable spools, pass the largest
	// SeqStart() of the spools (package bridge/spool), which is also above
	// every number they hold, so numbers grow even if the clock went back.
	SeqStart uint64
}
