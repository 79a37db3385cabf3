package sparkplug

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/mqtt"
	"github.com/m2mbridge/m2mbridge/bridge/sparkplug/internal/sppb"
	"github.com/m2mbridge/m2mbridge/bridge/spool"
	"github.com/m2mbridge/m2mbridge/internal/testproxy"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// runBridge runs b until the end of the test.
func runBridge(t *testing.T, b *bridge.Bridge) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("the bridge did not stop")
		}
	})
}

func dcmd(metrics ...*sppb.Payload_Metric) []byte {
	b, err := proto.Marshal(&sppb.Payload{Timestamp: proto.Uint64(ms(time.Now())), Metrics: metrics})
	if err != nil {
		panic(err)
	}
	return b
}

// ddataValue returns the values the host received in DDATA for an alias.
func ddataValues(h *host, device string, alias uint64) []*sppb.Payload_Metric {
	var out []*sppb.Payload_Metric
	for _, m := range h.of(DDATA, device) {
		for _, pm := range m.payload.GetMetrics() {
			if pm.GetAlias() == alias {
				out = append(out, pm)
			}
		}
	}
	return out
}

// TestBridgeCommandsAndHealth runs the edge node in a bridge with a
// simulated Modbus device: a DCMD to a writable metric (by name and by
// alias) writes the register and the read-back value comes back as DDATA;
// a DCMD to a metric that is not writable, or out of its range, is refused
// with nothing sent to the device; the device stopping to answer is a
// DDEATH (from the source's health), answering again a DBIRTH.
func TestBridgeCommandsAndHealth(t *testing.T) {
	addr := brokerAddr(t)
	srv, err := modbustest.NewServer(&modbus.Profile{Name: "plc", Points: []modbus.Point{
		{Name: "setpoint", Table: modbus.Holding, Address: 100, Type: modbus.Float32, Unit: "°C"},
		{Name: "mode", Table: modbus.Holding, Address: 102, Type: modbus.Int16},
	}}, modbustest.WithTick(time.Hour))
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	require.NoError(t, srv.Set("setpoint", 20.0))
	require.NoError(t, srv.Set("mode", 1))
	lo, hi := 0.0, 80.0
	dev, err := modbus.NewDevice(modbus.DeviceConfig{Name: "plc1", Interval: 50 * time.Millisecond,
		Conn: modbus.ClientConfig{URL: srv.URL(), Timeout: 200 * time.Millisecond},
		Points: []modbus.Point{
			{Name: "setpoint", Table: modbus.Holding, Address: 100, Type: modbus.Float32, Unit: "°C", Writable: true, Min: &lo, Max: &hi},
			{Name: "mode", Table: modbus.Holding, Address: 102, Type: modbus.Int16},
		}})
	require.NoError(t, err)
	t.Cleanup(func() { dev.Close() })

	cfg := testConfig(t, addr)
	cfg.Commands = true
	h := newHost(t, addr, cfg.GroupID)
	s := newSink(t, cfg)
	b := bridge.New(bridge.Options{Logger: quiet, WriteInterval: -1})
	require.NoError(t, b.AddSource("plc1", dev))
	require.NoError(t, b.AddSink("spb", s, bridge.SinkOptions{BatchSize: 100, Linger: 5 * time.Millisecond}))
	runBridge(t, b)

	birth := h.waitFor(1, DBIRTH, "plc1")[0]
	require.Len(t, birth.payload.GetMetrics(), 2)
	sp := birth.metric("setpoint")
	require.NotNil(t, sp)
	assert.Equal(t, "°C", property(sp, PropertyEngUnit).GetStringValue())
	assert.EqualValues(t, sppb.DataType_Float, sp.GetDatatype(), "the declared float32 of the Modbus point")
	assert.EqualValues(t, 20, sp.GetFloatValue())
	mode := birth.metric("mode")
	require.NotNil(t, mode)
	assert.EqualValues(t, sppb.DataType_Int16, mode.GetDatatype())
	assert.EqualValues(t, 1, int32(mode.GetIntValue()))

	writes := func() int {
		n := 0
		for _, r := range srv.Requests() {
			if r.Write {
				n++
			}
		}
		return n
	}
	dt := func(d sppb.DataType) *uint32 { return proto.Uint32(uint32(d)) }
	topic := s.Topic(DCMD, "plc1")

	// By name: written, read back, published.
	h.publish(topic, 0, false, dcmd(&sppb.Payload_Metric{Name: proto.String("setpoint"), Datatype: dt(sppb.DataType_Double),
		Value: &sppb.Payload_Metric_DoubleValue{DoubleValue: 42.5}}))
	require.Eventually(t, func() bool {
		v, _ := srv.Value("setpoint")
		return v.Float() == 42.5
	}, 10*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool {
		for _, pm := range ddataValues(h, "plc1", sp.GetAlias()) {
			if pm.GetFloatValue() == 42.5 {
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "the read-back value as DDATA")
	assert.Equal(t, 1, writes())

	// Not writable, out of range, wrong datatype, unknown metric: refused,
	// nothing sent.
	h.publish(topic, 0, false, dcmd(&sppb.Payload_Metric{Name: proto.String("mode"), Datatype: dt(sppb.DataType_Int16),
		Value: &sppb.Payload_Metric_IntValue{IntValue: 3}}))
	h.publish(topic, 0, false, dcmd(&sppb.Payload_Metric{Alias: proto.Uint64(sp.GetAlias()), Datatype: dt(sppb.DataType_Double),
		Value: &sppb.Payload_Metric_DoubleValue{DoubleValue: 95}}))
	h.publish(topic, 0, false, dcmd(&sppb.Payload_Metric{Name: proto.String("setpoint"), Datatype: dt(sppb.DataType_Boolean),
		Value: &sppb.Payload_Metric_StringValue{StringValue: "x"}}))
	h.publish(topic, 0, false, dcmd(&sppb.Payload_Metric{Name: proto.String("nope"), Datatype: dt(sppb.DataType_Double),
		Value: &sppb.Payload_Metric_DoubleValue{DoubleValue: 1}}))
	require.Eventually(t, func() bool { return s.Stats().CommandsRefused == 4 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, 1, writes(), "nothing refused reached the device")
	v, _ := srv.Value("mode")
	assert.EqualValues(t, 1, v.Float())

	// By alias, with the datatype of the birth.
	h.publish(topic, 0, false, dcmd(&sppb.Payload_Metric{Alias: proto.Uint64(sp.GetAlias()),
		Value: &sppb.Payload_Metric_FloatValue{FloatValue: 10}}))
	require.Eventually(t, func() bool {
		v, _ := srv.Value("setpoint")
		return v.Float() == 10
	}, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, 2, writes())
	assert.EqualValues(t, 4, s.Stats().Commands, "handed to the bridge: 42.5, mode and 95 (which it refused), 10")

	// The device stops answering: DDEATH; answers again: DBIRTH.
	srv.SetHook(func(modbustest.Request) modbustest.Fault { return modbustest.Fault{NoReply: true} })
	dd := h.waitFor(1, DDEATH, "plc1")[0]
	assert.NotNil(t, dd.payload.Seq)
	require.Eventually(t, func() bool { return s.Stats().Absorbed > 0 }, 10*time.Second, 5*time.Millisecond,
		"the Bad samples of the dead device are absorbed by its DDEATH")
	srv.SetHook(nil)
	reborn := h.waitFor(2, DBIRTH, "plc1")[1]
	require.Len(t, reborn.payload.GetMetrics(), 2)
	assert.Equal(t, sp.GetAlias(), reborn.metric("setpoint").GetAlias())
	// Its polls go on after the birth; their values are those of the
	// birth, which the host has: nothing is sent for them (spec 5.8).
	unchanged := s.Stats().Unchanged
	require.Eventually(t, func() bool { return s.Stats().Unchanged >= unchanged+4 }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, srv.Set("mode", 2))
	require.Eventually(t, func() bool {
		ms := h.messages()
		m := ms[len(ms)-1]
		return m.topic.Type == DDATA && len(m.payload.GetMetrics()) == 1 && m.payload.GetMetrics()[0].GetAlias() == reborn.metric("mode").GetAlias()
	}, 10*time.Second, 5*time.Millisecond, "a change after the rebirth is sent, alone")
	// Nothing of the device between its DDEATH and its DBIRTH.
	ms := h.messages()
	dead := false
	for _, m := range ms {
		if m.topic.DeviceID != "plc1" {
			continue
		}
		switch m.topic.Type {
		case DDEATH:
			dead = true
		case DBIRTH:
			dead = false
		case DDATA:
			assert.False(t, dead, "DDATA after DDEATH without DBIRTH: %s", m)
		}
	}
	checkSeq(t, ms)
}

// fakeHost is a Host whose health and writes the test controls.
type fakeHost struct {
	mu     sync.Mutex
	health map[string]bridge.Health
	writes []bridge.WriteRequest
	queued int64 // the sink's queue depth, plus 7
}

func (f *fakeHost) Stats() bridge.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := bridge.Stats{Sinks: []bridge.SinkStats{{Name: "other", Queued: 100}, {Name: "spb", Queued: 7 + f.queued, InFlight: 0}}}
	for n, h := range f.health {
		h := h
		st.Sources = append(st.Sources, bridge.SourceStats{Name: n, Health: &h})
	}
	return st
}

func (f *fakeHost) Write(_ context.Context, req bridge.WriteRequest) bridge.WriteResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = append(f.writes, req)
	return bridge.WriteResult{OK: true, Value: req.Value}
}

func (f *fakeHost) set(src string, up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.health[src] = bridge.Health{Up: up, Since: time.Now()}
}

// TestCommandsOff: without commands: true every DCMD is refused and
// nothing is written; the NBIRTH carries the sink's queue depth.
func TestCommandsOff(t *testing.T) {
	addr := brokerAddr(t)
	ctx := testCtx(t, 30*time.Second)
	cfg := testConfig(t, addr)
	h := newHost(t, addr, cfg.GroupID)
	s := newSink(t, cfg)
	fh := &fakeHost{health: map[string]bridge.Health{}}
	s.Use(fh, "spb")
	require.NoError(t, s.Connect(ctx))
	require.NoError(t, s.Write(ctx, []bridge.Sample{sample("d1", "p", bridge.Float(1))}))
	h.waitFor(1, DBIRTH, "d1")
	h.publish(s.Topic(DCMD, "d1"), 0, false, dcmd(&sppb.Payload_Metric{Name: proto.String("p"),
		Datatype: proto.Uint32(uint32(sppb.DataType_Double)), Value: &sppb.Payload_Metric_DoubleValue{DoubleValue: 2}}))
	require.Eventually(t, func() bool { return s.Stats().CommandsRefused == 1 }, 10*time.Second, 5*time.Millisecond)
	fh.mu.Lock()
	assert.Empty(t, fh.writes)
	fh.mu.Unlock()
	assert.Zero(t, s.Stats().Commands)

	// A rebirth's NBIRTH carries the queue depth the host reports.
	h.publish(s.Topic(NCMD, ""), 0, false, dcmd(&sppb.Payload_Metric{Name: proto.String(MetricRebirth),
		Datatype: proto.Uint32(uint32(sppb.DataType_Boolean)), Value: &sppb.Payload_Metric_BooleanValue{BooleanValue: true}}))
	nb := h.waitFor(2, NBIRTH)[1]
	require.NotNil(t, nb.metric(MetricSpoolDepth))
	assert.EqualValues(t, 7, nb.metric(MetricSpoolDepth).GetLongValue())
}

// TestDeviceHealth: DDEATH when the source reports its device down after
// its birth, Bad samples absorbed while dead, DBIRTH when it is up again;
// a device whose first samples come while it is down is not born until it
// answers.
func TestDeviceHealth(t *testing.T) {
	addr := brokerAddr(t)
	ctx := testCtx(t, 30*time.Second)
	cfg := testConfig(t, addr)
	h := newHost(t, addr, cfg.GroupID)
	s := newSink(t, cfg)
	fh := &fakeHost{health: map[string]bridge.Health{}}
	fh.set("d1", true)
	fh.set("d2", false)
	s.Use(fh, "spb")
	require.NoError(t, s.Connect(ctx))
	require.NoError(t, s.Write(ctx, []bridge.Sample{sample("d1", "p", bridge.Float(1))}))
	h.waitFor(1, DBIRTH, "d1")
	require.Eventually(t, func() bool { // the health was read
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.health) == 2
	}, 10*time.Second, 5*time.Millisecond)

	// d2 is down from the start: its Bad samples wait for its birth.
	require.NoError(t, s.Write(ctx, []bridge.Sample{bridge.BadSample("d2", "q", time.Now(), assert.AnError)}))
	fh.set("d1", false)
	h.waitFor(1, DDEATH, "d1")
	require.NoError(t, s.Write(ctx, []bridge.Sample{bridge.BadSample("d1", "p", time.Now(), assert.AnError)}))
	assert.EqualValues(t, 2, s.Stats().Absorbed)
	assert.Empty(t, h.of(DBIRTH, "d2"))

	fh.set("d2", true)
	b2 := h.waitFor(1, DBIRTH, "d2")[0]
	q := b2.metric("q")
	require.NotNil(t, q)
	assert.True(t, q.GetIsNull())
	qv, _ := quality(q)
	assert.EqualValues(t, 0, qv)

	// A Good sample of d1 means it answers: born again at once.
	require.NoError(t, s.Write(ctx, []bridge.Sample{sample("d1", "p", bridge.Float(3))}))
	b := h.waitFor(2, DBIRTH, "d1")[1]
	assert.Equal(t, 3.0, b.metric("p").GetDoubleValue())
	for _, m := range h.of(DDATA, "d1") {
		t.Errorf("no DDATA expected: %s", m)
	}
	checkSeq(t, h.messages())
}

// TestStoreAndForward: with overflow: spool, the samples of an outage (the
// connection cut) stay in the spool; after the reconnection and the
// births they are published in order with is_historical, then the live
// ones without.
func TestStoreAndForward(t *testing.T) {
	addr := brokerAddr(t)
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		t.Run("mqtt"+v.String(), func(t *testing.T) { testStoreAndForward(t, addr, v) })
	}
}

func testStoreAndForward(t *testing.T, addr string, v mqtt.Version) {
	p := testproxy.New(t, addr)
	cfg := testConfig(t, p.Addr())
	cfg.Version = v
	h := newHost(t, addr, cfg.GroupID)
	s := newSink(t, cfg)
	sp, err := spool.Open(t.TempDir(), spool.Options{})
	require.NoError(t, err)

	in := make(chan bridge.Sample, 100)
	src := bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case smp := <-in:
				if err := out.Emit(ctx, []bridge.Sample{smp}); err != nil {
					return err
				}
			}
		}
	})
	b := bridge.New(bridge.Options{Logger: quiet})
	require.NoError(t, b.AddSource("d1", src))
	require.NoError(t, b.AddSink("spb", s, bridge.SinkOptions{BatchSize: 5, Linger: time.Millisecond,
		Overflow: bridge.OverflowSpool, Spool: sp, Retry: bridge.Retry{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}}))
	runBridge(t, b)
	feed := func(from, to int) {
		for i := from; i < to; i++ {
			in <- bridge.Sample{Source: "d1", Point: "n", Value: bridge.Int(int64(i)), Time: time.Now()}
		}
	}
	feed(0, 3)
	h.waitFor(1, DBIRTH, "d1")
	h.waitFor(2, DDATA, "d1")

	p.Cut()
	require.Eventually(t, func() bool { return !s.Stats().Connected }, 10*time.Second, 5*time.Millisecond)
	feed(3, 20)
	require.Eventually(t, func() bool { st := b.Stats().Sinks[0]; return st.Queued+st.InFlight == 17 }, 10*time.Second, 5*time.Millisecond,
		"the outage's samples are held in the spool")
	p.Restore()
	h.waitFor(2, NBIRTH)
	require.Eventually(t, func() bool { st := b.Stats().Sinks[0]; return st.Queued+st.InFlight == 0 }, 10*time.Second, 5*time.Millisecond)
	feed(20, 22)

	var got []int64
	var hist []bool
	require.Eventually(t, func() bool {
		got, hist = got[:0], hist[:0]
		for _, pm := range ddataValues(h, "d1", 1) {
			got = append(got, int64(pm.GetLongValue()))
			hist = append(hist, pm.GetIsHistorical())
		}
		return len(got) >= 21
	}, 10*time.Second, 5*time.Millisecond)
	want := make([]int64, 0, 21)
	for i := int64(1); i < 22; i++ {
		want = append(want, i)
	}
	assert.Equal(t, want, got, "every sample, in order, none twice (0 went in the DBIRTH)")
	for i, v := range got {
		assert.Equal(t, v >= 3 && v < 20, hist[i], "is_historical of %d", v)
	}
	checkSeq(t, h.messages())
}

// TestHistoricalRule: on the first connection, made at once, a sample
// measured before the edge node was made (a spool's backlog of an earlier
// run) is historical, one measured while it connected is live. A
// historical sample is never a birth's value (a birth holds current
// values): the DBIRTH carries the metric's last live value, or null, and
// the historical sample follows as DDATA with is_historical.
func TestHistoricalRule(t *testing.T) {
	addr := brokerAddr(t)
	ctx := testCtx(t, 30*time.Second)
	cfg := testConfig(t, addr)
	h := newHost(t, addr, cfg.GroupID)
	before := time.Now().Add(-time.Hour)
	s := newSink(t, cfg)
	during := time.Now()
	require.NoError(t, s.Connect(ctx))
	require.NoError(t, s.Write(ctx, []bridge.Sample{
		{Source: "d1", Point: "p", Value: bridge.Int(0), Time: before},
		{Source: "d1", Point: "p", Value: bridge.Int(1), Time: before.Add(time.Second)},
		{Source: "d1", Point: "p", Value: bridge.Int(2), Time: during},
	}))
	db := h.waitFor(1, DBIRTH, "d1")[0]
	p := db.metric("p")
	require.NotNil(t, p)
	assert.True(t, p.GetIsNull(), "a new metric whose first sample is historical is born null: %v", p)
	assert.False(t, p.GetIsHistorical())
	dd := h.waitFor(3, DDATA, "d1")
	for i, want := range []struct {
		v    int64
		hist bool
	}{{0, true}, {1, true}, {2, false}} {
		pm := dd[i].payload.GetMetrics()[0]
		assert.EqualValues(t, want.v, pm.GetLongValue(), "DDATA %d", i)
		assert.Equal(t, want.hist, pm.GetIsHistorical(), "DDATA %d", i)
	}
	assert.EqualValues(t, 2, s.Stats().Historical)

	// A new metric whose sample is historical rebirths the device: the
	// DBIRTH carries p's last live value (2, not the historical 3 that
	// comes after it) and q null; both historical samples follow as DDATA.
	require.NoError(t, s.Write(ctx, []bridge.Sample{
		{Source: "d1", Point: "p", Value: bridge.Int(3), Time: before.Add(2 * time.Second)},
		{Source: "d1", Point: "q", Value: bridge.Int(4), Time: before.Add(3 * time.Second)},
	}))
	db = h.waitFor(2, DBIRTH, "d1")[1]
	require.NotNil(t, db.metric("p"))
	assert.EqualValues(t, 2, db.metric("p").GetLongValue())
	assert.False(t, db.metric("p").GetIsNull())
	require.NotNil(t, db.metric("q"))
	assert.True(t, db.metric("q").GetIsNull())
	dd = h.waitFor(4, DDATA, "d1")
	var vals []int64
	for _, m := range dd[3].payload.GetMetrics() {
		assert.True(t, m.GetIsHistorical())
		vals = append(vals, int64(m.GetLongValue()))
	}
	assert.Equal(t, []int64{3, 4}, vals)
	assert.EqualValues(t, 4, s.Stats().Historical)
	checkSeq(t, h.messages())
}

// blockingHost is a Host whose writes wait until released.
type blockingHost struct {
	fakeHost
	release chan struct{}
}

func (b *blockingHost) Write(ctx context.Context, req bridge.WriteRequest) bridge.WriteResult {
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return b.fakeHost.Write(ctx, req)
}

// TestCommandQueueBounded: DCMDs wait in a bounded queue while a write is
// slow; those beyond it are dropped and counted, the others written in
// order.
func TestCommandQueueBounded(t *testing.T) {
	addr := brokerAddr(t)
	ctx := testCtx(t, 30*time.Second)
	cfg := testConfig(t, addr)
	cfg.Commands = true
	h := newHost(t, addr, cfg.GroupID)
	s := newSink(t, cfg)
	bh := &blockingHost{fakeHost: fakeHost{health: map[string]bridge.Health{}}, release: make(chan struct{})}
	s.Use(bh, "spb")
	require.NoError(t, s.Connect(ctx))
	require.NoError(t, s.Write(ctx, []bridge.Sample{sample("d1", "p", bridge.Int(0))}))
	h.waitFor(1, DBIRTH, "d1")
	const n = commandQueue + 20
	for i := 1; i <= n; i++ {
		h.publish(s.Topic(DCMD, "d1"), 1, false, dcmd(&sppb.Payload_Metric{Name: proto.String("p"),
			Datatype: proto.Uint32(uint32(sppb.DataType_Int64)), Value: &sppb.Payload_Metric_LongValue{LongValue: uint64(i)}}))
	}
	require.Eventually(t, func() bool { return s.Stats().CommandsDropped > 0 }, 10*time.Second, 5*time.Millisecond)
	close(bh.release)
	require.Eventually(t, func() bool {
		bh.mu.Lock()
		defer bh.mu.Unlock()
		return uint64(len(bh.writes))+s.Stats().CommandsDropped == n
	}, 10*time.Second, 5*time.Millisecond)
	bh.mu.Lock()
	defer bh.mu.Unlock()
	last := int64(0)
	for _, w := range bh.writes {
		v, _ := w.Value.Int()
		assert.Greater(t, v, last, "in order")
		last = v
		assert.Equal(t, "d1", w.Source)
	}
}

// TestSpoolDepthNDATA: the queue depth of the NBIRTH is updated by NDATA
// when it changes, at most once a second, by name (it has no alias).
func TestSpoolDepthNDATA(t *testing.T) {
	addr := brokerAddr(t)
	ctx := testCtx(t, 30*time.Second)
	cfg := testConfig(t, addr)
	h := newHost(t, addr, cfg.GroupID)
	s := newSink(t, cfg)
	fh := &fakeHost{health: map[string]bridge.Health{}}
	s.Use(fh, "spb")
	require.NoError(t, s.Connect(ctx))
	assert.EqualValues(t, 7, h.waitFor(1, NBIRTH)[0].metric(MetricSpoolDepth).GetLongValue())
	fh.mu.Lock()
	fh.queued = 5
	fh.mu.Unlock()
	nd := h.waitFor(1, NDATA)[0]
	pm := nd.metric(MetricSpoolDepth)
	require.NotNil(t, pm, "%s", nd)
	assert.EqualValues(t, 12, pm.GetLongValue())
	assert.Nil(t, pm.Alias)
	fh.mu.Lock()
	fh.queued = 0
	fh.mu.Unlock()
	first := time.Now()
	h.waitFor(2, NDATA)
	assert.GreaterOrEqual(t, time.Since(first), 500*time.Millisecond, "at most one NDATA a second")
	assert.Len(t, h.of(NDATA), 2, "nothing while it does not change")
	checkSeq(t, h.messages())
}

// TestScaledPointIsDouble: a scaled or offset point is announced with the
// datatype of its value (a float64: Double), not of its register, so that
// its value reaches the host exactly; an unscaled float32 stays Float.
func TestScaledPointIsDouble(t *testing.T) {
	addr := brokerAddr(t)
	points := []modbus.Point{
		{Name: "raw", Table: modbus.Holding, Address: 100, Type: modbus.Float32},
		{Name: "total", Table: modbus.Holding, Address: 102, Type: modbus.Float32, Offset: 1e6},
		{Name: "tenths", Table: modbus.Holding, Address: 104, Type: modbus.Int16, Scale: 0.1},
	}
	srv, err := modbustest.NewServer(&modbus.Profile{Name: "plc", Points: []modbus.Point{
		{Name: "raw", Table: modbus.Holding, Address: 100, Type: modbus.Float32},
		{Name: "total", Table: modbus.Holding, Address: 102, Type: modbus.Float32},
		{Name: "tenths", Table: modbus.Holding, Address: 104, Type: modbus.Int16},
	}}, modbustest.WithTick(time.Hour))
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	require.NoError(t, srv.Set("raw", 0.5))
	require.NoError(t, srv.Set("total", 0.3))
	require.NoError(t, srv.Set("tenths", 2305))
	dev, err := modbus.NewDevice(modbus.DeviceConfig{Name: "plc1", Interval: 50 * time.Millisecond,
		Conn: modbus.ClientConfig{URL: srv.URL(), Timeout: 200 * time.Millisecond}, Points: points})
	require.NoError(t, err)
	t.Cleanup(func() { dev.Close() })

	cfg := testConfig(t, addr)
	h := newHost(t, addr, cfg.GroupID)
	s := newSink(t, cfg)
	b := bridge.New(bridge.Options{Logger: quiet})
	require.NoError(t, b.AddSource("plc1", dev))
	require.NoError(t, b.AddSink("spb", s, bridge.SinkOptions{BatchSize: 100, Linger: 5 * time.Millisecond}))
	runBridge(t, b)

	birth := h.waitFor(1, DBIRTH, "plc1")[0]
	raw, total, tenths := birth.metric("raw"), birth.metric("total"), birth.metric("tenths")
	require.NotNil(t, raw)
	require.NotNil(t, total)
	require.NotNil(t, tenths)
	assert.EqualValues(t, sppb.DataType_Float, raw.GetDatatype())
	assert.EqualValues(t, 0.5, raw.GetFloatValue())
	assert.EqualValues(t, sppb.DataType_Double, total.GetDatatype())
	assert.Equal(t, 1e6+0.3, total.GetDoubleValue(), "exact, not rounded to float32 (1000000.3125)")
	assert.EqualValues(t, sppb.DataType_Double, tenths.GetDatatype())
	assert.InDelta(t, 230.5, tenths.GetDoubleValue(), 1e-9)
}
