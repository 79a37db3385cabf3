package sunspec

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/m2mbridge/m2mbridge/modbus"
)

// Reader reads registers of a unit; a *modbus.Client is one.
type Reader interface {
	ReadRegisters(ctx context.Context, unit uint8, table modbus.Table, addr, qty uint16) ([]uint16, error)
}

// Marker is the "SunS" identifier at a SunSpec device's base address
// (SunSpec Information Model Specification, "Device Modbus map").
var Marker = [2]uint16{0x5375, 0x6E53}

// EndID is the id of the end model that closes the chain.
const EndID = 0xFFFF

// Bases are the base addresses discovery probes, in order: the three the
// specification names (40000, 0, 50000), each also one lower and one
// higher, since vendors document 1-based register numbers and some
// devices apply them.
var Bases = []uint16{40000, 39999, 40001, 0, 1, 50000, 49999, 50001}

// ModelInstance is one model found in a device's chain.
type ModelInstance struct {
	ID      uint16 // the model id
	Name    string // the instance's name: the model's, with _2, _3 ... for later instances; "" for an unknown id
	Label   string // the model's label; "" for an unknown id
	Address uint16 // the address of its ID register
	Length  uint16 // L, the registers after the header
	Known   bool   // the tables define it
}

// Chain is what discovery found on a device: its base, its models and the
// points of the models chosen.
type Chain struct {
	Unit    uint8
	Table   modbus.Table
	Base    uint16          // the address of the "SunS" marker
	Models  []ModelInstance // every model of the chain, in order (the end model not included)
	Points  []PointInfo     // the points of the chosen models, in address order
	Skipped []string        // what was left out and why: unknown models, points no request reads
	Limits  modbus.Limits   // the limits the points were laid out under (Options.Limits)
	// Serial is the common model's serial number (common.SN), "" when
	// it has none: a changed serial means another device.
	Serial string
}

// Options say where and what discovery looks for.
type Options struct {
	// Base is the address of the marker; nil probes [Bases].
	Base *uint16
	// Models, when not empty, are the model ids whose points are read; the
	// common model (1) is always read (its serial number tells a replaced
	// device). Models of the chain not listed are listed in the chain but
	// not read.
	Models []uint16
	// Table is the register table (default holding: SunSpec maps are
	// holding registers).
	Table modbus.Table
	// Limits are the device's request limits (limits.max_registers,
	// limits.forbidden): discovery reads no more registers per request and
	// nothing forbidden, and points that cannot be read under them — with
	// their scale factor in one request — are left out and listed in
	// Chain.Skipped. The zero value is the protocol's 125 registers.
	Limits modbus.Limits
}

// Profile returns the chain's points as a [modbus.Profile] named name,
// which pins them: load it back with modbus.LoadProfile and a device reads
// the same points, scale factors and not-implemented values without
// discovery.
func (c *Chain) Profile(name string) *modbus.Profile {
	p := &modbus.Profile{Name: name, Limits: c.Limits}
	p.Limits.Forbidden = slices.Clone(c.Limits.Forbidden)
	for _, pi := range c.Points {
		p.Points = append(p.Points, pi.Point)
	}
	return p
}

// String formats the chain for people: the base, one line per model
// (id, name, address, length) and, with points, one line per point.
func (c *Chain) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "SunSpec base %d (unit %d, %s registers)\n", c.Base, c.Unit, c.Table)
	fmt.Fprintf(&b, "%-6s %-22s %-8s %s\n", "model", "name", "address", "length")
	for _, m := range c.Models {
		name := m.Name
		if !m.Known {
			name = "(unknown)"
		}
		fmt.Fprintf(&b, "%-6d %-22s %-8d %d\n", m.ID, name, m.Address, m.Length)
	}
	for _, s := range c.Skipped {
		fmt.Fprintf(&b, "skipped: %s\n", s)
	}
	return b.String()
}

// Discover finds the SunSpec chain of unit on r: it probes the base
// addresses for the marker (a base that answers an exception or other
// registers is passed over; a transport failure on every base is
// returned), then walks the model headers — the next model at address +
// L + 2 — to the end model (0xFFFF). An end model without its length, or a
// chain that simply ends (Illegal Data Address after a model), is
// accepted; unknown model ids are listed and skipped. Each known model's
// registers are read once, for the counts of its repeating groups and the
// common model's serial number, and laid out into points.
func Discover(ctx context.Context, r Reader, unit uint8, o Options) (*Chain, error) {
	if o.Table == "" {
		o.Table = modbus.Holding
	}
	bases := Bases
	if o.Base != nil {
		bases = []uint16{*o.Base}
	}
	c := &Chain{Unit: unit, Table: o.Table, Limits: o.Limits}
	var tried []string
	found := false
	for _, b := range bases {
		regs, err := r.ReadRegisters(ctx, unit, o.Table, b, 2)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		switch {
		case err != nil:
			tried = append(tried, fmt.Sprintf("%d: %v", b, err))
		case len(regs) == 2 && regs[0] == Marker[0] && regs[1] == Marker[1]:
			c.Base, found = b, true
		default:
			tried = append(tried, fmt.Sprintf("%d: %04x %04x, not SunS", b, at(regs, 0), at(regs, 1)))
		}
		if found {
			break
		}
	}
	if !found {
		return nil, fmt.Errorf("sunspec: unit %d: no SunSpec marker (0x5375 0x6E53) found; tried %s", unit, strings.Join(tried, "; "))
	}
	want := func(id uint16) bool { return len(o.Models) == 0 || id == 1 || slices.Contains(o.Models, id) }
	seen := map[uint16]int{}
	addr := int(c.Base) + 2
	for n := 0; ; n++ {
		if addr > 0xFFFF {
			c.Skipped = append(c.Skipped, "the chain runs past address 65535 without an end model")
			break
		}
		hdr, err := r.ReadRegisters(ctx, unit, o.Table, uint16(addr), uint16(min(2, 0x10000-addr)))
		if err != nil && errors.Is(err, modbus.ErrIllegalDataAddress) {
			// An end model without its length, or no end model at all.
			hdr, err = r.ReadRegisters(ctx, unit, o.Table, uint16(addr), 1)
			if err != nil && errors.Is(err, modbus.ErrIllegalDataAddress) && n > 0 {
				c.Skipped = append(c.Skipped, fmt.Sprintf("no end model at %d: the chain ends there", addr))
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("sunspec: unit %d: reading the model header at %d: %w", unit, addr, err)
		}
		if hdr[0] == EndID {
			break
		}
		if len(hdr) < 2 {
			return nil, fmt.Errorf("sunspec: unit %d: model %d at %d has no length register", unit, hdr[0], addr)
		}
		id, length := hdr[0], hdr[1]
		if addr+2+int(length) > 0x10000 {
			return nil, fmt.Errorf("sunspec: unit %d: model %d at %d: length %d runs past address 65535", unit, id, addr, length)
		}
		mi := ModelInstance{ID: id, Address: uint16(addr), Length: length}
		def := Lookup(id)
		if def == nil {
			c.Skipped = append(c.Skipped, fmt.Sprintf("model %d at %d (length %d): unknown model id", id, addr, length))
		} else {
			seen[id]++
			mi.Known, mi.Label, mi.Name = true, def.Label(), def.Name()
			if seen[id] > 1 {
				mi.Name += "_" + strconv.Itoa(seen[id])
			}
			if want(id) {
				block, err := readBlock(ctx, r, unit, o.Table, uint16(addr), int(length)+2, o.Limits)
				if err != nil {
					return nil, fmt.Errorf("sunspec: unit %d: reading model %d (%s) at %d: %w", unit, id, mi.Name, addr, err)
				}
				pts, problems := layout(def, mi.Name, uint16(addr), length, block, o.Table, o.Limits)
				c.Skipped = append(c.Skipped, problems...)
				c.Points = append(c.Points, pts...)
				if id == 1 && c.Serial == "" {
					c.Serial = serialOf(pts, block, uint16(addr))
				}
			}
		}
		c.Models = append(c.Models, mi)
		addr += 2 + int(length)
	}
	return c, nil
}

// readBlock reads n registers from addr in requests of at most
// limits.max_registers, never reading a forbidden register (those read as
// 0: no point is laid out on them).
func readBlock(ctx context.Context, r Reader, unit uint8, t modbus.Table, addr uint16, n int, limits modbus.Limits) ([]uint16, error) {
	out := make([]uint16, n)
	maxQ := int(limits.Max(t))
	forbidden := func(a int) (modbus.AddressRange, bool) {
		for _, fr := range limits.Forbidden {
			if fr.Overlaps(t, uint16(a), uint16(a)) {
				return fr, true
			}
		}
		return modbus.AddressRange{}, false
	}
	for done := 0; done < n; {
		a := int(addr) + done
		if fr, ok := forbidden(a); ok {
			done = min(n, int(fr.Last)+1-int(addr))
			continue
		}
		q := min(n-done, maxQ)
		for k := 1; k < q; k++ {
			if _, ok := forbidden(a + k); ok {
				q = k
				break
			}
		}
		regs, err := r.ReadRegisters(ctx, unit, t, uint16(a), uint16(q))
		if err != nil {
			return nil, err
		}
		if len(regs) != q {
			return nil, fmt.Errorf("%w: %d registers in the answer, want %d", modbus.ErrProtocol, len(regs), q)
		}
		copy(out[done:], regs)
		done += q
	}
	return out, nil
}

// serialOf decodes common.SN from the common model's block.
func serialOf(pts []PointInfo, block []uint16, addr uint16) string {
	for _, pi := range pts {
		if pi.Def.Name != "SN" {
			continue
		}
		off := int(pi.Point.Address) - int(addr)
		if off < 0 || off+int(pi.Point.Registers()) > len(block) {
			return ""
		}
		v, err := pi.Point.Decode(block[off : off+int(pi.Point.Registers())])
		if err != nil {
			return ""
		}
		return v.Str()
	}
	return ""
}

func at(regs []uint16, i int) uint16 {
	if i < len(regs) {
		return regs[i]
	}
	return 0
}

// chainChanged re-reads the chain's marker and model headers (ID and L)
// and the register after the last model, a few requests of at most two
// registers: changed is true, with why, when one of them no longer reads
// as c says (another map, or none). A read failing otherwise (a timeout)
// is returned as err: it tells nothing about the chain.
func chainChanged(ctx context.Context, r Reader, c *Chain) (changed bool, why string, err error) {
	read := func(addr, qty uint16) ([]uint16, bool, error) {
		regs, err := r.ReadRegisters(ctx, c.Unit, c.Table, addr, qty)
		if errors.Is(err, modbus.ErrIllegalDataAddress) {
			return nil, true, nil
		}
		if err == nil && len(regs) != int(qty) {
			err = fmt.Errorf("%w: %d registers in the answer, want %d", modbus.ErrProtocol, len(regs), qty)
		}
		return regs, false, err
	}
	regs, refused, err := read(c.Base, 2)
	switch {
	case err != nil:
		return false, "", err
	case refused:
		return true, fmt.Sprintf("the marker at %d is refused", c.Base), nil
	case regs[0] != Marker[0] || regs[1] != Marker[1]:
		return true, fmt.Sprintf("no marker at %d", c.Base), nil
	}
	end := int(c.Base) + 2
	for _, m := range c.Models {
		regs, refused, err := read(m.Address, 2)
		switch {
		case err != nil:
			return false, "", err
		case refused:
			return true, fmt.Sprintf("the header of model %d at %d is refused", m.ID, m.Address), nil
		case regs[0] != m.ID || regs[1] != m.Length:
			return true, fmt.Sprintf("model %d (length %d) at %d reads as %d (length %d)", m.ID, m.Length, m.Address, regs[0], regs[1]), nil
		}
		end = int(m.Address) + 2 + int(m.Length)
	}
	if end > 0xFFFF {
		return false, "", nil
	}
	// The end model, or nothing (a chain without one): anything else is
	// a model discovery did not see.
	regs, refused, err = read(uint16(end), 1)
	switch {
	case err != nil:
		return false, "", err
	case !refused && regs[0] != EndID:
		return true, fmt.Sprintf("model %d at %d after the last one discovered", regs[0], end), nil
	}
	return false, "", nil
}
