//go:build linux

// Command linesim puts an emulated serial line (package testline) in front
// of a device on a pseudo-terminal, so that the device answers only a
// client at its own speed and parity, as a meter on RS-485 does. A
// pseudo-terminal alone carries bytes whatever the settings, so a scan of
// a simulator on one finds it at every setting; through linesim it finds
// it at one.
//
//	go run ./examples/modbus-sim -pty            # ... (pseudo-terminal: open /dev/pts/3)
//	go run ./internal/testline/linesim -device /dev/pts/3 -speed 9600 -parity odd
//	                                             # linesim: ... open /dev/pts/4
//	m2m scan rtu:///dev/pts/4                    # finds the simulator at 9600 8O1 only
//
// It runs until interrupted. Exit status: 0 after an interrupt, 1 when the
// device cannot be opened, 2 on a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/m2mbridge/m2mbridge/internal/testline"
	"github.com/m2mbridge/m2mbridge/modbus"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("linesim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	device := fs.String("device", "", "the device's end: the pseudo-terminal a simulator serves on (required)")
	speed := fs.Int("speed", 19200, "the device's speed in baud")
	parity := fs.String("parity", "even", "the device's parity: none, even or odd")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	p, err := modbus.ParseParity(*parity)
	switch {
	case err != nil || p == "":
		fmt.Fprintf(stderr, "linesim: -parity %q: want none, even or odd\n", *parity)
		return 2
	case *device == "" || fs.NArg() > 0:
		fmt.Fprintln(stderr, "linesim: want -device PATH and no arguments (see -h)")
		return 2
	case *speed <= 0:
		fmt.Fprintf(stderr, "linesim: -speed %d: want a baud rate\n", *speed)
		return 2
	}
	dev, err := testline.OpenRaw(*device)
	if err != nil {
		fmt.Fprintf(stderr, "linesim: %v\n", err)
		return 1
	}
	s := testline.Settings{Speed: *speed, Parity: p}
	line, err := testline.Open(dev, s)
	if err != nil {
		dev.Close()
		fmt.Fprintf(stderr, "linesim: %v\n", err)
		return 1
	}
	defer line.Close()
	fmt.Fprintf(stdout, "linesim: a serial line at %d baud, parity %s, to %s: open %s\n", s.Speed, s.Parity, *device, line.Path())
	<-ctx.Done()
	return 0
}
