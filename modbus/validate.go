package modbus

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// FieldError is one problem [Profile.Validate] or [LoadProfile] found: which
// point (by index and name) or which part of the limits, which field (its
// YAML key), and what is wrong. Where the profile came from a file, File and
// Line say where the field is.
type FieldError struct {
	File  string // the profile's source, when loaded; "" otherwise
	Line  int    // 1-based line of the field in File; 0 when unknown
	Index int    // index of the point in Profile.Points; -1 for the profile or its limits
	Point string // name of the point, when Index >= 0
	Field string // YAML key: "address", "bit", "limits.max_registers", "limits.forbidden[1].first"
	Msg   string // what is wrong
	Hint  string // optional: what to write instead
}

// Error formats e as "file:line: point 3 "voltage_l1": address: msg".
func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString("modbus: ")
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Index >= 0 {
		fmt.Fprintf(&b, "point %d %q: ", e.Index, e.Point)
	}
	b.WriteString(e.Field)
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString(" (" + e.Hint + ")")
	}
	return b.String()
}

// As lets [bridge.FieldErrors] (and errors.As with a **bridge.FieldError)
// read e as a bridge field error whose Path is relative to the profile:
// "points[3].address", "limits.max_registers".
func (e *FieldError) As(target any) bool {
	t, ok := target.(**bridge.FieldError)
	if !ok {
		return false
	}
	path := e.Field
	if e.Index >= 0 {
		path = bridge.JoinPath(fmt.Sprintf("points[%d]", e.Index), e.Field)
	}
	*t = &bridge.FieldError{Path: path, Msg: e.Msg, Hint: e.Hint}
	return true
}

// Validate checks the profile's limits and points and returns every problem
// at once (joined with errors.Join, each a *[FieldError]), or nil. See
// [ValidatePoints] for what is checked.
func (p *Profile) Validate() error {
	if p == nil {
		return errors.New("modbus: nil profile")
	}
	return ValidatePoints(p.Points, p.Limits)
}

// ValidatePoints checks points and the device limits they are read under,
// returning every problem at once (errors.Join of *[FieldError]), or nil. It
// is what [Profile.Validate] runs; use it on a profile's points merged with
// more points.
//
// Limits: max_registers 0 to 125 and max_bits 0 to 2000 (0 means those
// defaults); every forbidden range of a known table with first <= last.
//
// Each point: a name, unique; a known table and type; known word and byte
// orders; a coil or discrete point is bool, without bit; a bit (0-15) only on
// a bool of a register table; a string has a length and is read in address
// order (no low_first word order); only a string has a length; scale finite
// and not negative (0 means 1), offset finite, and neither on a bool or
// string; interval 0 (the device's) or 10ms to 24h ([MinInterval],
// [MaxInterval]); a string's length 1 to 125; the registers fit below 65536 and within one request; no
// register in a forbidden range; no register shared with another point,
// except that bit points may share a register with each other (on different
// bits) and with the point that reads that whole register.
//
// Writes: writable only in the holding and coil tables (input registers and
// discrete inputs are read-only in Modbus); min, max and allowed only on a
// writable number (not a bool or string), finite, min <= max, both within
// what the type holds after scale and offset, and every allowed value one
// the point can hold (integral in raw units, in range, within min and max).
func ValidatePoints(points []Point, limits Limits) error {
	var errs []error
	limitErr := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Index: -1, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if limits.MaxRegisters > DefaultMaxRegisters {
		limitErr("limits.max_registers", "%d outside the protocol's 1-%d", limits.MaxRegisters, DefaultMaxRegisters)
	}
	if limits.MaxBits > DefaultMaxBits {
		limitErr("limits.max_bits", "%d outside the protocol's 1-%d", limits.MaxBits, DefaultMaxBits)
	}
	for k, r := range limits.Forbidden {
		f := fmt.Sprintf("limits.forbidden[%d]", k)
		if !r.Table.Valid() {
			limitErr(f+".table", "%s", tableMsg(r.Table))
		}
		if r.First > r.Last {
			limitErr(f+".last", "%d is below first %d", r.Last, r.First)
		}
	}

	names := make(map[string]int, len(points))
	for i, p := range points {
		pointErr := func(field, format string, args ...any) {
			fe := &FieldError{Index: i, Point: p.Name, Field: field, Msg: fmt.Sprintf(format, args...)}
			if field == "address" {
				fe.Hint = modiconHint(p.Table, p.Address)
			}
			errs = append(errs, fe)
		}
		if p.Name == "" {
			pointErr("name", "missing")
		} else if j, dup := names[p.Name]; dup {
			pointErr("name", "duplicate of point %d", j)
		} else {
			names[p.Name] = i
		}
		tableOK, typeOK := p.Table.Valid(), p.Type.Valid()
		if !tableOK {
			pointErr("table", "%s", tableMsg(p.Table))
		}
		switch {
		case p.Type == "":
			pointErr("type", "missing")
		case !typeOK:
			pointErr("type", "unknown type %q (want bool, int16, uint16, int32, uint32, int64, uint64, float32, float64 or string)", p.Type)
		}
		switch p.WordOrder {
		case "", HighFirst, LowFirst:
		default:
			pointErr("word_order", "unknown word order %q (want high_first or low_first)", p.WordOrder)
		}
		switch p.ByteOrder {
		case "", BigEndian, LittleEndian:
		default:
			pointErr("byte_order", "unknown byte order %q (want big or little)", p.ByteOrder)
		}
		if p.Table.IsBits() && typeOK && p.Type != Bool {
			pointErr("type", "a %s table holds single bits: type must be bool, not %s", p.Table, p.Type)
		}
		if p.Bit != nil {
			switch {
			case p.Table.IsBits():
				pointErr("bit", "a %s table has no bits within registers", p.Table)
			case typeOK && p.Type != Bool:
				pointErr("bit", "only a bool point reads a bit, not %s", p.Type)
			case *p.Bit > 15:
				pointErr("bit", "%d outside 0-15", *p.Bit)
			}
		}
		if p.Type == String {
			if p.Length == 0 {
				pointErr("length", "a string needs its length in registers")
			}
			if p.WordOrder == LowFirst {
				pointErr("word_order", "a string is read in address order; low_first does not apply")
			}
		} else if p.Length != 0 {
			pointErr("length", "only a string point takes a length")
		}
		switch {
		case math.IsNaN(p.Scale) || math.IsInf(p.Scale, 0):
			pointErr("scale", "%g is not a finite number", p.Scale)
		case p.Scale < 0:
			pointErr("scale", "%g is negative (give the value's sign with a signed type)", p.Scale)
		}
		if math.IsNaN(p.Offset) || math.IsInf(p.Offset, 0) {
			pointErr("offset", "%g is not a finite number", p.Offset)
		}
		if (p.Type == Bool || p.Type == String) && p.scaled() {
			field := "scale"
			if p.Scale == 0 || p.Scale == 1 {
				field = "offset"
			}
			pointErr(field, "a %s point cannot be scaled", p.Type)
		}
		switch {
		case p.Interval < 0:
			pointErr("interval", "%s is negative", p.Interval)
		case p.Interval != 0 && (p.Interval < MinInterval || p.Interval > MaxInterval):
			pointErr("interval", "%v is outside %v to %v", p.Interval, MinInterval, MaxInterval)
		}
		if p.Type == String && p.Length > DefaultMaxRegisters {
			pointErr("length", "%d registers is more than one read can carry (at most %d)", p.Length, DefaultMaxRegisters)
		}
		p.validateWrites(pointErr, tableOK && typeOK)
		if !tableOK || !typeOK {
			continue
		}
		n := p.Registers()
		if n == 0 {
			continue
		}
		if int(p.Address)+int(n)-1 > math.MaxUint16 {
			pointErr("address", "%d + %d registers runs past 65535", p.Address, n)
			continue
		}
		if max := limits.Max(p.Table); n > max && max != 0 {
			pointErr("length", "%d registers do not fit one request (at most %d)", n, max)
		}
		last := p.Address + n - 1
		for k, r := range limits.Forbidden {
			if r.Overlaps(p.Table, p.Address, last) {
				pointErr("address", "reads forbidden range %s (limits.forbidden[%d])", r, k)
			}
		}
	}
	errs = append(errs, validateScaleFactors(points, limits)...)
	errs = append(errs, overlaps(points)...)
	return errors.Join(errs...)
}

func tableMsg(t Table) string {
	if t == "" {
		return "missing"
	}
	return fmt.Sprintf("unknown table %q (want holding, input, coil or discrete)", t)
}

// overlaps reports points that share registers (or bits) they may not share.
func overlaps(points []Point) []error {
	type span struct {
		i           int
		first, last int
	}
	var spans []span
	type bitKey struct {
		table Table
		addr  uint16
		bit   uint8
	}
	var errs []error
	bitsSeen := make(map[bitKey]int)
	for i, p := range points {
		n := int(p.Registers())
		if !p.Table.Valid() || !p.Type.Valid() || n == 0 || int(p.Address)+n-1 > math.MaxUint16 {
			continue
		}
		if p.IsBitPoint() {
			k := bitKey{p.Table, p.Address, *p.Bit}
			if j, dup := bitsSeen[k]; dup {
				errs = append(errs, &FieldError{Index: i, Point: p.Name, Field: "bit",
					Msg: fmt.Sprintf("bit %d of %s %d is already read by point %d %q", *p.Bit, p.Table, p.Address, j, points[j].Name)})
			} else {
				bitsSeen[k] = i
			}
			continue
		}
		spans = append(spans, span{i, int(p.Address), int(p.Address) + n - 1})
	}
	slices.SortStableFunc(spans, func(a, b span) int {
		if c := cmp.Compare(points[a.i].Table, points[b.i].Table); c != 0 {
			return c
		}
		return cmp.Compare(a.first, b.first)
	})
	// Sweep: active holds the earlier spans of the table that reach at least
	// the current span's first register.
	var active []span
	for k, cur := range spans {
		if k > 0 && points[spans[k-1].i].Table != points[cur.i].Table {
			active = active[:0]
		}
		active = slices.DeleteFunc(active, func(s span) bool { return s.last < cur.first })
		for _, prev := range active {
			a, b := cur, prev // report on the later point, naming the earlier
			if a.i < b.i {
				a, b = b, a
			}
			p := points[a.i]
			errs = append(errs, &FieldError{Index: a.i, Point: p.Name, Field: "address",
				Msg: fmt.Sprintf("%s registers %d-%d overlap point %d %q (%d-%d)", p.Table,
					a.first, a.last, b.i, points[b.i].Name, b.first, b.last), Hint: modiconHint(p.Table, p.Address)})
		}
		active = append(active, cur)
	}
	return errs
}

// validateWrites checks writable, min, max and allowed, reporting through
// pointErr. typed says the table and type are known (the range checks
// need them).
func (p Point) validateWrites(pointErr func(field, format string, args ...any), typed bool) {
	if p.Writable && p.Table.Valid() && !p.Table.Writable() {
		pointErr("writable", "the %s table is read-only in Modbus; only holding registers and coils can be written", p.Table)
	}
	bounds := p.Min != nil || p.Max != nil || len(p.Allowed) > 0
	if !bounds {
		return
	}
	field := "min"
	if p.Min == nil {
		field = "max"
		if p.Max == nil {
			field = "allowed"
		}
	}
	switch {
	case !p.Writable:
		pointErr(field, "only a writable point takes min, max or allowed (set writable: true, or drop %s)", field)
		return
	case p.Type == Bool || p.Type == String || p.Table.IsBits():
		pointErr(field, "a %s point takes no min, max or allowed", cmp.Or(p.Type, Bool))
		return
	}
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	ok := true
	if p.Min != nil && !finite(*p.Min) {
		pointErr("min", "%g is not a finite number", *p.Min)
		ok = false
	}
	if p.Max != nil && !finite(*p.Max) {
		pointErr("max", "%g is not a finite number", *p.Max)
		ok = false
	}
	if ok && p.Min != nil && p.Max != nil && *p.Min > *p.Max {
		pointErr("max", "%g is below min %g", *p.Max, *p.Min)
	}
	if !typed || !finite(p.Scale) || p.Scale < 0 || !finite(p.Offset) {
		return // the type's range is unknown; its own error says why
	}
	lo, hi, bounded := p.engRange()
	if bounded {
		if p.Min != nil && finite(*p.Min) && (*p.Min < lo || *p.Min > hi) {
			pointErr("min", "%g is outside %g to %g, what %s holds", *p.Min, lo, hi, p.typeDesc())
		}
		if p.Max != nil && finite(*p.Max) && (*p.Max < lo || *p.Max > hi) {
			pointErr("max", "%g is outside %g to %g, what %s holds", *p.Max, lo, hi, p.typeDesc())
		}
	}
	for k, a := range p.Allowed {
		if err := p.checkNumber(bridge.Float(a)); err != nil {
			var re *RefusalError
			msg := err.Error()
			if errors.As(err, &re) {
				msg = re.Msg
			}
			pointErr(fmt.Sprintf("allowed[%d]", k), "%s", msg)
		}
	}
}
