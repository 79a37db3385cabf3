package mqtt

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
)

// The bandwidth measurement of issue 15: a simulated Eastron SDM630 (the
// built-in profile's 43 points) and a 100-point PLC map, polled every second
// for one hour of simulated time (testing/synctest: no real waiting),
// through a real Bridge, with and without report by exception (0.5 % of the
// last reported value, 5-minute heartbeat), into MQTT sinks whose client
// counts the bytes of the MQTT 5 PUBLISH packets it would send (QoS 1):
// one JSON message per sample (the reference), the batch layout, and the
// batch layout with zstd and the units in a metadata message. The sinks'
// own Write code makes the payloads; only the network is replaced.

// bandwidthHour is the simulated run: one poll a second for an hour.
const bandwidthHour = 3600

// The report by exception the issue measures.
var issueReport = bridge.Report{DeadbandPercent: 0.5, Heartbeat: 5 * time.Minute}

// simPoint is one point of a simulated device: a level that moves by
// noise around it, steps now and then, and drifts slowly.
type simPoint struct {
	name, unit string
	kind       bridge.Kind
	level      float64 // the current level, before noise
	noise      float64 // σ of the noise, relative to the level
	stepP      float64 // chance of a step each second
	stepRel    float64 // largest step, relative to the level
	lo, hi     float64 // the level stays within
	drift      float64 // amplitude of a slow sine, relative
	period     float64 // of the drift, seconds
	f32        bool    // read from a float32 register: rounded to float32
	period2    int     // counters: seconds per increment
	choices    []string
}

// simDevice produces the truth of each second.
type simDevice struct {
	name   string
	points []simPoint
	rng    *rand.Rand
	// meter state derived from the points each second
	energy map[string]float64
	demand []float64
	maxDem float64
	truth  [][]bridge.Sample // [second][point]
}

// outage is when both devices stop answering, to exercise quality changes.
const outageStart, outageEnd = 2400, 2430

func newMeter() *simDevice {
	prof, err := modbus.BuiltinProfile("eastron-sdm630")
	if err != nil {
		panic(err)
	}
	d := &simDevice{name: "meter1", rng: rand.New(rand.NewPCG(15, 1)), energy: map[string]float64{
		"import_energy": 12345.6, "export_energy": 0, "import_reactive_energy": 4321.5, "export_reactive_energy": 12.5,
	}}
	for _, p := range prof.Points {
		d.points = append(d.points, simPoint{name: p.Name, unit: p.Unit, kind: bridge.KindFloat, f32: true})
	}
	d.run()
	return d
}

// meterValues computes the SDM630's readings from three phase voltages,
// currents and power factors, which move by noise, load steps and drift.
func (d *simDevice) meterValues(sec int, st *meterState) map[string]float64 {
	r := d.rng
	v := map[string]float64{}
	var pTot, sTot, qTot, iSum float64
	for ph := range 3 {
		drift := 1 + 0.01*math.Sin(2*math.Pi*float64(sec)/3600+float64(ph))
		st.volt[ph] = 230 * drift * (1 + 0.0005*r.NormFloat64())
		if r.Float64() < 1.0/400 { // a load switches
			st.amp[ph] = min(max(st.amp[ph]*(1+0.6*(r.Float64()-0.5)), 2), 60)
		}
		i := st.amp[ph] * (1 + 0.001*r.NormFloat64())
		if r.Float64() < 1.0/900 {
			st.pf[ph] = min(max(st.pf[ph]*(1+0.06*(r.Float64()-0.5)), 0.6), 0.999)
		}
		pf := min(st.pf[ph]*(1+0.0005*r.NormFloat64()), 1)
		s := st.volt[ph] * i
		p := s * pf
		q := s * math.Sin(math.Acos(pf))
		n := fmt.Sprint("_l", ph+1)
		v["voltage"+n], v["current"+n], v["power"+n] = st.volt[ph], i, p
		v["apparent_power"+n], v["reactive_power"+n] = s, q
		v["power_factor"+n], v["phase_angle"+n] = pf, math.Acos(pf)*180/math.Pi
		pTot, sTot, qTot, iSum = pTot+p, sTot+s, qTot+q, iSum+i
	}
	v["voltage_ln_average"] = (st.volt[0] + st.volt[1] + st.volt[2]) / 3
	v["voltage_l1_l2"] = math.Sqrt(3) * (st.volt[0] + st.volt[1]) / 2
	v["voltage_l2_l3"] = math.Sqrt(3) * (st.volt[1] + st.volt[2]) / 2
	v["voltage_l3_l1"] = math.Sqrt(3) * (st.volt[2] + st.volt[0]) / 2
	v["current_average"], v["current_sum"] = iSum/3, iSum
	v["current_neutral"] = math.Abs(st.amp[0]-st.amp[1])*0.3 + 0.8 + 0.0008*r.NormFloat64()
	v["power_total"], v["apparent_power_total"], v["reactive_power_total"] = pTot, sTot, qTot
	v["power_factor_total"] = pTot / sTot
	v["phase_angle_total"] = math.Acos(pTot/sTot) * 180 / math.Pi
	v["frequency"] = 50 * (1 + 0.0002*r.NormFloat64())
	d.energy["import_energy"] += pTot / 3.6e6
	d.energy["import_reactive_energy"] += qTot / 3.6e6
	for k, e := range d.energy {
		v[k] = e
	}
	v["total_energy"] = d.energy["import_energy"] + d.energy["export_energy"]
	v["total_reactive_energy"] = d.energy["import_reactive_energy"] + d.energy["export_reactive_energy"]
	// Demand: the mean power of the last 15 minutes, and its maximum.
	d.demand = append(d.demand, pTot)
	if len(d.demand) > 900 {
		d.demand = d.demand[1:]
	}
	var sum float64
	for _, x := range d.demand {
		sum += x
	}
	v["power_demand"] = sum / float64(len(d.demand))
	d.maxDem = max(d.maxDem, v["power_demand"])
	v["power_demand_max"] = d.maxDem
	return v
}

type meterState struct{ volt, amp, pf [3]float64 }

// newPLC returns a 100-point PLC map: temperatures, pressures and flows
// that move by noise with a step now and then, production counters, motor
// and alarm bits, and operating modes.
func newPLC() *simDevice {
	d := &simDevice{name: "plc1", rng: rand.New(rand.NewPCG(15, 2))}
	r := d.rng
	for i := range 40 {
		d.points = append(d.points, simPoint{name: fmt.Sprintf("temperature_%02d", i), unit: "°C", kind: bridge.KindFloat, f32: true,
			level: 20 + 70*r.Float64(), noise: 0.0003, stepP: 1.0 / 1800, stepRel: 0.05, lo: 5, hi: 120, drift: 0.03, period: 1800 + 3600*r.Float64()})
	}
	for i := range 20 {
		d.points = append(d.points, simPoint{name: fmt.Sprintf("pressure_%02d", i), unit: "bar", kind: bridge.KindFloat, f32: true,
			level: 2 + 8*r.Float64(), noise: 0.0008, stepP: 1.0 / 600, stepRel: 0.1, lo: 0.5, hi: 16})
	}
	for i := range 10 {
		d.points = append(d.points, simPoint{name: fmt.Sprintf("flow_%02d", i), unit: "m³/h", kind: bridge.KindFloat, f32: true,
			level: 10 + 90*r.Float64(), noise: 0.001, stepP: 1.0 / 300, stepRel: 0.2, lo: 1, hi: 200})
	}
	for i := range 15 {
		d.points = append(d.points, simPoint{name: fmt.Sprintf("counter_%02d", i), kind: bridge.KindUint,
			level: float64(1000 + r.IntN(50000)), period2: 20 + r.IntN(40)})
	}
	for i := range 10 {
		d.points = append(d.points, simPoint{name: fmt.Sprintf("running_%02d", i), kind: bridge.KindBool, stepP: 1.0 / 1200, level: float64(r.IntN(2))})
	}
	for i := range 5 {
		d.points = append(d.points, simPoint{name: fmt.Sprintf("mode_%02d", i), kind: bridge.KindString, stepP: 1.0 / 3600,
			choices: []string{"auto", "manual", "maintenance"}})
	}
	d.run()
	return d
}

// run computes the truth of every second of the hour.
func (d *simDevice) run() {
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	st := &meterState{amp: [3]float64{18, 22, 20}, pf: [3]float64{0.95, 0.93, 0.96}}
	d.truth = make([][]bridge.Sample, bandwidthHour)
	for sec := range bandwidthHour {
		at := t0.Add(time.Duration(sec) * time.Second)
		var meter map[string]float64
		if d.name == "meter1" {
			meter = d.meterValues(sec, st)
		}
		row := make([]bridge.Sample, len(d.points))
		for i := range d.points {
			p := &d.points[i]
			s := bridge.Sample{Source: d.name, Point: p.name, Unit: p.unit, Time: at}
			switch {
			case meter != nil:
				x, ok := meter[p.name]
				if !ok {
					panic("no model for " + p.name)
				}
				s.Value = bridge.Float(float64(float32(x)))
			case p.kind == bridge.KindFloat:
				if d.rng.Float64() < p.stepP {
					p.level = min(max(p.level*(1+2*p.stepRel*(d.rng.Float64()-0.5)), p.lo), p.hi)
				}
				x := p.level * (1 + p.drift*math.Sin(2*math.Pi*float64(sec)/max(p.period, 1))) * (1 + p.noise*d.rng.NormFloat64())
				s.Value = bridge.Float(float64(float32(x)))
			case p.kind == bridge.KindUint:
				if sec > 0 && sec%p.period2 == 0 {
					p.level++
				}
				s.Value = bridge.Uint(uint64(p.level))
			case p.kind == bridge.KindBool:
				if d.rng.Float64() < p.stepP {
					p.level = 1 - p.level
				}
				s.Value = bridge.Bool(p.level == 1)
			case p.kind == bridge.KindString:
				if d.rng.Float64() < p.stepP {
					p.level = float64(d.rng.IntN(len(p.choices)))
				}
				s.Value = bridge.String(p.choices[int(p.level)])
			}
			if sec >= outageStart && sec < outageEnd {
				s = bridge.BadSample(d.name, p.name, at, fmt.Errorf("modbus: timeout"))
				s.Unit = p.unit
			}
			row[i] = s
		}
		d.truth[sec] = row
	}
}

// countingClient is the sinks' client with the network replaced: it
// counts the bytes of the MQTT 5 PUBLISH packets it would send and keeps
// the messages.
type countingClient struct {
	bytes, msgs int
	kept        []item
	keep        bool
}

func (c *countingClient) connect(context.Context) error { return nil }
func (c *countingClient) close(context.Context) error   { return nil }
func (c *countingClient) generation() uint64            { return 1 }
func (c *countingClient) publishBatch(_ context.Context, items []item, _ func(int, error)) {
	for _, it := range items {
		c.bytes += publishSize(it.topic, it.contentType, len(it.payload))
		c.msgs++
		if c.keep {
			c.kept = append(c.kept, item{topic: it.topic, payload: slices.Clone(it.payload), contentType: it.contentType})
		}
	}
}

// publishSize is the size of an MQTT 5 PUBLISH packet at QoS 1 (MQTT 5
// section 3.3): the fixed header (type byte and remaining length), the
// topic name (2-byte length and the bytes), the packet identifier, the
// properties (their length, and the Content Type property when set: its
// identifier 0x03 and a UTF-8 string) and the payload.
func publishSize(topic, contentType string, payload int) int {
	props := 0
	if contentType != "" {
		props = 1 + 2 + len(contentType)
	}
	rest := 2 + len(topic) + 2 + varintLen(props) + props + payload
	return 1 + varintLen(rest) + rest
}

func varintLen(n int) int {
	l := 1
	for n >= 128 {
		n >>= 7
		l++
	}
	return l
}

// variant is one way to send the samples.
type variant struct {
	name   string
	cfg    Config
	report bool // after report by exception
}

var bandwidthVariants = []variant{
	{"json per sample", Config{Version: V5}, false},
	{"batch", Config{Version: V5, Layout: LayoutBatch}, false},
	{"batch+zstd", Config{Version: V5, Layout: LayoutBatch, Compression: CompressionZstd, MetadataTopic: "m2m/{source}/meta"}, false},
	{"exceptions, json per sample", Config{Version: V5}, true},
	{"exceptions, batch", Config{Version: V5, Layout: LayoutBatch}, true},
	{"exceptions, batch+zstd", Config{Version: V5, Layout: LayoutBatch, Compression: CompressionZstd, MetadataTopic: "m2m/{source}/meta"}, true},
}

// bandwidthResult is what each variant put on the wire.
type bandwidthResult struct {
	samples  int            // polled
	bytes    map[string]int // by variant
	msgs     map[string]int
	received []item // what the last variant's sink sent
}

// simulate runs the device's hour through two Bridges (without and with
// report by exception), each feeding the sinks of its variants.
func simulate(t *testing.T, d *simDevice) bandwidthResult {
	res := bandwidthResult{samples: bandwidthHour * len(d.points), bytes: map[string]int{}, msgs: map[string]int{}}
	for _, report := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			b := bridge.New(bridge.Options{Logger: slog.New(slog.DiscardHandler), SeqStart: 1})
			opts := bridge.SourceOptions{}
			if report {
				opts.Report = issueReport
			}
			require.NoError(t, b.AddSourceWith(d.name, bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
				for sec := range bandwidthHour {
					if sec > 0 {
						time.Sleep(time.Second)
					}
					if err := out.Emit(ctx, slices.Clone(d.truth[sec])); err != nil {
						return err
					}
				}
				return nil
			}), opts))
			clients := map[string]*countingClient{}
			for _, v := range bandwidthVariants {
				if v.report != report {
					continue
				}
				cfg := v.cfg
				cfg.URL = "tcp://127.0.0.1:1883"
				s, err := New(cfg)
				require.NoError(t, err)
				cli := &countingClient{keep: v.name == "exceptions, batch+zstd"}
				s.cli = cli
				clients[v.name] = cli
				require.NoError(t, b.AddSink(v.name, s, bridge.SinkOptions{QueueSize: 100_000, BatchSize: 10_000}))
			}
			require.NoError(t, b.Run(context.Background()))
			for _, st := range b.Stats().Sinks {
				require.Zero(t, st.Errors, "%+v", st)
			}
			for name, c := range clients {
				res.bytes[name], res.msgs[name] = c.bytes, c.msgs
				if c.keep {
					res.received = c.kept
				}
			}
		})
	}
	return res
}

// replay decodes what the exceptions+batch+zstd sink sent, as a consumer
// would (zstd, the batch JSON, the units from the metadata message), and
// checks it against the simulator's truth: every reading the consumer
// holds at each second is within the deadband of the truth, or equal to
// it for bools and strings, with the truth's quality; every received value
// is the truth of its second; no point goes longer than the heartbeat
// without a message.
func replay(t *testing.T, d *simDevice, sent []item) {
	dec, err := zstd.NewReader(nil)
	require.NoError(t, err)
	defer dec.Close()
	units := map[string]string{}
	got := map[string][]bridge.Sample{} // by point, in time order
	for _, it := range sent {
		if it.contentType != ContentTypeJSONZstd {
			src, u, err := bridge.DecodeMetaJSON(it.payload)
			require.NoError(t, err)
			require.Equal(t, d.name, src)
			units = u
			continue
		}
		js, err := dec.DecodeAll(it.payload, nil)
		require.NoError(t, err)
		ss, err := bridge.DecodeBatchJSON(js)
		require.NoError(t, err)
		for _, s := range ss {
			u, ok := units[s.Point]
			require.True(t, ok, "the metadata came before the data of %s", s.Point)
			s.Unit = u
			got[s.Point] = append(got[s.Point], s)
		}
	}
	t0 := d.truth[0][0].Time
	pct := issueReport.DeadbandPercent / 100
	for i, p := range d.points {
		recv := got[p.name]
		require.NotEmpty(t, recv, p.name)
		k := -1
		for sec := range bandwidthHour {
			truth := d.truth[sec][i]
			for k+1 < len(recv) && !recv[k+1].Time.After(truth.Time) {
				k++
				r := recv[k]
				at := int(r.Time.Sub(t0) / time.Second)
				want := d.truth[at][i]
				require.True(t, r.Value.Equal(want.Value) && r.Quality == want.Quality && r.Unit == want.Unit,
					"%s at %ds: received %v %v %q, the device read %v %v %q", p.name, at, r.Value, r.Quality, r.Unit, want.Value, want.Quality, want.Unit)
				if k > 0 {
					gap := r.Time.Sub(recv[k-1].Time)
					require.LessOrEqual(t, gap, issueReport.Heartbeat, "%s: %v without a message before %ds", p.name, gap, at)
				}
			}
			require.GreaterOrEqual(t, k, 0, "%s: nothing received by %ds", p.name, sec)
			view := recv[k]
			require.Equal(t, truth.Quality, view.Quality, "%s at %ds: the consumer holds %v, the device is %v", p.name, sec, view.Quality, truth.Quality)
			if truth.Quality != bridge.Good {
				continue
			}
			a, b := view.Value.Float(), truth.Value.Float()
			switch truth.Value.Kind() {
			case bridge.KindFloat, bridge.KindInt, bridge.KindUint:
				require.False(t, math.Abs(b-a) > pct*math.Abs(a),
					"%s at %ds: the device reads %v, the consumer holds %v: it moved by more than its deadband unreported", p.name, sec, b, a)
			default:
				require.True(t, truth.Value.Equal(view.Value), "%s at %ds: %v changed to %v unreported", p.name, sec, view.Value, truth.Value)
			}
		}
		last := recv[len(recv)-1].Time
		require.LessOrEqual(t, d.truth[bandwidthHour-1][i].Time.Sub(last), issueReport.Heartbeat, "%s: silent at the end", p.name)
	}
}

// TestBandwidthGoal is the issue's goal, asserted: for the meter, report
// by exception (0.5 %, 5-minute heartbeat) with the batch layout and zstd
// puts at most 3 % of the bytes of one JSON message per sample on the
// wire, and no reading that moved by more than its deadband is left
// unreported (replayed against the simulator's truth). The PLC's numbers
// are logged, and replayed the same way.
func TestBandwidthGoal(t *testing.T) {
	for _, mk := range []func() *simDevice{newMeter, newPLC} {
		d := mk()
		t.Run(d.name, func(t *testing.T) {
			if d.name != "meter1" && testing.Short() {
				t.Skip("-short: the meter only")
			}
			res := simulate(t, d)
			ref := res.bytes["json per sample"]
			for _, v := range bandwidthVariants {
				t.Logf("%-28s %9d bytes %6d messages %6.2f bytes/sample %6.2f %%", v.name, res.bytes[v.name], res.msgs[v.name],
					float64(res.bytes[v.name])/float64(res.samples), 100*float64(res.bytes[v.name])/float64(ref))
			}
			replay(t, d, res.received)
			if d.name == "meter1" {
				assert.LessOrEqual(t, float64(res.bytes["exceptions, batch+zstd"]), 0.03*float64(ref),
					"exceptions + batch + zstd: at most 3 %% of the JSON per sample bytes")
			}
			assert.Less(t, res.bytes["exceptions, batch+zstd"], res.bytes["exceptions, batch"])
			assert.Less(t, res.bytes["batch"], res.bytes["json per sample"])
		})
	}
}

// BenchmarkBandwidth reports the bytes per polled sample each variant puts
// on the wire for an hour of 1 s polling (MQTT 5 PUBLISH packets, QoS 1),
// for the README's table. Run with -benchtime 1x: each iteration is the
// whole simulated hour.
func BenchmarkBandwidth(b *testing.B) {
	for _, mk := range []func() *simDevice{newMeter, newPLC} {
		d := mk()
		b.Run(d.name, func(b *testing.B) {
			b.ReportAllocs()
			var res bandwidthResult
			for b.Loop() {
				// testing/synctest needs a *testing.T: the simulated
				// hour runs as a test of its own.
				ok := testing.RunTests(func(string, string) (bool, error) { return true, nil }, []testing.InternalTest{{
					Name: "BandwidthHour/" + d.name,
					F:    func(t *testing.T) { res = simulate(t, d) },
				}})
				if !ok {
					b.Fatal("the simulated hour failed")
				}
			}
			for _, v := range bandwidthVariants {
				b.ReportMetric(float64(res.bytes[v.name])/float64(res.samples), "B/sample:"+strings.NewReplacer(", ", "+", " ", "-").Replace(v.name))
			}
		})
	}
}
