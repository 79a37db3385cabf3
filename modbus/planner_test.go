package modbus

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func reqs(p Plan) []string {
	var out []string
	for _, r := range p.Requests {
		out = append(out, fmt.Sprintf("%s %d+%d %v", r.Table, r.Address, r.Quantity, r.Points))
	}
	return out
}

func TestPlanBasics(t *testing.T) {
	rtu := RTUCost(9600, 8, 0, 1) // a request is worth ~10 registers
	tests := []struct {
		name   string
		limits Limits
		cost   CostModel
		points []Point
		want   []string
		unplan []int
	}{
		{"empty", Limits{}, rtu, nil, nil, nil},
		{"small hole joined", Limits{}, rtu, []Point{
			{Name: "a", Table: Input, Address: 0, Type: Float32},
			{Name: "b", Table: Input, Address: 6, Type: Float32},
		}, []string{"input 0+8 [0 1]"}, nil},
		{"large hole split", Limits{}, rtu, []Point{
			{Name: "a", Table: Input, Address: 0, Type: Float32},
			{Name: "b", Table: Input, Address: 40, Type: Float32},
		}, []string{"input 0+2 [0]", "input 40+2 [1]"}, nil},
		{"tcp joins within the limit", Limits{}, TCPCost(time.Millisecond, 1e7), []Point{
			{Name: "a", Table: Holding, Address: 0, Type: Uint16},
			{Name: "b", Table: Holding, Address: 124, Type: Uint16},
			{Name: "c", Table: Holding, Address: 125, Type: Uint16},
		}, []string{"holding 0+1 [0]", "holding 124+2 [1 2]"}, nil},
		{"max registers", Limits{MaxRegisters: 4}, TCPCost(time.Millisecond, 0), []Point{
			{Name: "a", Table: Holding, Address: 0, Type: Float32},
			{Name: "b", Table: Holding, Address: 2, Type: Float32},
			{Name: "c", Table: Holding, Address: 4, Type: Float32},
		}, []string{"holding 0+4 [0 1]", "holding 4+2 [2]"}, nil},
		{"forbidden hole never read", Limits{Forbidden: []AddressRange{{Table: Input, First: 3, Last: 3}}}, rtu, []Point{
			{Name: "a", Table: Input, Address: 0, Type: Float32},
			{Name: "b", Table: Input, Address: 4, Type: Float32},
		}, []string{"input 0+2 [0]", "input 4+2 [1]"}, nil},
		{"forbidden in another table ignored", Limits{Forbidden: []AddressRange{{Table: Holding, First: 3, Last: 3}}}, rtu, []Point{
			{Name: "a", Table: Input, Address: 0, Type: Float32},
			{Name: "b", Table: Input, Address: 4, Type: Float32},
		}, []string{"input 0+6 [0 1]"}, nil},
		{"bit points share", Limits{}, rtu, []Point{
			{Name: "w", Table: Holding, Address: 5, Type: Uint16},
			{Name: "b0", Table: Holding, Address: 5, Type: Bool, Bit: BitOf(0)},
			{Name: "b1", Table: Holding, Address: 6, Type: Bool, Bit: BitOf(1)},
			{Name: "b2", Table: Holding, Address: 6, Type: Bool, Bit: BitOf(2)},
			{Name: "in", Table: Holding, Address: 9, Type: Bool, Bit: BitOf(2)},
			{Name: "u32", Table: Holding, Address: 8, Type: Uint32},
		}, []string{"holding 5+5 [0 1 2 3 5 4]"}, nil},
		{"tables apart, in order", Limits{}, rtu, []Point{
			{Name: "d", Table: Discrete, Address: 0, Type: Bool},
			{Name: "c", Table: Coil, Address: 0, Type: Bool},
			{Name: "i", Table: Input, Address: 0, Type: Uint16},
			{Name: "h", Table: Holding, Address: 0, Type: Uint16},
			{Name: "c2", Table: Coil, Address: 100, Type: Bool},
		}, []string{"holding 0+1 [3]", "input 0+1 [2]", "coil 0+101 [1 4]", "discrete 0+1 [0]"}, nil},
		{"max bits", Limits{MaxBits: 50}, rtu, []Point{
			{Name: "c", Table: Coil, Address: 0, Type: Bool},
			{Name: "c2", Table: Coil, Address: 100, Type: Bool},
		}, []string{"coil 0+1 [0]", "coil 100+1 [1]"}, nil},
		{"unreadable points left out", Limits{MaxRegisters: 4, Forbidden: []AddressRange{{Table: Input, First: 1, Last: 1}}}, rtu, []Point{
			{Name: "in-hole", Table: Input, Address: 0, Type: Float32},
			{Name: "too-long", Table: Input, Address: 10, Type: String, Length: 5},
			{Name: "ok", Table: Input, Address: 20, Type: Uint16},
			{Name: "bad-type", Table: Input, Address: 30, Type: "x"},
			{Name: "past-end", Table: Input, Address: 65535, Type: Float32},
		}, []string{"input 20+1 [2]"}, []int{0, 1, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl := NewPlanner(tt.limits, tt.cost)
			plan := pl.Plan(tt.points)
			assert.Equal(t, tt.want, reqs(plan))
			assert.Equal(t, tt.unplan, plan.Unplanned)
			var cost time.Duration
			for _, r := range plan.Requests {
				cost += tt.cost.Cost(r.Table, r.Quantity)
			}
			assert.Equal(t, cost, plan.Cost)
		})
	}
}

func TestPlannerForbid(t *testing.T) {
	points := []Point{
		{Name: "a", Table: Holding, Address: 0, Type: Uint16},
		{Name: "b", Table: Holding, Address: 4, Type: Uint16},
		{Name: "c", Table: Holding, Address: 8, Type: Uint16},
	}
	pl := NewPlanner(Limits{}, TCPCost(time.Millisecond, 0))
	assert.Equal(t, []string{"holding 0+9 [0 1 2]"}, reqs(pl.Plan(points)))
	pl.Forbid(Holding, 6, 5) // reversed is taken as 5-6
	assert.Equal(t, []string{"holding 0+5 [0 1]", "holding 8+1 [2]"}, reqs(pl.Plan(points)))
	pl.Forbid(Holding, 7, 7) // adjacent: merges
	pl.Forbid(Holding, 1, 3)
	assert.Equal(t, []AddressRange{{Table: Holding, First: 1, Last: 3}, {Table: Holding, First: 5, Last: 7}}, pl.Forbidden())
	assert.Equal(t, []string{"holding 0+1 [0]", "holding 4+1 [1]", "holding 8+1 [2]"}, reqs(pl.Plan(points)))
	pl.Forbid(Holding, 4, 4) // the point itself is unreadable
	plan := pl.Plan(points)
	assert.Equal(t, []string{"holding 0+1 [0]", "holding 8+1 [2]"}, reqs(plan))
	assert.Equal(t, []int{1}, plan.Unplanned)
	assert.Equal(t, []AddressRange{{Table: Holding, First: 1, Last: 7}}, pl.Forbidden())

	// A bit point inside an unreadable point is still read, alone.
	inner := []Point{
		{Name: "f", Table: Input, Address: 10, Type: Float32},
		{Name: "b", Table: Input, Address: 11, Type: Bool, Bit: BitOf(0)},
	}
	pl.Forbid(Input, 10, 10)
	plan = pl.Plan(inner)
	assert.Equal(t, []string{"input 11+1 [1]"}, reqs(plan))
	assert.Equal(t, []int{0}, plan.Unplanned)
	assert.Contains(t, plan.String(), "unplanned: f")
}

func TestPlannerConcurrent(t *testing.T) {
	p, err := BuiltinProfile("eastron-sdm630")
	require.NoError(t, err)
	pl := NewPlanner(p.Limits, RTUCost(9600, 8, 0, 1))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for a := uint16(1000); a < 1100; a++ {
			pl.Forbid(Input, a, a)
		}
	}()
	for range 100 {
		plan := pl.Plan(p.Points)
		require.Empty(t, plan.Unplanned)
	}
	<-done
}

func ExamplePlan_String() {
	points := []Point{
		{Name: "voltage_l1", Table: Input, Address: 0, Type: Float32, Unit: "V"},
		{Name: "voltage_l2", Table: Input, Address: 2, Type: Float32, Unit: "V"},
		{Name: "frequency", Table: Input, Address: 70, Type: Float32, Unit: "Hz"},
		{Name: "run", Table: Coil, Address: 3, Type: Bool},
		{Name: "fault", Table: Coil, Address: 9, Type: Bool},
	}
	pl := NewPlanner(Limits{}, RTUCost(9600, 8, 0, 1))
	fmt.Println(pl.Plan(points))
	// Output:
	// input: 2 requests, 6 registers, 54.167ms
	//   0-3 (4 registers, 29.167ms): voltage_l1 voltage_l2
	//   70-71 (2 registers, 25ms): frequency
	// coil: 1 request, 7 bits, 21.745ms
	//   3-9 (7 bits, 21.745ms): run fault
	// total: 3 requests, 75.911ms
}
