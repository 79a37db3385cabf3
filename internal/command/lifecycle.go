package command

import (
	"context"
	"fmt"
	"sync"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// Lifecycle is what the command sources' Run and Close share: Run runs
// once, Close stops it and waits for it, and every call after Close fails
// with bridge.ErrClosed. The zero value is ready; Pkg names the package in
// errors ("mqtt").
type Lifecycle struct {
	Pkg string

	mu      sync.Mutex
	running bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// Begin starts a Run: it returns the context Run works under (ended by
// Close too) and end, which Run must call when it returns. It fails when
// Run was called before or the source is closed.
func (l *Lifecycle) Begin(ctx context.Context, errRunning error) (context.Context, func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return nil, nil, fmt.Errorf("%s: commands: %w", l.Pkg, bridge.ErrClosed)
	case l.running:
		return nil, nil, errRunning
	}
	l.running = true
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	l.cancel, l.done = cancel, done
	return ctx, func() { cancel(); close(done) }, nil
}

// Close ends a Run in progress and waits for it to return, within ctx.
// Later calls return an error wrapping bridge.ErrClosed.
func (l *Lifecycle) Close(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return fmt.Errorf("%s: commands: %w", l.Pkg, bridge.ErrClosed)
	}
	l.closed = true
	cancel, done := l.cancel, l.done
	l.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: commands: close: %w", l.Pkg, ctx.Err())
	}
}

// Running reports whether Run has begun and Close has not been called.
func (l *Lifecycle) Running() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.running && !l.closed
}
