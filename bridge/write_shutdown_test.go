package bridge_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// stoppingSource is a writableSource that emits one sample, runs until
// ctx ends and says when it has stopped.
type stoppingSource struct {
	writableSource
	stopped chan struct{}
}

func (s *stoppingSource) Run(ctx context.Context, out bridge.Emitter) error {
	defer close(s.stopped)
	if err := out.Emit(ctx, []bridge.Sample{{Point: "setpoint", Value: bridge.Float(1), Time: time.Now()}}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// TestWriteRefusedOnceShutdownBegins checks that once Run's context has
// ended, while the sinks still drain and after Run returned, Write is
// refused with ErrShuttingDown and nothing reaches the source's Writer (a
// Sparkplug DCMD or an MQTT command arriving in that window).
func TestWriteRefusedOnceShutdownBegins(t *testing.T) {
	src := &stoppingSource{stopped: make(chan struct{})}
	release := make(chan struct{})
	var once sync.Once
	entered := make(chan struct{})
	sink := bridge.SinkFunc(func(ctx context.Context, _ []bridge.Sample) error {
		once.Do(func() { close(entered) })
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	b := bridge.New(bridge.Options{Logger: quiet, DrainTimeout: time.Minute})
	require.NoError(t, b.AddSource("plc1", src))
	require.NoError(t, b.AddSink("slow", sink, bridge.SinkOptions{}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	<-entered // the sink holds the sample: the drain will wait for it

	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	res := b.Write(wctx, bridge.WriteRequest{Source: "plc1", Point: "setpoint", Value: bridge.Float(20), Origin: "test"})
	require.True(t, res.OK, "while running: %v", res.Err)

	cancel()
	<-src.stopped // the shutdown has begun; the sink still drains
	select {
	case <-done:
		t.Fatal("Run returned before the sink drained")
	default:
	}
	res = b.Write(wctx, bridge.WriteRequest{Source: "plc1", Point: "setpoint", Value: bridge.Float(30), Origin: "test"})
	require.ErrorIs(t, res.Err, bridge.ErrShuttingDown)
	assert.True(t, bridge.IsRefusal(res.Err))
	assert.False(t, res.OK)
	assert.Contains(t, res.Err.Error(), `source "plc1"`)

	close(release)
	require.NoError(t, <-done)
	res = b.Write(wctx, bridge.WriteRequest{Source: "plc1", Point: "setpoint", Value: bridge.Float(40), Origin: "test"})
	require.ErrorIs(t, res.Err, bridge.ErrShuttingDown, "after Run returned")

	src.mu.Lock()
	defer src.mu.Unlock()
	assert.Equal(t, 1, src.writes, "only the write made while running reached the device")
	assert.Equal(t, 20.0, src.value.Float())
}
