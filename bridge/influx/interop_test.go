package influx_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
	"github.com/m2mbridge/m2mbridge/bridge/influx"
)

func TestInfluxdConformance(t *testing.T) {
	d := startInfluxd(t)
	bridgetest.TestSink(t, bridgetest.Harness{
		New: func(t *testing.T) (bridge.Sink, bridgetest.Readback) {
			db := d.newDB(t)
			return newV1(t, d, db, nil), d.readback(db)
		},
	})
}

func TestInfluxdRoundTrip(t *testing.T) {
	d := startInfluxd(t)
	db := d.newDB(t)
	s := newV1(t, d, db, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, s.Connect(ctx))

	t0 := time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Nanosecond) }
	good := []bridge.Sample{
		{Source: "meter1", Point: "voltage_l1", Value: bridge.Float(230.5), Unit: "V", Time: at(0)},
		{Source: "meter1", Point: "voltage_l1", Value: bridge.Float(-1.5e-300), Unit: "V", Time: at(1)},
		{Source: "meter1", Point: "energy", Value: bridge.Float(1e300), Unit: "kWh", Time: at(2)},
		{Source: "meter1", Point: "counter", Value: bridge.Int(math.MinInt64), Time: at(3)},
		{Source: "meter1", Point: "counter", Value: bridge.Int(math.MaxInt64), Time: at(4)},
		{Source: "meter1", Point: "raw", Value: bridge.Uint(math.MaxInt64), Time: at(5)},
		{Source: "meter1", Point: "alarm", Value: bridge.Bool(true), Time: at(6)},
		{Source: "meter1", Point: "alarm", Value: bridge.Bool(false), Time: at(7), Quality: bridge.Uncertain},
		{Source: "meter1", Point: "name", Value: bridge.String("say \"hi\"\\ to C:\\temp,\nnext line é"), Time: at(8)},
		{Source: "plc 1,hall=2", Point: "temp, inner=x", Value: bridge.Float(21.25), Unit: "°C", Time: at(9)},
		{Source: `back\slash`, Point: `a\b`, Value: bridge.Int(7), Unit: "m/s²", Time: at(10)},
	}
	bad := []bridge.Sample{
		bridge.BadSample("meter1", "voltage_l2", at(11), errors.New("timeout")),
		{Source: "meter1", Point: "nan", Value: bridge.Float(math.NaN()), Time: at(12)},
		{Source: "meter1", Point: "big", Value: bridge.Uint(math.MaxUint64), Time: at(13)},
		{Source: "#comment", Point: "x", Value: bridge.Int(1), Time: at(14)},
		{Source: "meter1", Point: "trailing\\", Value: bridge.Int(1), Time: at(15)},
		{Source: "meter1", Point: "", Value: bridge.Int(1), Time: at(16)},
		{Source: "meter1", Point: "novalue", Time: at(17)},
	}
	batch := append(append([]bridge.Sample{}, good...), bad...)
	err := s.Write(ctx, batch)
	var be *bridge.BatchError
	require.ErrorAs(t, err, &be)
	n := len(good)
	assert.Equal(t, []int{n + 1, n + 2, n + 3, n + 4, n + 5, n + 6}, be.Indexes(), "the Bad sample is skipped, the others rejected")
	for _, e := range be.Failed {
		assert.True(t, bridge.IsPermanent(e), "%v", e)
	}
	assert.ErrorIs(t, be.Failed[n+1], influx.ErrNotFinite)
	assert.ErrorIs(t, be.Failed[n+2], influx.ErrUintRange)
	assert.ErrorIs(t, be.Failed[n+3], influx.ErrName)
	assert.ErrorIs(t, be.Failed[n+6], influx.ErrNoValue)
	assert.Equal(t, influx.Stats{Written: uint64(n), Skipped: 1, Rejected: 6}, s.Stats())

	got, err := d.readAll(db)
	require.NoError(t, err)
	require.Len(t, got, n)
	assert.Empty(t, bridgetest.Match(good, got))
	units := map[string]string{}
	for _, g := range got {
		units[g.Source+"/"+g.Point] = g.Unit
	}
	assert.Equal(t, "°C", units["plc 1,hall=2/temp, inner=x"])
	assert.Equal(t, "m/s²", units[`back\slash/a\b`])
	assert.Equal(t, "", units["meter1/alarm"])
	for _, g := range got { // strings and values exactly, not just Equal
		if g.Point == "name" {
			assert.Equal(t, good[8].Value.Str(), g.Value.Str())
		}
	}

	types, err := d.fieldTypes(db, "meter1")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"value": "float", "value_int": "integer", "value_uint": "integer", "value_bool": "boolean", "value_string": "string"}, types)
}

func TestInfluxdErrors(t *testing.T) {
	d := startInfluxd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := time.Now()

	t.Run("DatabaseNotFound", func(t *testing.T) {
		s := newV1(t, d, "nosuchdb", nil)
		err := s.Write(ctx, []bridge.Sample{{Source: "m", Point: "p", Value: bridge.Int(1), Time: now}})
		var se *influx.StatusError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 404, se.StatusCode)
		assert.Contains(t, se.Message, "database not found")
		assert.True(t, bridge.IsRetriable(err), "a missing database is a setting to fix, not bad data")
		assert.Zero(t, s.Stats().Rejected)
	})

	t.Run("FieldTypeConflict", func(t *testing.T) {
		// With one field for every kind, InfluxDB keeps the first type and
		// drops the rest without naming them: the sink splits the request
		// and rejects the sample InfluxDB refuses alone.
		db := d.newDB(t)
		s := newV1(t, d, db, func(c *influx.Config) { c.Fields = "single" })
		require.NoError(t, s.Write(ctx, []bridge.Sample{{Source: "m", Point: "p", Value: bridge.Float(1), Time: now}}))
		err := s.Write(ctx, []bridge.Sample{
			{Source: "m", Point: "p", Value: bridge.Float(2), Time: now.Add(1)},
			{Source: "m", Point: "q", Value: bridge.Int(3), Time: now.Add(2)},
		})
		var be *bridge.BatchError
		require.ErrorAs(t, err, &be)
		assert.Equal(t, []int{1}, be.Indexes())
		var se *influx.StatusError
		require.ErrorAs(t, be.Failed[1], &se)
		assert.Equal(t, 400, se.StatusCode)
		assert.Contains(t, se.Message, "partial write")
		assert.True(t, bridge.IsPermanent(be.Failed[1]))
		got, err := d.readAll(db)
		require.NoError(t, err)
		assert.Len(t, got, 2, "the float was written")
	})

	t.Run("ServerGoneAndBack", func(t *testing.T) {
		db := d.newDB(t)
		s := newV1(t, d, db, func(c *influx.Config) { c.Timeout = 2 * time.Second })
		batch := func(i int) []bridge.Sample {
			return []bridge.Sample{{Source: "m", Point: "p", Value: bridge.Int(int64(i)), Time: now.Add(time.Duration(i))}}
		}
		require.NoError(t, s.Write(ctx, batch(0)))
		d.stop()
		err := s.Write(ctx, batch(1))
		require.Error(t, err)
		assert.True(t, bridge.IsRetriable(err), "a server that is away is worth retrying: %v", err)
		assert.Error(t, s.Connect(ctx))
		d.start()
		require.NoError(t, s.Connect(ctx))
		require.NoError(t, s.Write(ctx, batch(1)))
		require.NoError(t, s.Write(ctx, batch(2)))
		got, err := d.readAll(db)
		require.NoError(t, err)
		assert.Empty(t, bridgetest.Match(append(append(batch(0), batch(1)...), batch(2)...), got))
	})
}

// BenchmarkInfluxdWrite writes batches of 5,000 samples (100 points of 10
// sources) to the local influxd.
func BenchmarkInfluxdWrite(b *testing.B) {
	d := startInfluxd(b)
	db := "bench"
	_, err := d.query("", "CREATE DATABASE "+db)
	require.NoError(b, err)
	s, err := influx.New(influx.Config{URL: d.url(), Database: db})
	require.NoError(b, err)
	defer s.Close(context.Background())
	ctx := context.Background()
	batch := make([]bridge.Sample, 5000)
	t0 := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for i := range batch {
			batch[i] = bridge.Sample{
				Source: sourceNames[i%10],
				Point:  pointNames[i%100],
				Value:  bridge.Float(float64(n*len(batch)+i) * 0.5),
				Unit:   "V",
				Time:   t0.Add(time.Duration(n*len(batch)+i) * time.Microsecond),
			}
		}
		if err := s.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "samples/s")
}

var sourceNames = []string{"meter0", "meter1", "meter2", "meter3", "meter4", "meter5", "meter6", "meter7", "meter8", "meter9"}

var pointNames = func() []string {
	p := make([]string, 100)
	for i := range p {
		p[i] = "point_" + string(rune('a'+i/10)) + string(rune('a'+i%10))
	}
	return p
}()

// TestInfluxdOutageThroughBridge runs the sink under a Bridge while influxd
// is stopped and started again: the Bridge retries and nothing is lost.
func TestInfluxdOutageThroughBridge(t *testing.T) {
	d := startInfluxd(t)
	db := d.newDB(t)
	s := newV1(t, d, db, func(c *influx.Config) { c.Timeout = time.Second })
	b := bridge.New(bridge.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, b.AddSink("influx", s, bridge.SinkOptions{
		BatchSize: 50, Retry: bridge.Retry{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond},
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- b.Run(runCtx) }()

	want := bridgetest.Samples("outage", 300, time.Now().Truncate(time.Microsecond))
	delivered := func() uint64 { return b.Stats().Sinks[0].Delivered }
	require.NoError(t, b.Emit(ctx, want[:100]))
	require.Eventually(t, func() bool { return delivered() == 100 }, 20*time.Second, 10*time.Millisecond)

	d.stop()
	require.NoError(t, b.Emit(ctx, want[100:200]))
	require.Eventually(t, func() bool { return b.Stats().Sinks[0].Errors > 0 }, 20*time.Second, 10*time.Millisecond,
		"the sink reports errors while influxd is away")
	require.NoError(t, b.Emit(ctx, want[200:]))
	d.start()
	require.Eventually(t, func() bool { return delivered() == 300 }, 30*time.Second, 10*time.Millisecond)
	stop()
	require.NoError(t, <-ran)

	st := b.Stats().Sinks[0]
	assert.Equal(t, uint64(300), st.Accepted)
	assert.Zero(t, st.Rejected+st.Failed+st.Dropped+st.Left)
	got, err := d.readAll(db)
	require.NoError(t, err)
	assert.Empty(t, bridgetest.Match(want, got))
}
