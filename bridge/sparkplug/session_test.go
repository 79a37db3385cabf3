package sparkplug

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/mqtt"
	"github.com/m2mbridge/m2mbridge/bridge/sparkplug/internal/sppb"
	"github.com/m2mbridge/m2mbridge/internal/testproxy"
)

func bdSeqOf(tb testing.TB, m msg) uint64 {
	tb.Helper()
	pm := m.metric(MetricBdSeq)
	require.NotNil(tb, pm, "%s has no bdSeq", m)
	require.EqualValues(tb, sppb.DataType_Int64, pm.GetDatatype())
	return pm.GetLongValue()
}

// TestBdSeqAcrossRestarts: each run of an edge node on the same state_dir
// connects with the next bdSeq, in its NBIRTH and in its NDEATH.
func TestBdSeqAcrossRestarts(t *testing.T) {
	addr := brokerAddr(t)
	ctx := testCtx(t, 30*time.Second)
	cfg := testConfig(t, addr)
	h := newHost(t, addr, cfg.GroupID)
	for run := 0; run < 3; run++ {
		s, err := New(cfg) // a new process: nothing in memory but state_dir
		require.NoError(t, err)
		require.NoError(t, s.Connect(ctx))
		require.NoError(t, s.Write(ctx, []bridge.Sample{sample("d1", "p", bridge.Int(int64(run)))}))
		require.NoError(t, s.Close(ctx))
		births := h.waitFor(run+1, NBIRTH)
		deaths := h.waitFor(run+1, NDEATH)
		assert.EqualValues(t, run, bdSeqOf(t, births[run]), "bdSeq of run %d", run)
		assert.EqualValues(t, run, bdSeqOf(t, deaths[run]), "NDEATH of run %d carries its NBIRTH's bdSeq", run)
	}
	checkSeq(t, h.messages())
}

// TestWillOnConnectionCut: when the connection is cut (no DISCONNECT), the
// broker publishes the Will, an NDEATH with the bdSeq of the NBIRTH; the
// edge node reconnects with the next bdSeq and is born again, devices
// included, with seq starting again at 0.
func TestWillOnConnectionCut(t *testing.T) {
	addr := brokerAddr(t)
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		t.Run("mqtt"+v.String(), func(t *testing.T) {
			ctx := testCtx(t, 30*time.Second)
			p := testproxy.New(t, addr)
			cfg := testConfig(t, p.Addr())
			cfg.Version = v
			h := newHost(t, addr, cfg.GroupID)
			s := newSink(t, cfg)
			require.NoError(t, s.Connect(ctx))
			require.NoError(t, s.Write(ctx, []bridge.Sample{sample("d1", "p", bridge.Float(1))}))
			h.waitFor(1, DBIRTH, "d1")
			first := bdSeqOf(t, h.waitFor(1, NBIRTH)[0])
			// Traffic up to the cut: the client is busy when it comes
			// (paho.mqtt.golang once missed a loss then).
			for i := 0; i < 300; i++ {
				require.NoError(t, s.Write(ctx, []bridge.Sample{sample("d1", "q", bridge.Int(int64(i)))}))
			}
			require.NoError(t, s.Write(ctx, []bridge.Sample{sample("d1", "p", bridge.Float(1.5))}))
			// Data is QoS 0: what is in flight at the cut is lost with it
			// (see the package doc); this test is about the Will.
			h.waitFor(300, DDATA, "d1")

			p.Cut()
			will := h.waitFor(1, NDEATH)[0]
			assert.Equal(t, first, bdSeqOf(t, will), "the Will carries the bdSeq of the session's NBIRTH")
			assert.Nil(t, will.payload.Seq)
			require.Eventually(t, func() bool { return !s.Stats().Connected }, 10*time.Second, 5*time.Millisecond)
			err := s.Write(ctx, []bridge.Sample{sample("d1", "p", bridge.Float(2))})
			require.ErrorIs(t, err, ErrNotConnected, "nothing can be published: the bridge keeps the samples")
			assert.True(t, bridge.IsRetriable(err))

			p.Restore()
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("edge node: %+v", s.Stats())
				}
			})
			nb := h.waitFor(2, NBIRTH)[1]
			assert.Equal(t, (first+1)%256, bdSeqOf(t, nb), "a new connection, a new bdSeq")
			db := h.waitFor(3, DBIRTH, "d1")[2]
			assert.Equal(t, 1.5, db.metric("p").GetDoubleValue(), "the rebirth carries the last value published")
			assert.EqualValues(t, 299, int64(db.metric("q").GetLongValue()))
			checkSeq(t, h.messages())
			assert.EqualValues(t, 2, s.Stats().Connects)
		})
	}
}

// TestSeqWrapsOnTheWire: seq runs 0-255 and wraps, across DBIRTH and DDATA.
func TestSeqWrapsOnTheWire(t *testing.T) {
	addr := brokerAddr(t)
	ctx := testCtx(t, 30*time.Second)
	cfg := testConfig(t, addr)
	h := newHost(t, addr, cfg.GroupID)
	s := newSink(t, cfg)
	require.NoError(t, s.Connect(ctx))
	const n = 300
	for i := 0; i < n; i++ {
		require.NoError(t, s.Write(ctx, []bridge.Sample{sample(fmt.Sprintf("d%d", i%3), "p", bridge.Int(int64(i)))}))
	}
	h.waitFor(n-3, DDATA)
	ms := h.messages()
	checkSeq(t, ms)
	// 3 DBIRTH and 297 DDATA after the NBIRTH: the last is seq 300 mod 256.
	assert.EqualValues(t, n%256, ms[len(ms)-1].payload.GetSeq())
}

// TestRebirthOnNCMD: an NCMD Node Control/Rebirth=true makes the edge node
// publish NBIRTH (same bdSeq, seq 0) and every DBIRTH again, without
// reconnecting; Rebirth=false and other NCMD metrics change nothing.
func TestRebirthOnNCMD(t *testing.T) {
	addr := brokerAddr(t)
	ctx := testCtx(t, 30*time.Second)
	cfg := testConfig(t, addr)
	h := newHost(t, addr, cfg.GroupID)
	s := newSink(t, cfg)
	require.NoError(t, s.Connect(ctx))
	require.NoError(t, s.Write(ctx, []bridge.Sample{sample("d1", "a", bridge.Float(1)), sample("d2", "b", bridge.Bool(true))}))
	h.waitFor(1, DBIRTH, "d2")
	bd := bdSeqOf(t, h.waitFor(1, NBIRTH)[0])

	ncmd := func(v bool) []byte {
		b, err := proto.Marshal(&sppb.Payload{Timestamp: proto.Uint64(ms(time.Now())), Metrics: []*sppb.Payload_Metric{{
			Name: proto.String(MetricRebirth), Datatype: proto.Uint32(uint32(sppb.DataType_Boolean)),
			Value: &sppb.Payload_Metric_BooleanValue{BooleanValue: v}}}})
		require.NoError(t, err)
		return b
	}
	h.publish(s.Topic(NCMD, ""), 0, false, ncmd(false))
	h.publish(s.Topic(NCMD, ""), 0, false, []byte("not protobuf"))
	h.publish(s.Topic(NCMD, ""), 0, false, ncmd(true))
	nb := h.waitFor(2, NBIRTH)[1]
	assert.Equal(t, bd, bdSeqOf(t, nb), "a rebirth keeps the bdSeq")
	assert.EqualValues(t, 0, nb.payload.GetSeq())
	h.waitFor(2, DBIRTH, "d1")
	h.waitFor(2, DBIRTH, "d2")
	require.NoError(t, s.Write(ctx, []bridge.Sample{sample("d1", "a", bridge.Float(2))}))
	h.waitFor(1, DDATA, "d1")
	checkSeq(t, h.messages())
	assert.EqualValues(t, 1, s.Stats().Connects, "no reconnection")
	assert.EqualValues(t, 2, s.Stats().NodeBirths, "Rebirth=false and a broken payload change nothing")
	assert.Empty(t, h.of(NDEATH))
}

func statePayload(online bool, ts int64) []byte {
	return []byte(fmt.Sprintf(`{"online":%t,"timestamp":%d}`, online, ts))
}

// TestPrimaryHost: with primary_host_id the edge node is born only while
// the host's STATE says online; a stale STATE is ignored; offline makes it
// publish NDEATH and disconnect, with Write failing (the bridge keeps the
// samples) until the host is back, when it is born again with a new bdSeq
// and the held samples go out as historical.
func TestPrimaryHost(t *testing.T) {
	addr := brokerAddr(t)
	ctx := testCtx(t, 30*time.Second)
	cfg := testConfig(t, addr)
	cfg.PrimaryHostID = "scada-" + uniq()
	h := newHost(t, addr, cfg.GroupID)
	stateTopic := StateTopic(cfg.PrimaryHostID)
	t.Cleanup(func() { h.publish(stateTopic, 1, true, nil) }) // clear the retained STATE
	s := newSink(t, cfg)

	err := s.Connect(testCtx(t, 500*time.Millisecond))
	require.Error(t, err, "not born while the host is not online")
	require.Eventually(t, func() bool { return s.Stats().Connected }, 10*time.Second, 5*time.Millisecond)
	err = s.Write(ctx, []bridge.Sample{sample("d1", "p", bridge.Float(1))})
	require.ErrorIs(t, err, ErrPrimaryHostOffline)
	assert.True(t, bridge.IsRetriable(err))
	assert.Empty(t, h.of(NBIRTH))

	ts := time.Now().UnixMilli()
	h.publish(stateTopic, 1, true, statePayload(true, ts))
	require.NoError(t, s.Connect(ctx))
	bd := bdSeqOf(t, h.waitFor(1, NBIRTH)[0])
	held := sample("d1", "p", bridge.Float(1))
	require.NoError(t, s.Write(ctx, []bridge.Sample{sample("d1", "p", bridge.Float(0))}))

	// A stale offline (older timestamp) is ignored.
	h.publish(stateTopic, 1, false, statePayload(false, ts-1000))
	require.NoError(t, s.Write(ctx, []bridge.Sample{sample("d1", "p", bridge.Float(0.5))}))
	h.waitFor(1, DDATA, "d1")
	assert.True(t, s.Stats().Born)

	// Offline (the host's Will carries its birth's timestamp): NDEATH and
	// disconnect.
	h.publish(stateTopic, 1, true, statePayload(false, ts))
	nd := h.waitFor(1, NDEATH)[0]
	assert.Equal(t, bd, bdSeqOf(t, nd))
	require.Eventually(t, func() bool { return !s.Stats().Born }, 10*time.Second, 5*time.Millisecond)
	held.Time = time.Now()
	err = s.Write(ctx, []bridge.Sample{held})
	require.Error(t, err)
	assert.True(t, bridge.IsRetriable(err), "%v", err)
	// It reconnects and waits: the retained STATE says offline.
	require.Eventually(t, func() bool { return s.Stats().Connected }, 10*time.Second, 5*time.Millisecond)
	assert.Len(t, h.of(NBIRTH), 1)

	h.publish(stateTopic, 1, true, statePayload(true, ts+1))
	nb := h.waitFor(2, NBIRTH)[1]
	assert.Equal(t, (bd+1)%256, bdSeqOf(t, nb))
	require.NoError(t, s.Write(ctx, []bridge.Sample{held, sample("d1", "p", bridge.Float(2))}))
	dd := h.waitFor(2, DDATA, "d1")[1]
	require.Len(t, dd.payload.GetMetrics(), 1)
	assert.True(t, dd.payload.GetMetrics()[0].GetIsHistorical(), "held while the host was away: historical")
	assert.Equal(t, 1.0, dd.payload.GetMetrics()[0].GetDoubleValue())
	live := h.waitFor(3, DDATA, "d1")[2].payload.GetMetrics()[0]
	assert.False(t, live.GetIsHistorical())
	assert.Equal(t, 2.0, live.GetDoubleValue())
	checkSeq(t, h.messages())
}

func TestParseState(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want state
		err  bool
	}{
		{`{"online":true,"timestamp":1700000000000}`, state{true, 1700000000000}, false},
		{`{"online":false,"timestamp":5}`, state{false, 5}, false},
		{`{"online":true}`, state{}, true},
		{`{"timestamp":5}`, state{}, true},
		{`ONLINE`, state{}, true},
		{`{"online":"yes","timestamp":5}`, state{}, true},
		{`{"online":true,"timestamp":-1}`, state{}, true},
		{`{"online":true,"timestamp":1.5}`, state{}, true},
		{``, state{}, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseState([]byte(tc.in))
			if tc.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestDeviceIDs: a source name that a topic element cannot hold becomes
// its device_id with '_' in place of + / #; two sources that would share
// one, and a sample without a source, fail permanently while the rest of
// the batch is published.
func TestDeviceIDs(t *testing.T) {
	addr := brokerAddr(t)
	ctx := testCtx(t, 30*time.Second)
	cfg := testConfig(t, addr)
	h := newHost(t, addr, cfg.GroupID)
	s := newSink(t, cfg)
	require.NoError(t, s.Connect(ctx))
	err := s.Write(ctx, []bridge.Sample{sample("line/1", "p", bridge.Float(1)), sample("ok", "p", bridge.Float(1)),
		sample("line+1", "p", bridge.Float(1)), sample("", "p", bridge.Float(1))})
	var be *bridge.BatchError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, []int{2, 3}, be.Indexes())
	assert.False(t, bridge.IsRetriable(be.Failed[2]))
	assert.Contains(t, be.Failed[2].Error(), `sources "line/1" and "line+1" are both device_id "line_1"`)
	h.waitFor(1, DBIRTH, "ok")
	h.waitFor(1, DBIRTH, "line_1")
	assert.Len(t, h.of(DBIRTH), 2)

	for in, want := range map[string]string{"meter1": "meter1", "a/b+c#d": "a_b_c_d", "x\xffy": "x_y", "°C": "°C", "nul\x00": "nul_"} {
		got, err := DeviceID(in)
		require.NoError(t, err)
		assert.Equal(t, want, got, "DeviceID(%q)", in)
		assert.NoError(t, CheckID(got))
	}
}

// TestConnectFails: a broker that is not there is an error of Connect,
// and the edge node keeps trying.
func TestConnectFails(t *testing.T) {
	cfg := Config{URL: "tcp://127.0.0.1:1", GroupID: "g", EdgeNodeID: "e", StateDir: t.TempDir(), Logger: quiet,
		ConnectTimeout: time.Second, MaxReconnectInterval: 100 * time.Millisecond}
	s := newSink(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.Connect(ctx)
	require.Error(t, err)
	require.ErrorIs(t, s.Write(ctx, []bridge.Sample{sample("d", "p", bridge.Int(1))}), ErrNotConnected)
}
