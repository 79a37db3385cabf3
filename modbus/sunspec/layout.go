package sunspec

import (
	"fmt"
	"math"
	"strconv"

	"github.com/m2mbridge/m2mbridge/modbus"
)

// PointInfo is one point of a discovered model instance: the modbus point
// that reads it and its SunSpec definition.
type PointInfo struct {
	Point modbus.Point // Name <model>.<point>, <model>.<group>[i].<point>
	Def   *Point       // its definition in the model tables
	Model string       // the model instance's name ("inverter", "mppt_2")
}

// scope is one laid-out group instance: its points by SunSpec name, for
// the scale factors and counts of its points and of the groups inside it.
type scope struct {
	parent *scope
	names  map[string]int // SunSpec point name -> index in the layout's points
}

func (s *scope) find(name string) (int, bool) {
	for ; s != nil; s = s.parent {
		if i, ok := s.names[name]; ok {
			return i, true
		}
	}
	return 0, false
}

// layout lays out one model instance: its points (all but ID, L and pad),
// named prefix.<point>, at the addresses from addr (the model's ID
// register), within its length L. block holds the model's registers (L+2,
// from addr), for the counts of repeating groups. Problems (a count that
// does not fit, a point beyond L, a point no request can read under the
// device's limits — more registers than limits.max_registers with its
// scale factor, or registers in a forbidden range) are returned beside the
// points; the points concerned are left out.
func layout(m *Model, prefix string, addr uint16, length uint16, block []uint16, table modbus.Table, limits modbus.Limits) (pts []PointInfo, problems []string) {
	l := &layouter{m: m, base: int(addr), end: int(addr) + int(length) + 2, block: block, table: table, prefix: prefix,
		maxQ: int(limits.Max(table)), forbidden: limits.Forbidden}
	next := l.group(&m.Group, prefix, int(addr), nil, true)
	if next < l.end && !l.short {
		// Registers left at the end: a model longer than its definition
		// (a newer revision); its extra points are unknown.
		problems = append(problems, fmt.Sprintf("%s: %d registers after the last point the definition knows (L=%d)", prefix, l.end-next, length))
	}
	return l.pts, append(problems, l.problems...)
}

type layouter struct {
	m         *Model
	base      int
	end       int // one past the model's last register
	block     []uint16
	table     modbus.Table
	prefix    string
	maxQ      int                   // the most registers one request reads
	forbidden []modbus.AddressRange // never read
	pts       []PointInfo
	problems  []string
	short     bool // the model ended inside its definition
}

func (l *layouter) problem(format string, args ...any) {
	l.problems = append(l.problems, fmt.Sprintf(format, args...))
}

// reg returns the register at address a of the model's block.
func (l *layouter) reg(a int) (uint16, bool) {
	k := a - l.base
	if k < 0 || k >= len(l.block) {
		return 0, false
	}
	return l.block[k], true
}

// hitsForbidden returns the first forbidden range of the layout's table
// that shares a register with first..last.
func (l *layouter) hitsForbidden(first, last int) (modbus.AddressRange, bool) {
	for _, r := range l.forbidden {
		if r.Overlaps(l.table, uint16(first), uint16(last)) {
			return r, true
		}
	}
	return modbus.AddressRange{}, false
}

// group lays out one instance of g at address a, named name, inside
// parent; it returns the address after it.
func (l *layouter) group(g *Group, name string, a int, parent *scope, top bool) int {
	sc := &scope{parent: parent, names: map[string]int{}}
	first := len(l.pts)
	for k := range g.Points {
		def := &g.Points[k]
		start := a
		a += int(def.Size)
		if a > l.end {
			if !l.short {
				l.short = true
				l.problem("%s: the model's length L=%d ends inside point %s: it and the points after it are left out", l.prefix, l.end-l.base-2, name+"."+def.Name)
			}
			continue
		}
		if top && (def.Name == "ID" || def.Name == "L") && k < 2 {
			continue // the model header, read by discovery
		}
		mt, ni, ok := def.Type.ModbusType()
		if !ok {
			continue // pad, ipv6addr: not a reading
		}
		if int(def.Size) > l.maxQ {
			l.problem("%s.%s: %d registers, more than one request reads (%d): left out", name, def.Name, def.Size, l.maxQ)
			continue
		}
		if r, ok := l.hitsForbidden(start, start+int(def.Size)-1); ok {
			l.problem("%s.%s: registers %d-%d are in forbidden range %s: left out", name, def.Name, start, start+int(def.Size)-1, r)
			continue
		}
		p := modbus.Point{Name: name + "." + def.Name, Table: l.table, Address: uint16(start), Type: mt,
			NotImplemented: ni, Unit: def.Units}
		if mt == modbus.String {
			p.Length = def.Size
		} else if p.Registers() != def.Size {
			l.problem("%s.%s: a %s of %d registers (want %d): left out", name, def.Name, def.Type, def.Size, p.Registers())
			continue
		}
		if def.HasFixedSF {
			p.Scale = math.Pow10(int(def.FixedSF))
		}
		sc.names[def.Name] = len(l.pts)
		l.pts = append(l.pts, PointInfo{Point: p, Def: def, Model: l.prefix})
	}
	// Scale factors: a sunssf point of this group or an enclosing one.
	var drop []int
	for k := first; k < len(l.pts); k++ {
		def := l.pts[k].Def
		if def.SF == "" {
			continue
		}
		j, ok := sc.find(def.SF)
		switch {
		case !ok:
			// Its factor is beyond L or not in the definition: without
			// it the value cannot be scaled, so it is not read.
			l.problem("%s: its scale factor %s is not in the model, or not readable: left out", l.pts[k].Point.Name, def.SF)
			drop = append(drop, k)
		default:
			p, f := &l.pts[k].Point, &l.pts[j].Point
			lo := min(int(p.Address), int(f.Address))
			hi := max(int(p.Address)+int(p.Registers()), int(f.Address)+1) - 1
			if hi-lo+1 > l.maxQ {
				// A value is only ever read in the same request as its
				// factor; no request reaches both.
				l.problem("%s: %d registers from its scale factor %s, more than one request reads (%d): left out", p.Name, hi-lo+1, f.Name, l.maxQ)
				drop = append(drop, k)
				continue
			}
			if r, bad := l.hitsForbidden(lo, hi); bad {
				l.problem("%s: reading it with its scale factor %s (registers %d-%d) would read forbidden range %s: left out", p.Name, f.Name, lo, hi, r)
				drop = append(drop, k)
				continue
			}
			p.ScaleFactor = f.Name
		}
	}
	for n := len(drop) - 1; n >= 0; n-- {
		k := drop[n]
		l.pts = append(l.pts[:k], l.pts[k+1:]...)
		for name, i := range sc.names {
			if i > k {
				sc.names[name] = i - 1
			} else if i == k {
				delete(sc.names, name)
			}
		}
	}
	for k := range g.Groups {
		sg := &g.Groups[k]
		n := 1
		if sg.Repeat {
			n = l.count(g, sg, sc, a, name, top)
		}
		for i := 0; i < n && a < l.end; i++ {
			gname := name + "." + sg.Name
			if sg.Repeat {
				gname += "[" + strconv.Itoa(i) + "]"
			}
			a = l.group(sg, gname, a, sc, false)
		}
	}
	return a
}

// count returns how many times sg repeats: the value of its count point,
// or, without one, as many as fill the model's length after a.
func (l *layouter) count(parent, sg *Group, sc *scope, a int, name string, top bool) int {
	size := sg.Len(func(g *Group) int { return l.countOf(g, sc) })
	if size <= 0 {
		return 0
	}
	if sg.Count != "" {
		n := l.countOf(sg, sc)
		if a+n*size > l.end {
			fit := (l.end - a) / size
			l.problem("%s.%s: count %s=%d does not fit the model's length: %d read", name, sg.Name, sg.Count, n, fit)
			return fit
		}
		return n
	}
	// Repeated to fill L: what follows this group in its parent (groups
	// after it) is not repeated, so only a last group can fill.
	rest := l.end - a
	if rest%size != 0 {
		l.problem("%s.%s: %d registers left for repeats of %d registers: %d read", name, sg.Name, rest, size, rest/size)
	}
	return rest / size
}

// countOf returns the value of g's count point (found in scope), 1 for a
// group that does not repeat, 0 when the count cannot be read.
func (l *layouter) countOf(g *Group, sc *scope) int {
	if !g.Repeat {
		return 1
	}
	if g.Count == "" {
		return 0 // only the outer fill-L group; sizes inside it do not use this
	}
	i, ok := sc.find(g.Count)
	if !ok {
		return 0
	}
	w, ok := l.reg(int(l.pts[i].Point.Address))
	if !ok || w == 0xFFFF {
		return 0
	}
	return int(w)
}

// Layout lays out one instance of model id at addr (its ID register) with
// length L, named name, from its registers block (L+2 registers from addr:
// the counts of repeating groups are read from it), as [Discover] does.
// It returns the points and the problems found (points left out and why);
// an unknown id is an error. It is for simulators and tests that build a
// device from the tables (modbustest.NewSunSpecServer).
func Layout(id uint16, name string, addr, length uint16, block []uint16, table modbus.Table) ([]PointInfo, []string, error) {
	m := Lookup(id)
	if m == nil {
		return nil, nil, fmt.Errorf("sunspec: no model %d in the tables", id)
	}
	if table == "" {
		table = modbus.Holding
	}
	pts, problems := layout(m, name, addr, length, block, table, modbus.Limits{})
	return pts, problems, nil
}

// Length returns the length L of model id with the repeating groups
// repeated as counts says: counts[name] for a group counted by the point
// name, fill for the group that repeats to fill L. An unknown id is an
// error.
func Length(id uint16, counts map[string]int, fill int) (uint16, error) {
	m := Lookup(id)
	if m == nil {
		return 0, fmt.Errorf("sunspec: no model %d in the tables", id)
	}
	n := m.Group.Len(func(g *Group) int {
		if g.Count == "" {
			return fill
		}
		return counts[g.Count]
	})
	if n < 2 || n-2 > 0xFFFF {
		return 0, fmt.Errorf("sunspec: model %d: length %d out of range", id, n-2)
	}
	return uint16(n - 2), nil
}
