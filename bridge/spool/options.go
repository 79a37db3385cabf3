package spool

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"
)

// FullPolicy says what Append does when the spool holds MaxBytes.
type FullPolicy uint8

const (
	// DropOldest deletes the oldest segment(s) to make room, counting every
	// sample lost in [Spool.Dropped] and logging it. The sources keep
	// running; the oldest readings are lost. The zero FullPolicy.
	DropOldest FullPolicy = iota
	// Block makes Append wait until acknowledgements free room, or until its
	// context ends. Nothing is lost; the sources are held back.
	Block
)

// String returns "drop_oldest" or "block".
func (p FullPolicy) String() string {
	switch p {
	case DropOldest:
		return "drop_oldest"
	case Block:
		return "block"
	}
	return "full_policy(" + strconv.Itoa(int(p)) + ")"
}

// SyncPolicy says when appended records are forced to stable storage
// (fsync). See the package documentation for what survives which failure.
type SyncPolicy uint8

const (
	// SyncEvery fsyncs before every Append returns: a batch Append returned
	// for survives power loss. The zero SyncPolicy.
	SyncEvery SyncPolicy = iota
	// SyncInterval fsyncs from a background goroutine every
	// [Options.Interval]: Append returns once the batch is in the operating
	// system's page cache, so it survives a process crash, and power loss
	// may lose what was appended in the last interval.
	SyncInterval
)

// String returns "every" or "interval".
func (p SyncPolicy) String() string {
	switch p {
	case SyncEvery:
		return "every"
	case SyncInterval:
		return "interval"
	}
	return "sync_policy(" + strconv.Itoa(int(p)) + ")"
}

// Defaults and limits of [Options].
const (
	// DefaultMaxBytes is the MaxBytes of the zero Options: 1 GiB.
	DefaultMaxBytes = 1 << 30
	// DefaultSegmentBytes is the SegmentBytes of the zero Options: 16 MiB.
	DefaultSegmentBytes = 16 << 20
	// DefaultInterval is the fsync period under SyncInterval: 100 ms.
	DefaultInterval = 100 * time.Millisecond
	// MinMaxBytes is the smallest MaxBytes accepted.
	MinMaxBytes = 16 << 10
	// MinSegmentBytes is the smallest SegmentBytes accepted.
	MinSegmentBytes = 4 << 10
)

// Options configures a [Spool]. The zero Options is valid: 1 GiB, 16 MiB
// segments, DropOldest, SyncEvery.
type Options struct {
	// MaxBytes bounds the bytes of segment files on disk (default 1 GiB,
	// at least MinMaxBytes). When an Append would exceed it, Full applies.
	MaxBytes int64
	// SegmentBytes bounds each segment file (default 16 MiB, at least
	// MinSegmentBytes). It is lowered to MaxBytes/4 when larger, so that
	// dropping one segment never empties the spool.
	SegmentBytes int64
	// Full is the policy when the spool is full (default DropOldest).
	Full FullPolicy
	// Sync is the fsync policy (default SyncEvery).
	Sync SyncPolicy
	// Interval is the fsync period under SyncInterval (default 100ms).
	Interval time.Duration
	// Logger receives drops, recovered damage and I/O failures; nil
	// discards them (they are still counted).
	Logger *slog.Logger
}

func (o Options) normalize() (Options, error) {
	var errs []error
	switch {
	case o.MaxBytes == 0:
		o.MaxBytes = DefaultMaxBytes
	case o.MaxBytes < MinMaxBytes:
		errs = append(errs, fmt.Errorf("spool: options: MaxBytes %d is less than the minimum %d", o.MaxBytes, MinMaxBytes))
	}
	switch {
	case o.SegmentBytes == 0:
		o.SegmentBytes = DefaultSegmentBytes
	case o.SegmentBytes < MinSegmentBytes:
		errs = append(errs, fmt.Errorf("spool: options: SegmentBytes %d is less than the minimum %d", o.SegmentBytes, MinSegmentBytes))
	}
	if o.SegmentBytes > o.MaxBytes/4 {
		o.SegmentBytes = max(o.MaxBytes/4, MinSegmentBytes)
	}
	if o.Full != DropOldest && o.Full != Block {
		errs = append(errs, fmt.Errorf("spool: options: unknown Full policy %d", o.Full))
	}
	switch o.Sync {
	case SyncEvery:
	case SyncInterval:
		if o.Interval == 0 {
			o.Interval = DefaultInterval
		} else if o.Interval < 0 {
			errs = append(errs, fmt.Errorf("spool: options: negative Interval %v", o.Interval))
		}
	default:
		errs = append(errs, fmt.Errorf("spool: options: unknown Sync policy %d", o.Sync))
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, errors.Join(errs...)
}

// maxRecord is the largest payload a record may have: it must fit in an
// empty segment.
func (o Options) maxRecord() int {
	return int(min(int64(MaxRecordBytes), o.segmentData()-segStartLen-headerLen))
}

// segmentData is the bytes of a segment not reserved for its seal.
func (o Options) segmentData() int64 { return o.SegmentBytes - sealRecordLen }
