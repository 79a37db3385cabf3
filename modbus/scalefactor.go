package modbus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// Scale factors and not-implemented values (Point.ScaleFactor,
// Point.NotImplemented): SunSpec devices, and others, scale a value by a
// power of ten held in another register that may change at run time
// (SunSpec Information Model Specification, "Scale factors"), and answer a
// fixed value for a point they do not implement. The planner reads a point
// with its factor in one request (planner.go); this file validates the
// settings, decodes and writes such points.

// ErrNotImplemented is the reason of a Bad sample for a point whose device
// answered its not-implemented value ([Point.NotImplemented]), when
// [DeviceConfig.ReportNotImplemented] asks for one.
var ErrNotImplemented = errors.New("modbus: not implemented")

// ErrScaleFactor is wrapped by the reason of a Bad sample whose scale
// factor reads its not-implemented value or is outside -10 to 10, and by a
// write refused for that reason.
var ErrScaleFactor = errors.New("modbus: scale factor not usable")

// maxScaleExp bounds a scale factor's exponent: SunSpec's sunssf is -10 to
// 10.
const maxScaleExp = 10

// Valid reports whether n is one of the not-implemented values (or "").
func (n NotImplemented) Valid() bool {
	switch n {
	case "", NotImplementedMin, NotImplementedMax, NotImplementedZero, NotImplementedNaN, NotImplementedEUI48:
		return true
	}
	return false
}

// fits reports whether the not-implemented value n applies to type t.
func (n NotImplemented) fits(t Type) bool {
	switch n {
	case NotImplementedMin:
		return t == Int16 || t == Int32 || t == Int64
	case NotImplementedMax:
		return t == Uint16 || t == Uint32 || t == Uint64
	case NotImplementedZero:
		return t == Int16 || t == Int32 || t == Int64 || t == Uint16 || t == Uint32 || t == Uint64 || t == String
	case NotImplementedNaN:
		return t == Float32 || t == Float64
	case NotImplementedEUI48:
		return t == Uint64
	}
	return true
}

// IsNotImplemented reports whether regs (the point's registers, as read)
// hold the point's not-implemented value. It is false for a point without
// one and for a wrong number of registers.
func (p *Point) IsNotImplemented(regs []uint16) bool {
	if p.NotImplemented == "" || len(regs) != int(p.Registers()) || len(regs) == 0 {
		return false
	}
	switch p.NotImplemented {
	case NotImplementedZero:
		for _, w := range regs {
			if w != 0 {
				return false
			}
		}
		return true
	case NotImplementedNaN:
		raw := p.raw(regs)
		if p.Type == Float32 {
			f := math.Float32frombits(uint32(raw))
			return f != f
		}
		return math.IsNaN(math.Float64frombits(raw))
	}
	raw := p.raw(regs)
	bits := 16 * len(regs)
	switch p.NotImplemented {
	case NotImplementedMin:
		return raw == 1<<(bits-1)
	case NotImplementedMax:
		return raw == math.MaxUint64>>(64-bits)
	case NotImplementedEUI48:
		return raw&(1<<48-1) == 1<<48-1
	}
	return false
}

// validateScaleFactors checks the points' scale factors and not-implemented
// values (see [ValidatePoints]).
func validateScaleFactors(points []Point, limits Limits) []error {
	var errs []error
	var names map[string]int
	for i := range points {
		p := &points[i]
		pointErr := func(field, format string, args ...any) {
			errs = append(errs, &FieldError{Index: i, Point: p.Name, Field: field, Msg: fmt.Sprintf(format, args...)})
		}
		if !p.NotImplemented.Valid() {
			pointErr("not_implemented", "unknown value %q (want min, max, zero, nan or eui48)", p.NotImplemented)
		} else if p.Type.Valid() && !p.NotImplemented.fits(p.Type) {
			pointErr("not_implemented", "%s does not apply to a %s point", p.NotImplemented, p.Type)
		}
		if p.ScaleFactor == "" {
			continue
		}
		if names == nil {
			names = make(map[string]int, len(points))
			for k := range points {
				if _, dup := names[points[k].Name]; !dup {
					names[points[k].Name] = k
				}
			}
		}
		j, ok := names[p.ScaleFactor]
		switch {
		case !ok:
			pointErr("scale_factor", "no point %q in the device", p.ScaleFactor)
			continue
		case j == i:
			pointErr("scale_factor", "a point cannot be its own scale factor")
			continue
		}
		f := &points[j]
		switch {
		case p.Table.IsBits() || p.Type == Bool || p.Type == String:
			pointErr("scale_factor", "a %s point cannot be scaled", p.Type)
		case f.Type != Int16 || f.Table != p.Table:
			pointErr("scale_factor", "%q is a %s %s point; a scale factor is an int16 in the point's table (%s)", f.Name, f.Table, f.Type, p.Table)
		case f.ScaleFactor != "":
			pointErr("scale_factor", "%q has a scale factor of its own", f.Name)
		case f.Interval != p.Interval:
			pointErr("scale_factor", "%q is polled every %v, the point every %v: they are read together, so the intervals must match", f.Name, f.Interval, p.Interval)
		default:
			lo, hi := min(int(p.Address), int(f.Address)), max(int(p.Address)+int(p.Registers()), int(f.Address)+1)-1
			if n, m := hi-lo+1, int(limits.Max(p.Table)); n > m {
				pointErr("scale_factor", "the point (address %d) and its scale factor %q (address %d) span %d registers, more than one request reads (%d): they must be read together", p.Address, f.Name, f.Address, n, m)
			}
			for k, r := range limits.Forbidden {
				if r.Overlaps(p.Table, uint16(lo), uint16(hi)) {
					pointErr("scale_factor", "reading the point with its scale factor %q (registers %d-%d) would read forbidden range %s (limits.forbidden[%d])", f.Name, lo, hi, r, k)
				}
			}
		}
	}
	return errs
}

// resolveScaleFactors returns, per point, the index of its scale factor
// point, or -1; nil when no point has one.
func resolveScaleFactors(points []Point) []int {
	sfs := scaleFactorIndex(points)
	if sfs == nil {
		return nil
	}
	out := make([]int, len(points))
	for i := range points {
		out[i] = -1
		if j, ok := sfs[points[i].ScaleFactor]; ok && points[i].ScaleFactor != "" {
			out[i] = j
		}
	}
	return out
}

// withExponent returns a copy of p that applies 10^exp beside its own scale
// and has no scale factor: decoding and encoding it are those of p under
// that factor.
func (p *Point) withExponent(exp int) Point {
	q := *p
	q.ScaleFactor = ""
	q.Scale = p.scale() * math.Pow10(exp)
	return q
}

// exponent decodes a scale factor register: an error wrapping
// [ErrScaleFactor] when it is not implemented (0x8000) or outside -10 to 10.
func (f *Point) exponent(reg uint16) (int, error) {
	w := int16(f.raw([]uint16{reg}))
	switch {
	case w == math.MinInt16:
		return 0, fmt.Errorf("%w: %s is not implemented", ErrScaleFactor, f.Name)
	case w < -maxScaleExp || w > maxScaleExp:
		return 0, fmt.Errorf("%w: %s is %d, outside -%d to %d", ErrScaleFactor, f.Name, w, maxScaleExp, maxScaleExp)
	}
	return int(w), nil
}

// decodePoint decodes point i from the response regs of a request that
// starts at addr: skip is true for a not-implemented value the device
// leaves out. The scale factor comes from the same response, always.
func (d *Device) decodePoint(i int, addr uint16, regs []uint16) (v bridge.Value, skip bool, err error) {
	p := &d.points[i]
	off := int(p.Address) - int(addr)
	end := off + int(p.Registers())
	if off < 0 || end > len(regs) {
		return v, false, fmt.Errorf("%w: short response", ErrProtocol)
	}
	mine := regs[off:end]
	if p.IsNotImplemented(mine) {
		if d.reportNI {
			return v, false, ErrNotImplemented
		}
		return v, true, nil
	}
	if p.ScaleFactor == "" {
		v, err = p.decode(mine)
		return v, false, err
	}
	f := &d.points[d.sf[i]]
	foff := int(f.Address) - int(addr)
	if foff < 0 || foff >= len(regs) {
		// The planner never lets this happen; if it did, no stale factor
		// is used.
		return v, false, fmt.Errorf("%w: scale factor %s not in the response", ErrProtocol, f.Name)
	}
	exp, err := f.exponent(regs[foff])
	if err != nil {
		return v, false, err
	}
	q := p.withExponent(exp)
	v, err = q.decode(mine)
	return asFloat(v), false, err
}

// asFloat returns an integer value as a [bridge.Float]: a point with a
// scale factor is a Float whatever the factor reads (an integer under
// 10^0, a fraction under 10^-1), so that its kind does not change with
// the factor (a Sparkplug rebirth, an InfluxDB field of two types).
func asFloat(v bridge.Value) bridge.Value {
	switch v.Kind() {
	case bridge.KindInt:
		i, _ := v.Int()
		return bridge.Float(float64(i))
	case bridge.KindUint:
		u, _ := v.Uint()
		return bridge.Float(float64(u))
	}
	return v
}

// span returns the registers point i is read with: its own and its scale
// factor's.
func (d *Device) span(i int) (first, last int) {
	p := &d.points[i]
	first, last = int(p.Address), int(p.Address)+int(p.Registers())-1
	if d.sf != nil && d.sf[i] >= 0 {
		f := &d.points[d.sf[i]]
		first, last = min(first, int(f.Address)), max(last, int(f.Address))
	}
	return first, last
}

// writeScaled writes v to p, whose scale factor is read first, with the
// link held until the write is sent: the raw value is v / 10^sf under the
// factor the device has now, range-checked; a factor that is not
// implemented refuses the write.
func (d *Device) writeScaled(ctx context.Context, p *Point, v bridge.Value) error {
	f := &d.points[d.sf[d.byName[p.Name]]]
	return d.retryBusy(ctx, func() error {
		return d.client.heldSequence(ctx, d.unit, func(read func(Table, uint16, uint16) ([]uint16, error), write func(uint16, []uint16) error) error {
			reg, err := read(f.Table, f.Address, 1)
			if err != nil {
				return err
			}
			if len(reg) != 1 {
				return fmt.Errorf("%w: %d registers in the answer, want 1", ErrProtocol, len(reg))
			}
			exp, err := f.exponent(reg[0])
			if err != nil {
				return p.refuse(bridge.ErrOutOfRange, "cannot scale the value: %v", trimPrefix(err.Error()))
			}
			q := p.withExponent(exp)
			if err := q.checkValue(v); err != nil {
				var re *RefusalError
				if errors.As(err, &re) {
					re.Msg += fmt.Sprintf(" (scale factor %s is %d)", f.Name, exp)
				}
				return err
			}
			regs, err := q.Encode(v)
			if err != nil {
				return p.refuse(bridge.ErrOutOfRange, "%v", err)
			}
			return write(p.Address, regs)
		})
	})
}

// readBackScaled reads p with its scale factor in one request.
func (d *Device) readBackScaled(ctx context.Context, p *Point) (bridge.Sample, error) {
	i := d.byName[p.Name]
	first, last := d.span(i)
	var regs []uint16
	err := d.retryBusy(ctx, func() (err error) {
		regs, err = d.client.ReadRegisters(ctx, d.unit, p.Table, uint16(first), uint16(last-first+1))
		return err
	})
	if err != nil {
		return bridge.Sample{}, err
	}
	v, skip, err := d.decodePoint(i, uint16(first), regs)
	if err == nil && skip {
		err = ErrNotImplemented
	}
	if err != nil {
		return bridge.Sample{}, err
	}
	return bridge.Sample{Source: d.name, Point: p.Name, Value: v, Unit: p.Unit, Time: time.Now(), Quality: bridge.Good}, nil
}

// heldSequence runs work with the link held: no other request of the
// process runs between its reads and writes (as modifyRegister does for a
// read-modify-write).
func (c *Client) heldSequence(ctx context.Context, unit uint8, work func(read func(Table, uint16, uint16) ([]uint16, error), write func(uint16, []uint16) error) error) error {
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer c.unlock()
	read := func(t Table, addr, qty uint16) (regs []uint16, err error) {
		fc := uint8(fcReadHolding)
		if t == Input {
			fc = fcReadInput
		}
		err = c.exec(ctx, "read", unit, t, fc, addr, qty, func(l link) (err error) {
			regs, err = l.readRegisters(unit, fc, addr, qty)
			return err
		})
		return regs, err
	}
	write := func(addr uint16, vals []uint16) error {
		fc := uint8(fcWriteMultipleRegs)
		if len(vals) == 1 {
			fc = fcWriteSingleReg
		}
		return c.exec(ctx, "write", unit, Holding, fc, addr, uint16(len(vals)), func(l link) error {
			return l.writeRegisters(unit, addr, vals)
		})
	}
	return work(read, write)
}
