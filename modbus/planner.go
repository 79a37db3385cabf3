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
	Table    Table
	Address  uint16
	Quantity uint16
	Points   []int
}

// Last returns the last address the request reads.
func (r Request) Last() uint16 { return r.Address + r.Quantity - 1 }

// Plan is how to read a set of points: the requests, in table order
// (holding, input, coil, discrete) and address order within a table, and
// their estimated total cost under the planner's [CostModel].
type Plan struct {
	Requests []Request
	Cost     time.Duration
	// Unplanned lists the points no request may read: a point with a register
	// in a forbidden range (given in the limits or learned with
	// [Planner.Forbid]), one longer than a request may be, or one of an
	// unknown table or type. They are left out of every request.
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
// ([Planner.Forbid]). A Planner is safe for concurrent use.
//
// The plan is optimal: per table, the points are sorted by address and merged
// into atoms (a point with the bit points inside it; bit points sharing a
// register), and a dynamic program over the atoms chooses where requests
// start and end. An optimal plan never needs requests that interleave or
// overlap, so choosing contiguous runs of atoms loses nothing. Ties in cost
// go to fewer requests, then fewer registers. Planning n atoms takes
// O(n·k) time, k being the most atoms one request can span.
type Planner struct {
	limits Limits
	cost   CostModel

	mu        sync.RWMutex
	forbidden map[Table][]AddressRange // per table, sorted, disjoint, not adjacent
}

// NewPlanner returns a planner for a device with the given limits (zero
// fields take the protocol's defaults) under the given cost model.
func NewPlanner(limits Limits, cost CostModel) *Planner {
	pl := &Planner{limits: limits, cost: cost, forbidden: make(map[Table][]AddressRange)}
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
// by one request.
type atom struct {
	first, last int
	points      []int
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
	pl.mu.RLock()
	defer pl.mu.RUnlock()
	type item struct {
		first, last int
		i           int
	}
	var items []item
	for _, t := range tables {
		items = items[:0]
		for i, p := range points {
			if p.Table != t {
				continue
			}
			n := int(p.Registers())
			if n == 0 || int(p.Address)+n-1 > 0xFFFF {
				plan.Unplanned = append(plan.Unplanned, i)
				continue
			}
			items = append(items, item{int(p.Address), int(p.Address) + n - 1, i})
		}
		maxQ := int(pl.limits.Max(t))
		forbidden := pl.forbidden[t]
		// A point that cannot be read alone is unplanned; the others, even
		// bit points inside it, are still read.
		items = slices.DeleteFunc(items, func(it item) bool {
			if it.last-it.first+1 > maxQ || hits(forbidden, it.first, it.last) {
				plan.Unplanned = append(plan.Unplanned, it.i)
				return true
			}
			return false
		})
		if len(items) == 0 {
			continue
		}
		slices.SortFunc(items, func(a, b item) int {
			if c := cmp.Compare(a.first, b.first); c != 0 {
				return c
			}
			if c := cmp.Compare(a.last, b.last); c != 0 {
				return c
			}
			return cmp.Compare(a.i, b.i)
		})
		atoms := make([]atom, 0, len(items))
		idx := make([]int, 0, len(items))
		flush := func(a atom) {
			// Only overlapping points (which validation rejects) can make an
			// atom of readable points too long.
			if a.last-a.first+1 > maxQ {
				plan.Unplanned = append(plan.Unplanned, a.points...)
				return
			}
			atoms = append(atoms, a)
		}
		cur := atom{first: items[0].first, last: items[0].last}
		start := 0
		for k, it := range items {
			if k > 0 && it.first > cur.last {
				cur.points = idx[start:k:k]
				flush(cur)
				cur, start = atom{first: it.first, last: it.last}, k
			}
			cur.last = max(cur.last, it.last)
			idx = append(idx, it.i)
		}
		cur.points = idx[start:len(items):len(items)]
		flush(cur)
		pl.planTable(&plan, t, atoms, forbidden, maxQ)
	}
	slices.Sort(plan.Unplanned)
	return plan
}

// hits reports whether the sorted ranges rs share an address with first..last.
func hits(rs []AddressRange, first, last int) bool {
	k, _ := slices.BinarySearchFunc(rs, last, func(r AddressRange, a int) int { return cmp.Compare(int(r.First), a+1) })
	// rs[k-1] is the last range starting at or before last.
	return k > 0 && int(rs[k-1].Last) >= first
}

// planTable runs the dynamic program over one table's atoms and appends the
// chosen requests to plan. best[k] is the cheapest way to read atoms[:k];
// from[k] the atom where its last request starts.
func (pl *Planner) planTable(plan *Plan, t Table, atoms []atom, forbidden []AddressRange, maxQ int) {
	m := len(atoms)
	if m == 0 {
		return
	}
	best := make([]score, m+1)
	from := make([]int, m+1)
	for j := 0; j < m; j++ {
		end := atoms[j].last
		// The request ending with atom j may start no lower than just past
		// the last forbidden address below it.
		low := 0
		k, _ := slices.BinarySearchFunc(forbidden, end, func(r AddressRange, a int) int { return cmp.Compare(int(r.First), a+1) })
		if k > 0 {
			low = int(forbidden[k-1].Last) + 1
		}
		first := true
		for i := j; i >= 0; i-- {
			q := end - atoms[i].first + 1
			if atoms[i].first < low || q > maxQ {
				break
			}
			s := best[i]
			s.cost += pl.cost.Cost(t, uint16(q))
			s.requests++
			s.registers += q
			if first || s.less(best[j+1]) {
				best[j+1], from[j+1], first = s, i, false
			}
		}
	}
	n := 0
	for k := m; k > 0; k = from[k] {
		n++
	}
	reqs := make([]Request, n)
	for k := m; k > 0; k = from[k] {
		n--
		i := from[k]
		r := Request{Table: t, Address: uint16(atoms[i].first), Quantity: uint16(atoms[k-1].last - atoms[i].first + 1)}
		for _, a := range atoms[i:k] {
			r.Points = append(r.Points, a.points...)
		}
		reqs[n] = r
	}
	plan.Requests = append(plan.Requests, reqs...)
	plan.Cost += best[m].cost
}
