package modbus

import "time"

// DefaultInterCharTimeout is the longest gap between two characters of one
// ASCII frame, unless ClientConfig.InterCharTimeout says otherwise: "an
// interval greater than 1 second means an error has occurred" (Modbus over
// Serial Line V1.02, 2.5.2.1).
const DefaultInterCharTimeout = time.Second

// Characters of the ASCII framing (Serial Line V1.02, 2.5.2.1).
const (
	asciiStart = ':'
	asciiCR    = '\r'
	asciiLF    = '\n'
	// asciiMaxBytes is the most bytes one frame carries: address, a PDU of
	// at most 253 bytes and the LRC, as 510 hex characters (513 characters
	// with ':' and CR LF).
	asciiMaxBytes = 1 + 253 + 1
)

// LRC returns the Longitudinal Redundancy Check of b, the check of an
// ASCII frame (Modbus over Serial Line V1.02, 6.2.1): the two's complement
// of the 8-bit sum of the bytes, so that the bytes and their LRC sum to 0.
// b is the address and PDU, not yet hex encoded.
func LRC(b []byte) byte {
	var sum byte
	for _, c := range b {
		sum += c
	}
	return -sum
}

const hexDigits = "0123456789ABCDEF"

// AppendASCIIFrame appends the ASCII frame that carries adu (the address
// and PDU) to b: ':', each byte and then the LRC as two upper-case hex
// digits, CR LF (Serial Line V1.02, 2.5.2.1).
func AppendASCIIFrame(b, adu []byte) []byte {
	b = append(b, asciiStart)
	for _, c := range adu {
		b = append(b, hexDigits[c>>4], hexDigits[c&0x0F])
	}
	l := LRC(adu)
	return append(b, hexDigits[l>>4], hexDigits[l&0x0F], asciiCR, asciiLF)
}

// unhex returns the value of a hex digit (upper or lower case), or -1.
func unhex(c byte) int {
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

// asciiFramer is ASCII framing (Modbus over Serial Line V1.02, 2.5.2): a
// frame starts with ':', carries the address, the PDU and the LRC as hex
// character pairs and ends with CR LF. Characters before a ':' are noise;
// a ':' inside a frame starts a new one (2.5.2.1: the receiver "flushes
// its buffer"); a gap longer than the inter-character timeout inside a
// frame abandons it. A frame with a character that is not a hex digit, an
// odd number of digits, a CR not followed by LF, more than 255 bytes, fewer
// than 3 (address, function, LRC), a length its function code does not
// allow, or a bad LRC is garbled: counted, never decoded.
//
// The framer reads the port in chunks and keeps what it read past a frame
// for the next one; a frame cut by a read deadline (the request's timeout)
// is kept too and completed by the next read, so that a late reply that
// straddles a timeout is still recognised as one frame.
type asciiFramer struct {
	port      rtuPort
	interChar time.Duration

	in     [512]byte // read from the port, not yet used: in[r:w]
	r, w   int
	frame  [asciiMaxBytes]byte // decoded bytes of the frame being read
	n      int                 // hex digits of it read so far
	inside bool                // a ':' was read and the frame is not complete
	last   time.Time           // when the last character of the frame came
	noise  bool                // characters outside any frame were skipped
	skip   bool                // the rest of a garbled frame: skipped, not noise
}

func newASCIIFramer(port rtuPort, interChar time.Duration) *asciiFramer {
	return &asciiFramer{port: port, interChar: interChar}
}

func (f *asciiFramer) appendFrame(b, adu []byte) []byte { return AppendASCIIFrame(b, adu) }

// fill reads more input from the port, waiting until deadline.
func (f *asciiFramer) fill(deadline time.Time) error {
	if err := f.port.SetReadDeadline(deadline); err != nil {
		return err
	}
	for {
		n, err := f.port.Read(f.in[:])
		if n > 0 {
			f.r, f.w = 0, n
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readFrame reads one ASCII frame before deadline (see asciiFramer).
func (f *asciiFramer) readFrame(deadline time.Time) (unit uint8, pdu []byte, err error) {
	for {
		if f.r == f.w {
			wait := deadline
			if f.inside {
				// 2.5.2.1: a gap of more than the inter-character timeout
				// inside a frame is an error.
				ic := f.last.Add(f.interChar)
				if !time.Now().Before(ic) {
					return f.garbled()
				}
				wait = earliest(ic, deadline)
			}
			if err := f.fill(wait); err != nil {
				if isTimeout(err) && f.inside && wait.Before(deadline) {
					return f.garbled()
				}
				return 0, nil, err
			}
		}
		now := time.Now()
		for f.r < f.w {
			c := f.in[f.r]
			f.r++
			if c == asciiStart {
				dropped := f.inside || f.noise
				f.reset()
				f.skip = false
				f.inside, f.last = true, now
				if dropped {
					// The frame so far (or the noise before it) is
					// dropped; this ':' starts the next one.
					return 0, nil, errGarbled
				}
				continue
			}
			if !f.inside {
				f.noise = f.noise || !f.skip
				continue
			}
			if now.Sub(f.last) > f.interChar {
				f.r-- // c is read anew, as the rest of the garbled frame
				return f.garbled()
			}
			f.last = now
			switch {
			case c == asciiCR:
				if f.n%2 != 0 || f.n/2 < 3 {
					return f.garbled()
				}
				// The LF must follow.
				if f.r == f.w {
					if err := f.fill(earliest(now.Add(f.interChar), deadline)); err != nil {
						if isTimeout(err) && time.Now().Before(deadline) {
							return f.garbled()
						}
						// Keep the frame: the LF may still come. Put the
						// CR back by not counting it (it is re-read as a
						// terminator only if the LF follows it).
						f.pushBackCR()
						return 0, nil, err
					}
				}
				if f.in[f.r] != asciiLF {
					return f.garbled() // a CR without LF; what follows is read anew
				}
				f.r++
				return f.complete()
			default:
				v := unhex(c)
				if v < 0 || f.n >= 2*asciiMaxBytes {
					return f.garbled()
				}
				if f.n%2 == 0 {
					f.frame[f.n/2] = byte(v) << 4
				} else {
					f.frame[f.n/2] |= byte(v)
				}
				f.n++
			}
		}
	}
}

// pushBackCR keeps a CR that ended the input read so far, so that the
// next readFrame sees it again. The input buffer is empty when it is
// called.
func (f *asciiFramer) pushBackCR() {
	f.in[0] = asciiCR
	f.r, f.w = 0, 1
}

// complete checks the frame read (its digits are all in f.frame) and
// returns its address and PDU.
func (f *asciiFramer) complete() (uint8, []byte, error) {
	n := f.n / 2
	f.reset()
	b := f.frame[:n]
	var sum byte
	for _, c := range b {
		sum += c
	}
	if sum != 0 {
		return 0, nil, errGarbled // the LRC (6.2.1): bytes and LRC sum to 0
	}
	pdu := b[1 : n-1]
	if want := replyLen(pdu[0], at(pdu, 1)); want >= 0 && want != len(pdu) {
		return 0, nil, errGarbled
	}
	return b[0], pdu, nil
}

func at(b []byte, i int) byte {
	if i < len(b) {
		return b[i]
	}
	return 0
}

func (f *asciiFramer) reset() { f.n, f.inside, f.noise = 0, false, false }

// garbled drops the frame being read; the characters up to the next ':'
// are its rest, skipped without being counted again.
func (f *asciiFramer) garbled() (uint8, []byte, error) {
	f.reset()
	f.skip = true
	return 0, nil, errGarbled
}

// resync does nothing: the next ':' starts the next frame.
func (f *asciiFramer) resync(time.Time) error { return nil }

// discardBuffered drops what was read and not used, and a frame being
// read: the characters of it that are still to come are its rest, skipped
// without being counted again.
func (f *asciiFramer) discardBuffered() bool {
	got := f.r < f.w || f.inside || f.noise
	f.skip = f.skip || f.inside || f.noise
	f.r, f.w = 0, 0
	f.n, f.inside, f.noise = 0, false, false
	return got
}
