package gateway

import (
	"context"
	"fmt"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// lazyFile is the file sink: a bridge.JSONLines on a file that is opened
// on Connect or the first Write rather than when the configuration is
// loaded, so that -check creates no file.
type lazyFile struct {
	path   string
	jl     *bridge.JSONLines
	closed bool
}

// Connect opens the file (creating it) for appending.
func (f *lazyFile) Connect(ctx context.Context) error {
	if f.closed {
		return fmt.Errorf("file %s: %w", f.path, bridge.ErrClosed)
	}
	if f.jl != nil {
		return nil
	}
	jl, err := bridge.OpenJSONLinesFile(f.path)
	if err != nil {
		return err
	}
	f.jl = jl
	return nil
}

// Write appends the batch as JSON lines.
func (f *lazyFile) Write(ctx context.Context, batch []bridge.Sample) error {
	if err := f.Connect(ctx); err != nil {
		return err
	}
	return f.jl.Write(ctx, batch)
}

// Close syncs and closes the file, if it was opened.
func (f *lazyFile) Close(ctx context.Context) error {
	if f.closed {
		return fmt.Errorf("file %s: %w", f.path, bridge.ErrClosed)
	}
	f.closed = true
	if f.jl == nil {
		return nil
	}
	return f.jl.Close(ctx)
}
