package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
)

var exampleTime = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// three returns a source that emits three samples of one point, valued 1, 2
// and 3.
func three() bridge.Source {
	return bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
		batch := make([]bridge.Sample, 3)
		for i := range batch {
			batch[i] = bridge.Sample{Source: "meter1", Point: "energy", Value: bridge.Int(int64(i + 1)), Unit: "Wh", Time: exampleTime}
		}
		return out.Emit(ctx, batch)
	})
}

// A SinkFunc is a sink in one function, for sinks that hold no resources.
// It must not keep the batch after it returns.
func ExampleSinkFunc() {
	sink := bridge.SinkFunc(func(ctx context.Context, batch []bridge.Sample) error {
		for _, s := range batch {
			fmt.Printf("%s/%s = %s %s\n", s.Source, s.Point, s.Value, s.Unit)
		}
		return nil
	})
	b := bridge.New(bridge.Options{Logger: slog.New(slog.DiscardHandler)})
	_ = b.AddSource("meter1", three())
	_ = b.AddSink("print", sink, bridge.SinkOptions{})
	_ = b.Run(context.Background())
	st := b.Stats().Sinks[0]
	fmt.Printf("accepted %d, delivered %d\n", st.Accepted, st.Delivered)
	// Output:
	// meter1/energy = 1 Wh
	// meter1/energy = 2 Wh
	// meter1/energy = 3 Wh
	// accepted 3, delivered 3
}

// A sink that delivered part of a batch says which samples failed with a
// *BatchError: the bridge retries only those, and keeps the ones refused
// for good (Permanent) in the dead letter instead of deleting them.
func ExampleBatchError() {
	attempts := 0
	sink := bridge.SinkFunc(func(ctx context.Context, batch []bridge.Sample) error {
		attempts++
		be := bridge.NewBatchError()
		for i, s := range batch {
			switch v, _ := s.Value.Int(); {
			case v == 2 && attempts == 1:
				be.Fail(i, errors.New("broker busy")) // retried
			case v == 3:
				be.Fail(i, bridge.Permanent(errors.New("value out of range"))) // rejected
			default:
				fmt.Printf("attempt %d delivered %d\n", attempts, v)
			}
		}
		if len(be.Failed) > 0 {
			return be
		}
		return nil
	})
	b := bridge.New(bridge.Options{Logger: slog.New(slog.DiscardHandler)})
	_ = b.AddSource("meter1", three())
	_ = b.AddSink("partial", sink, bridge.SinkOptions{Retry: bridge.Retry{Initial: time.Millisecond}})
	_ = b.Run(context.Background())
	st := b.Stats().Sinks[0]
	fmt.Printf("delivered %d, retried %d, rejected %d\n", st.Delivered, st.Retried, st.Rejected)
	// Output:
	// attempt 1 delivered 1
	// attempt 2 delivered 2
	// delivered 2, retried 1, rejected 1
}

// The overflow policy is what a sink's queue does when it is full. With
// OverflowDropOldest the sources never wait: the oldest samples go, counted.
// With OverflowBlock (the default) nothing is lost and the sources wait for
// the sink. With OverflowSpool every sample goes to a durable spool on disk
// first (package bridge/spool).
func ExampleOverflow() {
	stalled := make(chan struct{})
	var written []int64
	sink := bridge.SinkFunc(func(ctx context.Context, batch []bridge.Sample) error {
		<-stalled // the first write waits until the source is done
		for _, s := range batch {
			v, _ := s.Value.Int()
			written = append(written, v)
		}
		return nil
	})
	var b *bridge.Bridge
	src := bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
		defer close(stalled)
		for i := int64(1); i <= 10; i++ {
			s := bridge.Sample{Source: "meter1", Point: "count", Value: bridge.Int(i), Time: exampleTime}
			if err := out.Emit(ctx, []bridge.Sample{s}); err != nil {
				return err
			}
			if i == 1 {
				// Let the writer take sample 1 and stall on it.
				for b.Stats().Sinks[0].InFlight == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}
		return nil
	})
	b = bridge.New(bridge.Options{Logger: slog.New(slog.DiscardHandler)})
	_ = b.AddSource("meter1", src)
	_ = b.AddSink("slow", sink, bridge.SinkOptions{QueueSize: 4, BatchSize: 4, Overflow: bridge.OverflowDropOldest})
	_ = b.Run(context.Background())
	st := b.Stats().Sinks[0]
	fmt.Println("written:", written)
	fmt.Printf("accepted %d, delivered %d, dropped %d\n", st.Accepted, st.Delivered, st.Dropped)
	// Output:
	// written: [1 7 8 9 10]
	// accepted 10, delivered 5, dropped 5
}
