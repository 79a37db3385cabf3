package spool

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
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

// MarshalText returns the policy's name.
func (p FullPolicy) MarshalText() ([]byte, error) {
	if p != DropOldest && p != Block {
		return nil, fmt.Errorf("spool: unknown full policy %d", p)
	}
	return []byte(p.String()), nil
}

// UnmarshalText accepts "drop_oldest" and "block" (the YAML key full).
func (p *FullPolicy) UnmarshalText(b []byte) error {
	switch string(b) {
	case "drop_oldest":
		*p = DropOldest
	case "block":
		*p = Block
	default:
		return &bridge.FieldError{Msg: fmt.Sprintf("unknown full policy %q", b), Hint: "want drop_oldest or block"}
	}
	return nil
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

// MarshalText returns the policy's name.
func (p SyncPolicy) MarshalText() ([]byte, error) {
	if p != SyncEvery && p != SyncInterval {
		return nil, fmt.Errorf("spool: unknown sync policy %d", p)
	}
	return []byte(p.String()), nil
}

// UnmarshalText accepts "every" and "interval" (the YAML key sync).
func (p *SyncPolicy) UnmarshalText(b []byte) error {
	switch string(b) {
	case "every":
		*p = SyncEvery
	case "interval":
		*p = SyncInterval
	default:
		return &bridge.FieldError{Msg: fmt.Sprintf("unknown sync policy %q", b), Hint: "want every or interval"}
	}
	return nil
}

// ByteSize is a number of bytes, written in configuration files as an
// integer or with a unit: "1GiB", "512MiB", "100MB", "64k", "1.5GiB". The
// units are B, k/KiB (1024), KB (1000), m/MiB, MB, g/GiB, GB, t/TiB, TB, in
// any case. It implements encoding.TextUnmarshaler, which YAML and JSON
// decoders use.
type ByteSize int64

var byteUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1e3, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1e6, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1e9, "gib": 1 << 30,
	"t": 1 << 40, "tb": 1e12, "tib": 1 << 40,
}

// ParseByteSize parses a size as [ByteSize.UnmarshalText] does.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	f, err := strconv.ParseFloat(num, 64)
	mult, ok := byteUnits[unit]
	if num == "" || err != nil || !ok || strings.HasPrefix(num, ".") {
		return 0, fmt.Errorf("%q is not a size (write 1GiB, 512MiB, 100MB or a number of bytes)", s)
	}
	v := math.Round(f * mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return ByteSize(v), nil
}

// UnmarshalText parses a size (see [ByteSize]).
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return &bridge.FieldError{Msg: err.Error()}
	}
	*b = v
	return nil
}

// MarshalText returns [ByteSize.String].
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// String writes the size with the largest binary unit that divides it
// ("1GiB", "16KiB"), or in bytes ("1000B").
func (b ByteSize) String() string {
	for _, u := range []struct {
		name string
		n    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.n == 0 {
			return strconv.FormatInt(int64(b)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// Defaults and limits of [Options]. Zero means the default for each
// setting; anything else outside its range is an error.
const (
	// DefaultMaxBytes is the MaxBytes of the zero Options: 1 GiB.
	DefaultMaxBytes = 1 << 30
	// DefaultSegmentBytes is the SegmentBytes of the zero Options: 16 MiB.
	DefaultSegmentBytes = 16 << 20
	// DefaultInterval is the fsync period under SyncInterval: 100 ms.
	DefaultInterval = 100 * time.Millisecond
	// MinMaxBytes and MaxMaxBytes bound MaxBytes: 16 KiB to 16 TiB.
	MinMaxBytes = 16 << 10
	MaxMaxBytes = 16 << 40
	// MinSegmentBytes and MaxSegmentBytes bound SegmentBytes: 4 KiB to
	// 1 GiB (and at most MaxBytes).
	MinSegmentBytes = 4 << 10
	MaxSegmentBytes = 1 << 30
	// MinInterval and MaxInterval bound Interval: 1 ms to 1 minute.
	MinInterval = time.Millisecond
	MaxInterval = time.Minute
)

// Options configures a [Spool]. The zero Options is valid: 1 GiB, 16 MiB
// segments, DropOldest, SyncEvery. The yaml tags are the keys of the
// gateway's spool section.
type Options struct {
	// Dir is the spool directory, for configurations that carry it (the
	// gateway's spool.dir); [Open] takes the directory as its argument and
	// ignores Dir. [Options.Validate] requires it.
	Dir string `yaml:"dir"`
	// MaxBytes bounds the bytes of segment files on disk (default 1 GiB,
	// from MinMaxBytes to MaxMaxBytes). When an Append would exceed it,
	// Full applies. A [ByteSize] in files: "1GiB".
	MaxBytes int64 `yaml:"max_bytes"`
	// SegmentBytes bounds each segment file (default 16 MiB, from
	// MinSegmentBytes to MaxSegmentBytes, and not above MaxBytes). It is
	// lowered to MaxBytes/4 when larger, so that dropping one segment never
	// empties the spool. A [ByteSize] in files.
	SegmentBytes int64 `yaml:"segment_bytes"`
	// Full is the policy when the spool is full (default DropOldest):
	// "drop_oldest" or "block" in files.
	Full FullPolicy `yaml:"full"`
	// Sync is the fsync policy (default SyncEvery): "every" or "interval"
	// in files.
	Sync SyncPolicy `yaml:"sync"`
	// Interval is the fsync period under SyncInterval (default 100ms,
	// from MinInterval to MaxInterval); setting it with SyncEvery is an
	// error, since it would be ignored.
	Interval time.Duration `yaml:"sync_interval"`
	// Logger receives drops, recovered damage and I/O failures; nil
	// discards them (they are still counted).
	Logger *slog.Logger `yaml:"-"`
}

// Validate checks every setting, Dir included, and returns every problem at
// once as [*bridge.FieldError] values whose paths are the YAML keys
// ("max_bytes", "segment_bytes", ...). [Open] checks the same, except Dir.
func (o Options) Validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, &bridge.FieldError{Path: "dir", Msg: "required: the directory that holds the spool"})
	}
	return errors.Join(append(errs, o.check()...)...)
}

// check returns the problems with every setting but Dir.
func (o Options) check() []error {
	var errs []error
	inRange := func(path string, v, lo, hi int64) {
		if v != 0 && (v < lo || v > hi) {
			errs = append(errs, &bridge.FieldError{Path: path,
				Msg: fmt.Sprintf("%v is out of range: from %v to %v", ByteSize(v), ByteSize(lo), ByteSize(hi))})
		}
	}
	inRange("max_bytes", o.MaxBytes, MinMaxBytes, MaxMaxBytes)
	inRange("segment_bytes", o.SegmentBytes, MinSegmentBytes, MaxSegmentBytes)
	maxBytes := o.MaxBytes
	if maxBytes == 0 {
		maxBytes = DefaultMaxBytes
	}
	if o.SegmentBytes > maxBytes && o.SegmentBytes <= MaxSegmentBytes && maxBytes >= MinMaxBytes {
		errs = append(errs, &bridge.FieldError{Path: "segment_bytes",
			Msg:  fmt.Sprintf("%v is larger than max_bytes %v", ByteSize(o.SegmentBytes), ByteSize(maxBytes)),
			Hint: "a segment is at most a quarter of max_bytes"})
	}
	if o.Full != DropOldest && o.Full != Block {
		errs = append(errs, &bridge.FieldError{Path: "full", Msg: fmt.Sprintf("unknown full policy %d", o.Full), Hint: "want drop_oldest or block"})
	}
	switch o.Sync {
	case SyncEvery:
		if o.Interval != 0 {
			errs = append(errs, &bridge.FieldError{Path: "sync_interval",
				Msg: fmt.Sprintf("%v is set but sync is every, which fsyncs on every append", o.Interval), Hint: "set sync: interval, or remove sync_interval"})
		}
	case SyncInterval:
		if o.Interval != 0 && (o.Interval < MinInterval || o.Interval > MaxInterval) {
			errs = append(errs, &bridge.FieldError{Path: "sync_interval",
				Msg: fmt.Sprintf("%v is out of range: from %v to %v", o.Interval, MinInterval, MaxInterval)})
		}
	default:
		errs = append(errs, &bridge.FieldError{Path: "sync", Msg: fmt.Sprintf("unknown sync policy %d", o.Sync), Hint: "want every or interval"})
	}
	return errs
}

func (o Options) normalize() (Options, error) {
	if errs := o.check(); len(errs) > 0 {
		return o, fmt.Errorf("spool: options: %w", errors.Join(errs...))
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.SegmentBytes > o.MaxBytes/4 {
		o.SegmentBytes = max(o.MaxBytes/4, MinSegmentBytes)
	}
	if o.Sync == SyncInterval && o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// maxRecord is the largest payload a record may have: it must fit in an
// empty segment.
func (o Options) maxRecord() int {
	return int(min(int64(MaxRecordBytes), o.segmentData()-segStartLen-headerLen))
}

// segmentData is the bytes of a segment not reserved for its seal.
func (o Options) segmentData() int64 { return o.SegmentBytes - sealRecordLen }
