package fieldtool

import (
	"errors"
	"fmt"
	"strings"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
)

// UsageError is a problem with what was asked (a flag, a value), found
// before anything was sent; the command exits 2 on it.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(format string, args ...any) error {
	return &UsageError{fmt.Errorf(format, args...)}
}

// PointName is the name the tool gives the point at addr of table t, the
// Point of its samples: "holding:100".
func PointName(t modbus.Table, addr uint16) string { return fmt.Sprintf("%s:%d", t, addr) }

// Points returns count points like tmpl, laid end to end from tmpl.Address
// (each Registers() registers, or one bit, after the previous), named by
// [PointName]. A zero tmpl.Type means bool for the bit tables and uint16
// for the register tables. The points are checked with the library's
// rules ([modbus.ValidatePoints]); problems come back as a [*UsageError]
// naming the flags ("-word-order: ...").
func Points(tmpl modbus.Point, count int) ([]modbus.Point, error) {
	if count < 1 {
		return nil, usagef("-count %d: want 1 or more", count)
	}
	tmpl = withDefaultType(tmpl)
	tmpl.Name = PointName(tmpl.Table, tmpl.Address)
	if err := tmpl.Validate(); err != nil {
		return nil, &UsageError{flagErrors(err)}
	}
	n := int(tmpl.Registers())
	if end := int(tmpl.Address) + count*n; end > 0x10000 {
		return nil, usagef("-address %d -count %d: %d values of %d register(s) run past address 65535", tmpl.Address, count, count, n)
	}
	out := make([]modbus.Point, count)
	for i := range out {
		p := tmpl
		p.Address = tmpl.Address + uint16(i*n)
		p.Name = PointName(p.Table, p.Address)
		out[i] = p
	}
	return out, nil
}

// flagErrors rewrites the point's field errors, whose paths are YAML keys
// (word_order), with the tool's flag names (-word-order).
func flagErrors(err error) error {
	var fes []error
	for _, e := range unjoin(err) {
		var fe *bridge.FieldError
		if errors.As(e, &fe) {
			msg := fe.Msg
			if fe.Path != "" {
				msg = "-" + strings.ReplaceAll(fe.Path, "_", "-") + ": " + msg
			}
			if fe.Hint != "" {
				msg += " (" + fe.Hint + ")"
			}
			fes = append(fes, errors.New(msg))
			continue
		}
		fes = append(fes, e)
	}
	return errors.Join(fes...)
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

// withDefaultType gives p without a type the tool's default: bool for the
// bit tables, uint16 for the register tables.
func withDefaultType(p modbus.Point) modbus.Point {
	if p.Type == "" {
		p.Type = modbus.Uint16
		if p.Table.IsBits() {
			p.Type = modbus.Bool
		}
	}
	return p
}
