package modbus

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Request is one read request of a [Plan]: Quantity registers (or bits) of
// Table from Address on, carrying the points whose indexes (into the slice
// given to [Planner.Plan]) are listed in Points, by address.
type Request struct {
	Table    Table  // the table read (FC 03, 04, 01 or 02)
	Address  uint16 // first address read
	Quantity uint16 // registers (or bits) read
	Points   []int  // the points the request carries, by address
}

// Last returns the last address the request reads.
func (r Request) Last() uint16 { return r.Address + r.Quantity - 1 }

// Plan is how to read a set of points: the requests, in table order
// (holding, input, coil, discrete) and address order within a table, and
// their estimated total cost under the planner's [CostModel].
type Plan struct {
	Requests []Request     // the read requests, in table and address order
	Cost     time.Duration // estimated time of all of them under the cost model
	// Unplanned lists the points no request may read: a point with a register
	// in a forbidden range (given in the limits or learned with
	// [Planner.Forbid]), one longer than a request may be, or one of an
	// unknown table or type. They are left out of every request; a
	// [Device] reports them Bad each cycle ([ErrUnplanned]).
	Unplanned []int

	points []Point
	model  CostModel
}

// Registers returns the number of registers the plan reads (holding and input
// tables).
func (p Plan) Registers() int {
	n := 0
	for _, r := range p.Requests {
		if !r.Table.IsBits() {
			n += int(r.Quantity)
		}
	}
	return n
}

// Bits returns the number of coils and discrete inputs the plan reads.
func (p Plan) Bits() int {
	n := 0
	for _, r := range p.Requests {
		if r.Table.IsBits() {
			n += int(r.Quantity)
		}
	}
	return n
}

// String formats the plan for people: per table, each request's range, size,
// estimated cost (to the microsecond) and the points it carries, then the
// total.
//
//	input: 2 requests, 86 registers, 24.9ms
//	  0-79 (80 registers, 21.4ms): voltage_l1 voltage_l2 ...
//	  200-205 (6 registers, 3.5ms): voltage_l1_l2 voltage_l2_l3 voltage_l3_l1
//	total: 2 requests, 24.9ms
func (p Plan) String() string {
	var b strings.Builder
	name := func(i int) string {
		if i >= 0 && i < len(p.points) && p.points[i].Name != "" {
			return p.points[i].Name
		}
		return fmt.Sprintf("#%d", i)
	}
	for k := 0; k < len(p.Requests); {
		t := p.Requests[k].Table
		end := k
		var q int
		var cost time.Duration
		for end < len(p.Requests) && p.Requests[end].Table == t {
			q += int(p.Requests[end].Quantity)
			cost += p.model.Cost(t, p.Requests[end].Quantity)
			end++
		}
		unit := "registers"
		if t.IsBits() {
			unit = "bits"
		}
		fmt.Fprintf(&b, "%s: %d %s, %d %s, %s\n", t, end-k, plural(end-k, "request"), q, unit, cost.Round(time.Microsecond))
		for _, r := range p.Requests[k:end] {
			fmt.Fprintf(&b, "  %d-%d (%d %s, %s):", r.Address, r.Last(), r.Quantity, unit, p.model.Cost(t, r.Quantity).Round(time.Microsecond))
			for _, i := range r.Points {
				b.WriteString(" ")
				b.WriteString(name(i))
			}
			b.WriteString("\n")
		}
		k = end
	}
	if len(p.Unplanned) > 0 {
		b.WriteString("unplanned:")
		for _, i := range p.Unplanned {
			b.WriteString(" ")
			b.WriteString(name(i))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "total: %d %s, %s", len(p.Requests), plural(len(p.Requests), "request"), p.Cost.Round(time.Microsecond))
	return b.String()
}

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	return s + "s"
}

// Planner groups the points due in a poll cycle into read requests of least
// total cost under a [CostModel], within a device's [Limits]: no request
// longer than MaxRegisters (MaxBits), none reading a forbidden address, not
// even as filler between two points. It remembers holes learned at run time
// ([Planner.Forbid]) and boundaries no request may cross ([Planner.Split]).
// A Planner is safe for concurrent use.
//
// The plan is optimal: per table, the points are sorted by address and merged
// into atoms (a point with the bit points inside it; bit points sharing a
// register), and a dynamic program over the atoms chooses where requests
// start and end. An optimal plan never needs requests that interleave or
// overlap, so choosing contiguous runs of atoms loses nothing. Ties in cost
// go to fewer requests, then fewer registers. Planning n atoms takes
// O(n·k) time, k being the most atoms one request can span.
//
// A point with a [Point.ScaleFactor] is always planned in a request that
// also reads its factor's register: a hard constraint, not a preference.
// The request is widened to the factor when it lies outside the point's
// neighbours, and a factor shared by points far apart is read again in
// each request that needs it. A point that cannot be read with its factor
// in one request (too far for the limit, a forbidden address between, no
// such point among those planned) is unplanned.
type Planner struct {
	limits Limits
	cost   CostModel

	mu        sync.RWMutex
	forbidden map[Table][]AddressRange // per table, sorted, disjoint, not adjacent
	splits    map[Table][]int          // per table, sorted: no request reads both b-1 and b
}

// NewPlanner returns a planner for a device with the given limits (zero
// fields take the protocol's defaults) under the given cost model.
func NewPlanner(limits Limits, cost CostModel) *Planner {
	pl := &Planner{limits: limits, cost: cost, forbidden: make(map[Table][]AddressRange), splits: make(map[Table][]int)}
	for _, r := range limits.Forbidden {
		pl.Forbid(r.Table, r.First, r.Last)
	}
	return pl
}

// Forbid marks addresses first to last (inclusive) of table as never to be
// read again, for example a hole the device answered Illegal Data Address to.
// Later plans avoid it: a point inside it becomes unplanned.
func (pl *Planner) Forbid(table Table, first, last uint16) {
	if first > last {
		first, last = last, first
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	rs := append(pl.forbidden[table], AddressRange{Table: table, First: first, Last: last})
	slices.SortFunc(rs, func(a, b AddressRange) int { return cmp.Compare(a.First, b.First) })
	merged := rs[:1]
	for _, r := range rs[1:] {
		top := &merged[len(merged)-1]
		if int(r.First) <= int(top.Last)+1 {
			top.Last = max(top.Last, r.Last)
			continue
		}
		merged = append(merged, r)
	}
	pl.forbidden[table] = merged
}

// Split makes later plans never read addresses addr-1 and addr of table in
// one request, for example where a device refused a request without gaps
// that it answers in parts (a block boundary, or a request size limit it
// does not declare). A point that itself spans the boundary is still read
// whole. Split of address 0 does nothing.
func (pl *Planner) Split(table Table, addr uint16) {
	if addr == 0 {
		return
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	ss := pl.splits[table]
	k, found := slices.BinarySearch(ss, int(addr))
	if !found {
		pl.splits[table] = slices.Insert(ss, k, int(addr))
	}
}

// Splits returns the addresses of table given to [Planner.Split], sorted.
func (pl *Planner) Splits(table Table) []uint16 {
	pl.mu.RLock()
	defer pl.mu.RUnlock()
	out := make([]uint16, len(pl.splits[table]))
	for i, b := range pl.splits[table] {
		out[i] = uint16(b)
	}
	return out
}

// Forbidden returns the ranges the planner never reads: the limits' and
// the learned ones, merged, by table and address.
func (pl *Planner) Forbidden() []AddressRange {
	pl.mu.RLock()
	defer pl.mu.RUnlock()
	var out []AddressRange
	for _, t := range tables {
		out = append(out, pl.forbidden[t]...)
	}
	return out
}

// Limits returns the limits the planner was made with.
func (pl *Planner) Limits() Limits { return pl.limits }

// CostModel returns the cost model the planner minimises.
func (pl *Planner) CostModel() CostModel { return pl.cost }

// tables in plan order.
var tables = [...]Table{Holding, Input, Coil, Discrete}

// atom is a maximal run of points whose registers overlap: they must be read
// by one request. Its points are idx[from:to] of Plan's scratch.
type atom struct {
	first, last int
	lo, hi      int // first..last widened to the scale factors its points need
	from, to    int
}

// score orders plans: by cost, then number of requests, then registers.
type score struct {
	cost      time.Duration
	requests  int
	registers int
}

func (s score) less(o score) bool {
	if s.cost != o.cost {
		return s.cost < o.cost
	}
	if s.requests != o.requests {
		return s.requests < o.requests
	}
	return s.registers < o.registers
}

// Plan returns the cheapest plan that reads every point, grouping each
// table's points into requests. The points should have passed
// [ValidatePoints]; any that cannot be read are listed in Plan.Unplanned.
func (pl *Planner) Plan(points []Point) Plan {
	plan := Plan{points: points, model: pl.cost}
	if len(points) == 0 {
		return plan
	}
	pl.mu.RLock()
	defer pl.mu.RUnlock()
	items := make([]item, 0, len(points))
	sfs := scaleFactorIndex(points)
	for i, p := range points {
		ti := tableIndex(p.Table)
		n := int(p.Registers())
		if ti < 0 || n == 0 || int(p.Address)+n-1 > 0xFFFF {
			plan.Unplanned = append(plan.Unplanned, i)
			continue
		}
		t := tables[ti]
		first, last := int(p.Address), int(p.Address)+n-1
		lo, hi, ok := first, last, true
		if p.ScaleFactor != "" {
			lo, hi, ok = scaleFactorSpan(points, sfs, i, first, last)
		}
		// A point that cannot be read alone (with its scale factor) is
		// unplanned; the others, even bit points inside it, are still read.
		if !ok || hi-lo+1 > int(pl.limits.Max(t)) || hits(pl.forbidden[t], lo, hi) {
			plan.Unplanned = append(plan.Unplanned, i)
			continue
		}
		items = append(items, item{ti, first, last, lo, hi, i})
	}
	slices.SortFunc(items, func(a, b item) int {
		if a.table != b.table {
			return a.table - b.table
		}
		if a.first != b.first {
			return a.first - b.first
		}
		if a.last != b.last {
			return a.last - b.last
		}
		return a.i - b.i
	})
	// Scratch shared by the tables: atoms, the dynamic program's arrays and
	// one backing array for every request's point indexes.
	atoms := make([]atom, 0, len(items))
	best := make([]score, len(items)+1)
	from := make([]int, len(items)+1)
	span := make([][2]int, len(items)+1)
	idx := make([]int, 0, len(items))
	for start := 0; start < len(items); {
		ti := items[start].table
		end := start
		for end < len(items) && items[end].table == ti {
			end++
		}
		t := tables[ti]
		maxQ := int(pl.limits.Max(t))
		atoms = atoms[:0]
		var cur atom
		for k, it := range items[start:end] {
			if k == 0 || it.first > cur.last {
				if k > 0 {
					atoms = pl.flush(&plan, atoms, cur, idx, maxQ)
				}
				cur = atom{first: it.first, last: it.last, lo: it.lo, hi: it.hi, from: len(idx)}
			}
			cur.last = max(cur.last, it.last)
			cur.lo, cur.hi = min(cur.lo, it.lo), max(cur.hi, it.hi)
			idx = append(idx, it.i)
		}
		atoms = pl.flush(&plan, atoms, cur, idx, maxQ)
		pl.planTable(&plan, t, atoms, idx, best, from, span, maxQ)
		start = end
	}
	slices.Sort(plan.Unplanned)
	return plan
}

// item is one plannable point: its table's index in tables, its registers.
type item struct {
	table       int
	first, last int
	lo, hi      int // first..last widened to the point's scale factor
	i           int
}

func tableIndex(t Table) int {
	switch t {
	case Holding:
		return 0
	case Input:
		return 1
	case Coil:
		return 2
	case Discrete:
		return 3
	}
	return -1
}

// flush ends atom a, whose points are idx[a.from:], and appends it to atoms.
func (pl *Planner) flush(plan *Plan, atoms []atom, a atom, idx []int, maxQ int) []atom {
	a.to = len(idx)
	// Only overlapping points (which validation rejects) can make an atom of
	// readable points too long.
	if a.hi-a.lo+1 > maxQ {
		plan.Unplanned = append(plan.Unplanned, idx[a.from:a.to]...)
		return atoms
	}
	return append(atoms, a)
}

// hits reports whether the sorted ranges rs share an address with first..last.
func hits(rs []AddressRange, first, last int) bool {
	k := lastStartingBy(rs, last)
	return k >= 0 && int(rs[k].Last) >= first
}

// planTable runs the dynamic program over one table's atoms and appends the
// chosen requests to plan. best[k] is the cheapest way to read atoms[:k];
// from[k] the atom where its last request starts.
func (pl *Planner) planTable(plan *Plan, t Table, atoms []atom, idx []int, best []score, from []int, span [][2]int, maxQ int) {
	m := len(atoms)
	if m == 0 {
		return
	}
	forbidden, splits := pl.forbidden[t], pl.splits[t]
	perReq, perUnit := pl.cost.PerRequest, pl.cost.PerRegister
	if t.IsBits() {
		perUnit = pl.cost.PerBit
	}
	best[0] = score{}
	for j := 0; j < m; j++ {
		end := atoms[j].last
		// The request ending with atom j may start no lower than just past
		// the last forbidden address below it.
		low := 0
		if k := lastStartingBy(forbidden, end); k >= 0 {
			low = int(forbidden[k].Last) + 1
		}
		// ... and no lower than the last split at or below the atom's first
		// address (a split inside the atom cannot apply: its points are
		// read whole).
		if k, found := slices.BinarySearch(splits, atoms[j].first); found {
			low = max(low, splits[k])
		} else if k > 0 {
			low = max(low, splits[k-1])
		}
		first := true
		lo, hi := atoms[j].lo, atoms[j].hi
		for i := j; i >= 0; i-- {
			// The request reads atoms i..j and the scale factors of their
			// points (lo..hi), which may lie outside them.
			lo, hi = min(lo, atoms[i].lo), max(hi, atoms[i].hi)
			q := hi - lo + 1
			// No forbidden address is in lo..hi outside atoms i..j: each
			// point's span with its factor was checked on its own.
			if atoms[i].first < low || q > maxQ {
				break
			}
			s := score{best[i].cost + perReq + time.Duration(q)*perUnit, best[i].requests + 1, best[i].registers + q}
			if first || s.less(best[j+1]) {
				best[j+1], from[j+1], span[j+1], first = s, i, [2]int{lo, hi}, false
			}
		}
	}
	n := 0
	for k := m; k > 0; k = from[k] {
		n++
	}
	at := len(plan.Requests)
	plan.Requests = slices.Grow(plan.Requests, n)[:at+n]
	for k := m; k > 0; k = from[k] {
		n--
		i := from[k]
		lo, hi := atoms[i].from, atoms[k-1].to
		plan.Requests[at+n] = Request{Table: t, Address: uint16(span[k][0]),
			Quantity: uint16(span[k][1] - span[k][0] + 1), Points: idx[lo:hi:hi]}
	}
	plan.Cost += best[m].cost
}

// lastStartingBy returns the index of the last of the sorted ranges rs that
// starts at or before address a, or -1.
func lastStartingBy(rs []AddressRange, a int) int {
	k, _ := slices.BinarySearchFunc(rs, a, func(r AddressRange, a int) int { return cmp.Compare(int(r.First), a+1) })
	return k - 1
}

// scaleFactorIndex maps the names of points to their indexes when any point
// names a scale factor; nil otherwise (no allocation for plain maps).
func scaleFactorIndex(points []Point) map[string]int {
	var m map[string]int
	for i := range points {
		if points[i].ScaleFactor != "" {
			m = make(map[string]int, len(points))
			break
		}
	}
	if m != nil {
		for i := range points {
			m[points[i].Name] = i
		}
	}
	return m
}

// scaleFactorSpan returns the registers a request must read for point i
// (first..last) and its scale factor: ok is false when the factor is not
// among points or not in the point's table.
func scaleFactorSpan(points []Point, sfs map[string]int, i, first, last int) (lo, hi int, ok bool) {
	j, found := sfs[points[i].ScaleFactor]
	if !found || points[j].Table != points[i].Table || j == i {
		return 0, 0, false
	}
	f := &points[j]
	n := max(int(f.Registers()), 1)
	return min(first, int(f.Address)), max(last, int(f.Address)+n-1), true
}
