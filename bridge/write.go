package bridge

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
)

// Refusals: a write that breaks a rule is refused with an error wrapping one
// of these, before anything is sent to the device. Sources wrap them with
// the point and the rule ("setpoint: 95 is above max 80").
var (
	ErrUnknownSource = errors.New("unknown source")
	ErrUnknownPoint  = errors.New("unknown point")
	ErrNotWritable   = errors.New("not writable")
	ErrOutOfRange    = errors.New("out of range")
	ErrWrongType     = errors.New("wrong type")
	ErrRateLimited   = errors.New("too many writes")
	// ErrShuttingDown refuses a write asked for once the bridge's
	// shutdown has begun (Run's context ended, or every source ended):
	// its sources are stopping, and the read-back would be lost.
	ErrShuttingDown = errors.New("bridge: shutting down")
)

// IsRefusal reports whether err is a write refused by a rule (one of the
// Err... refusals above), as opposed to a write that failed at the device.
func IsRefusal(err error) bool {
	for _, r := range []error{ErrUnknownSource, ErrUnknownPoint, ErrNotWritable, ErrOutOfRange, ErrWrongType, ErrRateLimited, ErrShuttingDown} {
		if errors.Is(err, r) {
			return true
		}
	}
	return false
}

// Writer is implemented by sources that accept writes (modbus.Device, the
// OPC UA source). Write checks v against the point's rules first (it is
// writable, v has a type the point can hold exactly, v is within its
// range), refusing with an error that wraps one of the refusals; only then
// does it write, on the same link and in turn with the polls, and read the
// point back. It returns the sample read back (Source, Point, Value, Unit,
// Time, Quality), which the Bridge emits as a normal sample. Write must be
// safe to call concurrently with Run and honours ctx.
type Writer interface {
	Write(ctx context.Context, point string, v Value) (Sample, error)
}

// WriteChecker is implemented by Writers that can apply their rules to a
// value without sending anything (modbus.Device). The Bridge asks it before
// the rate limit, so a client that sends a bad value right after a good one
// is told what is wrong with the value, not that it wrote too often.
type WriteChecker interface {
	CheckWrite(point string, v Value) error
}

// WriteRequest is a command to write one point of one source.
type WriteRequest struct {
	Source, Point string
	Value         Value
	// ID is the requester's own id, returned in the result and logged.
	ID string
	// Origin says who asked, for the log: "mqtt m2m/cmd/plc1/setpoint",
	// "nats m2m.cmd.plc1.setpoint". Never a secret.
	Origin string
}

// WriteResult is the answer to a WriteRequest.
type WriteResult struct {
	ID string
	// OK is true when the device took the write. Value and Time are then
	// what was read back, and Matched says whether it equals the value
	// written (a device may clamp or round it).
	OK      bool
	Value   Value
	Time    time.Time
	Matched bool
	// Err is why the write was refused (IsRefusal) or failed at the device.
	Err error
}

// WriteStats count the writes of one point.
type WriteStats struct {
	Source, Point string
	Accepted      uint64 // written and read back
	Refused       uint64 // refused by a rule, nothing sent
	Failed        uint64 // sent, and failed at the device (timeout, exception)
}

// DefaultWriteInterval is the least time between two writes of one point,
// when Options.WriteInterval is zero: a runaway client cannot hammer a
// device.
const DefaultWriteInterval = 100 * time.Millisecond

// DefaultWriteTimeout bounds a write whose context has no deadline.
const DefaultWriteTimeout = 5 * time.Second

type writeKey struct{ source, point string }

type writeState struct {
	last time.Time
	st   WriteStats
}

// Write routes a write to the source that owns the point, through the
// source's own rules: a source that is unknown or accepts no writes, or a
// point written less than Options.WriteInterval ago, is refused here; the
// source refuses what breaks the point's rules, before anything is sent.
// After the write the point is read back and the sample emitted at once,
// so the stream shows the effect without waiting for the next poll. Every
// write is counted (Stats.Writes) and logged at info with its origin and
// value. Write may be called concurrently from any goroutine; the Bridge
// must be running (its sinks take the read-back sample): once Run's
// shutdown has begun (its context ended, or every source ended), Write
// refuses with [ErrShuttingDown] (a refusal: nothing reaches the device).
func (b *Bridge) Write(ctx context.Context, req WriteRequest) WriteResult {
	res := WriteResult{ID: req.ID}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.writeTimeout())
		defer cancel()
	}
	src := b.source(req.Source)
	var w Writer
	switch {
	case b.writesOff.Load():
		res.Err = fmt.Errorf("source %q: %w", req.Source, ErrShuttingDown)
	case src == nil:
		res.Err = fmt.Errorf("source %q: %w", req.Source, ErrUnknownSource)
	default:
		var ok bool
		if w, ok = src.src.(Writer); !ok {
			res.Err = fmt.Errorf("source %q accepts no writes: %w", req.Source, ErrNotWritable)
		}
	}
	if res.Err == nil {
		if c, ok := w.(WriteChecker); ok {
			res.Err = c.CheckWrite(req.Point, req.Value)
		}
	}
	if res.Err == nil {
		res.Err = b.admit(req, time.Now())
	}
	if res.Err == nil {
		s, err := w.Write(ctx, req.Point, req.Value)
		if !IsRefusal(err) {
			// Something was sent: the rate limit counts from here. A
			// write refused by a rule touched no device and does not.
			b.sent(req, time.Now())
		}
		if err != nil {
			res.Err = err
		} else {
			if s.Source == "" {
				s.Source = req.Source
			}
			if s.Point == "" {
				s.Point = req.Point
			}
			res.OK, res.Value, res.Time = true, s.Value, s.Time
			res.Matched = sameValue(req.Value, s.Value)
			if err := src.Emit(ctx, []Sample{s}); err != nil {
				b.log.Warn("bridge: write: the read-back sample was not emitted", "source", req.Source, "point", req.Point, "err", err)
			}
		}
	}
	b.countWrite(req, res)
	attrs := []any{"source", req.Source, "point", req.Point, "value", req.Value.String(), "origin", req.Origin, "id", req.ID, "ok", res.OK}
	switch {
	case res.OK:
		b.log.Info("bridge: write", append(attrs, "read_back", res.Value.String(), "matched", res.Matched)...)
	default:
		b.log.Info("bridge: write", append(attrs, "err", res.Err)...)
	}
	return res
}

// admit applies the per-point rate limit: at most one write that reached
// the device per interval.
func (b *Bridge) admit(req WriteRequest, now time.Time) error {
	interval := b.opts.WriteInterval
	if interval == 0 {
		interval = DefaultWriteInterval
	}
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	// Look only: a point is tracked once a write reached it (sent), so
	// that requests for made-up points cannot grow the table.
	st := b.writes[writeKey{req.Source, req.Point}]
	if interval > 0 && st != nil && !st.last.IsZero() && now.Sub(st.last) < interval {
		return fmt.Errorf("%s: written %v ago, at most one write per %v: %w", req.Point, now.Sub(st.last).Round(time.Millisecond), interval, ErrRateLimited)
	}
	return nil
}

// sent records that a write of the point reached its device.
func (b *Bridge) sent(req WriteRequest, now time.Time) {
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	k := writeKey{req.Source, req.Point}
	if _, ok := b.writes[k]; !ok && len(b.writes) >= maxWriteKeys {
		return // the table is full: this point goes without a rate limit
	}
	b.writeStateLocked(k).last = now
}

func (b *Bridge) writeStateLocked(k writeKey) *writeState {
	if b.writes == nil {
		b.writes = make(map[writeKey]*writeState)
	}
	st := b.writes[k]
	if st == nil {
		st = &writeState{st: WriteStats{Source: k.source, Point: k.point}}
		b.writes[k] = st
	}
	return st
}

func (b *Bridge) countWrite(req WriteRequest, res WriteResult) {
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	// Unknown sources and points are counted too, under the name asked
	// for, but bounded: a client cannot grow the table without limit.
	k := writeKey{req.Source, req.Point}
	if _, ok := b.writes[k]; !ok && len(b.writes) >= maxWriteKeys {
		k = writeKey{"(other)", "(other)"}
	}
	st := b.writeStateLocked(k)
	switch {
	case res.OK:
		st.st.Accepted++
	case IsRefusal(res.Err):
		st.st.Refused++
	default:
		st.st.Failed++
	}
}

// maxWriteKeys bounds the write counters' table.
const maxWriteKeys = 10_000

func (b *Bridge) writeTimeout() time.Duration {
	if b.opts.WriteTimeout > 0 {
		return b.opts.WriteTimeout
	}
	return DefaultWriteTimeout
}

func (b *Bridge) source(name string) *sourceRunner {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.sources {
		if s.name == name {
			return s
		}
	}
	return nil
}

func (b *Bridge) writeStats() []WriteStats {
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	out := make([]WriteStats, 0, len(b.writes))
	for _, st := range b.writes {
		out = append(out, st.st)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Source != out[j].Source {
			return out[i].Source < out[j].Source
		}
		return out[i].Point < out[j].Point
	})
	return out
}

// sameValue reports whether the value read back is the value written:
// equal, or for numbers equal within a relative 1e-9 (a scaled register
// read back through its scale), or the same float32 when the device holds
// a 32-bit float.
func sameValue(written, read Value) bool {
	if written.Equal(read) {
		return true
	}
	num := func(v Value) bool { return v.kind == KindFloat || v.kind == KindInt || v.kind == KindUint }
	if !num(written) || !num(read) {
		return false
	}
	a, c := written.Float(), read.Float()
	if math.Abs(a-c) <= 1e-9*math.Max(1, math.Abs(a)) {
		return true
	}
	// A 32-bit float register or node holds the nearest float32: 0.1 reads
	// back as 0.10000000149011612.
	return float64(float32(c)) == c && float32(a) == float32(c)
}

// WriteFunc is what a command source (an MQTT or NATS subscriber of
// commands) calls for each command: [Bridge.Write], usually.
type WriteFunc func(ctx context.Context, req WriteRequest) WriteResult
