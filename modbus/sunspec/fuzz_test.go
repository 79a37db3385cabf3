package sunspec_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/sunspec"
)

// memReader is a device map in memory: registers from 40000 on; reads
// outside it answer Illegal Data Address.
type memReader []uint16

func (m memReader) ReadRegisters(_ context.Context, _ uint8, _ modbus.Table, addr, qty uint16) ([]uint16, error) {
	lo, hi := int(addr)-40000, int(addr)-40000+int(qty)
	if lo < 0 || hi > len(m) || qty == 0 {
		return nil, fmt.Errorf("read %d+%d: %w", addr, qty, modbus.ErrIllegalDataAddress)
	}
	return append([]uint16(nil), m[lo:hi]...), nil
}

// FuzzDiscover walks arbitrary chains after the marker: discovery ends
// (no endless walk), never panics, and every point it returns lies within
// the map, inside its model, with a scale factor that is a point of the
// chain within one request of it.
func FuzzDiscover(f *testing.F) {
	f.Add([]byte{0, 1, 0, 66, 0xFF, 0xFF, 0, 0})
	f.Add([]byte{0, 103, 0, 50, 0, 160, 0, 28, 0xFF, 0xFF})
	f.Add([]byte{0, 160, 0, 0xFF, 0xFF, 0xFF})
	f.Add([]byte{0, 129, 0, 10, 0, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		regs := memReader{sunspec.Marker[0], sunspec.Marker[1]}
		for k := 0; k+1 < len(data) && len(regs) < 4000; k += 2 {
			regs = append(regs, binary.BigEndian.Uint16(data[k:]))
		}
		chain, err := sunspec.Discover(context.Background(), regs, 1, sunspec.Options{})
		if err != nil {
			return
		}
		names := map[string]modbus.Point{}
		for _, p := range chain.Points {
			names[p.Point.Name] = p.Point
		}
		for _, p := range chain.Points {
			pt := p.Point
			end := int(pt.Address) + int(pt.Registers())
			if int(pt.Address) < 40000 || end > 40000+len(regs) {
				t.Fatalf("%s at %d+%d outside the map", pt.Name, pt.Address, pt.Registers())
			}
			if pt.ScaleFactor != "" {
				f, ok := names[pt.ScaleFactor]
				if !ok {
					t.Fatalf("%s: scale factor %s not a point", pt.Name, pt.ScaleFactor)
				}
				lo, hi := min(int(pt.Address), int(f.Address)), max(end, int(f.Address)+1)
				if hi-lo > modbus.DefaultMaxRegisters {
					t.Fatalf("%s: factor %d registers away", pt.Name, hi-lo)
				}
			}
		}
		if err := modbus.ValidatePoints(chain.Profile("x").Points, modbus.Limits{}); err != nil {
			t.Fatalf("the chain's points do not validate: %v", err)
		}
	})
}
