package modbus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// RefusalError is a write refused by a point's rules, before anything was
// sent to the device. Its Error is the point and the rule ("setpoint: 95 is
// above max 80"), and it wraps one of the bridge refusals
// (bridge.ErrUnknownPoint, ErrNotWritable, ErrWrongType, ErrOutOfRange,
// through [ErrUnknownPoint], [ErrReadOnly] and [ErrNotRepresentable] where
// those apply), so bridge.IsRefusal reports it.
type RefusalError struct {
	Point string // the point the write was for
	Msg   string // the rule broken: "95 is above max 80"
	Err   error  // the refusal sentinel
}

// Error returns "point: rule".
func (e *RefusalError) Error() string { return e.Point + ": " + e.Msg }

// Unwrap returns the refusal sentinel.
func (e *RefusalError) Unwrap() error { return e.Err }

func (p *Point) refuse(sentinel error, format string, args ...any) error {
	return &RefusalError{Point: p.Name, Msg: fmt.Sprintf(format, args...), Err: sentinel}
}

// CheckWrite reports whether v may be written to p, the rules [Device.Write]
// applies before it sends anything: p is writable (Writable, in the holding
// or coil table); v is of a kind p holds exactly — a bool (or 0 or 1) for a
// bool, a string that fits for a string, a number for a number, an integer
// for an integer type without scale or offset, within the type's range
// (never truncated, rounded or wrapped); within Min and Max and one of
// Allowed, in engineering units; and for a scaled integer type, (v -
// Offset) / Scale is an integer (within a relative 1e-9) that the type
// holds. It returns nil or a [*RefusalError].
func (p Point) CheckWrite(v bridge.Value) error {
	if !p.Table.Writable() {
		return p.refuse(ErrReadOnly, "the %s table is read-only in Modbus", p.Table)
	}
	if !p.Writable {
		return p.refuse(bridge.ErrNotWritable, "not writable (writes need writable: true in the point's configuration)")
	}
	return p.checkValue(v)
}

func (p *Point) checkValue(v bridge.Value) error {
	switch {
	case p.Table.IsBits() || p.Type == Bool:
		switch v.Kind() {
		case bridge.KindBool:
			return nil
		case bridge.KindInt, bridge.KindUint, bridge.KindFloat:
			if f := v.Float(); f == 0 || f == 1 {
				return nil
			}
			return p.refuse(bridge.ErrWrongType, "%s is not a bool (want true, false, 1 or 0)", v)
		}
		return p.refuse(bridge.ErrWrongType, "a %s value for a bool point", v.Kind())
	case p.Type == String:
		if v.Kind() != bridge.KindString {
			return p.refuse(bridge.ErrWrongType, "a %s value for a string point", v.Kind())
		}
		if n := len(v.Str()); n > 2*int(p.Length) {
			return p.refuse(bridge.ErrOutOfRange, "%d bytes do not fit %d registers (%d bytes)", n, p.Length, 2*int(p.Length))
		}
		return nil
	}
	return p.checkNumber(v)
}

// checkNumber checks a value for a numeric point.
func (p *Point) checkNumber(v bridge.Value) error {
	switch v.Kind() {
	case bridge.KindFloat, bridge.KindInt, bridge.KindUint:
	default:
		return p.refuse(bridge.ErrWrongType, "a %s value for a %s point", v.Kind(), p.Type)
	}
	f := v.Float()
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return p.refuse(bridge.ErrOutOfRange, "%s is not a finite number", v)
	}
	integer := p.Type != Float32 && p.Type != Float64
	if integer && !p.scaled() && p.ScaleFactor == "" {
		// The type first: 70000 for a uint16 is that, whatever max says.
		if err := p.checkInteger(v); err != nil {
			return err
		}
	}
	if p.Min != nil && f < *p.Min {
		return p.refuse(bridge.ErrOutOfRange, "%s is below min %s", v, fmtFloat(*p.Min))
	}
	if p.Max != nil && f > *p.Max {
		return p.refuse(bridge.ErrOutOfRange, "%s is above max %s", v, fmtFloat(*p.Max))
	}
	if len(p.Allowed) > 0 && !slices.Contains(p.Allowed, f) {
		return p.refuse(bridge.ErrOutOfRange, "%s is not one of the allowed values %v", v, p.Allowed)
	}
	if p.ScaleFactor != "" {
		// The type's range and representability depend on the factor:
		// Device.Write checks them once it has read it.
		return nil
	}
	switch {
	case p.Type == Float64:
		if p.scaled() {
			if raw := (f - p.Offset) / p.scale(); math.IsInf(raw, 0) {
				return p.refuse(bridge.ErrOutOfRange, "%s does not fit %s", v, p.typeDesc())
			}
		}
	case p.Type == Float32:
		raw := f
		if p.scaled() {
			raw = (f - p.Offset) / p.scale()
		}
		if math.Abs(raw) > math.MaxFloat32 {
			return p.refuse(bridge.ErrOutOfRange, "%s does not fit %s", v, p.typeDesc())
		}
	case p.scaled():
		raw := p.unscale(f)
		r := math.Round(raw)
		if math.Abs(raw-r) > 1e-9*math.Max(1, math.Abs(r)) {
			lo, hi := p.applyScale(math.Floor(raw)), p.applyScale(math.Ceil(raw))
			return p.refuse(ErrNotRepresentable, "%s is not representable by %s (nearest %s or %s)", v, p.typeDesc(), fmtFloat(lo), fmtFloat(hi))
		}
		lo, hi := p.rawRange()
		if r < lo || r > hi {
			elo, ehi, _ := p.engRange()
			return p.refuse(bridge.ErrOutOfRange, "%s is outside %s to %s, what %s holds", v, fmtFloat(elo), fmtFloat(ehi), p.typeDesc())
		}
	}
	return nil
}

// checkInteger checks v for an integer type without scale or offset.
func (p *Point) checkInteger(v bridge.Value) error {
	if v.Kind() == bridge.KindFloat {
		if f := v.Float(); f != math.Trunc(f) {
			return p.refuse(bridge.ErrWrongType, "%s is not an integer (the point is %s)", v, p.Type)
		}
	}
	var ok bool
	switch p.Type {
	case Int16, Int32, Int64:
		var i int64
		if i, ok = v.Int(); ok {
			switch p.Type {
			case Int16:
				ok = math.MinInt16 <= i && i <= math.MaxInt16
			case Int32:
				ok = math.MinInt32 <= i && i <= math.MaxInt32
			}
		}
	default:
		var u uint64
		if u, ok = v.Uint(); ok {
			ok = u <= p.maxRaw()
		}
	}
	if ok {
		return nil
	}
	if lo, _ := p.rawRange(); v.Float() < lo {
		return p.refuse(bridge.ErrOutOfRange, "%s is below the %s minimum %d", v, p.Type, int64(lo))
	}
	return p.refuse(bridge.ErrOutOfRange, "%s is above the %s maximum %s", v, p.Type, strconv.FormatUint(p.maxRaw(), 10))
}

// unscale returns (f - Offset) / Scale, dividing by an exact power of ten
// as applyScale does, so that 21.5 at scale 0.1 gives 215, not
// 214.99999999999997.
func (p *Point) unscale(f float64) float64 {
	s := p.scale()
	for _, d := range decimalScales {
		if s == d.scale {
			return (f - p.Offset) * d.divisor
		}
	}
	return (f - p.Offset) / s
}

// rawRange is the range of the point's integer type, as floats.
func (p *Point) rawRange() (lo, hi float64) {
	switch p.Type {
	case Int16:
		return math.MinInt16, math.MaxInt16
	case Int32:
		return math.MinInt32, math.MaxInt32
	case Int64:
		return math.MinInt64, math.MaxInt64
	}
	return 0, float64(p.maxRaw())
}

func (p *Point) maxRaw() uint64 {
	switch p.Type {
	case Int16:
		return math.MaxInt16
	case Int32:
		return math.MaxInt32
	case Int64:
		return math.MaxInt64
	case Uint16:
		return math.MaxUint16
	case Uint32:
		return math.MaxUint32
	}
	return math.MaxUint64
}

// engRange is the range of values the point's type holds after scale and
// offset, and whether it has one (float64 has none worth checking).
func (p *Point) engRange() (lo, hi float64, bounded bool) {
	switch p.Type {
	case Float64:
		return 0, 0, false
	case Float32:
		lo, hi = -math.MaxFloat32, math.MaxFloat32
	default:
		lo, hi = p.rawRange()
	}
	if p.scaled() {
		lo, hi = p.applyScale(lo), p.applyScale(hi)
	}
	return lo, hi, true
}

// typeDesc names the point's type with its scale and offset.
func (p *Point) typeDesc() string {
	if !p.scaled() {
		return "a " + string(p.Type)
	}
	return fmt.Sprintf("a %s with scale %s and offset %s", p.Type, fmtFloat(p.scale()), fmtFloat(p.Offset))
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// CheckWrite applies the rules of Write to v without sending anything: the
// point exists, is writable, and v is of a type and within a range it
// holds exactly (bridge.WriteChecker). A refusal wraps a bridge refusal.
func (d *Device) CheckWrite(name string, v bridge.Value) error {
	i, ok := d.byName[name]
	if !ok {
		return &RefusalError{Point: name, Msg: fmt.Sprintf("device %q has no such point", d.name), Err: ErrUnknownPoint}
	}
	return d.points[i].CheckWrite(v)
}

// Write writes v to the named point and reads it back: it implements
// bridge.Writer. Deny by default: a point is written only when it is
// Writable, and v passes [Point.CheckWrite] (type, range, min, max,
// allowed, representable); otherwise Write returns a [*RefusalError]
// (wrapping a bridge refusal) and sends nothing. An unknown name is refused
// with [ErrUnknownPoint].
//
// Holding registers are written with FC 06 (one register) or FC 16 (more),
// in the point's word and byte order with the inverse of its scale and
// offset ([Point.Encode]); coils with FC 05. A bool in one bit of a holding
// register is a read-modify-write of the register (FC 03 then FC 06) during
// which the Device's link is held: no other request on the link — a poll
// of this device, a request of another device on a shared [Bus] — runs
// between the read and the write, so a bit set by someone else is not
// overwritten with a stale value by this process. Writes of one Device are
// serialised too. Then the point's registers (or coil) are read back and
// decoded, and Write returns that sample (Source the device's name, Quality
// Good, Time when the answer arrived), which may differ from v if the
// device clamps or rounds.
//
// A failure at the device (a timeout, an exception, which the error names,
// a lost connection) is returned as it is, an [*OpError], not a refusal,
// and is not retried, except answers Server Device Busy and Acknowledge,
// retried like reads. A write that succeeded but whose read-back failed
// returns the read-back's error, saying so.
//
// Write is safe to call while Run polls; its requests take their turn on
// the link. The context bounds the wait for the link and each request, as
// described at [Client]: a request already sent runs to its answer or its
// timeout, so a write may have taken effect although Write reports the
// context's error.
func (d *Device) Write(ctx context.Context, name string, v bridge.Value) (bridge.Sample, error) {
	if d.closed.Load() {
		return bridge.Sample{}, ErrClosed
	}
	if err := d.CheckWrite(name, v); err != nil {
		return bridge.Sample{}, err
	}
	p := &d.points[d.byName[name]]
	select {
	case d.writeSem <- struct{}{}:
	case <-ctx.Done():
		return bridge.Sample{}, fmt.Errorf("modbus: write device %q point %q: waiting for an earlier write: %w", d.name, name, ctx.Err())
	}
	defer func() { <-d.writeSem }()
	var err error
	switch {
	case p.Table == Coil:
		on, _ := v.Bool() // checked
		err = d.retryBusy(ctx, func() error { return d.client.WriteCoils(ctx, d.unit, p.Address, []bool{on}) })
	case p.IsBitPoint():
		on, _ := v.Bool()
		err = d.retryBusy(ctx, func() error {
			return d.client.modifyRegister(ctx, d.unit, p.Address, func(reg uint16) uint16 { return p.SetBit(reg, on) })
		})
	case p.ScaleFactor != "":
		// The factor is read with the link held, then the value written
		// under it: never under a factor read earlier.
		if err = d.writeScaled(ctx, p, v); err != nil {
			var re *RefusalError
			if errors.As(err, &re) {
				return bridge.Sample{}, re
			}
		}
	default:
		var regs []uint16
		if regs, err = p.Encode(v); err != nil {
			// CheckWrite let through what Encode refuses: a bug, but
			// still nothing was sent.
			return bridge.Sample{}, p.refuse(bridge.ErrOutOfRange, "%v", err)
		}
		err = d.retryBusy(ctx, func() error { return d.client.WriteRegisters(ctx, d.unit, p.Address, regs) })
	}
	if err != nil {
		return bridge.Sample{}, &deviceError{fmt.Sprintf("modbus: write device %q point %q: ", d.name, name), err}
	}
	s, err := d.readBack(ctx, p)
	if err != nil {
		return bridge.Sample{}, &deviceError{fmt.Sprintf("modbus: device %q point %q: written, but reading it back failed: ", d.name, name), err}
	}
	return s, nil
}

// readBack reads p's registers (or coil) and returns the Good sample.
func (d *Device) readBack(ctx context.Context, p *Point) (bridge.Sample, error) {
	if p.ScaleFactor != "" {
		return d.readBackScaled(ctx, p)
	}
	var v bridge.Value
	var err error
	if p.Table.IsBits() {
		var bits []bool
		err = d.retryBusy(ctx, func() (err error) {
			bits, err = d.client.ReadBits(ctx, d.unit, p.Table, p.Address, 1)
			return err
		})
		if err == nil {
			v = p.DecodeBit(bits[0])
		}
	} else {
		var regs []uint16
		err = d.retryBusy(ctx, func() (err error) {
			regs, err = d.client.ReadRegisters(ctx, d.unit, p.Table, p.Address, p.Registers())
			return err
		})
		if err == nil {
			v, err = p.decode(regs)
		}
	}
	if err != nil {
		return bridge.Sample{}, err
	}
	return bridge.Sample{Source: d.name, Point: p.Name, Value: v, Unit: p.Unit, Time: time.Now(), Quality: bridge.Good}, nil
}

var _ bridge.Writer = (*Device)(nil)

// deviceError says which device and point a failed request was for,
// without repeating the cause's "modbus: ".
type deviceError struct {
	prefix string
	err    error
}

func (e *deviceError) Error() string { return e.prefix + trimPrefix(e.err.Error()) }
func (e *deviceError) Unwrap() error { return e.err }

// WritePoint is [Device.Write] for a Go value (a bridge.Value, or a bool,
// integer, float or string, converted with bridge.ValueOf), without the
// read-back sample: the same rules (deny by default, typed, bounded), the
// same requests, the same errors.
func (d *Device) WritePoint(ctx context.Context, name string, value any) error {
	v, ok := bridge.ValueOf(value)
	if !ok {
		return &RefusalError{Point: name, Msg: fmt.Sprintf("a value of Go type %T", value), Err: bridge.ErrWrongType}
	}
	_, err := d.Write(ctx, name, v)
	return err
}

func (d *Device) retryBusy(ctx context.Context, fn func() error) error {
	wait := d.busyWait
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || attempt >= d.busyMax || !(errors.Is(err, ErrServerDeviceBusy) || errors.Is(err, ErrAcknowledge)) {
			return err
		}
		if sleepUntil(ctx, time.Now().Add(wait)) != nil {
			return err
		}
		wait *= 2
	}
}
