package spool

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// Defaults and limits of [DeadLetterOptions].
const (
	// DefaultDeadLetterMaxBytes is the MaxBytes of the zero
	// DeadLetterOptions: 64 MiB.
	DefaultDeadLetterMaxBytes = 64 << 20
	// MinDeadLetterMaxBytes and MaxDeadLetterMaxBytes bound MaxBytes.
	MinDeadLetterMaxBytes = 4 << 10
	MaxDeadLetterMaxBytes = 1 << 40
)

// ErrDeadLetterFull is wrapped by the error of [DeadLetter.Put] when the
// batch would take the file beyond its MaxBytes.
var ErrDeadLetterFull = errors.New("spool: dead-letter file full")

// DeadLetterOptions configures a [DeadLetter]. The zero value is valid.
type DeadLetterOptions struct {
	// MaxBytes bounds the file (default 64 MiB, from 4 KiB to 1 TiB).
	// A Put that would go beyond it is refused whole and counted.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// Logger receives refusals and failures; nil discards them (they are
	// still counted).
	Logger *slog.Logger `yaml:"-"`
}

// Validate checks the options; its errors are [*bridge.FieldError] values
// with YAML key paths.
func (o DeadLetterOptions) Validate() error {
	if o.MaxBytes != 0 && (o.MaxBytes < MinDeadLetterMaxBytes || o.MaxBytes > MaxDeadLetterMaxBytes) {
		return &bridge.FieldError{Path: "max_bytes",
			Msg: fmt.Sprintf("%v is out of range: from %v to %v", o.MaxBytes, ByteSize(MinDeadLetterMaxBytes), ByteSize(MaxDeadLetterMaxBytes))}
	}
	return nil
}

// DeadLetter is an append-only file of the samples a sink rejected for good,
// one JSON object per line: the bridge's JSON encoding of the sample
// ([bridge.AppendJSON]) with two more fields, "reason" (the sink's error) and
// "dead_at" (when it was put there, RFC 3339 UTC):
//
//	{"source":"meter1","point":"p","value":1,"quality":"good","time":"...","seq":7,"reason":"http 422: bad value","dead_at":"..."}
//
// [bridge.DecodeJSON] reads a line back (it ignores the two extra fields),
// so the samples can be inspected and replayed by hand. Put fsyncs before
// it returns. The file is bounded: a Put that would take it beyond MaxBytes
// is refused whole with an error wrapping [ErrDeadLetterFull], counted in
// Refused and logged; nothing is ever removed from the file by this
// package (move or truncate it to make room). DeadLetter implements
// [bridge.DeadLetter]; its methods are safe for concurrent use.
type DeadLetter struct {
	path     string
	max      int64
	log      *slog.Logger
	written  atomic.Uint64
	refused  atomic.Uint64
	mu       sync.Mutex
	f        *os.File
	size     int64
	buf      []byte
	closed   bool
	wasFull  bool
	lastFail error
}

var _ bridge.DeadLetter = (*DeadLetter)(nil)

// OpenDeadLetter opens (creating it when needed) the dead-letter file at
// path, for example [DeadLetterPath] of a spool directory. A last line left
// incomplete by a crash is cut off, so that the file stays valid JSON lines.
func OpenDeadLetter(path string, opts DeadLetterOptions) (*DeadLetter, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("spool: dead-letter options: %w", err)
	}
	if path == "" {
		return nil, errors.New("spool: empty dead-letter file name")
	}
	d := &DeadLetter{path: path, max: int64(opts.MaxBytes), log: opts.Logger}
	if d.max == 0 {
		d.max = DefaultDeadLetterMaxBytes
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.log = d.log.With("dead_letter", path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("spool: dead-letter file: %w", err)
	}
	size, err := validLinesEnd(f)
	if err == nil {
		var fi os.FileInfo
		if fi, err = f.Stat(); err == nil && fi.Size() != size {
			d.log.Warn("spool: cutting off an incomplete last line of the dead-letter file (a crash while writing it)",
				"file", path, "bytes", fi.Size()-size)
			err = f.Truncate(size)
		}
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("spool: dead-letter file %s: %w", path, err)
	}
	d.f, d.size = f, size
	return d, nil
}

// validLinesEnd returns the offset after the last newline of f.
func validLinesEnd(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	end := fi.Size()
	buf := make([]byte, 64<<10)
	for end > 0 {
		n := int64(len(buf))
		if n > end {
			n = end
		}
		if _, err := f.ReadAt(buf[:n], end-n); err != nil && err != io.EOF {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return end - n + int64(i) + 1, nil
		}
		end -= n
	}
	return 0, nil
}

// Put appends batch with reason to the file and fsyncs it: all of the
// batch or, on error, none of it. It does not keep batch.
func (d *DeadLetter) Put(batch []bridge.Sample, reason error) error {
	if len(batch) == 0 {
		return nil
	}
	why := "unknown"
	if reason != nil {
		why = reason.Error()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return bridge.ErrClosed
	}
	rj, _ := json.Marshal(why)
	now := time.Now().UTC().AppendFormat(nil, time.RFC3339Nano)
	d.buf = d.buf[:0]
	for i := range batch {
		d.buf = bridge.AppendJSON(d.buf, &batch[i])
		d.buf = append(d.buf[:len(d.buf)-1], `,"reason":`...)
		d.buf = append(d.buf, rj...)
		d.buf = append(d.buf, `,"dead_at":"`...)
		d.buf = append(d.buf, now...)
		d.buf = append(d.buf, "\"}\n"...)
	}
	if d.size+int64(len(d.buf)) > d.max {
		d.refused.Add(uint64(len(batch)))
		err := fmt.Errorf("%w: %s holds %d bytes, %d more would pass max_bytes %v; %d samples refused",
			ErrDeadLetterFull, d.path, d.size, len(d.buf), ByteSize(d.max), len(batch))
		if !d.wasFull {
			d.wasFull = true
			d.log.Error("spool: dead-letter file full; rejected samples are refused (counted) until it is moved or truncated", "err", err)
		}
		d.shrinkBuf()
		return err
	}
	if _, err := d.f.WriteAt(d.buf, d.size); err != nil {
		// Leave no partial line behind.
		if terr := d.f.Truncate(d.size); terr != nil {
			d.log.Error("spool: truncating the dead-letter file after a failed write", "err", terr)
		}
		d.shrinkBuf()
		return d.failed(fmt.Errorf("spool: dead-letter file: %w", err), len(batch))
	}
	if err := d.f.Sync(); err != nil {
		// All or nothing: the caller keeps the batch.
		if terr := d.f.Truncate(d.size); terr != nil {
			d.log.Error("spool: truncating the dead-letter file after a failed fsync", "err", terr)
		}
		d.shrinkBuf()
		return d.failed(fmt.Errorf("spool: dead-letter file: fsync of %s: %w", d.path, err), len(batch))
	}
	d.size += int64(len(d.buf))
	d.written.Add(uint64(len(batch)))
	d.wasFull, d.lastFail = false, nil
	d.shrinkBuf()
	return nil
}

func (d *DeadLetter) failed(err error, n int) error {
	d.refused.Add(uint64(n))
	if d.lastFail == nil {
		d.log.Error("spool: cannot write the dead-letter file", "err", err)
	}
	d.lastFail = err
	return err
}

func (d *DeadLetter) shrinkBuf() {
	if cap(d.buf) > 1<<20 {
		d.buf = nil
	}
}

// Written returns how many samples Put stored since Open.
func (d *DeadLetter) Written() uint64 { return d.written.Load() }

// Refused returns how many samples Put refused since Open: the file was
// full or could not be written.
func (d *DeadLetter) Refused() uint64 { return d.refused.Load() }

// Bytes returns the size of the file.
func (d *DeadLetter) Bytes() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.size
}

// Path returns the file's name.
func (d *DeadLetter) Path() string { return d.path }

// Close closes the file; later calls return [bridge.ErrClosed].
func (d *DeadLetter) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return bridge.ErrClosed
	}
	d.closed = true
	return d.f.Close()
}
