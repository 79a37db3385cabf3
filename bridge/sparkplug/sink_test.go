package sparkplug

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/mqtt"
	"github.com/m2mbridge/m2mbridge/bridge/sparkplug/internal/sppb"
)

// TestSession checks a whole session from the wire, for both MQTT
// versions: NBIRTH with bdSeq and Node Control/Rebirth, a DBIRTH per
// device with every metric (alias unique across the edge node, datatype,
// unit, value), DDATA by alias with timestamps and quality, a rebirth of
// a device that gains a metric, seq continuity, and NDEATH with the same
// bdSeq on Close.
func TestSession(t *testing.T) {
	addr := brokerAddr(t)
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		t.Run("mqtt"+v.String(), func(t *testing.T) {
			ctx := testCtx(t, 30*time.Second)
			cfg := testConfig(t, addr)
			cfg.Version = v
			h := newHost(t, addr, cfg.GroupID)
			s := newSink(t, cfg)
			require.NoError(t, s.Connect(ctx))

			nb := h.waitFor(1, NBIRTH)[0]
			assert.Equal(t, cfg.EdgeNodeID, nb.topic.EdgeNodeID)
			assert.EqualValues(t, 0, nb.qos, "NBIRTH is QoS 0")
			assert.False(t, nb.retained)
			bd := nb.metric(MetricBdSeq)
			require.NotNil(t, bd, "NBIRTH has bdSeq")
			assert.EqualValues(t, sppb.DataType_Int64, bd.GetDatatype())
			assert.EqualValues(t, 0, bd.GetLongValue(), "the first bdSeq of a fresh state_dir")
			rb := nb.metric(MetricRebirth)
			require.NotNil(t, rb, "NBIRTH has Node Control/Rebirth")
			assert.EqualValues(t, sppb.DataType_Boolean, rb.GetDatatype())
			assert.False(t, rb.GetBooleanValue())
			assert.Nil(t, rb.Alias, "Node Control/Rebirth has no alias")
			require.NotNil(t, nb.metric(MetricVersion))
			assert.Contains(t, nb.metric(MetricVersion).GetStringValue(), "m2mbridge")

			t0 := time.Now().Add(time.Millisecond)
			batch := []bridge.Sample{
				{Source: "meter1", Point: "voltage", Value: bridge.Float(230.5), Unit: "V", Time: t0},
				{Source: "meter1", Point: "count", Value: bridge.Int(-7), Time: t0},
				{Source: "plc1", Point: "running", Value: bridge.Bool(true), Time: t0},
				{Source: "plc1", Point: "name", Value: bridge.String("line 1"), Time: t0},
				{Source: "plc1", Point: "energy", Value: bridge.Uint(1 << 40), Unit: "Wh", Time: t0},
			}
			require.NoError(t, s.Write(ctx, batch))
			m1 := h.waitFor(1, DBIRTH, "meter1")[0]
			p1 := h.waitFor(1, DBIRTH, "plc1")[0]

			// Every metric of a device in its birth; aliases unique
			// across the edge node.
			aliases := map[uint64]string{}
			for _, b := range []msg{m1, p1} {
				for _, pm := range b.payload.GetMetrics() {
					require.NotNil(t, pm.Alias, "%s has an alias", pm.GetName())
					prev, dup := aliases[pm.GetAlias()]
					require.False(t, dup, "alias %d of %s/%s is also %s's", pm.GetAlias(), b.topic.DeviceID, pm.GetName(), prev)
					aliases[pm.GetAlias()] = b.topic.DeviceID + "/" + pm.GetName()
					q, ok := quality(pm)
					assert.True(t, ok)
					assert.EqualValues(t, 192, q)
					assert.Equal(t, uint64(t0.UnixMilli()), pm.GetTimestamp())
				}
			}
			require.Len(t, m1.payload.GetMetrics(), 2)
			require.Len(t, p1.payload.GetMetrics(), 3)
			v1 := m1.metric("voltage")
			assert.EqualValues(t, sppb.DataType_Double, v1.GetDatatype())
			assert.Equal(t, 230.5, v1.GetDoubleValue())
			assert.Equal(t, "V", property(v1, PropertyEngUnit).GetStringValue())
			c1 := m1.metric("count")
			assert.EqualValues(t, sppb.DataType_Int64, c1.GetDatatype())
			assert.EqualValues(t, -7, int64(c1.GetLongValue()))
			assert.Nil(t, property(c1, PropertyEngUnit), "no unit, no property")
			assert.True(t, p1.metric("running").GetBooleanValue())
			assert.Equal(t, "line 1", p1.metric("name").GetStringValue())
			assert.EqualValues(t, sppb.DataType_UInt64, p1.metric("energy").GetDatatype())
			assert.EqualValues(t, uint64(1<<40), p1.metric("energy").GetLongValue())

			// DDATA: by alias only, with each metric's own timestamp and
			// quality; only what the batch carries.
			t1 := time.Now().Add(time.Millisecond)
			require.NoError(t, s.Write(ctx, []bridge.Sample{
				{Source: "meter1", Point: "voltage", Value: bridge.Float(231), Unit: "V", Time: t1},
				bridge.BadSample("meter1", "count", t1, assert.AnError),
				{Source: "meter1", Point: "voltage", Value: bridge.Float(232), Unit: "V", Time: t1.Add(time.Millisecond), Quality: bridge.Uncertain},
			}))
			dd := h.waitFor(2, DDATA, "meter1")
			require.Len(t, dd[0].payload.GetMetrics(), 2, "voltage and count, then voltage again in the next message")
			for _, pm := range dd[0].payload.GetMetrics() {
				assert.Nil(t, pm.Name, "DDATA carries aliases, not names")
				assert.False(t, pm.GetIsHistorical())
			}
			got := dd[0].payload.GetMetrics()[0]
			assert.Equal(t, v1.GetAlias(), got.GetAlias())
			assert.Equal(t, []string{QualityProperty}, got.GetProperties().GetKeys(), "DDATA: the quality only, the unit is in the birth")
			assert.Equal(t, 231.0, got.GetDoubleValue())
			assert.Equal(t, uint64(t1.UnixMilli()), got.GetTimestamp())
			bad := dd[0].payload.GetMetrics()[1]
			assert.Equal(t, c1.GetAlias(), bad.GetAlias())
			assert.True(t, bad.GetIsNull())
			q, _ := quality(bad)
			assert.EqualValues(t, 0, q, "a Bad sample is visible as Quality 0")
			unc := dd[1].payload.GetMetrics()[0]
			assert.Equal(t, 232.0, unc.GetDoubleValue())
			q, _ = quality(unc)
			assert.EqualValues(t, 64, q)

			// A new metric of a born device: DBIRTH again with all of
			// them, the old aliases kept.
			require.NoError(t, s.Write(ctx, []bridge.Sample{sample("meter1", "current", bridge.Float(5))}))
			m2 := h.waitFor(2, DBIRTH, "meter1")[1]
			require.Len(t, m2.payload.GetMetrics(), 3)
			assert.Equal(t, v1.GetAlias(), m2.metric("voltage").GetAlias(), "an alias is stable per name")
			assert.Equal(t, 232.0, m2.metric("voltage").GetDoubleValue(), "a rebirth carries the last value")
			assert.Equal(t, 5.0, m2.metric("current").GetDoubleValue())
			_, dup := aliases[m2.metric("current").GetAlias()]
			assert.False(t, dup, "a new metric gets a new alias")

			// Close: NDEATH with the bdSeq of the NBIRTH.
			require.NoError(t, s.Close(ctx))
			nd := h.waitFor(1, NDEATH)[0]
			require.NotNil(t, nd.metric(MetricBdSeq))
			assert.Equal(t, bd.GetLongValue(), nd.metric(MetricBdSeq).GetLongValue())
			checkSeq(t, h.messages())
			require.ErrorIs(t, s.Write(ctx, batch), bridge.ErrClosed)
		})
	}
}

// TestNoAliases: with aliases: false, births carry no alias and DDATA
// names its metrics.
func TestNoAliases(t *testing.T) {
	addr := brokerAddr(t)
	ctx := testCtx(t, 30*time.Second)
	cfg := testConfig(t, addr)
	no := false
	cfg.Aliases = &no
	h := newHost(t, addr, cfg.GroupID)
	s := newSink(t, cfg)
	require.NoError(t, s.Connect(ctx))
	require.NoError(t, s.Write(ctx, []bridge.Sample{sample("d1", "p", bridge.Float(1)), sample("d1", "p", bridge.Float(2))}))
	b := h.waitFor(1, DBIRTH, "d1")[0]
	assert.Nil(t, b.metric("p").Alias)
	dd := h.waitFor(1, DDATA, "d1")[0]
	require.Len(t, dd.payload.GetMetrics(), 1)
	assert.Equal(t, "p", dd.payload.GetMetrics()[0].GetName())
	assert.Nil(t, dd.payload.GetMetrics()[0].Alias)
	assert.Equal(t, 2.0, dd.payload.GetMetrics()[0].GetDoubleValue())
}

// TestDDATAChangesOnly: DDATA carries what changed (spec 5.8): a sample
// whose value and quality are those the host has from the birth or the
// last DDATA is not sent, and counted; a change of value, of quality or of
// reason is; send_unchanged sends every sample.
func TestDDATAChangesOnly(t *testing.T) {
	addr := brokerAddr(t)
	for _, sendAll := range []bool{false, true} {
		t.Run(fmt.Sprintf("send_unchanged=%t", sendAll), func(t *testing.T) {
			ctx := testCtx(t, 30*time.Second)
			cfg := testConfig(t, addr)
			cfg.SendUnchanged = sendAll
			h := newHost(t, addr, cfg.GroupID)
			s := newSink(t, cfg)
			require.NoError(t, s.Connect(ctx))
			write := func(smp bridge.Sample) { require.NoError(t, s.Write(ctx, []bridge.Sample{smp})) }
			write(sample("d1", "v", bridge.Float(230.1))) // the birth carries it
			h.waitFor(1, DBIRTH, "d1")
			write(sample("d1", "v", bridge.Float(230.1)))
			write(sample("d1", "v", bridge.Float(230.2)))
			write(sample("d1", "v", bridge.Float(230.2)))
			unc := sample("d1", "v", bridge.Float(230.2))
			unc.Quality = bridge.Uncertain
			write(unc)
			write(unc)
			bad := bridge.BadSample("d1", "v", time.Now(), errors.New("timeout"))
			write(bad)
			bad.Reason = "exception 2"
			write(bad)
			write(sample("d1", "v", bridge.Float(230.2)))

			var want []string
			if sendAll {
				want = []string{"230.1/192", "230.2/192", "230.2/192", "230.2/64", "230.2/64", "null/0", "null/0", "230.2/192"}
			} else {
				want = []string{"230.2/192", "230.2/64", "null/0", "null/0", "230.2/192"}
			}
			ms := h.waitFor(len(want), DDATA, "d1")
			var got []string
			for _, m := range ms {
				for _, pm := range m.payload.GetMetrics() {
					q, _ := quality(pm)
					v := "null"
					if !pm.GetIsNull() {
						v = fmt.Sprint(pm.GetDoubleValue())
					}
					got = append(got, fmt.Sprintf("%s/%d", v, q))
				}
			}
			assert.Equal(t, want, got)
			if sendAll {
				assert.Zero(t, s.Stats().Unchanged)
			} else {
				assert.EqualValues(t, 3, s.Stats().Unchanged)
			}
			checkSeq(t, h.messages())
		})
	}
}
