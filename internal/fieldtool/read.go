package fieldtool

import (
	"context"
	"errors"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
)

// Reading is one point's sample with the registers it was decoded from
// (nil for a coil or discrete input, or a failed read).
type Reading struct {
	bridge.Sample
	Raw []uint16
}

// Read reads points (laid out as [Points] makes them: one table, end to
// end) from unit over c, in as few requests as the protocol's limits allow
// (125 registers, 2000 bits), and decodes each with [modbus.Point.Decode]
// or DecodeBit. The samples carry source as Source. A failed request ends
// the read: the points it and later requests covered come back as Bad
// samples carrying the error as Reason (a Modbus exception's code as Code),
// and Read returns the error too.
func Read(ctx context.Context, c *modbus.Client, unit uint8, source string, points []modbus.Point) ([]Reading, error) {
	if len(points) == 0 {
		return nil, nil
	}
	t := points[0].Table
	out := make([]Reading, 0, len(points))
	perValue := int(points[0].Registers())
	maxItems := modbus.DefaultMaxRegisters
	if t.IsBits() {
		perValue, maxItems = 1, modbus.DefaultMaxBits
	}
	step := max(maxItems/perValue, 1)
	for i := 0; i < len(points); i += step {
		chunk := points[i:min(i+step, len(points))]
		addr, qty := chunk[0].Address, uint16(len(chunk)*perValue)
		var regs []uint16
		var bits []bool
		var err error
		if t.IsBits() {
			bits, err = c.ReadBits(ctx, unit, t, addr, qty)
		} else {
			regs, err = c.ReadRegisters(ctx, unit, t, addr, qty)
		}
		now := time.Now()
		if err != nil {
			for _, p := range points[i:] {
				s := bridge.BadSample(source, p.Name, now, err)
				s.Code = exceptionCode(err)
				out = append(out, Reading{Sample: s})
			}
			return out, err
		}
		for j, p := range chunk {
			r := Reading{Sample: bridge.Sample{Source: source, Point: p.Name, Unit: p.Unit, Time: now, Quality: bridge.Good}}
			if t.IsBits() {
				r.Value = p.DecodeBit(bits[j])
			} else {
				r.Raw = regs[j*perValue : (j+1)*perValue]
				v, derr := p.Decode(r.Raw)
				if derr != nil {
					r.Sample = bridge.BadSample(source, p.Name, now, derr)
				}
				r.Value = v
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func exceptionCode(err error) uint32 {
	var ex *modbus.ExceptionError
	if errors.As(err, &ex) {
		return uint32(ex.Code)
	}
	return 0
}
