package modbustest

import (
	"bufio"
	"errors"
	"io"
	"os"
	"time"

	"github.com/m2mbridge/m2mbridge/modbus"
)

// ASCII is the serial line's ASCII framing (Modbus over Serial Line V1.02,
// 2.5.2): ':', the address, PDU and LRC as hex character pairs, CR LF. With
// [WithFraming] the server is an ASCII-over-TCP gateway
// (asciiovertcp://); [NewASCIIServer] serves it on a serial port or a
// pseudo-terminal.
const ASCII Framing = RTU + 1

// WithInterCharTimeout sets how long the ASCII server waits between two
// characters of one request frame before it drops the frame (default 1s,
// Serial Line V1.02 2.5.2.1). It applies where the stream has read
// deadlines (a TCP connection, a pseudo-terminal opened by [OpenPTY] or
// with os.OpenFile).
func WithInterCharTimeout(d time.Duration) Option {
	return func(s *Server) { s.interChar = d }
}

// NewASCIIServer serves profile with ASCII framing on port — one end of a
// pseudo-terminal pair ([OpenPTY], [SocatPTY]) or a serial port — until
// Close, which closes port. Frames that are not well formed (not hex, bad
// LRC, no CR LF, too long, too slow between characters) are dropped, as a
// device on the line would, and the server waits for the next ':'.
func NewASCIIServer(profile *modbus.Profile, port io.ReadWriteCloser, opts ...Option) (*Server, error) {
	return newPortServer(profile, port, ASCII, opts)
}

// asciiReader reads ASCII request frames from a stream.
type asciiReader struct {
	r         *bufio.Reader
	dl        interface{ SetReadDeadline(time.Time) error } // nil: no inter-character timeout
	interChar time.Duration
}

func newASCIIReader(rw io.Reader, interChar time.Duration) *asciiReader {
	a := &asciiReader{r: bufio.NewReaderSize(rw, 1024), interChar: interChar}
	if a.interChar <= 0 {
		a.interChar = modbus.DefaultInterCharTimeout
	}
	if d, ok := rw.(interface{ SetReadDeadline(time.Time) error }); ok {
		// An os.File that is not pollable says so on the first call.
		if err := d.SetReadDeadline(time.Time{}); err == nil {
			a.dl = d
		}
	}
	return a
}

// next reads one character; inside a frame, within the inter-character
// timeout.
func (a *asciiReader) next(inside bool) (byte, error) {
	if a.dl != nil && a.r.Buffered() == 0 {
		var t time.Time
		if inside {
			t = time.Now().Add(a.interChar)
		}
		if err := a.dl.SetReadDeadline(t); err != nil {
			return 0, err
		}
	}
	c, err := a.r.ReadByte()
	if err != nil && inside && errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, errBadFrame // too long a gap inside the frame
	}
	return c, err
}

// read reads one request frame: it skips to a ':', decodes the hex pairs
// up to CR LF into buf and checks the LRC. It returns errBadFrame for a
// frame that is not well formed; the next read resynchronises on the next
// ':'.
func (a *asciiReader) read(buf []byte) (unit uint8, pdu []byte, err error) {
	for {
		c, err := a.next(false)
		if err != nil {
			return 0, nil, err
		}
		if c == ':' {
			break
		}
	}
	n := 0 // hex digits
	for {
		c, err := a.next(true)
		if err != nil {
			return 0, nil, err
		}
		switch {
		case c == ':': // a new frame starts (2.5.2.1)
			n = 0
			continue
		case c == '\r':
			c, err := a.next(true)
			if err != nil {
				return 0, nil, err
			}
			if c != '\n' || n%2 != 0 || n < 6 {
				if c == ':' {
					_ = a.r.UnreadByte()
				}
				return 0, nil, errBadFrame
			}
			b := buf[:n/2]
			if modbus.LRC(b[:len(b)-1]) != b[len(b)-1] {
				return 0, nil, errBadFrame
			}
			return b[0], b[1 : len(b)-1], nil
		}
		v := hexVal(c)
		if v < 0 || n >= 2*256 || n/2 >= len(buf) {
			return 0, nil, errBadFrame
		}
		if n%2 == 0 {
			buf[n/2] = byte(v) << 4
		} else {
			buf[n/2] |= byte(v)
		}
		n++
	}
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}

// writeASCII sends unit and pdu as one ASCII frame; corrupt spoils its LRC.
func writeASCII(w io.Writer, unit uint8, pdu, buf []byte, corrupt bool) error {
	var a [256]byte
	adu := append(a[:0], unit)
	adu = append(adu, pdu...)
	b := modbus.AppendASCIIFrame(buf[:0], adu)
	if corrupt {
		// The LRC's last hex digit, changed to another digit.
		i := len(b) - 3
		if b[i] == '0' {
			b[i] = '1'
		} else {
			b[i] = '0'
		}
	}
	_, err := w.Write(b)
	return err
}
