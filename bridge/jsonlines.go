package bridge

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
)

// JSONLines is a [Sink] that writes each sample as one line of JSON (see
// [AppendJSON]) to an io.Writer: stdout, a file, a pipe. It buffers and
// flushes at the end of every batch, so a reader sees whole batches.
//
// A JSONLines follows the Sink contract; in addition its methods are safe for
// concurrent use.
type JSONLines struct {
	mu     sync.Mutex
	raw    io.Writer
	w      *bufio.Writer
	closer io.Closer // closed by Close; nil for writers the caller owns
	sync   func() error
	times  timeCache
	heads  jsonHeads
	closed bool
}

// NewJSONLines returns a sink writing JSON lines to w. Close flushes but does
// not close w: the caller owns it.
func NewJSONLines(w io.Writer) *JSONLines {
	return &JSONLines{raw: w, w: bufio.NewWriterSize(w, 64<<10)}
}

// OpenJSONLinesFile returns a sink appending JSON lines to the named file,
// creating it (mode 0644) when absent. Each batch is flushed to the file;
// Close syncs and closes it.
func OpenJSONLinesFile(path string) (*JSONLines, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, errorf("open JSON-lines file: %w", err)
	}
	s := NewJSONLines(f)
	s.closer, s.sync = f, f.Sync
	return s, nil
}

// Write encodes the batch, one line per sample, and flushes it.
func (s *JSONLines) Write(ctx context.Context, batch []Sample) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	// Encode in the buffer's free space, which Write then takes as it
	// stands (lines that do not fit are copied from where append put
	// them).
	lines := s.w.AvailableBuffer()
	for i := range batch {
		if cap(lines)-len(lines) < 1024 {
			if _, err := s.w.Write(lines); err != nil {
				return s.writeError(err)
			}
			if err := s.w.Flush(); err != nil {
				return s.writeError(err)
			}
			lines = s.w.AvailableBuffer()
		}
		lines = s.heads.append(lines, &batch[i])
		lines = s.times.appendJSONRest(lines, &batch[i])
		lines = append(lines, '\n')
	}
	if _, err := s.w.Write(lines); err != nil {
		return s.writeError(err)
	}
	if err := s.w.Flush(); err != nil {
		return s.writeError(err)
	}
	return nil
}

// writeError resets the buffer after a failed write: bufio.Writer keeps its
// error forever, and the Bridge will retry the whole batch.
func (s *JSONLines) writeError(err error) error {
	s.w.Reset(s.raw)
	return fmt.Errorf("bridge: JSON lines: %w", err)
}

// Close flushes what is buffered and, for a sink opened with
// OpenJSONLinesFile, syncs and closes the file.
func (s *JSONLines) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	err := s.w.Flush()
	if s.sync != nil {
		if e := s.sync(); e != nil && err == nil {
			err = e
		}
	}
	if s.closer != nil {
		if e := s.closer.Close(); e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		return fmt.Errorf("bridge: JSON lines: close: %w", err)
	}
	return nil
}
