package modbus

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// randomMap returns a valid random register map of up to maxPoints points
// over one or two tables, with random limits and forbidden ranges.
func randomMap(rng *rand.Rand, maxPoints int) ([]Point, Limits) {
	for {
		var lim Limits
		if rng.IntN(2) == 0 {
			lim.MaxRegisters = uint16(2 + rng.IntN(20))
		}
		if rng.IntN(2) == 0 {
			lim.MaxBits = uint16(1 + rng.IntN(30))
		}
		tablesUsed := []Table{Holding, Input, Coil}[:1+rng.IntN(3)]
		for range rng.IntN(3) {
			first := uint16(rng.IntN(60))
			lim.Forbidden = append(lim.Forbidden, AddressRange{Table: tablesUsed[rng.IntN(len(tablesUsed))], First: first, Last: first + uint16(rng.IntN(4))})
		}
		n := 1 + rng.IntN(maxPoints)
		var points []Point
		for i := 0; len(points) < n && i < 100; i++ {
			p := Point{Name: "p" + string(rune('a'+len(points))), Table: tablesUsed[rng.IntN(len(tablesUsed))], Address: uint16(rng.IntN(64))}
			if p.Table == Coil {
				p.Type = Bool
			} else {
				switch rng.IntN(6) {
				case 0:
					p.Type = Uint16
				case 1:
					p.Type = Float32
				case 2:
					p.Type = Float64
				case 3:
					p.Type, p.Bit = Bool, BitOf(uint8(rng.IntN(3)))
				case 4:
					p.Type, p.Length = String, uint16(1+rng.IntN(3))
				default:
					p.Type = Int32
				}
			}
			if ValidatePoints(append(slices.Clone(points), p), lim) == nil {
				points = append(points, p)
			}
		}
		if len(points) > 0 {
			return points, lim
		}
	}
}

// exhaustive returns the best score over every partition of the points into
// requests (each block one request spanning its points), by brute force with
// branch and bound, and whether any valid partition exists.
func exhaustive(points []Point, lim Limits, cost CostModel) (score, bool) {
	order := make([]int, len(points))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return int(points[a].Address) - int(points[b].Address) })
	type block struct {
		table       Table
		first, last int
	}
	valid := func(b block) bool {
		if b.last-b.first+1 > int(lim.Max(b.table)) {
			return false
		}
		for _, r := range lim.Forbidden {
			if r.Overlaps(b.table, uint16(b.first), uint16(b.last)) {
				return false
			}
		}
		return true
	}
	blockScore := func(bs []block) score {
		var s score
		for _, b := range bs {
			q := b.last - b.first + 1
			s.cost += cost.Cost(b.table, uint16(q))
			s.requests++
			s.registers += q
		}
		return s
	}
	var best score
	found := false
	var blocks []block
	var rec func(k int)
	rec = func(k int) {
		if found && !blockScore(blocks).less(best) {
			return // blocks only grow: no completion can do better
		}
		if k == len(order) {
			best, found = blockScore(blocks), true
			return
		}
		p := points[order[k]]
		first, last := int(p.Address), int(p.Address)+int(p.Registers())-1
		for i := range blocks {
			if blocks[i].table != p.Table {
				continue
			}
			saved := blocks[i]
			blocks[i].first, blocks[i].last = min(saved.first, first), max(saved.last, last)
			if valid(blocks[i]) {
				rec(k + 1)
			}
			blocks[i] = saved
		}
		nb := block{p.Table, first, last}
		if valid(nb) {
			blocks = append(blocks, nb)
			rec(k + 1)
			blocks = blocks[:len(blocks)-1]
		}
	}
	rec(0)
	return best, found
}

// checkPlan asserts that plan is a valid plan of points: each point read once,
// by a request of its table covering its registers, within the limits,
// reading no forbidden address, and Cost is the sum of the requests' costs.
func checkPlan(t *testing.T, plan Plan, points []Point, lim Limits, cost CostModel) score {
	t.Helper()
	seen := make([]bool, len(points))
	var s score
	for _, r := range plan.Requests {
		require.NotZero(t, r.Quantity)
		require.LessOrEqual(t, r.Quantity, lim.Max(r.Table), "%+v", r)
		require.LessOrEqual(t, int(r.Address)+int(r.Quantity)-1, 0xFFFF)
		for _, f := range lim.Forbidden {
			require.False(t, f.Overlaps(r.Table, r.Address, r.Last()), "request %+v reads forbidden %s", r, f)
		}
		for _, i := range r.Points {
			p := points[i]
			require.False(t, seen[i], "point %d read twice", i)
			seen[i] = true
			require.Equal(t, p.Table, r.Table)
			require.GreaterOrEqual(t, p.Address, r.Address)
			require.LessOrEqual(t, int(p.Address)+int(p.Registers())-1, int(r.Last()))
		}
		s.cost += cost.Cost(r.Table, r.Quantity)
		s.requests++
		s.registers += int(r.Quantity)
	}
	for _, i := range plan.Unplanned {
		require.False(t, seen[i])
		seen[i] = true
	}
	for i, ok := range seen {
		require.True(t, ok, "point %d neither planned nor unplanned", i)
	}
	require.Equal(t, s.cost, plan.Cost)
	return s
}

// TestPlanIsOptimal compares the planner with exhaustive search over every
// partition of the points into requests, on many random small maps with
// random limits, forbidden ranges and cost models.
func TestPlanIsOptimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(2026, 11))
	maps := 600
	if testing.Short() {
		maps = 100
	}
	for m := range maps {
		points, lim := randomMap(rng, 10)
		cost := CostModel{
			PerRequest:  time.Duration(rng.IntN(60)),
			PerRegister: time.Duration(rng.IntN(8)),
			PerBit:      time.Duration(rng.IntN(3)),
		}
		switch m % 4 {
		case 0:
			cost = RTUCost(9600, 8, 0, 1)
		case 1:
			cost = TCPCost(time.Millisecond, 1e6)
		}
		plan := NewPlanner(lim, cost).Plan(points)
		require.Empty(t, plan.Unplanned, "map %d: valid points are all plannable", m)
		got := checkPlan(t, plan, points, lim, cost)
		want, ok := exhaustive(points, lim, cost)
		require.True(t, ok, "map %d", m)
		require.Equal(t, want, got, "map %d: %+v limits %+v cost %+v\n%s", m, points, lim, cost, plan)
	}
}

// TestPlanLearnedHoles: after Forbid, plans avoid the learned holes and stay
// optimal for the new constraints.
func TestPlanLearnedHoles(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for m := range 200 {
		points, lim := randomMap(rng, 8)
		cost := RTUCost(9600, 8, 0, 1)
		pl := NewPlanner(lim, cost)
		first := uint16(rng.IntN(64))
		hole := AddressRange{Table: points[0].Table, First: first, Last: first + uint16(rng.IntN(3))}
		pl.Forbid(hole.Table, hole.First, hole.Last)
		plan := pl.Plan(points)
		lim2 := lim
		lim2.Forbidden = append(slices.Clone(lim.Forbidden), hole)
		// Points inside the hole are unplanned; the rest are planned optimally.
		var readable []Point
		for i, p := range points {
			inHole := hole.Overlaps(p.Table, p.Address, p.Address+p.Registers()-1)
			require.Equal(t, inHole, slices.Contains(plan.Unplanned, i), "map %d point %d", m, i)
			if !inHole {
				readable = append(readable, p)
			}
		}
		got := checkPlan(t, plan, points, lim2, cost)
		if len(readable) == 0 {
			require.Empty(t, plan.Requests)
			continue
		}
		want, ok := exhaustive(readable, lim2, cost)
		require.True(t, ok)
		require.Equal(t, want, got, "map %d", m)
	}
}

// TestPlanSplits: after Split, no request reads both sides of a boundary,
// and plans stay optimal under that constraint (exhaustive search over
// partitions that respect the boundaries).
func TestPlanSplits(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 3))
	for m := range 300 {
		points, lim := randomMap(rng, 8)
		cost := CostModel{PerRequest: time.Duration(1 + rng.IntN(60)), PerRegister: time.Duration(rng.IntN(8)), PerBit: time.Duration(rng.IntN(3))}
		pl := NewPlanner(lim, cost)
		// Boundaries between points (none strictly inside one), per table.
		splits := map[Table][]int{}
		for range 1 + rng.IntN(3) {
			p := points[rng.IntN(len(points))]
			b := int(p.Address) + int(p.Registers()) + rng.IntN(3)
			inside := false
			for _, q := range points {
				if q.Table == p.Table && int(q.Address) < b && b <= int(q.Address)+int(q.Registers())-1 {
					inside = true
				}
			}
			if inside || b > 0xFFFF {
				continue
			}
			pl.Split(p.Table, uint16(b))
			splits[p.Table] = append(splits[p.Table], b)
		}
		plan := pl.Plan(points)
		require.Empty(t, plan.Unplanned, "map %d", m)
		got := checkPlan(t, plan, points, lim, cost)
		for _, r := range plan.Requests {
			for _, b := range splits[r.Table] {
				require.False(t, int(r.Address) < b && b <= int(r.Last()), "map %d: request %+v crosses split %d\n%s", m, r, b, plan)
			}
		}
		want, ok := exhaustiveSplit(points, lim, cost, splits)
		require.True(t, ok, "map %d", m)
		require.Equal(t, want, got, "map %d: splits %v\n%s", m, splits, plan)
	}
}

// exhaustiveSplit is exhaustive with boundaries: a block may not read both
// b-1 and b.
func exhaustiveSplit(points []Point, lim Limits, cost CostModel, splits map[Table][]int) (score, bool) {
	// Model each boundary as a one-address forbidden range would be too
	// strong (it would forbid the address itself), so filter partitions:
	// search with the plain exhaustive over each side of every boundary.
	type side struct {
		table Table
		lo    int
	}
	group := map[side][]Point{}
	for _, p := range points {
		lo := 0
		for _, b := range splits[p.Table] {
			if b <= int(p.Address) {
				lo = max(lo, b)
			}
		}
		group[side{p.Table, lo}] = append(group[side{p.Table, lo}], p)
	}
	var total score
	for _, pts := range group {
		s, ok := exhaustive(pts, lim, cost)
		if !ok {
			return score{}, false
		}
		total.cost += s.cost
		total.requests += s.requests
		total.registers += s.registers
	}
	return total, true
}
