package modbus_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// runDevice runs d with a Recorder until the test ends.
func runDevice(t *testing.T, d *modbus.Device) *bridgetest.Recorder {
	t.Helper()
	rec := bridgetest.NewRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, rec) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, d.Close())
	})
	return rec
}

func newDevice(t *testing.T, cfg modbus.DeviceConfig) *modbus.Device {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "dev"
	}
	d, err := modbus.NewDevice(cfg)
	require.NoError(t, err)
	return d
}

// waitFor waits until the recorder holds a sample matching ok and returns
// it.
func waitFor(t *testing.T, rec *bridgetest.Recorder, ok func(s bridge.Sample) bool) bridge.Sample {
	t.Helper()
	var found bridge.Sample
	require.Eventually(t, func() bool {
		for _, s := range rec.Samples() {
			if ok(s) {
				found = s
				return true
			}
		}
		return false
	}, 10*time.Second, 2*time.Millisecond)
	return found
}

func point(name string) func(bridge.Sample) bool {
	return func(s bridge.Sample) bool { return s.Point == name }
}

func TestDevicePollsSDM630(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs last: after the device and server stopped
	p, err := modbus.BuiltinProfile("eastron-sdm630")
	require.NoError(t, err)
	// A meter that refuses reads across the gaps of its map (the real one
	// fills them; see TestDeviceReadsSDM630AcrossGaps).
	s := newSim(t, p, modbustest.WithRefusedGaps())
	require.NoError(t, s.Set("voltage_l1", 229.75))
	d := newDevice(t, modbus.DeviceConfig{Name: "meter1", Conn: modbus.ClientConfig{URL: s.URL()}, Profile: p,
		Interval: 20 * time.Millisecond})
	plan := d.Plan()
	t.Log("\n" + plan.String())
	before := time.Now()
	rec := runDevice(t, d)
	samples, err := rec.Wait(ctxT(t), 3*len(p.Points))
	require.NoError(t, err)
	after := time.Now()
	seen := map[string]bool{}
	for _, smp := range samples {
		assert.Equal(t, "meter1", smp.Source)
		assert.Equal(t, bridge.Good, smp.Quality, "%s: %s", smp.Point, smp.Reason)
		assert.False(t, smp.Time.Before(before) || smp.Time.After(after), "time %v", smp.Time)
		seen[smp.Point] = true
		if smp.Point == "voltage_l1" {
			assert.Equal(t, 229.75, smp.Value.Float())
			assert.Equal(t, "V", smp.Unit)
		}
	}
	assert.Len(t, seen, len(p.Points))
	// The simulator answers Illegal Data Address for the gaps of the map the
	// first plan read as filler; the device learned them, and from then on
	// each cycle takes exactly the planned requests.
	type rq struct {
		t    modbus.Table
		a, q uint16
	}
	planned := map[rq]bool{}
	require.Eventually(t, func() bool {
		// Learning is done when the plan stays the same over two cycles.
		plan = d.Plan()
		c := d.Stats().Cycles
		for deadline := time.Now().Add(5 * time.Second); d.Stats().Cycles < c+2 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond) // poll, bounded by the deadline
		}
		return d.Plan().String() == plan.String()
	}, 10*time.Second, time.Millisecond)
	t.Log("after learning:\n" + plan.String())
	assert.NotZero(t, d.Stats().Holes)
	for _, r := range plan.Requests {
		planned[rq{r.Table, r.Address, r.Quantity}] = true
	}
	s.ResetRequests()
	c := d.Stats().Cycles
	require.Eventually(t, func() bool { return d.Stats().Cycles >= c+3 }, 10*time.Second, time.Millisecond)
	reqs := s.Requests()
	require.GreaterOrEqual(t, len(reqs), 2*len(plan.Requests))
	for _, r := range reqs {
		assert.True(t, planned[rq{r.Table, r.Address, r.Quantity}], "request %+v is not in the plan", r)
	}
	st := d.Stats()
	assert.GreaterOrEqual(t, st.Cycles, uint64(3))
}

// TestDeviceReadsSDM630AcrossGaps: the SDM630 answers reads across the
// unlisted registers of its map (its profile says fills_gaps), so every
// cycle, the first included, takes exactly the planned requests: four for
// the 42 points, none answered with an exception, no hole learned.
func TestDeviceReadsSDM630AcrossGaps(t *testing.T) {
	p, err := modbus.BuiltinProfile("eastron-sdm630")
	require.NoError(t, err)
	require.True(t, p.Limits.FillsGaps)
	s := newSim(t, p)
	d := newDevice(t, modbus.DeviceConfig{Name: "meter1", Conn: modbus.ClientConfig{URL: s.URL()}, Profile: p})
	defer d.Close()
	plan := d.Plan()
	require.Len(t, plan.Requests, 4, "\n%s", plan)
	for range 3 {
		rec := bridgetest.NewRecorder()
		require.NoError(t, d.PollOnce(ctxT(t), rec))
		samples := rec.Samples()
		require.Len(t, samples, len(p.Points))
		for _, smp := range samples {
			assert.Equal(t, bridge.Good, smp.Quality, "%s: %s", smp.Point, smp.Reason)
		}
	}
	reqs := s.Requests()
	require.Len(t, reqs, 3*len(plan.Requests))
	for i, r := range reqs {
		want := plan.Requests[i%len(plan.Requests)]
		assert.Equal(t, [3]any{want.Table, want.Address, want.Quantity}, [3]any{r.Table, r.Address, r.Quantity}, "request %d", i)
	}
	assert.Zero(t, d.Stats().Holes)
	assert.Equal(t, plan.String(), d.Plan().String(), "nothing learned")
}

func TestDevicePerPointIntervals(t *testing.T) {
	p := testProfile()
	p.Points[1].Interval = 10 * time.Millisecond
	s := newSim(t, p)
	d := newDevice(t, modbus.DeviceConfig{Conn: modbus.ClientConfig{URL: s.URL()}, Profile: p, Interval: time.Hour})
	rec := runDevice(t, d)
	require.Eventually(t, func() bool {
		n := 0
		for _, smp := range rec.Samples() {
			if smp.Point == "current" {
				n++
			}
		}
		return n >= 5
	}, 10*time.Second, 2*time.Millisecond)
	counts := map[string]int{}
	for _, smp := range rec.Samples() {
		counts[smp.Point]++
	}
	assert.Equal(t, 1, counts["voltage"], "the hourly points are read once")
	// After the first cycle the fast point is read alone: 1 register pair
	// at address 2.
	others := func() (n int) {
		for _, r := range s.Requests() {
			if r.Table != modbus.Input || r.Address != 2 || r.Quantity != 2 {
				n++
			}
		}
		return n
	}
	n := others()
	c := d.Stats().Cycles
	require.Eventually(t, func() bool { return d.Stats().Cycles >= c+5 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, n, others())
}

func TestDeviceBadSamplesOnException(t *testing.T) {
	p := testProfile()
	s := newSim(t, p, modbustest.WithHook(modbustest.ExceptAt(modbus.Input, 0, modbus.ServerDeviceFailure)))
	d := newDevice(t, modbus.DeviceConfig{Conn: modbus.ClientConfig{URL: s.URL()}, Profile: p, Interval: 20 * time.Millisecond})
	rec := runDevice(t, d)
	bad := waitFor(t, rec, point("voltage"))
	assert.Equal(t, bridge.Bad, bad.Quality)
	assert.Equal(t, uint32(4), bad.Code)
	assert.Contains(t, bad.Reason, "server device failure")
	assert.True(t, bad.Value.IsNone())
	good := waitFor(t, rec, point("setpoint"))
	assert.Equal(t, bridge.Good, good.Quality)
	// Once the device recovers, the samples are good again.
	s.SetHook(nil)
	waitFor(t, rec, func(smp bridge.Sample) bool { return smp.Point == "voltage" && smp.Quality == bridge.Good })
}

func TestDeviceRetriesBusy(t *testing.T) {
	p := testProfile()
	s := newSim(t, p, modbustest.WithHook(modbustest.First(2, modbustest.Except(modbus.ServerDeviceBusy))))
	d := newDevice(t, modbus.DeviceConfig{Conn: modbus.ClientConfig{URL: s.URL()}, Profile: p, Interval: time.Hour,
		BusyRetryDelay: time.Millisecond})
	rec := runDevice(t, d)
	samples, err := rec.Wait(ctxT(t), len(p.Points))
	require.NoError(t, err)
	for _, smp := range samples {
		assert.Equal(t, bridge.Good, smp.Quality, "%s: %s", smp.Point, smp.Reason)
	}

	// Busy for good: after MaxBusyRetries the points are Bad with code 6.
	s2 := newSim(t, p, modbustest.WithHook(modbustest.Except(modbus.ServerDeviceBusy)))
	d2 := newDevice(t, modbus.DeviceConfig{Conn: modbus.ClientConfig{URL: s2.URL()}, Profile: p, Interval: time.Hour,
		BusyRetryDelay: time.Millisecond, MaxBusyRetries: 2})
	rec2 := runDevice(t, d2)
	samples, err = rec2.Wait(ctxT(t), len(p.Points))
	require.NoError(t, err)
	for _, smp := range samples {
		assert.Equal(t, bridge.Bad, smp.Quality)
		assert.Equal(t, uint32(6), smp.Code)
	}
	assert.Equal(t, uint64(3*len(d2.Plan().Requests)), s2.RequestCount())
}

func TestDeviceReconnectsAndTimesOut(t *testing.T) {
	p := testProfile()
	s := newSim(t, p)
	d := newDevice(t, modbus.DeviceConfig{Conn: modbus.ClientConfig{URL: s.URL(), Timeout: 50 * time.Millisecond,
		MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}, Profile: p, Interval: 10 * time.Millisecond})
	rec := runDevice(t, d)
	waitFor(t, rec, func(smp bridge.Sample) bool { return smp.Quality == bridge.Good })

	s.SetHook(modbustest.NoReply())
	bad := waitFor(t, rec, func(smp bridge.Sample) bool { return smp.Quality == bridge.Bad })
	assert.Contains(t, bad.Reason, "timed out")
	s.SetHook(modbustest.DropConnection())
	s.CloseConnections()
	rec.Reset()
	waitFor(t, rec, func(smp bridge.Sample) bool {
		return smp.Quality == bridge.Bad && smp.Time.After(time.Now().Add(-time.Second))
	})
	s.SetHook(nil)
	rec.Reset()
	waitFor(t, rec, func(smp bridge.Sample) bool { return smp.Quality == bridge.Good })
	assert.GreaterOrEqual(t, d.Client().Stats().Connects, uint64(2))
}

// TestDeviceLearnsHoles: a request spanning unmapped filler is answered
// Illegal Data Address; the device reads the points on their own, forbids the
// filler and goes on with good samples.
func TestDeviceLearnsHoles(t *testing.T) {
	p := &modbus.Profile{Name: "holes", Points: []modbus.Point{
		{Name: "a", Table: modbus.Holding, Address: 0, Type: modbus.Uint16},
		{Name: "b", Table: modbus.Holding, Address: 3, Type: modbus.Uint16},
	}}
	s := newSim(t, p)
	require.NoError(t, s.Set("a", 7))
	require.NoError(t, s.Set("b", 9))
	d := newDevice(t, modbus.DeviceConfig{Conn: modbus.ClientConfig{URL: s.URL()}, Profile: p, Interval: 10 * time.Millisecond})
	require.Len(t, d.Plan().Requests, 1, "the planner reads the filler: one request is cheaper")
	rec := runDevice(t, d)
	samples, err := rec.Wait(ctxT(t), 6)
	require.NoError(t, err)
	for _, smp := range samples {
		assert.Equal(t, bridge.Good, smp.Quality, "%s: %s", smp.Point, smp.Reason)
	}
	assert.Equal(t, uint64(1), d.Stats().Holes)
	assert.Len(t, d.Plan().Requests, 2)
	reqs := s.Requests()
	assert.Equal(t, uint16(4), reqs[0].Quantity)
	for _, r := range reqs[1:] {
		assert.Equal(t, uint16(1), r.Quantity)
	}
}

// TestDeviceUnreadablePoint: a point the device refuses yields Bad samples
// with the exception, the others stay good and read together.
func TestDeviceUnreadablePoint(t *testing.T) {
	served := &modbus.Profile{Name: "served", Points: []modbus.Point{
		{Name: "a", Table: modbus.Input, Address: 10, Type: modbus.Int16},
		{Name: "b", Table: modbus.Input, Address: 11, Type: modbus.Int16},
	}}
	s := newSim(t, served)
	polled := served.Clone()
	polled.Points = append(polled.Points, modbus.Point{Name: "ghost", Table: modbus.Input, Address: 12, Type: modbus.Int16})
	d := newDevice(t, modbus.DeviceConfig{Conn: modbus.ClientConfig{URL: s.URL()}, Profile: polled, Interval: 10 * time.Millisecond})
	rec := runDevice(t, d)
	require.Eventually(t, func() bool { return d.Stats().Cycles >= 4 }, 10*time.Second, time.Millisecond)
	var ghost, good int
	for _, smp := range rec.Samples() {
		if smp.Point == "ghost" {
			ghost++
			assert.Equal(t, bridge.Bad, smp.Quality)
			assert.Equal(t, uint32(2), smp.Code)
			assert.Contains(t, smp.Reason, "illegal data address")
		} else {
			good++
			assert.Equal(t, bridge.Good, smp.Quality, "%s: %s", smp.Point, smp.Reason)
		}
	}
	assert.GreaterOrEqual(t, ghost, 3)
	assert.Equal(t, 2*ghost, good)
	// After learning: a and b in one request, ghost alone.
	reqs := s.Requests()
	last := reqs[len(reqs)-2:]
	assert.ElementsMatch(t, []uint16{10, 12}, []uint16{last[0].Address, last[1].Address})
}

// TestDeviceFailingDoesNotDelayOthers: a device that never answers does not
// slow another device's polling.
func TestDeviceFailingDoesNotDelayOthers(t *testing.T) {
	p := testProfile()
	dead := newSim(t, p, modbustest.WithHook(modbustest.NoReply()))
	live := newSim(t, p)
	dd := newDevice(t, modbus.DeviceConfig{Name: "dead", Conn: modbus.ClientConfig{URL: dead.URL(), Timeout: 3 * time.Second},
		Profile: p, Interval: 10 * time.Millisecond})
	ld := newDevice(t, modbus.DeviceConfig{Name: "live", Conn: modbus.ClientConfig{URL: live.URL()},
		Profile: p, Interval: 10 * time.Millisecond})
	runDevice(t, dd)
	t.Cleanup(func() { dead.Close() }) // runs first: ends the dead device's pending request
	runDevice(t, ld)
	// Had the live device waited behind the dead one's 3s timeouts, 20
	// cycles of 10ms would take over a minute.
	require.Eventually(t, func() bool { return ld.Stats().Cycles >= 20 }, 2500*time.Millisecond, time.Millisecond)
	assert.Zero(t, ld.Stats().Bad)
}

func TestDeviceWritePoint(t *testing.T) {
	p := testProfile()
	p.Points = append(p.Points,
		modbus.Point{Name: "mode", Table: modbus.Holding, Address: 200, Type: modbus.Uint16},
		modbus.Point{Name: "flag0", Table: modbus.Holding, Address: 200, Type: modbus.Bool, Bit: modbus.BitOf(0), Writable: true},
		modbus.Point{Name: "flag3", Table: modbus.Holding, Address: 200, Type: modbus.Bool, Bit: modbus.BitOf(3), Writable: true},
	)
	s := newSim(t, p)
	require.NoError(t, s.Set("mode", 0x0100))
	d := newDevice(t, modbus.DeviceConfig{Conn: modbus.ClientConfig{URL: s.URL()}, Profile: p, Interval: 10 * time.Millisecond})
	runDevice(t, d) // writes are safe while polling
	ctx := ctxT(t)

	require.NoError(t, d.WritePoint(ctx, "setpoint", 21.5))
	v, err := s.Value("setpoint")
	require.NoError(t, err)
	assert.InDelta(t, 21.5, v.Float(), 1e-9)

	require.NoError(t, d.WritePoint(ctx, "counter", bridge.Uint(1<<63+5)))
	v, err = s.Value("counter")
	require.NoError(t, err)
	assert.True(t, v.Equal(bridge.Uint(1<<63+5)), v.String())

	require.NoError(t, d.WritePoint(ctx, "relay", true))
	v, err = s.Value("relay")
	require.NoError(t, err)
	assert.True(t, v.Equal(bridge.Bool(true)))

	// Bits of one register, written concurrently, by read-modify-write.
	var wg sync.WaitGroup
	for _, name := range []string{"flag0", "flag3"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, d.WritePoint(ctx, name, true))
		}()
	}
	wg.Wait()
	v, err = s.Value("mode")
	require.NoError(t, err)
	assert.True(t, v.Equal(bridge.Uint(0x0109)), v.String())

	err = d.WritePoint(ctx, "voltage", 1.0)
	assert.ErrorIs(t, err, modbus.ErrReadOnly)
	err = d.WritePoint(ctx, "alarm", true)
	assert.ErrorIs(t, err, modbus.ErrReadOnly)
	err = d.WritePoint(ctx, "nope", 1)
	assert.ErrorIs(t, err, modbus.ErrUnknownPoint)
	err = d.WritePoint(ctx, "setpoint", 1e6) // int16 at scale 0.1
	require.Error(t, err)
	assert.Contains(t, err.Error(), "setpoint")
	err = d.WritePoint(ctx, "setpoint", struct{}{})
	require.Error(t, err)
}

func TestNewDeviceErrors(t *testing.T) {
	_, err := modbus.NewDevice(modbus.DeviceConfig{Conn: modbus.ClientConfig{URL: "bogus"},
		Points: []modbus.Point{{Name: "x", Table: modbus.Input, Address: 0, Type: modbus.Float32, Bit: modbus.BitOf(3)}}})
	require.Error(t, err)
	for _, w := range []string{"name", "url", "bit"} {
		assert.Contains(t, err.Error(), w)
	}
	_, err = modbus.NewDevice(modbus.DeviceConfig{Name: "x", Unit: 250, Conn: modbus.ClientConfig{URL: "rtu:///dev/ttyS0"},
		Points: []modbus.Point{{Name: "x", Table: modbus.Input, Address: 0, Type: modbus.Float32}}})
	assert.ErrorContains(t, err, "unit: 250 is reserved")
}

// TestBusDeadUnitDoesNotStarveLiveOnes: two devices share an RTU-over-TCP
// gateway; unit 2 never answers, or the gateway answers for it, after its
// own serial timeout, Gateway Target Device Failed To Respond. Unit 1 keeps
// being read (without the backoff each of its requests would wait behind a
// 200-250 ms failure, 4 per cycle, and 30 cycles would take half a minute),
// unit 2 is backed off, and the bus reports both.
func TestBusDeadUnitDoesNotStarveLiveOnes(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []modbustest.Option
	}{
		{"silent", []modbustest.Option{modbustest.WithUnits(1)}},
		{"gateway exception", []modbustest.Option{modbustest.WithHook(modbustest.ForUnit(2, func(modbustest.Request) modbustest.Fault {
			return modbustest.Fault{Delay: 200 * time.Millisecond, Exception: modbus.GatewayTargetDeviceFailedToRespond}
		}))}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := testProfile()
			s := newSim(t, p, append(tt.opts, modbustest.WithFraming(modbustest.RTU))...)
			conn := modbus.ClientConfig{URL: s.URL(), Timeout: 250 * time.Millisecond, MinBackoff: 200 * time.Millisecond,
				MaxBackoff: time.Second, LateReplyWait: time.Millisecond}
			devs, buses, err := modbus.NewDevices(
				modbus.DeviceConfig{Name: "live", Conn: conn, Unit: 1, Profile: p, Interval: 10 * time.Millisecond},
				modbus.DeviceConfig{Name: "dead", Conn: conn, Unit: 2, Profile: p, Interval: 10 * time.Millisecond},
			)
			require.NoError(t, err)
			require.Len(t, buses, 1)
			require.Same(t, devs[0].Client(), devs[1].Client())
			t.Cleanup(func() { buses[0].Close() })
			recLive := runDevice(t, devs[0])
			recDead := runDevice(t, devs[1])
			require.Eventually(t, func() bool { return devs[0].Stats().Cycles >= 30 }, 10*time.Second, time.Millisecond)
			st := buses[0].Stats()
			t.Logf("bus: %d requests, %d timeouts, %d errors, utilisation %.2f, unit 1 mean latency %v", st.Requests, st.Timeouts,
				st.Errors, st.Utilisation, st.Units[1].MeanLatency)
			assert.Less(t, st.Units[2].Requests, uint64(12), "the dead unit is backed off")
			assert.NotZero(t, st.Units[1].MeanLatency)
			assert.False(t, st.Units[2].BackoffUntil.IsZero(), "unit 2 is backed off")
			assert.Greater(t, st.Utilisation, 0.0)
			for _, smp := range recLive.Samples() {
				assert.Equal(t, bridge.Good, smp.Quality, "%s: %s", smp.Point, smp.Reason)
			}
			var backedOff bool
			for _, smp := range recDead.Samples() {
				assert.Equal(t, bridge.Bad, smp.Quality)
				if !backedOff {
					backedOff = containsStr(smp.Reason, "backing off")
				}
			}
			assert.True(t, backedOff, "dead unit's samples say it is backed off")
			for _, r := range s.Requests() {
				assert.Contains(t, []uint8{1, 2}, r.Unit)
			}
		})
	}
}

func containsStr(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestBuiltinProfilesFromSimulator reads every built-in profile from the
// simulator and checks each point decodes to the value the simulator serves.
func TestBuiltinProfilesFromSimulator(t *testing.T) {
	for _, name := range modbus.BuiltinProfiles() {
		t.Run(name, func(t *testing.T) {
			p, err := modbus.BuiltinProfile(name)
			require.NoError(t, err)
			s := newSim(t, p, modbustest.WithTick(time.Hour)) // values hold still
			d := newDevice(t, modbus.DeviceConfig{Name: name, Conn: modbus.ClientConfig{URL: s.URL()}, Profile: p})
			defer d.Close()
			rec := bridgetest.NewRecorder()
			require.NoError(t, d.PollOnce(ctxT(t), rec))
			samples := rec.Samples()
			require.Len(t, samples, len(p.Points))
			for _, smp := range samples {
				want, err := s.Value(smp.Point)
				require.NoError(t, err)
				assert.Equal(t, bridge.Good, smp.Quality, "%s: %s", smp.Point, smp.Reason)
				assert.True(t, want.Equal(smp.Value), "%s: want %v, got %v", smp.Point, want, smp.Value)
				pt, _ := p.Point(smp.Point)
				assert.Equal(t, pt.Unit, smp.Unit)
			}
			t.Logf("%d points in %d requests after learning %d holes", len(p.Points), len(d.Plan().Requests), d.Stats().Holes)
		})
	}
}

// TestDevicePlanIsACopy: a Plan from Device.Plan keeps naming its points
// right while Run plans other combinations of intervals (the plans once
// shared a scratch slice that later plans overwrote), and its indexes are
// those of Device.Points.
func TestDevicePlanIsACopy(t *testing.T) {
	p := &modbus.Profile{Name: "iv", Points: []modbus.Point{
		{Name: "slow_a", Table: modbus.Holding, Address: 0, Type: modbus.Uint16, Interval: time.Hour},
		{Name: "fast", Table: modbus.Holding, Address: 10, Type: modbus.Uint16, Interval: 10 * time.Millisecond},
		{Name: "slow_b", Table: modbus.Holding, Address: 1, Type: modbus.Uint16, Interval: time.Hour},
	}}
	s := newSim(t, p, modbustest.WithFilledGaps()) // nothing to learn: the plans stay
	d := newDevice(t, modbus.DeviceConfig{Conn: modbus.ClientConfig{URL: s.URL()}, Profile: p})
	plan := d.Plan()
	want := plan.String()
	require.Len(t, plan.Requests, 1, want)
	pts := d.Points()
	var names []string
	for _, i := range plan.Requests[0].Points {
		names = append(names, pts[i].Name)
	}
	assert.Equal(t, []string{"slow_a", "slow_b", "fast"}, names)
	runDevice(t, d)
	require.Eventually(t, func() bool { return d.Stats().Cycles >= 3 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, want, plan.String())
	assert.Equal(t, want, d.Plan().String())
}

// TestDeviceLearnsRequestLimit: a device refuses (Illegal Data Address) any
// read of more than 3 registers, a limit its profile does not declare, on a
// map without gaps. The device learns boundaries until its requests fit:
// from then on each cycle takes the same few requests, all answered, where
// it would otherwise fail and re-read every point alone every cycle.
func TestDeviceLearnsRequestLimit(t *testing.T) {
	p := &modbus.Profile{Name: "small"}
	for i := range 10 {
		p.Points = append(p.Points, modbus.Point{Name: fmt.Sprintf("r%d", i), Table: modbus.Holding, Address: uint16(i), Type: modbus.Uint16})
	}
	s := newSim(t, p, modbustest.WithHook(func(r modbustest.Request) modbustest.Fault {
		if r.Quantity > 3 {
			return modbustest.Fault{Exception: modbus.IllegalDataAddress}
		}
		return modbustest.Fault{}
	}))
	d := newDevice(t, modbus.DeviceConfig{Conn: modbus.ClientConfig{URL: s.URL()}, Profile: p, Interval: 10 * time.Millisecond})
	defer d.Close()
	rec := bridgetest.NewRecorder()
	for range 8 {
		require.NoError(t, d.PollOnce(ctxT(t), rec))
	}
	for _, smp := range rec.Samples() {
		assert.Equal(t, bridge.Good, smp.Quality, "%s: %s", smp.Point, smp.Reason)
	}
	assert.Len(t, rec.Samples(), 8*len(p.Points))
	plan := d.Plan()
	t.Logf("after %d boundaries:\n%s", d.Stats().Splits, plan)
	assert.NotZero(t, d.Stats().Splits)
	assert.Zero(t, d.Stats().Holes)
	for _, r := range plan.Requests {
		assert.LessOrEqual(t, r.Quantity, uint16(3), "%+v", r)
	}
	assert.LessOrEqual(t, len(plan.Requests), 5)
	s.ResetRequests()
	require.NoError(t, d.PollOnce(ctxT(t), rec))
	assert.Len(t, s.Requests(), len(plan.Requests), "a settled cycle takes the planned requests")
}
