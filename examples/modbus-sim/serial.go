package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// lineFlag is -rtu or -ascii: alone it selects the framing for TCP (an
// RTU- or ASCII-over-TCP gateway); with a serial device (-rtu=/dev/ttyUSB0,
// or -rtu /dev/ttyUSB0) it serves that device. -ascii switches the framing
// to ASCII, also with -rtu DEVICE.
type lineFlag struct {
	on   bool
	path string
}

func (f *lineFlag) String() string {
	if f == nil || !f.on {
		return "false"
	}
	if f.path != "" {
		return f.path
	}
	return "true"
}

func (f *lineFlag) Set(s string) error {
	if b, err := strconv.ParseBool(s); err == nil {
		f.on = b
		return nil
	}
	f.on, f.path = true, s
	return nil
}

func (f *lineFlag) IsBoolFlag() bool { return true }

// line holds the flags that choose the framing and, for a serial line, the
// device and its settings.
type line struct {
	rtu, ascii lineFlag
	pty        *bool
	speed      *int
	parity     *string
	dataBits   *int
	stopBits   *int

	framing modbustest.Framing
	ep      modbus.Endpoint // the serial device's settings, when serving one
	serial  bool
	// emulate: -pty with -speed or -parity: the simulator answers only a
	// client at those settings, through an emulated line (internal/testline).
	emulate bool
}

func lineFlags(fs *flag.FlagSet) *line {
	l := &line{}
	fs.Var(&l.rtu, "rtu", "RTU framing: alone, an RTU-over-TCP gateway (rtuovertcp://, rtuoverudp:// with -udp); "+
		"-rtu DEVICE serves RTU on a serial device or pseudo-terminal (/dev/ttyUSB0, /dev/pts/3)")
	fs.Var(&l.ascii, "ascii", "ASCII framing: alone, an ASCII-over-TCP gateway (asciiovertcp://); "+
		"-ascii DEVICE (or -rtu DEVICE -ascii) serves ASCII on a serial device or pseudo-terminal")
	l.pty = fs.Bool("pty", false, "create a pseudo-terminal pair and serve on it (RTU, or ASCII with -ascii); "+
		"prints the device a client opens; with -speed or -parity it behaves as a meter on a real line "+
		"and answers only a client at those settings (Linux)")
	l.speed = fs.Int("speed", 0, "serial line speed in baud (default 19200)")
	l.parity = fs.String("parity", "", "serial parity: none, even or odd (default even; with -pty none unless given)")
	l.dataBits = fs.Int("data-bits", 0, "serial data bits (default 8, 7 for ASCII; 8 with -pty)")
	l.stopBits = fs.Int("stop-bits", 0, "serial stop bits (default 1 with parity, 2 without)")
	return l
}

// resolve checks the flags after fs has parsed them. The argument after
// -rtu or -ascii is the serial device ("-rtu /dev/ttyUSB0"); the flag
// package stops at it, so the flags after it are parsed here.
func (l *line) resolve(fs *flag.FlagSet, udp *bool) error {
	dev := ""
	if args := fs.Args(); len(args) > 0 {
		if (!l.rtu.on && !l.ascii.on) || l.rtu.path+l.ascii.path != "" {
			return fmt.Errorf("unexpected argument %q (a serial device follows -rtu or -ascii)", args[0])
		}
		dev = args[0]
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if rest := fs.Args(); len(rest) > 0 {
			return fmt.Errorf("unexpected argument %q after the serial device %s", rest[0], dev)
		}
	}
	if dev != "" && l.rtu.path+l.ascii.path != "" {
		return fmt.Errorf("two serial devices: %s and %s", l.rtu.path+l.ascii.path, dev)
	}
	dev += l.rtu.path + l.ascii.path
	switch {
	case l.ascii.on:
		l.framing = modbustest.ASCII
	case l.rtu.on || *l.pty:
		l.framing = modbustest.RTU
	default:
		l.framing = modbustest.TCP
	}
	if *l.pty && dev != "" {
		return fmt.Errorf("-pty and the device %s: -pty makes its own", dev)
	}
	l.serial = dev != "" || *l.pty
	setting := *l.speed != 0 || *l.parity != "" || *l.dataBits != 0 || *l.stopBits != 0
	if !l.serial {
		if setting {
			return errors.New("-speed, -parity, -data-bits and -stop-bits are for a serial device (-rtu DEVICE, -ascii DEVICE or -pty)")
		}
		return nil
	}
	if *udp {
		return errors.New("-udp serves a network port, not a serial device")
	}
	if *l.pty {
		l.emulate = *l.speed != 0 || *l.parity != ""
		if l.emulate && *l.dataBits != 0 && *l.dataBits != 8 {
			return fmt.Errorf("-data-bits %d: an emulated line on a pseudo-terminal has 8 data bits", *l.dataBits)
		}
		if l.emulate && *l.speed == 0 {
			*l.speed = 19200
		}
		// A Linux pseudo-terminal takes 8 data bits and no parity only.
		if *l.parity == "" {
			*l.parity = "none"
		}
		if *l.dataBits == 0 {
			*l.dataBits = 8
		}
		dev = "/dev/pts/0" // for the settings; the real path comes when it is made
	}
	scheme := modbus.SchemeRTU
	if l.framing == modbustest.ASCII {
		scheme = modbus.SchemeASCII
	}
	q := url.Values{}
	for k, v := range map[string]int{"speed": *l.speed, "data_bits": *l.dataBits, "stop_bits": *l.stopBits} {
		if v != 0 {
			q.Set(k, strconv.Itoa(v))
		}
	}
	if *l.parity != "" {
		q.Set("parity", *l.parity)
	}
	u := scheme + "://" + dev
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	ep, err := modbus.ParseURL(u)
	if err != nil {
		return err
	}
	if !modbusSpeed(ep.Speed) {
		return fmt.Errorf("-speed %d is not a rate a serial port can be set to", ep.Speed)
	}
	l.ep = ep
	return nil
}

func modbusSpeed(s int) bool {
	for _, r := range modbus.StandardBaudRates {
		if r == s {
			return true
		}
	}
	return false
}

// options returns the server options of the framing, for a network server.
func (l *line) options() []modbustest.Option {
	if l.framing == modbustest.TCP {
		return nil
	}
	return []modbustest.Option{modbustest.WithFraming(l.framing)}
}

// serve starts the server: on the network (the options say where), or on
// the serial device or a new pseudo-terminal. It returns the server, the
// URL a client reads it at, and what to close after the server.
func (l *line) serve(ctx context.Context, p *modbus.Profile, opts []modbustest.Option) (*modbustest.Server, string, func(), error) {
	if !l.serial {
		srv, err := modbustest.NewServer(p, opts...)
		if err != nil {
			return nil, "", nil, err
		}
		return srv, srv.URL(), func() {}, nil
	}
	var port io.ReadWriteCloser
	cleanup := func() {}
	ep := l.ep
	switch {
	case *l.pty && l.emulate:
		m, path, closeLine, err := emulatedLine(ep.Speed, ep.Parity, ep.StopBits)
		if err != nil {
			return nil, "", nil, err
		}
		port, cleanup, ep.Address = m, func() { _ = closeLine() }, path
	case *l.pty:
		m, path, closePTY, err := openPTY(ctx)
		if err != nil {
			return nil, "", nil, err
		}
		port, cleanup, ep.Address = m, func() { _ = closePTY() }, path
	default:
		sp, err := modbustest.OpenSerial(ep)
		if err != nil {
			return nil, "", nil, err
		}
		port = sp
	}
	var srv *modbustest.Server
	var err error
	if l.framing == modbustest.ASCII {
		srv, err = modbustest.NewASCIIServer(p, port, opts...)
	} else {
		srv, err = modbustest.NewRTUServer(p, port, opts...)
	}
	if err != nil {
		port.Close()
		cleanup()
		return nil, "", nil, err
	}
	return srv, ep.String(), cleanup, nil
}

// openPTY makes a pseudo-terminal pair: with modbustest.OpenPTY where the
// system has it (Linux), else with socat. It returns the end to serve on,
// the device a client opens, and what closes the pair.
func openPTY(ctx context.Context) (io.ReadWriteCloser, string, func() error, error) {
	m, path, closePTY, err := modbustest.OpenPTY()
	if err == nil {
		return m, path, closePTY, nil
	}
	if _, lerr := exec.LookPath("socat"); lerr != nil {
		return nil, "", nil, fmt.Errorf("-pty: %v, and socat is not installed", err)
	}
	dir, derr := os.MkdirTemp("", "modbus-sim-pty")
	if derr != nil {
		return nil, "", nil, derr
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	a, b, stop, serr := modbustest.SocatPTY(sctx, dir)
	if serr != nil {
		os.RemoveAll(dir)
		return nil, "", nil, fmt.Errorf("-pty: %w", serr)
	}
	ep, perr := modbus.ParseURL("rtu://" + a + "?parity=none")
	var port io.ReadWriteCloser
	if perr == nil {
		port, perr = modbustest.OpenSerial(ep)
	}
	if perr != nil {
		stop()
		os.RemoveAll(dir)
		return nil, "", nil, perr
	}
	return port, b, func() error {
		stop()
		return os.RemoveAll(dir)
	}, nil
}

// describe says where the simulator serves, for its first line of output.
func (l *line) describe(where string) string {
	if *l.pty {
		path := where[strings.Index(where, "://")+3:]
		path, _, _ = strings.Cut(path, "?")
		return where + " (pseudo-terminal: open " + path + ")"
	}
	return where
}
