package modbus

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// The cost models the comparison runs under: Modbus TCP on a LAN (1 ms round
// trip, 100 Mbit/s: a request costs as much as ~6000 registers, so the
// cheapest plan is the one with fewest requests, then fewest registers), and
// RTU at 9600 baud 8N1 (a request costs about ten registers).
var (
	benchTCP = TCPCost(time.Millisecond, 12.5e6)
	benchRTU = RTUCost(9600, 8, 0, 1)
)

// telegrafMaxExtra is Telegraf's default fill limit for its max_insert
// optimisation (optimization_args max_extra_registers / optimization
// max_register_fill: 50 registers).
const telegrafMaxExtra = 50

// maxInsert plans like Telegraf's modbus input with optimization =
// "max_insert": per table, the points sorted by address, each point joins the
// current request while the hole before it is at most maxExtra registers and
// the request stays within the device's limit (125 registers, 2000 bits);
// otherwise it starts a new request. Telegraf knows no forbidden ranges; to
// compare like with like, a hole that holds a forbidden address is never
// filled here either, so its plans are valid under the same limits.
func maxInsert(points []Point, lim Limits, maxExtra int, cost CostModel) Plan {
	plan := Plan{points: points, model: cost}
	for _, t := range tables {
		var idx []int
		for i, p := range points {
			if p.Table == t {
				idx = append(idx, i)
			}
		}
		slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(points[a].Address, points[b].Address) })
		maxQ := int(lim.Max(t))
		var cur *Request
		end := 0
		for _, i := range idx {
			p := points[i]
			first, last := int(p.Address), int(p.Address)+int(p.Registers())-1
			if cur != nil {
				hole := first - end - 1
				newEnd := max(end, last)
				holeForbidden := false
				for _, f := range lim.Forbidden {
					if hole > 0 && f.Overlaps(t, uint16(end+1), uint16(first-1)) {
						holeForbidden = true
					}
				}
				if hole <= maxExtra && newEnd-int(cur.Address)+1 <= maxQ && !holeForbidden {
					end = newEnd
					cur.Quantity = uint16(end - int(cur.Address) + 1)
					cur.Points = append(cur.Points, i)
					continue
				}
			}
			plan.Requests = append(plan.Requests, Request{Table: t, Address: uint16(first), Quantity: uint16(last - first + 1), Points: []int{i}})
			cur, end = &plan.Requests[len(plan.Requests)-1], last
		}
	}
	for _, r := range plan.Requests {
		plan.Cost += cost.Cost(r.Table, r.Quantity)
	}
	return plan
}

// counts is what a plan reads per cycle.
type counts struct {
	Requests  int `yaml:"requests"`
	Registers int `yaml:"registers"`
	Bits      int `yaml:"bits"`
}

func countsOf(p Plan) counts { return counts{len(p.Requests), p.Registers(), p.Bits()} }

// expectation is one map's entry in testdata/planner/expected.yaml.
type expectation struct {
	TCP       counts `yaml:"tcp"`
	RTU       counts `yaml:"rtu"`
	MaxInsert counts `yaml:"max_insert"`
}

func loadPlannerMaps(t testing.TB) (map[string]*Profile, map[string]expectation) {
	t.Helper()
	files, err := filepath.Glob("testdata/planner/*.yaml")
	require.NoError(t, err)
	maps := make(map[string]*Profile)
	for _, f := range files {
		if filepath.Base(f) == "expected.yaml" {
			continue
		}
		p, err := LoadProfileFile(f)
		require.NoError(t, err)
		maps[filepath.Base(f)] = p
	}
	require.GreaterOrEqual(t, len(maps), 3)
	data, err := os.ReadFile("testdata/planner/expected.yaml")
	require.NoError(t, err)
	var want map[string]expectation
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&want))
	return maps, want
}

// assertBeatsMaxInsert checks the claims against max_insert on one map.
func assertBeatsMaxInsert(t *testing.T, name string, points []Point, lim Limits) (tcp, rtu, mi, miRTU Plan) {
	t.Helper()
	tcp = NewPlanner(lim, benchTCP).Plan(points)
	rtu = NewPlanner(lim, benchRTU).Plan(points)
	mi = maxInsert(points, lim, telegrafMaxExtra, benchTCP)
	miRTU = maxInsert(points, lim, telegrafMaxExtra, benchRTU)
	checkPlan(t, mi, points, lim, benchTCP) // the baseline is a valid plan too
	checkPlan(t, tcp, points, lim, benchTCP)
	checkPlan(t, rtu, points, lim, benchRTU)
	// TCP: never more requests, nor more registers at the same count.
	require.LessOrEqual(t, len(tcp.Requests), len(mi.Requests), "%s: requests\nours:\n%s\nmax_insert:\n%s", name, tcp, mi)
	if len(tcp.Requests) == len(mi.Requests) {
		require.LessOrEqual(t, tcp.Registers()+tcp.Bits(), mi.Registers()+mi.Bits(), "%s: registers\nours:\n%s\nmax_insert:\n%s", name, tcp, mi)
	}
	// RTU at 9600 baud: never more estimated bus time per cycle.
	require.LessOrEqual(t, rtu.Cost, miRTU.Cost, "%s: bus time\nours:\n%s\nmax_insert:\n%s", name, rtu, miRTU)
	return tcp, rtu, mi, miRTU
}

// TestPlannerVersusMaxInsert: on the maps in testdata/planner, the planner
// gives the request and register counts written in expected.yaml, never
// more requests than Telegraf's max_insert under TCP (nor more registers at
// the same count), and never more bus time under RTU at 9600 baud.
func TestPlannerVersusMaxInsert(t *testing.T) {
	maps, want := loadPlannerMaps(t)
	for name, p := range maps {
		t.Run(name, func(t *testing.T) {
			tcp, rtu, mi, miRTU := assertBeatsMaxInsert(t, name, p.Points, p.Limits)
			if os.Getenv("M2MB_PRINT_PLANS") != "" {
				fmt.Printf("%s:\n  tcp:        {requests: %d, registers: %d, bits: %d}\n  rtu:        {requests: %d, registers: %d, bits: %d}\n  max_insert: {requests: %d, registers: %d, bits: %d}\n",
					name, len(tcp.Requests), tcp.Registers(), tcp.Bits(), len(rtu.Requests), rtu.Registers(), rtu.Bits(), len(mi.Requests), mi.Registers(), mi.Bits())
				fmt.Printf("# ours tcp\n%s\n# ours rtu\n%s\n# max_insert (rtu cost)\n%s\n\n", tcp, rtu, miRTU)
			}
			w, ok := want[name]
			require.True(t, ok, "no expectation for %s in expected.yaml", name)
			assert.Equal(t, w.TCP, countsOf(tcp), "tcp")
			assert.Equal(t, w.RTU, countsOf(rtu), "rtu")
			assert.Equal(t, w.MaxInsert, countsOf(mi), "max_insert")
		})
	}
}

// randomWideMap returns a valid random map of n points over a few thousand
// addresses of the four tables, with random forbidden ranges and limits.
func randomWideMap(rng *rand.Rand, n int) ([]Point, Limits) {
	for {
		var lim Limits
		if rng.IntN(3) == 0 {
			lim.MaxRegisters = uint16(20 + rng.IntN(106))
		}
		for range rng.IntN(4) {
			first := uint16(rng.IntN(2000))
			lim.Forbidden = append(lim.Forbidden, AddressRange{Table: []Table{Holding, Input, Coil, Discrete}[rng.IntN(4)], First: first, Last: first + uint16(rng.IntN(40))})
		}
		types := []Type{Uint16, Int16, Float32, Int32, Float64, Uint64}
		var points []Point
		addr := map[Table]int{}
		for len(points) < n {
			t := []Table{Holding, Holding, Input, Coil, Discrete}[rng.IntN(5)]
			p := Point{Name: fmt.Sprintf("p%d", len(points)), Table: t, Type: Bool}
			addr[t] += rng.IntN(90) // holes of 0 to 89
			if !t.IsBits() {
				p.Type = types[rng.IntN(len(types))]
			}
			p.Address = uint16(addr[t])
			addr[t] += int(p.Registers())
			if ValidatePoints([]Point{p}, lim) == nil {
				points = append(points, p)
			}
		}
		if ValidatePoints(points, lim) == nil {
			return points, lim
		}
	}
}

func TestPlannerVersusMaxInsertRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 1))
	for m := range 300 {
		points, lim := randomWideMap(rng, 5+rng.IntN(60))
		assertBeatsMaxInsert(t, fmt.Sprintf("random map %d", m), points, lim)
	}
}

// BenchmarkPlan plans each testdata map with the planner (TCP and RTU cost
// models) and with max_insert, reporting per cycle the requests, registers
// (plus bits) and estimated RTU bus time each plan gives, and plans per
// second.
func BenchmarkPlan(b *testing.B) {
	maps, _ := loadPlannerMaps(b)
	names := make([]string, 0, len(maps))
	for name := range maps {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p := maps[name]
		for _, c := range []struct {
			name string
			plan func() Plan
		}{
			{"ours-tcp", func() func() Plan {
				pl := NewPlanner(p.Limits, benchTCP)
				return func() Plan { return pl.Plan(p.Points) }
			}()},
			{"ours-rtu9600", func() func() Plan {
				pl := NewPlanner(p.Limits, benchRTU)
				return func() Plan { return pl.Plan(p.Points) }
			}()},
			{"max_insert", func() Plan { return maxInsert(p.Points, p.Limits, telegrafMaxExtra, benchRTU) }},
		} {
			b.Run(strings.TrimSuffix(name, ".yaml")+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				var plan Plan
				for b.Loop() {
					plan = c.plan()
				}
				rtuCost := time.Duration(0)
				for _, r := range plan.Requests {
					rtuCost += benchRTU.Cost(r.Table, r.Quantity)
				}
				b.ReportMetric(float64(len(plan.Requests)), "requests")
				b.ReportMetric(float64(plan.Registers()+plan.Bits()), "registers")
				b.ReportMetric(float64(rtuCost)/float64(time.Millisecond), "rtu-ms/cycle")
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "plans/s")
			})
		}
	}
}
