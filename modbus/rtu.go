package modbus

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/goburrow/serial"
)

// lineConn is this package's own serial-line transport, used for rtu,
// rtuovertcp and rtuoverudp links (RTU framing) and ascii and asciiovertcp
// links (ASCII framing) instead of the upstream client's. The framing is a
// [framer]; everything else — flushing, late replies, matching replies to
// requests, aborts — is shared.
//
// Why not upstream's: its RTU transport (simonvetter/modbus v1.6.4,
// rtu_transport.go) writes a request and takes the first frame with a good
// CRC as its reply. It checks that frame's unit, function and byte count,
// but it discards stale input only when the link opens, never before a
// request, and it offers no hook between sending and reading (the link is
// made inside Open and is unexported); it has no ASCII framing at all.
// Serial-line framings have no transaction ids, so the late reply to a
// timed-out read of the same unit, function and quantity was decoded as the
// next read's answer — a wrong value with no error. Owning the framing lets
// the adapter enforce, on every serial-line link:
//
//   - after a timeout the request stays pending: before the next request is
//     sent the link listens, up to ClientConfig.LateReplyWait after the
//     timeout, and discards what arrives; the wait ends early when the late
//     reply itself has arrived (and been discarded);
//   - before every request, whatever input is buffered is discarded (so
//     nothing read before a request is fully sent counts as its reply);
//   - every reply is checked against its request (unit, function, byte count
//     = 2 × quantity or ⌈quantity/8⌉, or a write's echo); a frame that does
//     not match, or does not pass its check (CRC, LRC, hex, delimiters,
//     length), is discarded, counted ([Stats.Discarded]) and never decoded,
//     and the request keeps waiting for its own reply until its timeout;
//   - a request in progress can be aborted (the link is closed, or on a
//     serial port the read loop stops within one 2 ms poll), which is what
//     bounds shutdown.
//
// A reply later than Timeout + LateReplyWait after its request, to a read of
// the same unit, function and quantity as a later request, cannot be told
// from that request's reply by any means the protocol offers; the default
// LateReplyWait (3 × Timeout) makes that window wide.
type lineConn struct {
	port      rtuPort
	framer    framer
	timeout   time.Duration
	ep        Endpoint // for the time a request and its reply take on the wire
	lateWait  time.Duration
	pending   *late // the Client's: survives a reconnection
	discarded func()
	adu       [256]byte // address and PDU of the request being sent
	out       [520]byte // its frame
}

// framer is a serial-line framing: RTU (binary, CRC, frames delimited by
// silence; see rtuFramer) or ASCII (hex characters, LRC, ':' ... CR LF; see
// asciiFramer).
type framer interface {
	// appendFrame appends the frame that carries adu (address and PDU).
	appendFrame(b, adu []byte) []byte
	// readFrame reads one frame before deadline and returns its address
	// and PDU, valid until the next call. It returns errGarbled for a
	// frame that fails the framing's checks, a timeout error at the
	// deadline, or the port's error.
	readFrame(deadline time.Time) (unit uint8, pdu []byte, err error)
	// resync skips what is left of a garbled frame (before deadline).
	resync(deadline time.Time) error
	// discardBuffered drops input the framer read but did not use and
	// reports whether there was any.
	discardBuffered() bool
}

// late is a request that timed out and whose reply may still arrive.
type late struct {
	unit, fc uint8
	until    time.Time
}

// rtuPort is a byte stream with read deadlines: a TCP or UDP socket to an
// RTU gateway, or a serial port.
type rtuPort interface {
	io.ReadWriter
	SetReadDeadline(t time.Time) error
	Close() error
	// abort makes a Read in progress (and later ones) return soon; it is
	// safe to call concurrently with Read.
	abort()
	// discardBuffered drops input read from the OS but not consumed and
	// reports whether there was any.
	discardBuffered() bool
}

var (
	errAborted = errors.New("modbus: request abandoned (context ended or client closed)")
	errGarbled = errors.New("modbus: garbled frame")
)

// dialLine opens a serial-line link (RTU or ASCII framing) for ep. Network
// dials honour ctx (and at most 5 s, as upstream's dial did).
func dialLine(ctx context.Context, ep Endpoint) (rtuPort, error) {
	switch ep.Scheme {
	case SchemeRTUOverTCP, SchemeRTUOverUDP, SchemeASCIIOverTCP:
		network := "tcp"
		if ep.Scheme == SchemeRTUOverUDP {
			network = "udp"
		}
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err := d.DialContext(ctx, network, ep.Address)
		if err != nil {
			return nil, err
		}
		// A buffer of a whole datagram: a UDP read returns one datagram and
		// drops what does not fit.
		return &netPort{c: c, r: bufio.NewReaderSize(c, 512)}, nil
	default:
		parity := map[Parity]string{ParityNone: "N", ParityEven: "E", ParityOdd: "O"}[ep.Parity]
		p, err := serial.Open(&serial.Config{Address: ep.Address, BaudRate: ep.Speed, DataBits: ep.DataBits,
			StopBits: ep.StopBits, Parity: parity, Timeout: serialPoll})
		if err != nil {
			return nil, err
		}
		return &serialPort{p: p}, nil
	}
}

type netPort struct {
	c       net.Conn
	r       *bufio.Reader
	aborted atomic.Bool
}

func (p *netPort) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if err != nil && p.aborted.Load() {
		err = errAborted
	}
	return n, err
}
func (p *netPort) Write(b []byte) (int, error) {
	if err := p.c.SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return 0, err
	}
	return p.c.Write(b)
}
func (p *netPort) SetReadDeadline(t time.Time) error { return p.c.SetReadDeadline(t) }
func (p *netPort) Close() error                      { return p.c.Close() }
func (p *netPort) abort()                            { p.aborted.Store(true); _ = p.c.Close() }
func (p *netPort) discardBuffered() bool {
	n := p.r.Buffered()
	_, _ = p.r.Discard(n)
	return n > 0
}

// serialPoll is how long one read of a serial port waits for a byte; it
// bounds how soon an aborted request returns.
const serialPoll = 2 * time.Millisecond

// serialPort gives a serial port read deadlines by polling it (the serial
// package's reads wait at most serialPoll).
type serialPort struct {
	p        serial.Port
	deadline time.Time
	aborted  atomic.Bool
}

func (p *serialPort) Read(b []byte) (int, error) {
	for {
		if p.aborted.Load() {
			return 0, errAborted
		}
		if !p.deadline.IsZero() && !time.Now().Before(p.deadline) {
			return 0, os.ErrDeadlineExceeded
		}
		n, err := p.p.Read(b)
		if errors.Is(err, serial.ErrTimeout) {
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}
func (p *serialPort) Write(b []byte) (int, error)       { return p.p.Write(b) }
func (p *serialPort) SetReadDeadline(t time.Time) error { p.deadline = t; return nil }
func (p *serialPort) Close() error                      { return p.p.Close() }
func (p *serialPort) abort()                            { p.aborted.Store(true) }
func (p *serialPort) discardBuffered() bool             { return false }

func newLineConn(port rtuPort, ep Endpoint, cfg ClientConfig, pending *late, discarded func()) *lineConn {
	c := &lineConn{port: port, timeout: cfg.Timeout, ep: ep, lateWait: cfg.LateReplyWait, pending: pending, discarded: discarded}
	if ep.ASCIIFramed() {
		c.framer = newASCIIFramer(port, cmpOr(cfg.InterCharTimeout, DefaultInterCharTimeout))
	} else {
		// A gap this long ends a frame on the wire (3.5 characters); through
		// a gateway, and in the poll of a serial port, gaps are coarser, so
		// wait at least a few milliseconds before calling the line quiet.
		quiet := max(4*ep.FrameSilence(), 5*time.Millisecond)
		c.framer = &rtuFramer{port: port, quiet: quiet}
	}
	return c
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// rtuFramer is RTU framing (Modbus over Serial Line V1.02, 2.5.1.1):
// address, PDU, CRC low byte first; a frame's length follows from its
// function code and byte count, and a garbled one ends with a silence.
type rtuFramer struct {
	port  rtuPort
	quiet time.Duration // silence that ends a garbled frame
	buf   [260]byte
}

func (f *rtuFramer) appendFrame(b, adu []byte) []byte {
	b = append(b, adu...)
	return binary.LittleEndian.AppendUint16(b, crc16(adu))
}

// readFrame reads one RTU frame before deadline. It returns errGarbled for
// a frame of an unknown function or with a bad CRC, a timeout error at the
// deadline, or the port's error.
func (f *rtuFramer) readFrame(deadline time.Time) (unit uint8, pdu []byte, err error) {
	if err := f.port.SetReadDeadline(deadline); err != nil {
		return 0, nil, err
	}
	b := f.buf[:]
	if _, err := io.ReadFull(f.port, b[:3]); err != nil {
		return 0, nil, err
	}
	n := replyLen(b[1], b[2])
	if n < 0 {
		return 0, nil, errGarbled
	}
	total := 1 + n + 2
	if total > 256 { // Serial Line V1.02 2.5.1.1: at most 256 bytes
		return 0, nil, errGarbled
	}
	if _, err := io.ReadFull(f.port, b[3:total]); err != nil {
		return 0, nil, err
	}
	if crc16(b[:total-2]) != binary.LittleEndian.Uint16(b[total-2:]) {
		return 0, nil, errGarbled
	}
	return b[0], b[1 : total-2], nil
}

// resync discards input until the line has been quiet long enough to end
// the garbled frame.
func (f *rtuFramer) resync(deadline time.Time) error {
	_, err := drain(f.port, nil, f.quiet, deadline)
	return err
}

func (f *rtuFramer) discardBuffered() bool { return false }

// drain discards input of port (and of the framer fr, when not nil) until
// the line has been quiet for quiet, or until deadline (then it returns a
// timeout error). It reports whether it discarded anything.
func drain(port rtuPort, fr framer, quiet time.Duration, deadline time.Time) (bool, error) {
	got := port.discardBuffered()
	if fr != nil && fr.discardBuffered() {
		got = true
	}
	var tmp [256]byte
	last := time.Now()
	for {
		now := time.Now()
		if now.Sub(last) >= quiet {
			return got, nil
		}
		if !now.Before(deadline) {
			return got, os.ErrDeadlineExceeded
		}
		if err := port.SetReadDeadline(earliest(last.Add(quiet), deadline)); err != nil {
			return got, err
		}
		n, err := port.Read(tmp[:])
		if n > 0 {
			got = true
			last = time.Now()
			continue
		}
		if err != nil && !isTimeout(err) {
			return got, err
		}
	}
}

// drain discards buffered input until the line has been quiet for quiet
// (see the function drain).
func (c *lineConn) drain(quiet time.Duration, deadline time.Time) (bool, error) {
	return drain(c.port, c.framer, quiet, deadline)
}

// waitLate waits, listening, for the reply of a request that timed out:
// until its LateReplyWait ends or the reply has arrived. What arrives is
// discarded.
func (c *lineConn) waitLate() error {
	p := *c.pending
	*c.pending = late{}
	for time.Now().Before(p.until) {
		unit, pdu, err := c.framer.readFrame(p.until)
		switch {
		case err == nil:
			c.discarded()
			if unit == p.unit && pdu[0]&0x7F == p.fc {
				return nil // the late reply itself: nothing more is due
			}
		case errors.Is(err, errGarbled):
			c.discarded()
			if err := c.framer.resync(p.until); err != nil && !isTimeout(err) {
				return err
			}
		case isTimeout(err):
			return nil
		default:
			*c.pending = p // the link failed: the next one waits on
			return err
		}
	}
	return nil
}

// exchange sends req and returns the data of its reply (see
// [request.check]); the data is valid until the next call.
func (c *lineConn) exchange(req *request) ([]byte, error) {
	if c.pending.until.After(time.Now()) {
		if err := c.waitLate(); err != nil {
			return nil, err
		}
	}
	// Discard whatever is buffered: it cannot answer a request not yet sent.
	if got, err := c.drain(50*time.Microsecond, time.Now().Add(time.Second)); err != nil && !isTimeout(err) {
		return nil, err
	} else if got {
		c.discarded()
	}
	adu := append(c.adu[:0], req.unit)
	adu = req.appendPDU(adu)
	if _, err := c.port.Write(c.framer.appendFrame(c.out[:0], adu)); err != nil {
		return nil, err
	}
	// The timeout is the device's: the time the request and its longest
	// reply take on a slow line comes on top (see wireTime).
	deadline := time.Now().Add(c.timeout + wireTime(c.ep, req))
	for {
		unit, pdu, err := c.framer.readFrame(deadline)
		switch {
		case err == nil:
			data, err := req.check(unit, pdu)
			var mm mismatch
			if errors.As(err, &mm) {
				c.discarded()
				continue // a reply to another request: never decoded
			}
			return data, err
		case errors.Is(err, errGarbled):
			c.discarded()
			if err := c.framer.resync(deadline); err != nil && !isTimeout(err) {
				return nil, err
			}
			continue
		case isTimeout(err):
			*c.pending = late{unit: req.unit, fc: req.fc, until: time.Now().Add(c.lateWait)}
			return nil, timeoutError{err}
		default:
			// The link failed after the request went out: its reply may
			// still come, on this link's successor too.
			*c.pending = late{unit: req.unit, fc: req.fc, until: time.Now().Add(c.lateWait)}
			return nil, err
		}
	}
}

func (c *lineConn) abort()       { c.port.abort() }
func (c *lineConn) close() error { return c.port.Close() }
