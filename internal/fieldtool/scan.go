package fieldtool

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/m2mbridge/m2mbridge/modbus"
)

// Register is what a scan reads to see whether a unit is there.
type Register struct {
	Table   modbus.Table
	Address uint16
}

// String is the register as the tool names points: "holding:0".
func (r Register) String() string { return PointName(r.Table, r.Address) }

// ParseRegister reads "holding:0", "input:100", "coil:3", "discrete:0" or
// a Modicon number ("40001").
func ParseRegister(s string) (Register, error) {
	if t, a, ok := strings.Cut(s, ":"); ok {
		var r Register
		if err := r.Table.UnmarshalText([]byte(t)); err != nil {
			return r, fmt.Errorf("register %q: %w", s, err)
		}
		n, err := strconv.ParseUint(a, 0, 16)
		if err != nil {
			return r, fmt.Errorf("register %q: address %q is not 0 to 65535", s, a)
		}
		r.Address = uint16(n)
		return r, nil
	}
	t, a, err := ParseModicon(s)
	if err != nil {
		return Register{}, fmt.Errorf("register %q: want table:address (holding:0) or %w", s, err)
	}
	return Register{Table: t, Address: a}, nil
}

// ParseUnits reads a list of unit ids and ranges: "1-247", "1,2,10-20".
func ParseUnits(s string) ([]uint8, error) {
	var out []uint8
	seen := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(strings.TrimSpace(hi))
		}
		if err1 != nil || err2 != nil || a < 0 || b > 255 || a > b {
			return nil, fmt.Errorf("units %q: %q is not a unit id (0-255) or a range of them (1-247)", s, part)
		}
		for u := a; u <= b; u++ {
			if !seen[u] {
				seen[u] = true
				out = append(out, uint8(u))
			}
		}
	}
	return out, nil
}

// ParseSpeeds reads a list of baud rates: "9600,19200".
func ParseSpeeds(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("speeds %q: %q is not a baud rate", s, part)
		}
		out = append(out, n)
	}
	return out, nil
}

// ParseParities reads a list of parities: "none,even,odd" (or N,E,O).
func ParseParities(s string) ([]modbus.Parity, error) {
	var out []modbus.Parity
	for _, part := range strings.Split(s, ",") {
		p, err := modbus.ParseParity(strings.TrimSpace(part))
		if err != nil || p == "" {
			return nil, fmt.Errorf("parity %q: %q is not none, even or odd", s, part)
		}
		out = append(out, p)
	}
	return out, nil
}

// ScanConfig says what [Scan] tries.
type ScanConfig struct {
	// URL is the link: rtu:///dev/ttyUSB0 or ascii:///dev/ttyUSB0 (each of
	// Speeds × Parities is tried), or tcp://, udp://, rtuovertcp:// ...
	// (unit ids behind a gateway; Speeds and Parities do not apply).
	URL      string
	Units    []uint8
	Speeds   []int           // serial line only; empty: the URL's
	Parities []modbus.Parity // serial line only; empty: the URL's
	// Register is read from each unit (one register, or one bit).
	Register Register
	// Timeout is how long each try waits for an answer.
	Timeout time.Duration
	// MaxTime bounds the whole scan; when it runs out, Scan returns what
	// it found with Complete false. Zero: no bound.
	MaxTime time.Duration
	// First stops after the first serial setting at which a unit answered
	// (the rest of that setting's units are still tried): on one bus every
	// device talks at the same settings.
	First bool
	// Progress, when set, is called before each try and once at the end.
	Progress func(Progress)
	// Found, when set, is called for each unit found, as it is found.
	Found func(Find)
}

// Setting is one serial line setting a scan tries; zero for a network link.
type Setting struct {
	Speed    int           `json:"speed,omitempty"`
	Parity   modbus.Parity `json:"parity,omitempty"`
	DataBits int           `json:"data_bits,omitempty"`
	StopBits int           `json:"stop_bits,omitempty"`
}

// String is "9600 8E1", or "" for a network link.
func (s Setting) String() string {
	if s.Speed == 0 {
		return ""
	}
	return fmt.Sprintf("%d %d%c%d", s.Speed, s.DataBits, strings.ToUpper(string(s.Parity))[0], s.StopBits)
}

// Find is a unit that answered.
type Find struct {
	Unit    uint8
	Setting Setting
	URL     string // the link with the setting: what read and the gateway's modbus.url take
	// Values is what the register read (registers, or a bit as 0/1); nil
	// when the unit answered with an exception.
	Values    []uint16
	Exception modbus.ExceptionCode // when it answered with an exception
	Latency   time.Duration
}

// Answer says what the unit answered: "holding:0 = 0x00E6" or
// "exception 2 (illegal data address)".
func (f Find) Answer(r Register) string {
	if f.Exception != 0 {
		return fmt.Sprintf("exception %d (%s)", f.Exception, f.Exception)
	}
	return r.String() + " = " + hexWords(f.Values)
}

// Hint is a serial setting at which replies came that did not decode: a
// sign of the right line at a wrong speed or parity (or of a timeout too
// short for a slow device), never a find.
type Hint struct {
	Setting Setting
	Garbled uint64 // replies (frames or stray bytes) thrown away
}

// Progress is where a scan is.
type Progress struct {
	Done, Total int
	Setting     Setting
	Unit        uint8
	Found       int
	Elapsed     time.Duration
}

// ScanResult is what [Scan] found.
type ScanResult struct {
	Finds    []Find
	Hints    []Hint
	Tries    int
	Total    int
	Complete bool // every try was made (false: MaxTime ran out, ctx ended, or First stopped it)
	Elapsed  time.Duration
}

// settings returns the serial settings to try (one zero Setting for a
// network link) and the endpoint of the URL.
func (c ScanConfig) settings() ([]Setting, modbus.Endpoint, error) {
	ep, err := modbus.ParseURL(c.URL)
	if err != nil {
		return nil, ep, err
	}
	if !SerialLine(ep) {
		if len(c.Speeds) > 0 || len(c.Parities) > 0 {
			return nil, ep, fmt.Errorf("-speeds and -parity apply to a serial line (rtu://, ascii://) only, not %s://", ep.Scheme)
		}
		return []Setting{{}}, ep, nil
	}
	speeds, parities := c.Speeds, c.Parities
	if len(speeds) == 0 {
		speeds = []int{ep.Speed}
	}
	if len(parities) == 0 {
		parities = []modbus.Parity{ep.Parity}
	}
	var out []Setting
	for _, sp := range speeds {
		for _, p := range parities {
			if err := (modbus.ClientConfig{URL: ep.Scheme + "://" + ep.Address, Speed: sp, Parity: p, DataBits: ep.DataBits}).Validate(); err != nil {
				return nil, ep, err
			}
			// The URL's stop bits with the URL's parity; else what the
			// serial line specification asks (V1.02 2.5.1): two without
			// parity, one with.
			stop := ep.StopBits
			if p != ep.Parity {
				stop = 1
				if p == modbus.ParityNone {
					stop = 2
				}
			}
			out = append(out, Setting{Speed: sp, Parity: p, DataBits: ep.DataBits, StopBits: stop})
		}
	}
	return out, ep, nil
}

// SerialLine reports whether ep is a serial line, whose speed and parity a
// scan tries: rtu:// or ascii://.
func SerialLine(ep modbus.Endpoint) bool {
	return ep.Scheme == modbus.SchemeRTU || ep.Scheme == modbus.SchemeASCII
}

// lateWait is how long after a timeout the link listens for the late reply
// before the next try: long enough for a reply already on its way, short
// enough not to double the scan.
func lateWait(timeout time.Duration) time.Duration { return max(timeout/4, time.Millisecond) }

// Check validates c and returns the number of tries and the worst-case
// duration: every try waiting its full timeout (and the late-reply wait
// and inter-frame silence after it on RTU framing).
func (c ScanConfig) Check() (tries int, worst time.Duration, err error) {
	sets, ep, err := c.settings()
	if err != nil {
		return 0, 0, &UsageError{err}
	}
	if len(c.Units) == 0 {
		return 0, 0, usagef("no unit ids to try")
	}
	if ep.SerialFramed() {
		for _, u := range c.Units {
			if u == 0 || u > 247 {
				return 0, 0, usagef("unit %d on %s://: serial unit ids are 1 to 247 (0 is broadcast, which no unit answers)", u, ep.Scheme)
			}
		}
	}
	if c.Timeout < modbus.MinTimeout || c.Timeout > modbus.MaxTimeout {
		return 0, 0, usagef("-timeout %v: want %v to %v", c.Timeout, modbus.MinTimeout, modbus.MaxTimeout)
	}
	if c.MaxTime < 0 {
		return 0, 0, usagef("-max-time %v is negative", c.MaxTime)
	}
	tries = len(sets) * len(c.Units)
	per := c.Timeout
	for _, s := range sets {
		if ep.SerialFramed() {
			e := ep
			if s.Speed != 0 {
				e.Speed, e.Parity, e.StopBits = s.Speed, s.Parity, s.StopBits
			}
			per = c.Timeout + lateWait(c.Timeout) + e.FrameSilence()
		}
		worst += time.Duration(len(c.Units)) * per
	}
	return tries, worst, nil
}

// Scan tries each unit id of cfg at each serial setting: it reads
// cfg.Register, and any answer — values or a Modbus exception — proves the
// unit is there. An exception 0x0A or 0x0B (gateway path unavailable,
// target device failed to respond) is the gateway's answer, not the
// unit's, and is no find. Replies that do not decode (bad CRC, a frame of
// another request) are no find either, but are reported as hints per
// setting. It uses the library's [modbus.Client] (one per setting), its
// URL parsing and timeouts.
//
// A link that cannot be opened at all (no such serial device, nothing
// listening) ends the scan with that error. When cfg.MaxTime runs out or
// ctx ends, Scan returns what it found so far with Complete false.
func Scan(ctx context.Context, cfg ScanConfig) (ScanResult, error) {
	var res ScanResult
	total, _, err := cfg.Check()
	if err != nil {
		return res, err
	}
	sets, ep, _ := cfg.settings()
	res.Total = total
	start := time.Now()
	if cfg.MaxTime > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.MaxTime)
		defer cancel()
	}
	progress := func(s Setting, u uint8) {
		if cfg.Progress != nil {
			cfg.Progress(Progress{Done: res.Tries, Total: total, Setting: s, Unit: u, Found: len(res.Finds), Elapsed: time.Since(start)})
		}
	}
	for _, s := range sets {
		cc := modbus.ClientConfig{URL: ep.Scheme + "://" + ep.Address, Timeout: cfg.Timeout, LateReplyWait: lateWait(cfg.Timeout)}
		url := cfg.URL
		if s.Speed != 0 {
			cc.Speed, cc.Parity, cc.DataBits, cc.StopBits = s.Speed, s.Parity, s.DataBits, s.StopBits
			e := ep
			e.Speed, e.Parity, e.DataBits, e.StopBits = s.Speed, s.Parity, s.DataBits, s.StopBits
			url = e.String()
		}
		c, err := modbus.NewClient(cc)
		if err != nil {
			return res, &UsageError{err}
		}
		found := len(res.Finds)
		err = scanUnits(ctx, c, cfg, s, url, &res, progress)
		garbled := c.Stats().Discarded
		c.Close()
		if garbled > 0 {
			res.Hints = append(res.Hints, Hint{Setting: s, Garbled: garbled})
		}
		if err != nil {
			res.Elapsed = time.Since(start)
			if ctx.Err() != nil {
				progress(s, 0)
				return res, nil // out of time: what was found stands
			}
			return res, err
		}
		if cfg.First && len(res.Finds) > found {
			break
		}
	}
	res.Complete = res.Tries == total
	res.Elapsed = time.Since(start)
	progress(Setting{}, 0)
	return res, nil
}

// scanUnits tries every unit at one setting over c.
func scanUnits(ctx context.Context, c *modbus.Client, cfg ScanConfig, s Setting, url string, res *ScanResult, progress func(Setting, uint8)) error {
	for _, u := range cfg.Units {
		progress(s, u)
		if err := ctx.Err(); err != nil {
			return err
		}
		t0 := time.Now()
		var vals []uint16
		var err error
		if cfg.Register.Table.IsBits() {
			var bits []bool
			bits, err = c.ReadBits(ctx, u, cfg.Register.Table, cfg.Register.Address, 1)
			for _, b := range bits {
				vals = append(vals, map[bool]uint16{false: 0, true: 1}[b])
			}
		} else {
			vals, err = c.ReadRegisters(ctx, u, cfg.Register.Table, cfg.Register.Address, 1)
		}
		lat := time.Since(t0)
		if ctx.Err() != nil {
			return ctx.Err() // the try was cut short: not counted
		}
		res.Tries++
		f := Find{Unit: u, Setting: s, URL: url, Latency: lat}
		var op *modbus.OpError
		switch code, isEx := modbus.ExceptionCodeOf(err); {
		case err == nil:
			f.Values = vals
		case isEx && code != modbus.GatewayPathUnavailable && code != modbus.GatewayTargetDeviceFailedToRespond:
			f.Exception = code
		case errors.As(err, &op) && op.Op == "connect":
			return fmt.Errorf("cannot open %s: %w", url, err)
		default:
			continue // silence, a garbled reply, or a gateway's "no such unit"
		}
		res.Finds = append(res.Finds, f)
		if cfg.Found != nil {
			cfg.Found(f)
		}
	}
	return nil
}
