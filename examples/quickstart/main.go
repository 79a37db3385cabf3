// Command quickstart polls a simulated Eastron SDM630 energy meter and
// prints its readings as JSON lines on stdout, one sample per line, until
// interrupted (or, with -n, until that many samples were printed).
//
// The meter is the built-in "eastron-sdm630" profile served in-process by
// modbustest over Modbus TCP on a loopback port; the samples go through the
// same bridge pipeline and JSON-lines sink a real deployment uses:
//
//	go run ./examples/quickstart -n 5
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

func main() {
	n := flag.Int("n", 0, "stop after printing this many samples (0: run until interrupted)")
	interval := flag.Duration("interval", time.Second, "poll interval")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, *n, *interval); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer, n int, interval time.Duration) error {
	if n < 0 {
		return fmt.Errorf("-n %d: want a count of samples, or 0 for no limit", n)
	}
	if interval <= 0 {
		return fmt.Errorf("-interval %v: want a positive poll interval", interval)
	}
	profile, err := modbus.BuiltinProfile("eastron-sdm630")
	if err != nil {
		return err
	}
	sim, err := modbustest.NewServer(profile)
	if err != nil {
		return err
	}
	defer sim.Close()

	meter, err := modbus.NewDevice(modbus.DeviceConfig{
		Name:     "meter1",
		Conn:     modbus.ClientConfig{URL: sim.URL()},
		Profile:  profile,
		Interval: interval,
	})
	if err != nil {
		return err
	}
	defer meter.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b := bridge.New(bridge.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err := b.AddSource("meter1", meter); err != nil {
		return err
	}
	var sink bridge.Sink = bridge.NewJSONLines(w)
	if n > 0 {
		sink = &limit{Sink: sink, left: n, done: cancel}
	}
	if err := b.AddSink("stdout", sink, bridge.SinkOptions{}); err != nil {
		return err
	}
	return b.Run(ctx)
}

// limit passes on the first n samples, then ends the run.
type limit struct {
	bridge.Sink
	mu   sync.Mutex
	left int
	done context.CancelFunc
}

func (l *limit) Write(ctx context.Context, batch []bridge.Sample) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.left <= 0 {
		return nil // past the limit: the run is ending; these are not printed
	}
	if len(batch) > l.left {
		batch = batch[:l.left]
	}
	if err := l.Sink.Write(ctx, batch); err != nil {
		return err
	}
	l.left -= len(batch)
	if l.left == 0 {
		l.done()
	}
	return nil
}
