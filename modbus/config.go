package modbus

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/redact"
)

// Ranges of the numeric settings, enforced by the Validate methods (and so
// by NewClient and NewDevice). A zero duration means "the default" wherever
// a default is given.
const (
	MinTimeout    = time.Millisecond // ClientConfig.Timeout: 1ms to 10m; default 1s (500ms for rtu)
	MaxTimeout    = 10 * time.Minute
	MinBackoffMin = time.Millisecond // MinBackoff and MaxBackoff: 1ms to 24h, MinBackoff <= MaxBackoff
	MaxBackoffMax = 24 * time.Hour
	MaxLateWait   = time.Hour             // ClientConfig.LateReplyWait: 1ms to 1h; default 3 × Timeout
	MaxInterChar  = time.Minute           // ClientConfig.InterCharTimeout: 1ms to 1m; default 1s (ASCII only)
	MinInterval   = 10 * time.Millisecond // DeviceConfig.Interval and Point.Interval: 10ms to 24h; default 1s
	MaxInterval   = 24 * time.Hour
	MaxBusyTries  = 10               // DeviceConfig.MaxBusyRetries: -1 (none) to 10; default 3
	MaxBusyDelay  = 10 * time.Second // DeviceConfig.BusyRetryDelay: 1ms to 10s; default 20ms
)

// StandardBaudRates are the serial speeds a Client accepts: the rates the
// serial layer (github.com/goburrow/serial, POSIX termios B-constants) can
// set. A speed outside this list (96000, 12345) would fail when the port
// opens, so it is refused up front.
var StandardBaudRates = []int{50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200,
	38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000,
	2500000, 3000000, 3500000, 4000000}

func fieldErr(path, format string, args ...any) *bridge.FieldError {
	return &bridge.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

func durationRange(errs *[]error, path string, d, lo, hi time.Duration) {
	if d != 0 && (d < lo || d > hi) {
		*errs = append(*errs, fieldErr(path, "%v is outside %v to %v", d, lo, hi))
	}
}

// Validate checks c and returns every problem at once, each a
// *[bridge.FieldError] whose Path is the setting's YAML key ("url",
// "timeout", "speed", "cert_file"). The ranges:
//
//   - url: required; see [ParseURL]; no user information (Modbus has none,
//     and a password would be printed). Errors print the URL redacted.
//   - speed: 0 (the URL's, or 19200) or one of [StandardBaudRates];
//     parity none, even or odd; data_bits 5 to 8; stop_bits 1 or 2. On
//     ascii and asciiovertcp data_bits default to 7 and the character is
//     7E1, 7O1 or 7N2 (Modbus over Serial Line V1.02, 2.5.2), or has 8
//     data bits.
//   - timeout: 0 (default 1s, 500ms for rtu) or [MinTimeout] to [MaxTimeout].
//   - min_backoff, max_backoff: 0 (defaults 100ms and 30s) or 1ms to 24h,
//     and min_backoff not above max_backoff (after defaults).
//   - late_reply_wait: 0 (default 3 × timeout) or 1ms to 1h.
//   - inter_char_timeout: ascii and asciiovertcp only; 0 (default 1s, the
//     Serial Line specification's, 2.5.2.1) or 1ms to [MaxInterChar].
//   - cert_file, key_file, ca_file: for tcp+tls, which requires a client
//     certificate and the CA (Modbus/TCP Security R-08); readable PEM.
func (c ClientConfig) Validate() error {
	_, _, _, err := c.prepare()
	return err
}

// prepare validates c and returns the endpoint and TLS material it makes.
func (c ClientConfig) prepare() (Endpoint, *tls.Certificate, *x509.CertPool, error) {
	var errs []error
	ep, err := c.endpoint()
	if err != nil {
		errs = append(errs, err)
	}
	durationRange(&errs, "timeout", c.Timeout, MinTimeout, MaxTimeout)
	if c.Timeout < 0 {
		errs = append(errs, fieldErr("timeout", "%v is negative", c.Timeout))
	}
	durationRange(&errs, "min_backoff", c.MinBackoff, MinBackoffMin, MaxBackoffMax)
	durationRange(&errs, "max_backoff", c.MaxBackoff, MinBackoffMin, MaxBackoffMax)
	if c.MinBackoff < 0 || c.MaxBackoff < 0 {
		errs = append(errs, fieldErr("min_backoff", "backoffs must not be negative"))
	}
	minB, maxB := cmpOr(c.MinBackoff, DefaultMinBackoff), cmpOr(c.MaxBackoff, DefaultMaxBackoff)
	if minB > maxB {
		errs = append(errs, &bridge.FieldError{Path: "min_backoff",
			Msg: fmt.Sprintf("%v is above max_backoff %v", minB, maxB), Hint: "min_backoff must not exceed max_backoff"})
	}
	durationRange(&errs, "late_reply_wait", c.LateReplyWait, time.Millisecond, MaxLateWait)
	if c.LateReplyWait < 0 {
		errs = append(errs, fieldErr("late_reply_wait", "%v is negative", c.LateReplyWait))
	}
	durationRange(&errs, "inter_char_timeout", c.InterCharTimeout, time.Millisecond, MaxInterChar)
	if c.InterCharTimeout < 0 {
		errs = append(errs, fieldErr("inter_char_timeout", "%v is negative", c.InterCharTimeout))
	}
	if err == nil && c.InterCharTimeout != 0 && !ep.ASCIIFramed() {
		errs = append(errs, fieldErr("inter_char_timeout", "applies to ascii and asciiovertcp only, not %s", ep.Scheme))
	}
	cert, cas := c.TLSCertificate, c.TLSRootCAs
	if err == nil && ep.Scheme != SchemeTLS {
		for path, v := range map[string]string{"cert_file": c.TLSCertFile, "key_file": c.TLSKeyFile, "ca_file": c.TLSCAFile} {
			if v != "" {
				errs = append(errs, fieldErr(path, "applies to tcp+tls only, not %s", ep.Scheme))
			}
		}
	}
	if err == nil && ep.Scheme == SchemeTLS {
		if cert == nil && c.TLSCertFile != "" {
			if c.TLSKeyFile == "" {
				errs = append(errs, fieldErr("key_file", "required with cert_file: the client certificate's private key"))
			} else if kp, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile); err != nil {
				errs = append(errs, fieldErr("cert_file", "%v", err))
			} else {
				cert = &kp
			}
		}
		if cas == nil && c.TLSCAFile != "" {
			pem, err := os.ReadFile(c.TLSCAFile)
			if err != nil {
				errs = append(errs, fieldErr("ca_file", "%v", err))
			} else {
				cas = x509.NewCertPool()
				if !cas.AppendCertsFromPEM(pem) {
					errs = append(errs, fieldErr("ca_file", "%s holds no PEM certificate", c.TLSCAFile))
				}
			}
		}
		if cert == nil && c.TLSCertFile == "" {
			errs = append(errs, fieldErr("cert_file", "tcp+tls needs a client certificate and key (Modbus/TCP Security R-08)"))
		}
		if cas == nil && c.TLSCAFile == "" {
			errs = append(errs, fieldErr("ca_file", "tcp+tls needs the CA or server certificate that authenticates the server"))
		}
	}
	return ep, cert, cas, errors.Join(errs...)
}

func cmpOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Default backoffs of ClientConfig.
const (
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
)

// endpoint parses the URL and applies the serial settings, checking them.
func (c ClientConfig) endpoint() (Endpoint, error) {
	if c.URL == "" {
		return Endpoint{}, &bridge.FieldError{Path: "url", Msg: "required",
			Hint: "tcp://host:502, rtu:///dev/ttyUSB0, rtuovertcp://host:4001, udp://host:502 or tcp+tls://host:802"}
	}
	ep, err := ParseURL(c.URL)
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			return ep, &bridge.FieldError{Path: ce.Field, Msg: trimPrefix(ce.Err.Error())}
		}
		return ep, fieldErr("url", "%v", err)
	}
	var errs []error
	if c.Speed != 0 {
		ep.Speed = c.Speed
	}
	if c.Parity != "" {
		ep.Parity = c.Parity
		if c.StopBits == 0 && ep.Parity == ParityNone {
			ep.StopBits = 2
		} else if c.StopBits == 0 {
			ep.StopBits = 1
		}
	}
	if c.DataBits != 0 {
		ep.DataBits = c.DataBits
	}
	if c.StopBits != 0 {
		ep.StopBits = c.StopBits
	}
	// A setting's error names its key; one that came from the URL's query
	// names the url.
	key := func(k string, set bool) string {
		if set {
			return k
		}
		return "url"
	}
	if !slices.Contains(StandardBaudRates, ep.Speed) {
		errs = append(errs, &bridge.FieldError{Path: key("speed", c.Speed != 0),
			Msg:  fmt.Sprintf("%d baud is not a rate the serial port can be set to", ep.Speed),
			Hint: "standard rates: 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200 (all: modbus.StandardBaudRates)"})
	}
	if ep.DataBits < 5 || ep.DataBits > 8 {
		errs = append(errs, fieldErr(key("data_bits", c.DataBits != 0), "%d is not 5 to 8", ep.DataBits))
	}
	if ep.StopBits != 1 && ep.StopBits != 2 {
		errs = append(errs, fieldErr(key("stop_bits", c.StopBits != 0), "%d is not 1 or 2", ep.StopBits))
	}
	switch ep.Parity {
	case ParityNone, ParityEven, ParityOdd:
	default:
		errs = append(errs, fieldErr(key("parity", c.Parity != ""), "%q is not none, even or odd", ep.Parity))
	}
	if len(errs) == 0 {
		if field, msg := ep.asciiFormat(); msg != "" {
			set := map[string]bool{"data_bits": c.DataBits != 0, "stop_bits": c.StopBits != 0}[field]
			errs = append(errs, &bridge.FieldError{Path: key(field, set), Msg: msg,
				Hint: "ASCII lines are 7E1 (the default), 7O1 or 7N2; or 8 data bits"})
		}
	}
	return ep, errors.Join(errs...)
}

// Validate checks the device's settings, its connection (under "modbus",
// unless Bus is set), its limits and points, and returns every problem at
// once, each a *[bridge.FieldError] with a path in YAML keys relative to
// the DeviceConfig: "name", "unit", "interval", "modbus.timeout",
// "points[3].address", "limits.max_registers", and "profile.points[2].type"
// for a point of the Profile. The ranges:
//
//   - name: required.
//   - unit: 0 to 255 on Modbus TCP, UDP and TLS, where 0 is a valid unit id
//     (many TCP devices answer it, and gateways use it for themselves); 1 to
//     247 on serial-line links (rtu, rtuovertcp, rtuoverudp, ascii,
//     asciiovertcp), where 0 is the
//     broadcast address, which no device answers, and 248-255 are reserved
//     (Modbus over Serial Line V1.02, 2.2).
//   - interval: 0 (default 1s) or [MinInterval] to [MaxInterval]; a point's
//     interval likewise.
//   - max_busy_retries: -1 (no retries) to [MaxBusyTries]; 0 means 3.
//   - busy_retry_delay: 0 (default 20ms) or 1ms to [MaxBusyDelay].
//   - points and limits: see [ValidatePoints].
func (c DeviceConfig) Validate() error {
	_, errs := c.validate()
	return errors.Join(errs...)
}

// validate returns the device's endpoint (when it has a usable one) and
// the problems.
func (c DeviceConfig) validate() (ep Endpoint, errs []error) {
	if c.Name == "" {
		errs = append(errs, fieldErr("name", "required: the device's name, the Source of its samples"))
	}
	durationRange(&errs, "interval", c.Interval, MinInterval, MaxInterval)
	if c.Interval < 0 {
		errs = append(errs, fieldErr("interval", "%v is negative", c.Interval))
	}
	if c.MaxBusyRetries < -1 || c.MaxBusyRetries > MaxBusyTries {
		errs = append(errs, fieldErr("max_busy_retries", "%d is outside -1 (none) to %d", c.MaxBusyRetries, MaxBusyTries))
	}
	durationRange(&errs, "busy_retry_delay", c.BusyRetryDelay, time.Millisecond, MaxBusyDelay)
	if c.BusyRetryDelay < 0 {
		errs = append(errs, fieldErr("busy_retry_delay", "%v is negative", c.BusyRetryDelay))
	}
	epOK := false
	if c.Bus != nil {
		ep, epOK = c.Bus.c.ep, true
	} else {
		var err error
		ep, _, _, err = c.Conn.prepare()
		if err != nil {
			errs = append(errs, bridge.PrefixFields("modbus", err))
		}
		epOK = err == nil || ep.Scheme != ""
	}
	if epOK && ep.SerialFramed() {
		kind := "an RTU"
		if ep.ASCIIFramed() {
			kind = "an ASCII"
		}
		switch {
		case c.Unit == 0:
			errs = append(errs, &bridge.FieldError{Path: "unit",
				Msg:  fmt.Sprintf("0 is the broadcast address on %s link (%s): no device answers it", kind, ep.Scheme),
				Hint: "give the device's own unit id, 1 to 247"})
		case c.Unit > 247:
			errs = append(errs, fieldErr("unit", "%d is reserved on %s link (Serial Line V1.02, 2.2: 1 to 247)", c.Unit, kind))
		}
	}
	limits := c.Limits
	nprof := 0
	var points []Point
	if c.Profile != nil {
		limits = c.Profile.Limits
		points = append(points, c.Profile.Points...)
		nprof = len(points)
	}
	points = append(points, c.Points...)
	if len(points) == 0 {
		errs = append(errs, fieldErr("points", "the device has no points: give a profile or points"))
		return ep, errs
	}
	limitsPath := "limits"
	if c.Profile != nil {
		limitsPath = "profile.limits"
	}
	for _, fe := range fieldErrorsOf(ValidatePoints(points, limits)) {
		var path string
		switch {
		case fe.Index < 0:
			path = limitsPath + strings.TrimPrefix(fe.Field, "limits")
		case fe.Index < nprof:
			path = fmt.Sprintf("profile.points[%d].%s", fe.Index, fe.Field)
		default:
			path = fmt.Sprintf("points[%d].%s", fe.Index-nprof, fe.Field)
		}
		errs = append(errs, &bridge.FieldError{Path: path, Msg: fe.Msg, Hint: fe.Hint})
	}
	return ep, errs
}

// fieldErrorsOf returns the *FieldError values of a ValidatePoints error.
func fieldErrorsOf(err error) []*FieldError {
	var out []*FieldError
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, fieldErrorsOf(e)...)
		}
		return out
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return []*FieldError{fe}
	}
	return []*FieldError{{Index: -1, Msg: err.Error()}}
}

// Validate checks one point on its own (not against other points or a
// device's limits; [ValidatePoints] does that) and returns every problem,
// each a *[bridge.FieldError] with the field's YAML key as Path.
func (p Point) Validate() error {
	var errs []error
	for _, fe := range fieldErrorsOf(ValidatePoints([]Point{p}, Limits{})) {
		errs = append(errs, &bridge.FieldError{Path: fe.Field, Msg: fe.Msg, Hint: fe.Hint})
	}
	return errors.Join(errs...)
}

// Validate checks the limits (see [ValidatePoints]) and returns every
// problem, each a *[bridge.FieldError] with a path relative to the limits:
// "max_registers", "forbidden[1].last".
func (l Limits) Validate() error {
	var errs []error
	for _, fe := range fieldErrorsOf(ValidatePoints(nil, l)) {
		errs = append(errs, &bridge.FieldError{Path: strings.TrimPrefix(fe.Field, "limits."), Msg: fe.Msg, Hint: fe.Hint})
	}
	return errors.Join(errs...)
}

// modiconHint returns a hint for an address that looks like a Modicon
// register number (4xxxx holding, 3xxxx input, 1xxxx discrete; the
// convention counts from 1 and puts the table in the first digit), or "".
func modiconHint(t Table, addr uint16) string {
	base := map[Table]int{Holding: 40001, Input: 30001, Discrete: 10001}[t]
	if base == 0 || int(addr) < base || int(addr) > base+9998 {
		return ""
	}
	return fmt.Sprintf("%d looks like a Modicon register number: %s register %d is protocol address %d (address: %d)",
		addr, t, addr, int(addr)-base, int(addr)-base)
}

// redactedURL returns s with any password and query values hidden, for
// messages.
func redactedURL(s string) string { return redact.URL(s) }

// UnmarshalText accepts a table name: holding, input, coil, discrete, in
// any case, and as documented aliases the spellings of Telegraf's modbus
// input and of other tools: holding_registers, holding_register,
// input_registers, input_register, coils, discrete_inputs, discrete_input.
func (t *Table) UnmarshalText(b []byte) error {
	s := strings.ToLower(strings.TrimSpace(string(b)))
	switch s {
	case "holding", "holding_registers", "holding_register":
		*t = Holding
	case "input", "input_registers", "input_register":
		*t = Input
	case "coil", "coils":
		*t = Coil
	case "discrete", "discrete_inputs", "discrete_input":
		*t = Discrete
	default:
		return &bridge.FieldError{Msg: fmt.Sprintf("unknown table %q", string(b)),
			Hint: "want holding, input, coil or discrete"}
	}
	return nil
}

// UnmarshalText accepts a type name in any case (bool, int16, uint16,
// int32, uint32, int64, uint64, float32, float64, string) and, as
// documented aliases, Telegraf's IEEE float names FLOAT32-IEEE and
// FLOAT64-IEEE, and BIT for bool. Telegraf's fixed-point types (FIXED,
// UFIXED, and its legacy FLOAT32) are refused with the keys to write.
func (t *Type) UnmarshalText(b []byte) error {
	s := strings.ToLower(strings.TrimSpace(string(b)))
	switch s {
	case "float32-ieee":
		*t = Float32
		return nil
	case "float64-ieee":
		*t = Float64
		return nil
	case "bit", "boolean":
		*t = Bool
		return nil
	case "fixed", "ufixed":
		return &bridge.FieldError{Msg: fmt.Sprintf("%q is Telegraf's fixed-point type", string(b)),
			Hint: "write the register type (int16, uint16, int32 ...) and scale: e.g. type: int16, scale: 0.1"}
	}
	if string(b) == "FLOAT32" {
		return &bridge.FieldError{Msg: `"FLOAT32" is ambiguous (Telegraf's legacy fixed-point type)`,
			Hint: "write type: float32 for an IEEE float, or an integer type with scale for fixed point"}
	}
	if v := Type(s); v.Valid() {
		*t = v
		return nil
	}
	return &bridge.FieldError{Msg: fmt.Sprintf("unknown type %q", string(b)),
		Hint: "want bool, int16, uint16, int32, uint32, int64, uint64, float32, float64 or string"}
}

// telegrafOrder maps Telegraf's byte_order spellings to word and byte order.
var telegrafOrder = map[string][2]string{
	"AB": {"", "big"}, "BA": {"", "little"},
	"ABCD": {"high_first", "big"}, "CDAB": {"low_first", "big"},
	"BADC": {"high_first", "little"}, "DCBA": {"low_first", "little"},
	"ABCDEFGH": {"high_first", "big"}, "GHEFCDAB": {"low_first", "big"},
	"BADCFEHG": {"high_first", "little"}, "HGFEDCBA": {"low_first", "little"},
}

func orderHint(s string) string {
	o := telegrafOrder[strings.ToUpper(s)]
	if o[0] == "" {
		return "write byte_order: " + o[1]
	}
	return "write word_order: " + o[0] + " and byte_order: " + o[1]
}

// UnmarshalText accepts high_first or low_first (any case; also big and
// little as their synonyms). Telegraf's combined spellings (ABCD, CDAB,
// BADC, DCBA) set two keys at once and are refused with the two keys to
// write.
func (o *WordOrder) UnmarshalText(b []byte) error {
	s := strings.ToLower(strings.TrimSpace(string(b)))
	switch s {
	case "high_first", "big":
		*o = HighFirst
	case "low_first", "little":
		*o = LowFirst
	default:
		if _, ok := telegrafOrder[strings.ToUpper(s)]; ok {
			return &bridge.FieldError{Msg: fmt.Sprintf("%q is Telegraf's byte_order spelling", string(b)), Hint: orderHint(s)}
		}
		return &bridge.FieldError{Msg: fmt.Sprintf("unknown word order %q", string(b)), Hint: "want high_first or low_first"}
	}
	return nil
}

// UnmarshalText accepts big or little (any case). Telegraf's spellings
// (AB, BA, ABCD, CDAB, BADC, DCBA and the 64-bit ones) are refused with the
// keys to write: they say the word order too.
func (o *ByteOrder) UnmarshalText(b []byte) error {
	s := strings.ToLower(strings.TrimSpace(string(b)))
	switch s {
	case "big":
		*o = BigEndian
	case "little":
		*o = LittleEndian
	default:
		if _, ok := telegrafOrder[strings.ToUpper(s)]; ok {
			return &bridge.FieldError{Msg: fmt.Sprintf("%q is Telegraf's byte_order spelling", string(b)), Hint: orderHint(s)}
		}
		return &bridge.FieldError{Msg: fmt.Sprintf("unknown byte order %q", string(b)), Hint: "want big or little"}
	}
	return nil
}

// UnmarshalText accepts none, even or odd, or their initials N, E, O.
func (p *Parity) UnmarshalText(b []byte) error {
	v, err := ParseParity(string(b))
	if err != nil {
		return &bridge.FieldError{Msg: fmt.Sprintf("%q is not none, even or odd", string(b))}
	}
	*p = v
	return nil
}
