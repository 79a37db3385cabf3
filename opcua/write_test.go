package opcua_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
	"github.com/m2mbridge/m2mbridge/opcua"
	"github.com/m2mbridge/m2mbridge/opcua/opcuatest"
)

func ptr(f float64) *float64 { return &f }

// writeNodes are the nodes of the write tests: a bounded setpoint, an
// Int32 without rules, the same Int32 as a selector with allowed values,
// and a counter that the configuration does not let be written and that
// the server refuses (configured as writable under another name).
func writeNodes() []opcua.Node {
	return []opcua.Node{
		{Name: "setpoint", Node: opcuatest.NodeID(opcuatest.Setpoint), Writable: true, Min: ptr(0), Max: ptr(80)},
		{Name: "mode", Node: opcuatest.NodeID(opcuatest.Mode), Writable: true},
		{Name: "selector", Node: opcuatest.NodeID(opcuatest.Mode), Writable: true, Allowed: []float64{0, 1, 2}},
		{Name: "counter", Node: opcuatest.NodeID(opcuatest.Counter)},
		{Name: "counter_rw", Node: opcuatest.NodeID(opcuatest.Counter), Writable: true},
	}
}

func TestWrite(t *testing.T) {
	srv := newServer(t, opcuatest.Options{Interval: -1})
	src, err := opcua.New(opcua.Config{Name: "plc", Endpoint: srv.URL(), Mode: opcua.Poll, Interval: time.Hour, Nodes: writeNodes()})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	_, err = src.Write(ctx, "setpoint", bridge.Float(1.5))
	require.ErrorIs(t, err, opcua.ErrNotConnected, "no session: an error at once, not a wait")
	assert.False(t, bridge.IsRefusal(err))

	run(t, src, bridgetest.NewRecorder())
	require.Eventually(t, func() bool { return src.Stats().Connected }, 10*time.Second, 10*time.Millisecond)

	t.Run("accepted", func(t *testing.T) {
		for _, tc := range []struct {
			point string
			v     bridge.Value
			want  bridge.Value
			node  string
			on    any
		}{
			{"setpoint", bridge.Float(42.5), bridge.Float(42.5), opcuatest.Setpoint, 42.5},
			{"setpoint", bridge.Int(80), bridge.Float(80), opcuatest.Setpoint, 80.0},
			{"setpoint", bridge.Float(0), bridge.Float(0), opcuatest.Setpoint, 0.0},
			{"mode", bridge.Int(-7), bridge.Int(-7), opcuatest.Mode, int32(-7)},
			{"mode", bridge.Float(12), bridge.Int(12), opcuatest.Mode, int32(12)},
			{"mode", bridge.Uint(2147483647), bridge.Int(2147483647), opcuatest.Mode, int32(2147483647)},
			{"selector", bridge.Int(2), bridge.Int(2), opcuatest.Mode, int32(2)},
		} {
			before := time.Now()
			s, err := src.Write(ctx, tc.point, tc.v)
			require.NoError(t, err, "%s = %s", tc.point, tc.v)
			assert.Equal(t, tc.on, srv.Value(tc.node), "the server holds it")
			assert.Equal(t, "plc", s.Source)
			assert.Equal(t, tc.point, s.Point)
			assert.Equal(t, tc.want, s.Value, "read back")
			assert.Equal(t, bridge.Good, s.Quality, s.Reason)
			assert.Equal(t, uint32(0), s.Code)
			assert.WithinDuration(t, before, s.Time, 5*time.Second, "the server's SourceTimestamp of the write")
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			point string
			v     bridge.Value
			want  error
			msg   string
		}{
			{"unknown point", "nope", bridge.Int(1), bridge.ErrUnknownPoint, "nope: no such node in source plc: unknown point"},
			{"not writable", "counter", bridge.Uint(5), bridge.ErrNotWritable, "counter: writes are not allowed"},
			{"above max", "setpoint", bridge.Int(95), bridge.ErrOutOfRange, "setpoint: 95 is above max 80: out of range"},
			{"below min", "setpoint", bridge.Float(-0.5), bridge.ErrOutOfRange, "setpoint: -0.5 is below min 0: out of range"},
			{"string for a bounded Double", "setpoint", bridge.String("warm"), bridge.ErrWrongType, `setpoint: "warm" is a string`},
			{"fraction for an Int32", "mode", bridge.Float(7.5), bridge.ErrWrongType, "mode: 7.5 is not an integer, the node is Int32: wrong type"},
			{"beyond an Int32", "mode", bridge.Int(1 << 40), bridge.ErrOutOfRange, "mode: 1099511627776 is outside the range of Int32, -2147483648 to 2147483647: out of range"},
			{"beyond an Int32 by one", "mode", bridge.Uint(2147483648), bridge.ErrOutOfRange, "outside the range of Int32"},
			{"string for an Int32", "mode", bridge.String("1"), bridge.ErrWrongType, `mode: "1" is a string, the node is Int32: wrong type`},
			{"bool for an Int32", "mode", bridge.Bool(true), bridge.ErrWrongType, "mode: true is a bool, the node is Int32"},
			{"no value", "mode", bridge.Value{}, bridge.ErrWrongType, "mode: no value"},
			{"not allowed", "selector", bridge.Int(3), bridge.ErrOutOfRange, "selector: 3 is not one of the allowed values 0, 1, 2: out of range"},
			{"not allowed fraction", "selector", bridge.Float(1.5), bridge.ErrOutOfRange, "not one of the allowed values"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				writes := srv.Writes()
				_, err := src.Write(ctx, tc.point, tc.v)
				require.ErrorIs(t, err, tc.want)
				assert.True(t, bridge.IsRefusal(err))
				assert.Contains(t, err.Error(), tc.msg)
				assert.Equal(t, writes, srv.Writes(), "nothing sent to the server")
			})
		}
	})

	t.Run("refused by the server", func(t *testing.T) {
		writes := srv.Writes()
		_, err := src.Write(ctx, "counter_rw", bridge.Uint(5))
		var we *opcua.WriteError
		require.ErrorAs(t, err, &we)
		assert.Equal(t, ua.StatusBadNotWritable, we.Status)
		assert.ErrorIs(t, err, ua.StatusBadNotWritable)
		assert.False(t, bridge.IsRefusal(err), "the server answered: a failure, not a refusal by rule")
		assert.Equal(t, "opcua: write plc/counter_rw: BadNotWritable", err.Error())
		assert.Equal(t, writes+1, srv.Writes())
	})
}

// TestBridgeWrite writes through bridge.Bridge: the answer carries the
// value read back, the read-back sample reaches the sinks at once, and the
// write is counted.
func TestBridgeWrite(t *testing.T) {
	srv := newServer(t, opcuatest.Options{Interval: -1})
	src, err := opcua.New(opcua.Config{Name: "plc", Endpoint: srv.URL(), Mode: opcua.Poll, Interval: time.Hour, Nodes: writeNodes()})
	require.NoError(t, err)
	b := bridge.New(bridge.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, b.AddSource("plc", src))
	rec := bridgetest.NewRecorder()
	require.NoError(t, b.AddSink("rec", rec, bridge.SinkOptions{}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return")
		}
	}()
	require.Eventually(t, func() bool { return src.Health().Up }, 10*time.Second, 10*time.Millisecond)

	res := b.Write(ctx, bridge.WriteRequest{Source: "plc", Point: "setpoint", Value: bridge.Float(21.5), ID: "a1", Origin: "test"})
	require.NoError(t, res.Err)
	assert.True(t, res.OK)
	assert.True(t, res.Matched)
	assert.Equal(t, bridge.Float(21.5), res.Value)
	waitFor(t, rec, 0, 10*time.Second, "the read-back sample", func(ss []bridge.Sample) bool {
		for _, s := range ss {
			if s.Point == "setpoint" && s.Value.Equal(bridge.Float(21.5)) {
				return true
			}
		}
		return false
	})

	res = b.Write(ctx, bridge.WriteRequest{Source: "plc", Point: "mode", Value: bridge.Float(2.5), ID: "a2"})
	require.ErrorIs(t, res.Err, bridge.ErrWrongType)
	assert.JSONEq(t, `{"id":"a2","ok":false,"error":"mode: 2.5 is not an integer, the node is Int32: wrong type"}`, string(bridge.AppendCommandReply(nil, res)))
	res = b.Write(ctx, bridge.WriteRequest{Source: "plc", Point: "counter_rw", Value: bridge.Int(1)})
	require.ErrorIs(t, res.Err, ua.StatusBadNotWritable)

	got := map[string]bridge.WriteStats{}
	for _, w := range b.Stats().Writes {
		got[w.Point] = w
	}
	assert.Equal(t, uint64(1), got["setpoint"].Accepted)
	assert.Equal(t, uint64(1), got["mode"].Refused)
	assert.Equal(t, uint64(1), got["counter_rw"].Failed)
}
