package fieldtool

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
)

// ParseValue reads the VALUE a person typed for point p: the text as it
// is for a string point; otherwise true or false as a bool, an integer
// exactly (an Int, or a Uint above the int64 range), a number with a
// fraction or an exponent as a Float, and anything else as a string — which
// the write rules then refuse with their own message ("a string value for
// a float32 point"). It does not judge whether the value fits p: that is
// [modbus.Point.CheckWrite]'s job.
func ParseValue(p modbus.Point, s string) bridge.Value {
	if p.Type == modbus.String && !p.Table.IsBits() {
		return bridge.String(s)
	}
	switch strings.ToLower(s) {
	case "true":
		return bridge.Bool(true)
	case "false":
		return bridge.Bool(false)
	}
	if !strings.ContainsAny(s, ".eEnN") { // not a fraction, exponent, NaN or Inf
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return bridge.Int(i)
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return bridge.Uint(u)
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return bridge.Float(f)
	}
	return bridge.String(s)
}

// Write writes v to the single point p of unit at conn's URL through a
// [modbus.Device] whose only point is p, made writable: the library's
// write rules apply ([modbus.Point.CheckWrite]: type, range, p.Min and
// p.Max), and a value they refuse comes back as the library's
// [*modbus.RefusalError] with nothing sent. Otherwise the device is
// written and read back ([modbus.Device.Write]), and the sample read back
// is returned, with source as Source. A configuration the library refuses
// (the URL, the unit on an RTU link, -min on a bool) is a [*UsageError].
func Write(ctx context.Context, conn modbus.ClientConfig, unit uint8, source string, p modbus.Point, v bridge.Value) (Reading, error) {
	p = withDefaultType(p)
	p.Writable = true
	p.Name = PointName(p.Table, p.Address)
	d, err := modbus.NewDevice(modbus.DeviceConfig{Name: source, Conn: conn, Unit: unit, Points: []modbus.Point{p}})
	if err != nil {
		return Reading{}, &UsageError{deviceFlagErrors(err)}
	}
	defer d.Close()
	s, err := d.Write(ctx, p.Name, v)
	if err != nil {
		return Reading{}, err
	}
	return Reading{Sample: s}, nil
}

// deviceFlagErrors maps the device's field paths (points[0].min, unit,
// modbus.timeout) onto the tool's flags (-min, -unit, -timeout).
func deviceFlagErrors(err error) error {
	var out []error
	for _, e := range unjoin(err) {
		var fe *bridge.FieldError
		if errors.As(e, &fe) {
			c := *fe
			c.Path = strings.TrimPrefix(strings.TrimPrefix(c.Path, "points[0]."), "modbus.")
			if c.Path == "url" {
				c.Path = "" // the URL argument: its message names it
			}
			e = &c
		}
		out = append(out, e)
	}
	return flagErrors(errors.Join(out...))
}
