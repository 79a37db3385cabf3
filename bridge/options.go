package bridge

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
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
	hint := ""
	switch strings.ToLower(strings.NewReplacer("-", "_", " ", "_").Replace(s)) {
	case "drop", "dropoldest", "drop_oldest", "drop_old", "oldest":
		hint = ` (did you mean "drop_oldest"?)`
	case "block", "blocking", "wait":
		hint = ` (did you mean "block"?)`
	case "spool", "disk", "spill":
		hint = ` (did you mean "spool"?)`
	}
	return 0, fmt.Errorf("unknown overflow policy %q: want block, drop_oldest or spool%s", s, hint)
}

// MarshalText returns the policy's configuration name.
func (o Overflow) MarshalText() ([]byte, error) {
	if o > OverflowSpool {
		return nil, errorf("unknown overflow policy %d", o)
	}
	return []byte(o.String()), nil
}

// UnmarshalText parses a configuration name, as [ParseOverflow] does, so an
// Overflow decodes from YAML, JSON or a flag.
func (o *Overflow) UnmarshalText(text []byte) error {
	v, err := ParseOverflow(string(text))
	if err != nil {
		return err
	}
	*o = v
	return nil
}

// Retry is the backoff between attempts to write a batch that failed with a
// retriable error, or to connect a sink. The n-th delay is
// Initial*Multiplier^(n-1), capped at Max, of which a random part
// (Jitter*delay) is subtracted so that many bridges do not retry in step.
type Retry struct {
	Initial    time.Duration `yaml:"initial"`    // first delay; default 100ms, 1ms..1h
	Max        time.Duration `yaml:"max"`        // longest delay; default 30s, 1ms..24h, ≥ Initial
	Multiplier float64       `yaml:"multiplier"` // default 2; 1..10
	Jitter     float64       `yaml:"jitter"`     // 0..1, the fraction of each delay that is random; default 0.5
	// MaxAttempts is how many times a batch is written before its samples
	// are given up and counted as Failed; 0 (the default) means retry until
	// shutdown; at most 1,000,000. Not allowed with OverflowSpool, whose
	// samples stay in the spool until delivered.
	MaxAttempts int `yaml:"max_attempts"`
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
	QueueSize int `yaml:"queue_size"`
	// BatchSize is the most samples per Write; default 500.
	BatchSize int `yaml:"batch_size"`
	// Linger is how long the writer waits for a batch to fill before it
	// writes a smaller one. Zero writes whatever is queued at once when the
	// writer has been idle, and under load starts a round of writes at most
	// once per millisecond (samples that arrive within a millisecond of the
	// last round wait out the rest of it, unless the queue is half full):
	// waking the writer costs more CPU than encoding a hundred samples, so
	// a source that emits batch after batch does not wake it for each.
	Linger time.Duration `yaml:"linger"`
	// Overflow is the policy when the queue is full.
	Overflow Overflow `yaml:"overflow"`
	// Spool is the durable store for OverflowSpool; required with it and
	// not allowed without it. The Bridge closes it at the end of Run.
	Spool Spool `yaml:"-"`
	// Retry is the backoff between attempts.
	Retry Retry `yaml:"retry"`
	// Unfiltered makes the sink take every sample its sources emit, not
	// only those that report by exception passes (SourceOptions.Report):
	// a local file that keeps everything beside a metered link that takes
	// exceptions only. The samples report by exception held back reach it
	// with Seq 0, so that its numbered samples are the reported stream
	// that the other sinks get, without gaps (a consumer that drops
	// redelivered duplicates by seq keys the unnumbered ones by source,
	// point and time); they are counted in SourceStats.Suppressed. A
	// source inbox (SourceOptions.Inbox) then holds the held-back samples
	// too, so its room for the reported stream shrinks by the share that
	// report by exception holds back: size it for every sample. Default
	// false: the reported samples only.
	Unfiltered bool `yaml:"unfiltered"`
	// DeadLetter, when set, keeps the samples the sink rejects for good
	// ([Permanent] errors), so that a rejection never deletes data. The
	// Bridge closes it at the end of Run.
	DeadLetter DeadLetter `yaml:"-"`
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
	// WriteInterval is the least time between two writes of one point
	// (Bridge.Write); default DefaultWriteInterval (100ms); negative
	// disables the limit.
	WriteInterval time.Duration
	// WriteTimeout bounds a write whose context has no deadline; default
	// DefaultWriteTimeout (5s).
	WriteTimeout time.Duration
}

// Ranges of the settings, enforced by Validate.
const (
	MaxQueueSize = 1_000_000 // samples held in memory per sink or source inbox (≈ 150 MB)
	MaxBatchSize = 100_000
	MaxLinger    = time.Minute
)

// Validate checks the retry settings and returns every problem as a
// [*FieldError] whose path is the YAML key ("initial", "max_attempts").
// Zero values mean the defaults and are valid.
func (r Retry) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) { errs = append(errs, FieldErrorf(path, format, args...)) }
	checkDur := func(path string, d, lo, hi time.Duration) {
		if d != 0 && (d < lo || d > hi) {
			bad(path, "%v is out of range: want %v to %v (or 0 for the default)", d, lo, hi)
		}
	}
	checkDur("initial", r.Initial, time.Millisecond, time.Hour)
	checkDur("max", r.Max, time.Millisecond, 24*time.Hour)
	if r.Initial > 0 && r.Max > 0 && r.Initial > r.Max {
		bad("initial", "%v is above max %v", r.Initial, r.Max)
	}
	if r.Multiplier != 0 && (r.Multiplier < 1 || r.Multiplier > 10) {
		bad("multiplier", "%v is out of range: want 1 to 10 (or 0 for the default 2)", r.Multiplier)
	}
	if r.Jitter < 0 || r.Jitter > 1 {
		bad("jitter", "%v is out of range: want 0 to 1", r.Jitter)
	}
	if r.MaxAttempts < 0 || r.MaxAttempts > 1_000_000 {
		bad("max_attempts", "%d is out of range: want 0 (retry until shutdown) to 1000000", r.MaxAttempts)
	}
	return errors.Join(errs...)
}

// Validate checks the options that a configuration file sets and returns
// every problem as a [*FieldError] whose path is the YAML key ("queue_size",
// "retry.initial"). Zero values mean the defaults and are valid. Whether
// Spool is set to match the policy is checked by [Bridge.AddSink], since a
// file does not set it.
func (o SinkOptions) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) { errs = append(errs, FieldErrorf(path, format, args...)) }
	if o.QueueSize < 0 || o.QueueSize > MaxQueueSize {
		bad("queue_size", "%d is out of range: want 1 to %d samples (or 0 for the default 10000)", o.QueueSize, MaxQueueSize)
	}
	if o.BatchSize < 0 || o.BatchSize > MaxBatchSize {
		bad("batch_size", "%d is out of range: want 1 to %d samples (or 0 for the default 500)", o.BatchSize, MaxBatchSize)
	} else if o.BatchSize > 0 && o.QueueSize > 0 && o.BatchSize > o.QueueSize {
		bad("batch_size", "%d is above queue_size %d", o.BatchSize, o.QueueSize)
	}
	if o.Linger < 0 || o.Linger > MaxLinger {
		bad("linger", "%v is out of range: want 0 to %v", o.Linger, MaxLinger)
	}
	if o.Overflow > OverflowSpool {
		bad("overflow", "unknown overflow policy %d", o.Overflow)
	}
	if o.Overflow == OverflowSpool && o.Retry.MaxAttempts > 0 {
		bad("retry.max_attempts", "%d cannot be used with overflow spool: spooled samples are kept until delivered, never given up", o.Retry.MaxAttempts)
	}
	if err := o.Retry.Validate(); err != nil {
		errs = append(errs, PrefixFields("retry", err))
	}
	return errors.Join(errs...)
}
