package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
)

// writableSource runs until ctx ends and accepts writes of "setpoint" (max
// 80), keeping the value written.
type writableSource struct {
	mu     sync.Mutex
	value  bridge.Value
	writes int
	fail   error
}

func (s *writableSource) Run(ctx context.Context, out bridge.Emitter) error {
	<-ctx.Done()
	return nil
}

func (s *writableSource) Write(ctx context.Context, point string, v bridge.Value) (bridge.Sample, error) {
	if point != "setpoint" {
		return bridge.Sample{}, fmt.Errorf("%s: %w", point, bridge.ErrUnknownPoint)
	}
	if v.Float() > 80 {
		return bridge.Sample{}, fmt.Errorf("setpoint: %s is above max 80: %w", v, bridge.ErrOutOfRange)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return bridge.Sample{}, s.fail
	}
	s.writes++
	s.value = v
	return bridge.Sample{Point: point, Value: v, Unit: "°C", Time: time.Now()}, nil
}

func TestBridgeWriteRoutesChecksAndCounts(t *testing.T) {
	src := &writableSource{}
	rec := bridgetest.NewRecorder()
	b := bridge.New(bridge.Options{Logger: quiet, WriteInterval: time.Hour})
	require.NoError(t, b.AddSource("plc1", src))
	require.NoError(t, b.AddSource("meter1", countingSource("meter1", 1, 1)))
	require.NoError(t, b.AddSink("rec", rec, bridge.SinkOptions{}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() { cancel(); <-done }()

	res := b.Write(ctx, bridge.WriteRequest{Source: "plc1", Point: "setpoint", Value: bridge.Float(42.5), ID: "a1", Origin: "test"})
	require.True(t, res.OK, "%v", res.Err)
	assert.Equal(t, "a1", res.ID)
	assert.True(t, res.Matched)
	assert.Equal(t, 42.5, res.Value.Float())
	// The read-back sample is in the stream at once, numbered.
	samples, err := rec.Wait(ctx, 2)
	require.NoError(t, err)
	var sp bridge.Sample
	for _, s := range samples {
		if s.Point == "setpoint" {
			sp = s
		}
	}
	assert.Equal(t, "plc1", sp.Source)
	assert.Equal(t, 42.5, sp.Value.Float())
	assert.NotZero(t, sp.Seq)

	for _, tc := range []struct {
		req  bridge.WriteRequest
		want error
	}{
		{bridge.WriteRequest{Source: "nope", Point: "x", Value: bridge.Int(1)}, bridge.ErrUnknownSource},
		{bridge.WriteRequest{Source: "meter1", Point: "x", Value: bridge.Int(1)}, bridge.ErrNotWritable},
		{bridge.WriteRequest{Source: "plc1", Point: "setpoint", Value: bridge.Int(5)}, bridge.ErrRateLimited},
		{bridge.WriteRequest{Source: "plc1", Point: "other", Value: bridge.Int(1)}, bridge.ErrUnknownPoint},
	} {
		res := b.Write(ctx, tc.req)
		assert.False(t, res.OK)
		assert.ErrorIs(t, res.Err, tc.want)
		assert.True(t, bridge.IsRefusal(res.Err))
	}
	src.mu.Lock()
	assert.Equal(t, 1, src.writes, "refused writes never reach the source's device")
	src.mu.Unlock()

	// A failure at the device is counted as failed, not refused.
	src.mu.Lock()
	src.fail = errors.New("modbus: timeout")
	src.mu.Unlock()
	b2res := b.Write(ctx, bridge.WriteRequest{Source: "plc1", Point: "sp2", Value: bridge.Int(1)})
	assert.ErrorIs(t, b2res.Err, bridge.ErrUnknownPoint)

	st := b.Stats().Writes
	byKey := map[string]bridge.WriteStats{}
	for _, w := range st {
		byKey[w.Source+"/"+w.Point] = w
	}
	assert.EqualValues(t, 1, byKey["plc1/setpoint"].Accepted)
	assert.EqualValues(t, 1, byKey["plc1/setpoint"].Refused, "the rate-limited one")
	assert.EqualValues(t, 1, byKey["nope/x"].Refused)
	assert.EqualValues(t, 1, byKey["meter1/x"].Refused)
}

func TestBridgeWriteFailureAtTheDevice(t *testing.T) {
	src := &writableSource{fail: errors.New("modbus: exception 4 (server device failure)")}
	b := bridge.New(bridge.Options{Logger: quiet})
	require.NoError(t, b.AddSource("plc1", src))
	require.NoError(t, b.AddSink("rec", bridgetest.NewRecorder(), bridge.SinkOptions{}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() { cancel(); <-done }()
	res := b.Write(ctx, bridge.WriteRequest{Source: "plc1", Point: "setpoint", Value: bridge.Int(1)})
	assert.False(t, res.OK)
	assert.False(t, bridge.IsRefusal(res.Err))
	assert.ErrorContains(t, res.Err, "exception 4")
	assert.EqualValues(t, 1, b.Stats().Writes[0].Failed)
}

func TestBridgeWriteMatchedAcceptsAFloat32ReadBack(t *testing.T) {
	src := &float32Source{}
	b := bridge.New(bridge.Options{Logger: quiet})
	require.NoError(t, b.AddSource("plc1", src))
	require.NoError(t, b.AddSink("rec", bridgetest.NewRecorder(), bridge.SinkOptions{}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() { cancel(); <-done }()
	res := b.Write(ctx, bridge.WriteRequest{Source: "plc1", Point: "p", Value: bridge.Float(0.1)})
	require.True(t, res.OK)
	assert.Equal(t, float64(float32(0.1)), res.Value.Float())
	assert.True(t, res.Matched, "0.1 held as a float32 is the value written")
	res = b.Write(ctx, bridge.WriteRequest{Source: "plc1", Point: "q", Value: bridge.Float(0.2)})
	require.True(t, res.OK)
	assert.False(t, res.Matched, "a device that stored something else did not match")
}

// float32Source stores what it is written as a float32; point "q" stores
// 0.25 whatever it is written.
type float32Source struct{ writableSource }

func (s *float32Source) Write(ctx context.Context, point string, v bridge.Value) (bridge.Sample, error) {
	f := float64(float32(v.Float()))
	if point == "q" {
		f = 0.25
	}
	return bridge.Sample{Point: point, Value: bridge.Float(f), Time: time.Now()}, nil
}

// checkedSource applies its rules in CheckWrite too.
type checkedSource struct{ writableSource }

func (s *checkedSource) CheckWrite(point string, v bridge.Value) error {
	if v.Float() > 80 {
		return fmt.Errorf("%s: %s is above max 80: %w", point, v, bridge.ErrOutOfRange)
	}
	return nil
}

func TestBridgeWriteRuleBeforeRateLimit(t *testing.T) {
	src := &checkedSource{}
	b := bridge.New(bridge.Options{Logger: quiet, WriteInterval: time.Hour})
	require.NoError(t, b.AddSource("plc1", src))
	require.NoError(t, b.AddSink("rec", bridgetest.NewRecorder(), bridge.SinkOptions{}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() { cancel(); <-done }()
	require.True(t, b.Write(ctx, bridge.WriteRequest{Source: "plc1", Point: "setpoint", Value: bridge.Float(10)}).OK)
	res := b.Write(ctx, bridge.WriteRequest{Source: "plc1", Point: "setpoint", Value: bridge.Float(95)})
	assert.ErrorIs(t, res.Err, bridge.ErrOutOfRange, "the value's fault is named, not the rate limit")
	res = b.Write(ctx, bridge.WriteRequest{Source: "plc1", Point: "setpoint", Value: bridge.Float(20)})
	assert.ErrorIs(t, res.Err, bridge.ErrRateLimited)
}

// Requests for made-up points never grow the write counters without bound.
func TestBridgeWriteTableIsBounded(t *testing.T) {
	src := &writableSource{}
	b := bridge.New(bridge.Options{Logger: quiet})
	require.NoError(t, b.AddSource("plc1", src))
	require.NoError(t, b.AddSink("rec", bridgetest.NewRecorder(), bridge.SinkOptions{}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for i := range 10_100 {
		res := b.Write(ctx, bridge.WriteRequest{Source: "plc1", Point: fmt.Sprintf("made-up-%d", i), Value: bridge.Int(1)})
		require.ErrorIs(t, res.Err, bridge.ErrUnknownPoint)
	}
	st := b.Stats().Writes
	assert.LessOrEqual(t, len(st), 10_001, "at most the cap and one (other) row")
	var refused uint64
	for _, w := range st {
		refused += w.Refused
	}
	assert.EqualValues(t, 10_100, refused, "every request counted")
}
