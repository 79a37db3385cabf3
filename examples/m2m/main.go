// Command m2m is a field tool for commissioning Modbus devices and OPC UA
// servers: find the units on a line and their serial settings, read and
// write registers and coils from the command line, decoded and encoded with
// the same codecs and write rules as the library and the gateway, browse an
// OPC UA server into a gateway file, and turn a vendor register map into a
// profile.
//
//	m2m scan rtu:///dev/ttyUSB0 -units 1-247 -speeds 9600,19200 -parity none,even
//	m2m read tcp://10.0.0.7:502 -unit 1 -table input -address 0 -type float32
//	m2m read tcp://10.0.0.7:502 -modicon 30001 -type float32 -count 3 -poll 1s
//	m2m read rtu:///dev/ttyUSB0?speed=9600 -unit 3 -table coil -address 0 -count 8 -json
//	m2m write tcp://10.0.0.7:502 -table holding -address 100 -type float32 -max 80 42.5
//	m2m browse opc.tcp://10.0.0.9:4840 -depth 3 -config gateway.yaml
//	m2m profile -in map.csv -modicon -out meter.yaml
//
// Each subcommand has -h. Exit status: 0 when every read or the write
// succeeded, a scan found a unit, browse or profile wrote what was asked
// (and after -h); 1 on a device or transport error (an exception, a
// timeout, a refused connection; with -poll, when the last read failed; a
// scan that found nothing; a register map with errors); 2 on a usage
// error, including a value the write rules refuse (nothing is sent then).
// See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/fieldtool"
	"github.com/m2mbridge/m2mbridge/modbus"
)

// Exit codes.
const (
	exitOK     = 0
	exitDevice = 1 // the device or the transport failed
	exitUsage  = 2 // a usage error, or a value the write rules refuse
)

func main() {
	// The serial driver (goburrow/serial) logs through the standard logger
	// when a device is no terminal; the error itself is reported, once.
	log.SetOutput(io.Discard)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: m2m <command> URL [flags] [VALUE]

commands:
  read     read registers or coils, decoded, once or repeatedly (-poll)
  write    write one value, checked by the library's write rules, and read it back
  scan     find the unit ids that answer, and on a serial line at which speed and parity
  browse   show an OPC UA server's address space; -config writes a gateway file for it
  profile  turn a vendor register-map CSV into a profile file (-in map.csv -out profile.yaml)

URL: tcp://host:502, udp://host:502, tcp+tls://host:802, rtu:///dev/ttyUSB0?speed=9600&parity=even,
     rtuovertcp://gateway:4001
     (browse: opc.tcp://host:4840; profile: no URL)
Run 'm2m <command> -h' for the command's flags.
Exit status: 0 ok, 1 device or transport error (scan: no unit found), 2 usage error (or a write refused by the rules).
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "read":
		return report(stderr, runRead(ctx, args[1:], stdout, stderr))
	case "write":
		return report(stderr, runWrite(ctx, args[1:], stdout, stderr))
	case "scan":
		return report(stderr, runScan(ctx, args[1:], stdout, stderr))
	case "browse":
		return report(stderr, runBrowse(ctx, args[1:], stdout, stderr))
	case "profile":
		return report(stderr, runProfile(args[1:], stdout, stderr))
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "m2m: unknown command %q\n%s", args[0], usage)
	return exitUsage
}

// report prints err and returns the exit code for it.
func report(stderr io.Writer, err error) int {
	var ue *fieldtool.UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errReported):
		return exitDevice
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "m2m: %v\n", err)
		return exitUsage
	case bridge.IsRefusal(err):
		fmt.Fprintf(stderr, "m2m: write refused, nothing sent: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(stderr, "m2m: %v\n", err)
	return exitDevice
}

// errReported is a device error already printed (by a -poll loop).
var errReported = errors.New("reported")

// pointFlags are the flags that say where a point is and how it reads.
type pointFlags struct {
	unit      uint
	table     string
	address   uint
	modicon   string
	typ       string
	wordOrder string
	byteOrder string
	scale     float64
	offset    float64
	length    uint
	bit       int
	timeout   time.Duration
	json      bool
}

func (f *pointFlags) register(fs *flag.FlagSet) {
	fs.UintVar(&f.unit, "unit", 1, "unit (slave) id")
	fs.StringVar(&f.table, "table", "holding", "holding, input, coil or discrete")
	fs.UintVar(&f.address, "address", 0, "protocol address, 0-based (holding register 40001 is address 0; see -modicon)")
	fs.StringVar(&f.modicon, "modicon", "", "a Modicon number instead of -table and -address: 40001 is holding address 0, "+
		"30001 input, 10001 discrete, 00001 coil (6 digits too: 400001)")
	fs.StringVar(&f.typ, "type", "", "bool int16 uint16 int32 uint32 int64 uint64 float32 float64 string "+
		"(default uint16 for registers, bool for coils and discrete inputs)")
	fs.StringVar(&f.wordOrder, "word-order", "high_first", "high_first or low_first: the order of the registers of a 32- or 64-bit value")
	fs.StringVar(&f.byteOrder, "byte-order", "big", "big or little: the order of the two bytes inside each register")
	fs.Float64Var(&f.scale, "scale", 1, "value = raw * scale + offset")
	fs.Float64Var(&f.offset, "offset", 0, "value = raw * scale + offset")
	fs.UintVar(&f.length, "length", 0, "registers of a string")
	fs.IntVar(&f.bit, "bit", -1, "for a bool: the bit (0-15) of the register, instead of the whole register")
	fs.DurationVar(&f.timeout, "timeout", time.Second, "how long to wait for each answer")
	fs.BoolVar(&f.json, "json", false, "print JSON lines (the gateway's sample encoding) instead of a table")
}

// point builds the point the flags describe (its name is set by fieldtool).
func (f *pointFlags) point(fs *flag.FlagSet, stderr io.Writer) (modbus.Point, error) {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	var p modbus.Point
	var errs []error
	if f.modicon != "" {
		if set["table"] || set["address"] {
			return p, usagef("-modicon says the table and the address: give it without -table and -address")
		}
		t, a, err := fieldtool.ParseModicon(f.modicon)
		if err != nil {
			return p, &fieldtool.UsageError{Err: fmt.Errorf("-modicon: %w", err)}
		}
		fmt.Fprintf(stderr, "m2m: %s\n", fieldtool.DescribeModicon(f.modicon, t, a))
		p.Table, p.Address = t, a
	} else {
		if !set["address"] {
			errs = append(errs, errors.New("-address (or -modicon) is required"))
		}
		if err := p.Table.UnmarshalText([]byte(f.table)); err != nil {
			errs = append(errs, fmt.Errorf("-table: %w", err))
		}
		if f.address > math.MaxUint16 {
			errs = append(errs, fmt.Errorf("-address %d: above 65535", f.address))
		}
		p.Address = uint16(min(f.address, math.MaxUint16))
	}
	if f.typ != "" {
		if err := p.Type.UnmarshalText([]byte(f.typ)); err != nil {
			errs = append(errs, fmt.Errorf("-type: %w", err))
		}
	}
	if err := p.WordOrder.UnmarshalText([]byte(f.wordOrder)); err != nil {
		errs = append(errs, fmt.Errorf("-word-order: %w", err))
	}
	if err := p.ByteOrder.UnmarshalText([]byte(f.byteOrder)); err != nil {
		errs = append(errs, fmt.Errorf("-byte-order: %w", err))
	}
	if f.unit > math.MaxUint8 {
		errs = append(errs, fmt.Errorf("-unit %d: above 255", f.unit))
	}
	if f.length > math.MaxUint16 {
		errs = append(errs, fmt.Errorf("-length %d: above 65535", f.length))
	}
	p.Length = uint16(min(f.length, math.MaxUint16))
	if f.bit >= 0 {
		if f.bit > 15 {
			errs = append(errs, fmt.Errorf("-bit %d: want 0 to 15", f.bit))
		}
		p.Bit = modbus.BitOf(uint8(min(f.bit, 15)))
	}
	if f.scale != 1 {
		p.Scale = f.scale
	}
	p.Offset = f.offset
	if err := errors.Join(errs...); err != nil {
		return p, &fieldtool.UsageError{Err: err}
	}
	return p, nil
}

func usagef(format string, args ...any) error {
	return &fieldtool.UsageError{Err: fmt.Errorf(format, args...)}
}

// parseArgs parses args with fs, allowing flags before, between and after
// the positional arguments (m2m read URL -address 3); everything after
// "--" is positional (for a negative VALUE: -- -5).
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos, tail []string
	for i, a := range args {
		if a == "--" {
			args, tail = args[:i], args[i+1:]
			break
		}
	}
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &fieldtool.UsageError{Err: err}
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos, args = append(pos, args[0]), args[1:]
	}
	return append(pos, tail...), nil
}

func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("m2m "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s\n\n", synopsis)
		fs.PrintDefaults()
		exit, ok := exitStatus[name]
		if !ok {
			exit = "0 ok, 1 device or transport error, 2 usage error (or a write refused by the rules)."
		}
		fmt.Fprintf(stderr, "\nExit status: %s\n", exit)
	}
	return fs
}

func runRead(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("read", "m2m read URL [-unit N] (-table T -address A | -modicon N) [-count N] [-type T] "+
		"[-word-order O] [-byte-order O] [-scale S] [-poll D [-reads N]] [-json]", stderr)
	var pf pointFlags
	pf.register(fs)
	count := fs.Int("count", 1, "how many values of -type to read, one after the other")
	poll := fs.Duration("poll", 0, "read again every this long until interrupted (or -reads); a failed read is printed and polling goes on")
	reads := fs.Int("reads", 0, "with -poll: stop after this many reads (0: until interrupted)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("read wants one URL, got %d arguments %q (see m2m read -h)", len(pos), pos)
	}
	if *poll < 0 || *reads < 0 || (*reads > 0 && *poll == 0) {
		return usagef("-poll %v -reads %d: want a positive -poll, and -reads only with -poll", *poll, *reads)
	}
	tmpl, err := pf.point(fs, stderr)
	if err != nil {
		return err
	}
	points, err := fieldtool.Points(tmpl, *count)
	if err != nil {
		return err
	}
	c, err := modbus.NewClient(modbus.ClientConfig{URL: pos[0], Timeout: pf.timeout})
	if err != nil {
		return &fieldtool.UsageError{Err: err}
	}
	defer c.Close()
	source := c.Endpoint().String()
	pr := &fieldtool.Printer{W: stdout, JSON: pf.json, Times: *poll > 0}
	var tick <-chan time.Time
	if *poll > 0 {
		t := time.NewTicker(*poll)
		defer t.Stop()
		tick = t.C
	}
	for n := 1; ; n++ {
		rs, err := fieldtool.Read(ctx, c, uint8(pf.unit), source, points)
		if ctx.Err() != nil && *poll > 0 {
			return nil // interrupted
		}
		if err == nil || pf.json {
			if perr := pr.Print(rs); perr != nil {
				return perr
			}
		}
		if *poll == 0 {
			return err
		}
		if err != nil {
			fmt.Fprintf(stderr, "m2m: %v\n", err)
		}
		if n == *reads {
			if err != nil {
				return errReported
			}
			return nil
		}
		select {
		case <-tick:
		case <-ctx.Done():
			if err != nil {
				return errReported
			}
			return nil
		}
	}
}

func runWrite(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("write", "m2m write URL [-unit N] (-table T -address A | -modicon N) [-type T] "+
		"[-word-order O] [-byte-order O] [-scale S] [-min X] [-max Y] [-json] VALUE  (-- -5 for a negative VALUE)", stderr)
	var pf pointFlags
	pf.register(fs)
	minV := fs.Float64("min", 0, "refuse a VALUE below this (engineering units, after -scale and -offset)")
	maxV := fs.Float64("max", 0, "refuse a VALUE above this")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("write wants a URL and a VALUE, got %d arguments %q (see m2m write -h)", len(pos), pos)
	}
	p, err := pf.point(fs, stderr)
	if err != nil {
		return err
	}
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "min":
			p.Min = modbus.Limit(*minV)
		case "max":
			p.Max = modbus.Limit(*maxV)
		}
	})
	ep, err := modbus.ParseURL(pos[0])
	if err != nil {
		return &fieldtool.UsageError{Err: err}
	}
	v := fieldtool.ParseValue(p, pos[1])
	r, err := fieldtool.Write(ctx, modbus.ClientConfig{URL: pos[0], Timeout: pf.timeout}, uint8(pf.unit), ep.String(), p, v)
	if err != nil {
		return err
	}
	if !pf.json {
		fmt.Fprintf(stderr, "m2m: wrote %s to %s, read back %s\n", v, r.Point, r.Value)
	}
	return (&fieldtool.Printer{W: stdout, JSON: pf.json}).Print([]fieldtool.Reading{r})
}
