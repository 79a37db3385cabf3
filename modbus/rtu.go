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

// rtuConn is this package's own RTU transport, used for rtu, rtuovertcp and
// rtuoverudp links instead of the upstream client's.
//
// Why not upstream's: its RTU transport (simonvetter/modbus v1.6.4,
// rtu_transport.go) writes a request and takes the first frame with a good
// CRC as its reply. It checks that frame's unit, function and byte count,
// but it discards stale input only when the link opens, never before a
// request, and it offers no hook between sending and reading (the link is
// made inside Open and is unexported). RTU has no transaction ids, so the
// late reply to a timed-out read of the same unit, function and quantity was
// decoded as the next read's answer — a wrong value with no error. Owning
// the framing lets the adapter enforce, on every RTU link:
//
//   - after a timeout the request stays pending: before the next request is
//     sent the link listens, up to ClientConfig.LateReplyWait after the
//     timeout, and discards what arrives; the wait ends early when the late
//     reply itself has arrived (and been discarded);
//   - before every request, whatever input is buffered is discarded (so
//     nothing read before a request is fully sent counts as its reply);
//   - every reply is checked against its request (unit, function, byte count
//     = 2 × quantity or ⌈quantity/8⌉, or a write's echo); a frame that does
//     not match, or does not pass its CRC, is discarded, counted
//     ([Stats.Discarded]) and never decoded, and the request keeps waiting
//     for its own reply until its timeout;
//   - a request in progress can be aborted (the link is closed, or on a
//     serial port the read loop stops within one 2 ms poll), which is what
//     bounds shutdown.
//
// A reply later than Timeout + LateReplyWait after its request, to a read of
// the same unit, function and quantity as a later request, cannot be told
// from that request's reply by any means the protocol offers; the default
// LateReplyWait (3 × Timeout) makes that window wide.
type rtuConn struct {
	port      rtuPort
	timeout   time.Duration
	lateWait  time.Duration
	quiet     time.Duration // silence that ends a garbled frame
	pending   *late         // the Client's: survives a reconnection
	discarded func()
	buf       [260]byte
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

// dialRTU opens an RTU link for ep. Network dials honour ctx (and at most
// 5 s, as upstream's dial did).
func dialRTU(ctx context.Context, ep Endpoint) (rtuPort, error) {
	switch ep.Scheme {
	case SchemeRTUOverTCP, SchemeRTUOverUDP:
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

func newRTUConn(port rtuPort, ep Endpoint, timeout, lateWait time.Duration, pending *late, discarded func()) *rtuConn {
	// A gap this long ends a frame on the wire (3.5 characters); through a
	// gateway, and in the poll of a serial port, gaps are coarser, so wait
	// at least a few milliseconds before calling the line quiet.
	quiet := max(4*ep.FrameSilence(), 5*time.Millisecond)
	return &rtuConn{port: port, timeout: timeout, lateWait: lateWait, quiet: quiet, pending: pending, discarded: discarded}
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

// readFrame reads one RTU frame (Serial Line V1.02, 2.5.1.1: address,
// PDU, CRC low byte first) before deadline. It returns errGarbled for a
// frame of an unknown function or with a bad CRC, a timeout error at the
// deadline, or the port's error.
func (c *rtuConn) readFrame(deadline time.Time) (unit uint8, pdu []byte, err error) {
	if err := c.port.SetReadDeadline(deadline); err != nil {
		return 0, nil, err
	}
	b := c.buf[:]
	if _, err := io.ReadFull(c.port, b[:3]); err != nil {
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
	if _, err := io.ReadFull(c.port, b[3:total]); err != nil {
		return 0, nil, err
	}
	if crc16(b[:total-2]) != binary.LittleEndian.Uint16(b[total-2:]) {
		return 0, nil, errGarbled
	}
	return b[0], b[1 : total-2], nil
}

// drain discards input until the line has been quiet for quiet, or until
// deadline (then it returns a timeout error). It reports whether it
// discarded anything.
func (c *rtuConn) drain(quiet time.Duration, deadline time.Time) (bool, error) {
	got := c.port.discardBuffered()
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
		if err := c.port.SetReadDeadline(earliest(last.Add(quiet), deadline)); err != nil {
			return got, err
		}
		n, err := c.port.Read(tmp[:])
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

// waitLate waits, listening, for the reply of a request that timed out:
// until its LateReplyWait ends or the reply has arrived. What arrives is
// discarded.
func (c *rtuConn) waitLate() error {
	p := *c.pending
	*c.pending = late{}
	for time.Now().Before(p.until) {
		unit, pdu, err := c.readFrame(p.until)
		switch {
		case err == nil:
			c.discarded()
			if unit == p.unit && pdu[0]&0x7F == p.fc {
				return nil // the late reply itself: nothing more is due
			}
		case errors.Is(err, errGarbled):
			c.discarded()
			if _, err := c.drain(c.quiet, p.until); err != nil && !isTimeout(err) {
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
func (c *rtuConn) exchange(req *request) ([]byte, error) {
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
	frame := append(c.buf[:0], req.unit)
	frame = req.appendPDU(frame)
	frame = binary.LittleEndian.AppendUint16(frame, crc16(frame))
	if _, err := c.port.Write(frame); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(c.timeout)
	for {
		unit, pdu, err := c.readFrame(deadline)
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
			if _, err := c.drain(c.quiet, deadline); err != nil && !isTimeout(err) {
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
