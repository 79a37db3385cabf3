package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// Report by exception: a meter's voltage is reported when it moves more than
// 0.5 V from the last reported value, its state on any change, and a
// quality change always. Suppressed samples take no sequence number and are
// counted in the source's stats.
func ExampleReport() {
	readings := []bridge.Sample{
		{Point: "voltage", Value: bridge.Float(230.0)}, // first: reported
		{Point: "voltage", Value: bridge.Float(230.2)},
		{Point: "voltage", Value: bridge.Float(230.5)}, // exactly 0.5 V: not beyond the band
		{Point: "voltage", Value: bridge.Float(230.6)}, // reported
		{Point: "voltage", Quality: bridge.Bad, Reason: "timeout"},
		{Point: "voltage", Value: bridge.Float(230.6)}, // Bad → Good: reported
		{Point: "state", Value: bridge.String("run")},
		{Point: "state", Value: bridge.String("run")},
		{Point: "state", Value: bridge.String("stop")},
	}
	src := bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
		for _, s := range readings {
			s.Source, s.Time = "meter1", exampleTime
			if err := out.Emit(ctx, []bridge.Sample{s}); err != nil {
				return err
			}
		}
		return nil
	})
	sink := bridge.SinkFunc(func(ctx context.Context, batch []bridge.Sample) error {
		for _, s := range batch {
			fmt.Printf("seq %d: %s = %s %s\n", s.Seq, s.Point, s.Value, s.Quality)
		}
		return nil
	})
	b := bridge.New(bridge.Options{Logger: slog.New(slog.DiscardHandler), SeqStart: 1})
	err := b.AddSourceWith("meter1", src, bridge.SourceOptions{
		Report:      bridge.Report{Deadband: 0.5},
		PointReport: map[string]bridge.Report{"state": {OnChange: true}},
	})
	_ = b.AddSink("print", sink, bridge.SinkOptions{BatchSize: 1})
	err = errors.Join(err, b.Run(context.Background()))
	st := b.Stats().Sources[0]
	fmt.Printf("emitted %d, suppressed %d, forwarded %d, err %v\n", st.Emitted, st.Suppressed, st.Forwarded, err)
	// Output:
	// seq 1: voltage = 230 good
	// seq 2: voltage = 230.6 good
	// seq 3: voltage = <none> bad
	// seq 4: voltage = 230.6 good
	// seq 5: state = run good
	// seq 6: state = stop good
	// emitted 9, suppressed 3, forwarded 6, err <nil>
}
