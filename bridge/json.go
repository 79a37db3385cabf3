package bridge

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"
)

// The JSON encoding of a Sample (DESIGN.md, "The Sample"), one object per
// sample:
//
//	{"source":"meter1","point":"voltage_l1","value":230.5,"unit":"V","quality":"good","time":"2026-11-21T10:00:00.123456789Z"}
//
// Fields, in this order:
//   - source, point: always present.
//   - value: a JSON number, boolean or string; absent when the sample holds
//     no value. Integers are written exactly, digit for digit. A float is
//     always written with a fraction or an exponent ("230.0", "1e+21"), so a
//     decoder can tell it from an integer. JSON has no NaN or infinities: they
//     are written as the strings "NaN", "+Inf" and "-Inf", as the Prometheus
//     HTTP API does, and [DecodeJSON] turns exactly those strings back into
//     floats. A string point whose text is exactly one of those three words
//     therefore decodes as a float; no other string is affected.
//   - unit: left out when empty.
//   - quality: "good", "uncertain" or "bad".
//   - time: RFC 3339 in UTC with exactly nine fractional digits; left out
//     for the zero time.
//   - error: the Reason of a non-good sample (left out when empty).
//   - code: the protocol status code, left out when zero.
//   - seq: the per-source sequence number, left out when zero.
//
// JSON does not carry an integer's signedness: a decoded non-negative integer
// is an int64 when it fits and a uint64 above that. [Value.Equal] treats
// those as equal, so every sample survives a round trip by that measure.

// AppendJSON appends the JSON encoding of s to dst and returns the extended
// buffer. It does not allocate when dst has room.
func AppendJSON(dst []byte, s *Sample) []byte {
	var c timeCache
	return c.appendJSON(dst, s)
}

// appendJSON is AppendJSON with a cache of the last second formatted, for
// encoders of many samples.
func (c *timeCache) appendJSON(dst []byte, s *Sample) []byte {
	return c.appendJSONRest(appendJSONHead(dst, s), s)
}

// appendJSONHead appends the start of s's object: source and point.
func appendJSONHead(dst []byte, s *Sample) []byte {
	dst = append(dst, `{"source":`...)
	dst = appendString(dst, s.Source)
	dst = append(dst, `,"point":`...)
	return appendString(dst, s.Point)
}

// appendJSONRest appends the rest of s's object, after appendJSONHead.
func (c *timeCache) appendJSONRest(dst []byte, s *Sample) []byte {
	if s.Value.kind != KindNone {
		dst = append(dst, `,"value":`...)
		dst = appendValue(dst, s.Value)
	}
	if s.Unit != "" {
		dst = append(dst, `,"unit":`...)
		dst = appendString(dst, s.Unit)
	}
	dst = append(dst, `,"quality":"`...)
	dst = append(dst, s.Quality.String()...)
	dst = append(dst, '"')
	if !s.Time.IsZero() {
		dst = append(dst, `,"time":"`...)
		dst = c.appendTime(dst, s.Time)
		dst = append(dst, '"')
	}
	if s.Reason != "" {
		dst = append(dst, `,"error":`...)
		dst = appendString(dst, s.Reason)
	}
	if s.Code != 0 {
		dst = append(dst, `,"code":`...)
		dst = strconv.AppendUint(dst, uint64(s.Code), 10)
	}
	if s.Seq != 0 {
		dst = append(dst, `,"seq":`...)
		dst = strconv.AppendUint(dst, s.Seq, 10)
	}
	return append(dst, '}')
}

// MarshalJSON encodes s as [AppendJSON] does, so a Sample can be passed to
// encoding/json.
func (s Sample) MarshalJSON() ([]byte, error) { return AppendJSON(nil, &s), nil }

// UnmarshalJSON decodes s as [DecodeJSON] does.
func (s *Sample) UnmarshalJSON(data []byte) error {
	d, err := DecodeJSON(data)
	if err != nil {
		return err
	}
	*s = d
	return nil
}

func appendValue(dst []byte, v Value) []byte {
	switch v.kind {
	case KindFloat:
		return appendFloat(dst, math.Float64frombits(v.bits))
	case KindInt:
		return strconv.AppendInt(dst, int64(v.bits), 10)
	case KindUint:
		return strconv.AppendUint(dst, v.bits, 10)
	case KindBool:
		return strconv.AppendBool(dst, v.bits != 0)
	case KindString:
		return appendString(dst, v.str)
	}
	return append(dst, "null"...)
}

func appendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"+Inf"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Inf"`...)
	}
	// The same choice of notation as encoding/json (ES6 number to string).
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	if format == 'f' && abs != 0 {
		if b, ok := appendShortDecimal(dst, f, abs); ok {
			return b
		}
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	for _, c := range dst[start:] {
		if c == '.' || c == 'e' {
			return dst
		}
	}
	return append(dst, ".0"...)
}

// appendShortDecimal appends f (|f| = abs, 1e-6 ≤ abs < 1e21) as strconv's
// shortest 'f' formatting writes it, when f has a decimal of at most 15
// significant digits: the values devices report (a float32's shortest
// decimal, a register scaled by a power of ten) are such, and this is
// several times faster than the general algorithm. It finds the fewest
// fraction digits k for which m = round(abs × 10^k) gives abs back as
// m / 10^k, and writes m with its point; m < 2^53 and 10^k exact make that
// division correctly rounded, so the decimal written parses to f exactly.
// It reports false when f needs more digits (then use strconv).
func appendShortDecimal(dst []byte, f, abs float64) ([]byte, bool) {
	for k := 0; k < len(pow10u); k++ {
		x := abs * pow10[k]
		m := math.Round(x)
		if m >= 1e15 {
			// Below 10^15 a float64's spacing is under a fifth of 10^-k,
			// so at most one k-digit decimal gives it back: the one
			// strconv writes. Above, leave it to strconv.
			return dst, false
		}
		// When m / 10^k gives abs back, abs × 10^k is within a few units
		// of m's last place of m (2^-52 relative): farther, skip the
		// division.
		if math.Abs(x-m) > x*0x1p-50 || m/pow10[k] != abs {
			continue
		}
		if f < 0 {
			dst = append(dst, '-')
		}
		u := uint64(m)
		if k == 0 {
			return append(strconv.AppendUint(dst, u, 10), ".0"...), true
		}
		p := pow10u[k]
		dst = strconv.AppendUint(dst, u/p, 10)
		dst = append(dst, '.')
		frac := u % p
		// k digits, with leading zeros.
		var buf [24]byte
		for i := k - 1; i >= 0; i-- {
			buf[i] = byte('0' + frac%10)
			frac /= 10
		}
		return append(dst, buf[:k]...), true
	}
	return dst, false
}

// pow10u are the powers of ten a uint64 holds: appendShortDecimal tries at
// most 19 fraction digits (converting a float64 beyond the uint64 range
// gives a different value on each architecture, 0 on 386).
var pow10u = [...]uint64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19}

// pow10 are the powers of ten a float64 holds exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

const hexDigits = "0123456789abcdef"

// jsonSafe reports whether s is printable ASCII without '"' and '\\': a
// JSON string as it stands. Names and units are, so it looks at eight
// bytes at a time.
func jsonSafe(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	// hasZero is non-zero when a byte of v is zero (exactly: it is only
	// used to ask whether there is one).
	hasZero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	i := 0
	for ; i+8 <= len(s); i += 8 {
		v := binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s[i:]), 8))
		if v&highs != 0 || // non-ASCII
			(v-ones*0x20)&^v&highs != 0 || // a control character (< 0x20)
			hasZero(v^(ones*'"')) != 0 || hasZero(v^(ones*'\\')) != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// in encoding/json; control characters are escaped.
func appendString(dst []byte, s string) []byte {
	if jsonSafe(s) {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript; escape
		// them as encoding/json does.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// jsonHeads caches the encoded start of samples' objects (appendJSONHead)
// by their source and point: a poller's samples carry the same strings
// cycle after cycle. An entry keeps its strings, so that their memory is not
// reused for other text while the entry stands and the same address and
// length mean the same text.
type jsonHeads [1024]struct {
	source, point string
	enc           []byte
}

// append appends appendJSONHead(s), from the cache when it holds it.
func (h *jsonHeads) append(dst []byte, s *Sample) []byte {
	ps, ss := unsafe.StringData(s.Point), unsafe.StringData(s.Source)
	// Short strings share words (the tiny allocator): hash every bit.
	e := &h[(uint64(uintptr(unsafe.Pointer(ps)))+uint64(len(s.Point)))*0x9E3779B97F4A7C15>>54]
	if e.enc != nil && unsafe.StringData(e.point) == ps && len(e.point) == len(s.Point) &&
		unsafe.StringData(e.source) == ss && len(e.source) == len(s.Source) {
		return append(dst, e.enc...)
	}
	start := len(dst)
	dst = appendJSONHead(dst, s)
	if len(dst)-start <= 256 { // long names are not worth keeping
		e.source, e.point = s.Source, s.Point
		e.enc = append(e.enc[:0], dst[start:]...)
	}
	return dst
}

// appendTime appends t in UTC as RFC 3339 with nine fractional digits.
func appendTime(dst []byte, t time.Time) []byte {
	var c timeCache
	return c.appendTime(dst, t)
}

// timeCache remembers the formatted date and time ("2006-01-02T15:04:05")
// of one second: the samples of a batch mostly share it, and formatting it
// is half of the cost of encoding a sample.
type timeCache struct {
	sec    int64 // the Unix second that prefix formats, when ok
	ok     bool
	prefix [19]byte
	// The whole of the last time formatted, when nsOK: the samples of one
	// read share their time to the nanosecond.
	ns   int
	nsOK bool
	full [30]byte
}

// appendTime appends t in UTC as RFC 3339 with nine fractional digits.
func (c *timeCache) appendTime(dst []byte, t time.Time) []byte {
	sec := t.Unix()
	if c.nsOK && sec == c.sec && t.Nanosecond() == c.ns {
		return append(dst, c.full[:]...)
	}
	if !c.ok || sec != c.sec {
		u := t.UTC()
		year, month, day := u.Date()
		if year < 0 || year > 9999 {
			return u.AppendFormat(dst, "2006-01-02T15:04:05.000000000Z07:00")
		}
		hour, min, s := u.Clock()
		p := c.prefix[:0]
		p = appendDigits(p, year, 4)
		p = append(p, '-')
		p = append2(p, int(month))
		p = append(p, '-')
		p = append2(p, day)
		p = append(p, 'T')
		p = append2(p, hour)
		p = append(p, ':')
		p = append2(p, min)
		p = append(p, ':')
		p = append2(p, s)
		c.sec, c.ok = sec, true
	}
	f := append(c.full[:0], c.prefix[:]...)
	f = append(f, '.')
	// Nine digits of nanoseconds, two at a time.
	c.ns = t.Nanosecond()
	ns := c.ns
	var b [9]byte
	b[8] = byte('0' + ns%10)
	ns /= 10
	for i := 6; i >= 0; i -= 2 {
		q := ns % 100
		ns /= 100
		b[i], b[i+1] = pairs[2*q], pairs[2*q+1]
	}
	f = append(f, b[:]...)
	f = append(f, 'Z')
	c.nsOK = len(f) == len(c.full)
	return append(dst, f...)
}

// pairs holds "00" to "99", for formatting two digits at a time.
const pairs = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"

// append2 appends v (0 to 99) as two digits.
func append2(dst []byte, v int) []byte { return append(dst, pairs[2*v], pairs[2*v+1]) }

func appendDigits(dst []byte, v, width int) []byte {
	var buf [9]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, buf[:width]...)
}

type jsonSample struct {
	Source  *string         `json:"source"`
	Point   *string         `json:"point"`
	Value   json.RawMessage `json:"value"`
	Unit    string          `json:"unit"`
	Quality *string         `json:"quality"`
	Time    string          `json:"time"`
	Error   string          `json:"error"`
	Code    uint32          `json:"code"`
	Seq     uint64          `json:"seq"`
}

// DecodeJSON decodes one JSON-encoded sample, the inverse of [AppendJSON].
// source, point and quality are required; unknown fields are ignored, since
// later versions may add fields. Errors name the field at fault.
func DecodeJSON(data []byte) (Sample, error) {
	var j jsonSample
	if err := json.Unmarshal(data, &j); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return Sample{}, errorf("decode sample: field %q: want %s, got JSON %s", te.Field, te.Type, te.Value)
		}
		return Sample{}, errorf("decode sample: %w", err)
	}
	var s Sample
	switch {
	case j.Source == nil:
		return Sample{}, errorf("decode sample: field \"source\" missing")
	case j.Point == nil:
		return Sample{}, errorf("decode sample: field \"point\" missing")
	case j.Quality == nil:
		return Sample{}, errorf("decode sample: field \"quality\" missing")
	}
	s.Source, s.Point, s.Unit, s.Reason, s.Code, s.Seq = *j.Source, *j.Point, j.Unit, j.Error, j.Code, j.Seq
	q, ok := ParseQuality(*j.Quality)
	if !ok {
		return Sample{}, errorf("decode sample: field \"quality\": unknown quality %q (want good, uncertain or bad)", *j.Quality)
	}
	s.Quality = q
	if j.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, j.Time)
		if err != nil {
			return Sample{}, errorf("decode sample: field \"time\": %q is not an RFC 3339 time", j.Time)
		}
		s.Time = t.UTC()
	}
	v, err := decodeValue(j.Value)
	if err != nil {
		return Sample{}, errorf("decode sample: field \"value\": %w", err)
	}
	s.Value = v
	return s, nil
}

func decodeValue(raw json.RawMessage) (Value, error) {
	if len(raw) == 0 {
		return Value{}, nil
	}
	switch c := raw[0]; {
	case c == 'n':
		return Value{}, nil
	case c == 't':
		return Bool(true), nil
	case c == 'f':
		return Bool(false), nil
	case c == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Value{}, err
		}
		switch s {
		case "NaN":
			return Float(math.NaN()), nil
		case "+Inf":
			return Float(math.Inf(1)), nil
		case "-Inf":
			return Float(math.Inf(-1)), nil
		}
		return String(s), nil
	case c == '-' || (c >= '0' && c <= '9'):
		text := string(raw)
		for _, d := range raw {
			if d == '.' || d == 'e' || d == 'E' {
				f, err := strconv.ParseFloat(text, 64)
				if err != nil {
					return Value{}, errors.New("number " + text + " out of range")
				}
				return Float(f), nil
			}
		}
		if c == '-' {
			i, err := strconv.ParseInt(text, 10, 64)
			if err != nil {
				return Value{}, errors.New("integer " + text + " out of the int64 range")
			}
			return Int(i), nil
		}
		u, err := strconv.ParseUint(text, 10, 64)
		if err != nil {
			return Value{}, errors.New("integer " + text + " out of the uint64 range")
		}
		if u <= math.MaxInt64 {
			return Int(int64(u)), nil
		}
		return Uint(u), nil
	}
	return Value{}, errors.New("want a number, boolean, string or null, got " + string(raw))
}
