// Command modbus-sim serves a simulated Modbus device for third-party
// masters (mbpoll, SCADA systems, PLC tools): any built-in profile or a
// profile file, over Modbus TCP or as an RTU- or ASCII-over-TCP gateway
// (-rtu, -ascii), over TCP or UDP (-udp), or on a serial line (-rtu DEVICE,
// -ascii DEVICE, or -pty for a pseudo-terminal pair it makes itself), with
// the moving values of modbustest.
//
//	modbus-sim -profile eastron-sdm630 -addr 127.0.0.1:5020
//	mbpoll -m tcp -p 5020 -a 1 -t 3:float -B -r 1 -c 2 -1 127.0.0.1
//
//	modbus-sim -pty          # prints: ... on rtu:///dev/pts/3?... (pseudo-terminal: open /dev/pts/3)
//	m2m read 'rtu:///dev/pts/3?parity=none' -table input -address 0 -type float32
//
// On a serial device -speed, -parity, -data-bits and -stop-bits set the
// line (defaults as the Modbus serial line specification: 19200 baud, even
// parity, 8 data bits for RTU and 7 for ASCII); on a Linux pseudo-terminal,
// which takes no parity, -pty uses 8 data bits and no parity. A
// pseudo-terminal carries bytes whatever the speed and parity, so a plain
// -pty answers a client at any setting; with -speed or -parity it behaves
// as a meter on a real line instead (Linux): an emulated line
// (internal/testline) passes a client's bytes only at those settings and
// garbles them otherwise, so that m2m scan finds it at one setting only:
//
//	modbus-sim -pty -speed 9600 -parity odd   # ... (pseudo-terminal: open /dev/pts/4)
//	m2m scan rtu:///dev/pts/4                 # found at 9600 8O1 only
//
// -set name=value fixes a point's value (repeatable); -list prints the
// built-in profiles; -gaps says how reads across unmapped registers are
// answered (as the profile says by default: the Eastron SDM630 answers them,
// with zeros). It runs until interrupted.
//
// -sunspec serves a SunSpec inverter instead of a profile (models 1, 103,
// 160 with two modules, 123, built from the SunSpec model tables; its power
// and scale factor change together every second) at -sunspec-base (default
// 40000), over TCP or UDP; -set then takes raw values by SunSpec point name
// (inverter_three_phase.W=8000):
//
//	modbus-sim -sunspec -addr 127.0.0.1:5020
//	gateway -config gateway.yaml -discover inverter1
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

type sets []string

func (s *sets) String() string     { return strings.Join(*s, ",") }
func (s *sets) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "modbus-sim:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("modbus-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:5020", "address to listen on")
	name := fs.String("profile", "eastron-sdm630", "built-in profile name or path to a profile file")
	ln := lineFlags(fs) // -rtu, -ascii, -pty and the serial settings (serial.go)
	udp := fs.Bool("udp", false, "serve over UDP (udp://, or rtuoverudp:// with -rtu)")
	gaps := fs.String("gaps", "profile", "how reads across unmapped registers between mapped ones are answered: "+
		"profile (as the profile's limits.fills_gaps says), zeros, or refuse (Illegal Data Address)")
	list := fs.Bool("list", false, "print the built-in profiles and exit")
	sunspec := fs.Bool("sunspec", false, "serve a SunSpec inverter (models 1, 103, 160, 123) instead of a profile")
	sunspecBase := fs.Int("sunspec-base", 40000, "with -sunspec: the address of the SunS marker")
	var fixed sets
	fs.Var(&fixed, "set", "fix a point's value: name=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := ln.resolve(fs, udp); err != nil {
		return err
	}
	if *list {
		for _, n := range modbus.BuiltinProfiles() {
			fmt.Fprintln(stdout, n)
		}
		return nil
	}
	p, err := modbus.BuiltinProfile(*name)
	if err != nil {
		var ferr error
		p, ferr = modbus.LoadProfileFile(*name)
		if ferr != nil {
			if _, statErr := os.Stat(*name); statErr != nil {
				return fmt.Errorf("profile %q is neither built in (%s) nor a readable file", *name,
					strings.Join(modbus.BuiltinProfiles(), ", "))
			}
			return ferr
		}
	}
	opts := append([]modbustest.Option{modbustest.WithAddress(*addr)}, ln.options()...)
	if *udp {
		opts = append(opts, modbustest.WithUDP())
	}
	switch *gaps {
	case "profile":
	case "zeros":
		opts = append(opts, modbustest.WithFilledGaps())
	case "refuse":
		opts = append(opts, modbustest.WithRefusedGaps())
	default:
		return fmt.Errorf("-gaps %q: want profile, zeros or refuse", *gaps)
	}
	if *sunspec {
		if ln.serial {
			return errors.New("-sunspec serves over the network only, not on a serial device or -pty")
		}
		return runSunSpec(ctx, *sunspecBase, opts, fixed, stderr)
	}
	srv, where, closeLine, err := ln.serve(ctx, p, opts)
	if err != nil {
		return err
	}
	defer closeLine()
	defer srv.Close()
	for _, kv := range fixed {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("-set %q: want name=value", kv)
		}
		if err := srv.Set(k, parseValue(v)); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "modbus-sim: serving profile %s (%d points) on %s\n", p.Name, len(p.Points), ln.describe(where))
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}

// parseValue reads an integer, a float, a bool, or else a string.
func parseValue(s string) any {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return u
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f
	}
	if b, err := strconv.ParseBool(s); err == nil {
		return b
	}
	return s
}
