package modbus

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Parity is the parity of a serial line.
type Parity string

// Serial parities. The Modbus serial line specification (Modbus over Serial
// Line V1.02, 2.5.1 "RTU Transmission Mode") makes even parity the default.
const (
	ParityNone Parity = "none"
	ParityEven Parity = "even"
	ParityOdd  Parity = "odd"
)

// The URL schemes a Client understands: one per transport of the upstream
// client.
const (
	SchemeTCP        = "tcp"        // Modbus TCP (MBAP), default port 502
	SchemeTLS        = "tcp+tls"    // Modbus/TCP Security, default port 802, mutual TLS
	SchemeUDP        = "udp"        // MBAP frames over UDP, default port 502
	SchemeRTU        = "rtu"        // RTU on a serial line: rtu:///dev/ttyUSB0 or rtu://COM3
	SchemeRTUOverTCP = "rtuovertcp" // RTU frames through a TCP gateway
	SchemeRTUOverUDP = "rtuoverudp" // RTU frames through a UDP gateway
	// ASCII framing (Modbus over Serial Line V1.02, 2.5.2): ':', the
	// address, PDU and LRC as hex character pairs, CR LF. The adapter's own
	// serial-line transport, like rtu's.
	SchemeASCII        = "ascii"        // ASCII on a serial line: ascii:///dev/ttyUSB0 (default 7E1)
	SchemeASCIIOverTCP = "asciiovertcp" // ASCII frames through a TCP gateway
)

// Endpoint is a parsed device URL: the transport, where to reach it and,
// for serial-line framing (RTU or ASCII), the serial line settings.
//
// Serial settings may be given as query parameters:
// rtu:///dev/ttyUSB0?speed=9600&parity=none&data_bits=8&stop_bits=2.
type Endpoint struct {
	Scheme  string
	Address string // host:port, or the serial device path for rtu and ascii
	// Serial line settings, used by rtu and ascii for the port, by rtu,
	// rtuovertcp and rtuoverudp to time the 3.5-character inter-frame
	// silence, and by the cost model of every serial-line framing.
	Speed  int    // baud; default 19200
	Parity Parity // default ParityEven, as the serial line spec says
	// DataBits defaults to 8, and to 7 for ASCII (Serial Line V1.02,
	// 2.5.2: 7E1, or 7O1, or 7N2; 8 data bits are accepted too, as some
	// devices and converters use them and a pseudo-terminal needs them).
	DataBits int
	// StopBits defaults to what the serial line specification mandates
	// (2.5.1): one stop bit with parity, two without. (The upstream client
	// would default to 8N2 always; this package follows the specification.)
	StopBits int
}

// ParseURL parses a device URL (see the Scheme constants) and fills in the
// defaults. Errors name the URL and what is wrong with it.
//
// A URL with user information (tcp://user:password@host) is refused:
// Modbus has no authentication. Errors print the URL redacted (password and
// query values hidden), never as given.
func ParseURL(raw string) (Endpoint, error) {
	var e Endpoint
	s := redactedURL(raw) // for messages only
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return e, configErrorf("url", "%q has no scheme (want tcp://, tcp+tls://, udp://, rtu://, rtuovertcp://, rtuoverudp://, ascii:// or asciiovertcp://)", s)
	}
	e.Scheme = strings.ToLower(scheme)
	rest, query, _ := strings.Cut(rest, "?")
	if e.Scheme != SchemeRTU && e.Scheme != SchemeASCII && strings.Contains(rest, "@") {
		return e, configErrorf("url", "%q has user information: Modbus has no authentication (remove the user and password)", s)
	}
	switch e.Scheme {
	case SchemeTCP, SchemeUDP, SchemeTLS, SchemeRTUOverTCP, SchemeRTUOverUDP, SchemeASCIIOverTCP:
		host := strings.TrimSuffix(rest, "/")
		if host == "" {
			return e, configErrorf("url", "%q has no host", s)
		}
		if _, _, err := net.SplitHostPort(host); err != nil {
			port := "502"
			if e.Scheme == SchemeTLS {
				port = "802"
			}
			if strings.Count(host, ":") > 1 && !strings.HasPrefix(host, "[") {
				return e, configErrorf("url", "%q: IPv6 address must be in brackets", s)
			}
			host = net.JoinHostPort(strings.Trim(host, "[]"), port)
		}
		if _, p, _ := net.SplitHostPort(host); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
				return e, configErrorf("url", "%q: bad port %q", s, p)
			}
		}
		e.Address = host
	case SchemeRTU, SchemeASCII:
		if rest == "" || rest == "/" {
			return e, configErrorf("url", "%q has no serial device (want %s:///dev/ttyUSB0)", s, e.Scheme)
		}
		e.Address = rest
	default:
		return e, configErrorf("url", "%q: unknown scheme %q (want tcp, tcp+tls, udp, rtu, rtuovertcp, rtuoverudp, ascii or asciiovertcp)", s, scheme)
	}
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return e, configErrorf("url", "%q: bad query", s)
		}
		for k, vs := range q {
			v := vs[len(vs)-1]
			switch k {
			case "speed", "baud":
				e.Speed, err = strconv.Atoi(v)
			case "data_bits":
				e.DataBits, err = strconv.Atoi(v)
			case "stop_bits":
				e.StopBits, err = strconv.Atoi(v)
			case "parity":
				e.Parity, err = ParseParity(v)
			default:
				return e, configErrorf("url", "%q: unknown parameter %q (want speed, parity, data_bits, stop_bits)", s, k)
			}
			if err != nil {
				return e, configErrorf("url", "%q: parameter %s=%q: %v", s, k, v, err)
			}
		}
	}
	return e, e.fill()
}

// ParseParity parses "none", "even", "odd" or their initials N, E, O.
func ParseParity(s string) (Parity, error) {
	switch strings.ToLower(s) {
	case "":
		return "", nil
	case "n", "none":
		return ParityNone, nil
	case "e", "even":
		return ParityEven, nil
	case "o", "odd":
		return ParityOdd, nil
	}
	return "", configErrorf("parity", "%q is not none, even or odd", s)
}

// fill sets the serial defaults and checks the settings.
func (e *Endpoint) fill() error {
	if e.Speed == 0 {
		e.Speed = 19200
	}
	if e.Parity == "" {
		e.Parity = ParityEven
	}
	if e.DataBits == 0 {
		e.DataBits = 8
		if e.ASCIIFramed() {
			e.DataBits = 7
		}
	}
	if e.StopBits == 0 {
		e.StopBits = 1
		if e.Parity == ParityNone {
			e.StopBits = 2
		}
	}
	switch {
	case e.Speed < 50 || e.Speed > 4000000:
		return configErrorf("speed", "%d baud is out of range", e.Speed)
	case e.DataBits < 5 || e.DataBits > 8:
		return configErrorf("data_bits", "%d is not 5 to 8", e.DataBits)
	case e.StopBits != 1 && e.StopBits != 2:
		return configErrorf("stop_bits", "%d is not 1 or 2", e.StopBits)
	}
	switch e.Parity {
	case ParityNone, ParityEven, ParityOdd:
	default:
		return configErrorf("parity", "%q is not none, even or odd", e.Parity)
	}
	if field, msg := e.asciiFormat(); msg != "" {
		return configErrorf(field, "%s", msg)
	}
	return nil
}

// asciiFormat checks the character format of an ASCII link and returns
// the setting at fault and what is wrong, or "", "". Modbus over Serial
// Line V1.02, 2.5.2: a character is 10 bits, 1 start bit, 7 data bits,
// even (or odd) parity and 1 stop bit, or no parity and 2 stop bits. With 8
// data bits any parity and stop bits are accepted: devices and converters
// that use them exist, and a pseudo-terminal takes nothing else.
func (e Endpoint) asciiFormat() (field, msg string) {
	if !e.ASCIIFramed() {
		return "", ""
	}
	switch {
	case e.DataBits < 7:
		return "data_bits", fmt.Sprintf("%d is too few for ASCII framing: its characters need 7 (or 8) data bits", e.DataBits)
	case e.DataBits == 7 && e.Parity == ParityNone && e.StopBits != 2:
		return "stop_bits", fmt.Sprintf("%d with 7 data bits and no parity: ASCII characters are 10 bits, so 7N2 (Serial Line V1.02, 2.5.2)", e.StopBits)
	case e.DataBits == 7 && e.Parity != ParityNone && e.StopBits != 1:
		return "stop_bits", fmt.Sprintf("%d with 7 data bits and %s parity: ASCII characters are 10 bits, so 7E1 or 7O1 (Serial Line V1.02, 2.5.2)", e.StopBits, e.Parity)
	}
	return "", ""
}

// String returns the URL of e, with serial settings as query parameters for
// rtu and ascii.
func (e Endpoint) String() string {
	s := e.Scheme + "://" + e.Address
	if e.Scheme == SchemeRTU || e.Scheme == SchemeASCII {
		s += "?speed=" + strconv.Itoa(e.Speed) + "&parity=" + string(e.Parity) +
			"&data_bits=" + strconv.Itoa(e.DataBits) + "&stop_bits=" + strconv.Itoa(e.StopBits)
	}
	return s
}

// RTUFramed reports whether e carries RTU frames (rtu, rtuovertcp,
// rtuoverudp).
func (e Endpoint) RTUFramed() bool {
	return e.Scheme == SchemeRTU || e.Scheme == SchemeRTUOverTCP || e.Scheme == SchemeRTUOverUDP
}

// ASCIIFramed reports whether e carries ASCII frames (ascii,
// asciiovertcp).
func (e Endpoint) ASCIIFramed() bool {
	return e.Scheme == SchemeASCII || e.Scheme == SchemeASCIIOverTCP
}

// SerialFramed reports whether e carries serial-line frames, RTU or ASCII:
// such a link has no transaction ids, so a late reply can be mistaken for
// the answer to the next request, and one link usually serves several
// units that must take turns. The adapter's own serial-line transport
// serves these links.
func (e Endpoint) SerialFramed() bool { return e.RTUFramed() || e.ASCIIFramed() }

// CharTime is how long one character takes on the serial line: start bit,
// data bits, parity bit and stop bits at Speed.
func (e Endpoint) CharTime() time.Duration {
	bits := 1 + e.DataBits + e.StopBits
	if e.Parity != ParityNone {
		bits++
	}
	return time.Duration(bits) * time.Second / time.Duration(e.Speed)
}

// FrameSilence is the minimum silence between two RTU frames: 3.5 character
// times, fixed at 1.75 ms above 19200 baud (Modbus over Serial Line V1.02,
// 2.5.1.1 "MODBUS Message RTU Framing"). ASCII frames are delimited by
// characters, not by silence (2.5.2.1): 0 for ascii and asciiovertcp.
func (e Endpoint) FrameSilence() time.Duration {
	if e.ASCIIFramed() {
		return 0
	}
	if e.Speed > 19200 {
		return 1750 * time.Microsecond
	}
	return e.CharTime() * 7 / 2
}
