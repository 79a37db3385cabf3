package hostcheck_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	pmqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/m2mbridge/m2mbridge/bridge/sparkplug/internal/sppb"
	"github.com/m2mbridge/m2mbridge/internal/sparkplughost"
	"github.com/m2mbridge/m2mbridge/internal/testproxy"
)

type metric = sppb.Payload_Metric

// m is a metric with a name (none when empty), an alias (none when
// negative) and a datatype; the value is set by the helpers below.
func m(name string, alias int64, dt sppb.DataType) *metric {
	x := &metric{Datatype: proto.Uint32(uint32(dt))}
	if name != "" {
		x.Name = proto.String(name)
	}
	if alias >= 0 {
		x.Alias = proto.Uint64(uint64(alias))
	}
	return x
}

func intv(x *metric, v uint32) *metric {
	x.Value = &sppb.Payload_Metric_IntValue{IntValue: v}
	return x
}

func longv(x *metric, v uint64) *metric {
	x.Value = &sppb.Payload_Metric_LongValue{LongValue: v}
	return x
}

func floatv(x *metric, v float32) *metric {
	x.Value = &sppb.Payload_Metric_FloatValue{FloatValue: v}
	return x
}

func doublev(x *metric, v float64) *metric {
	x.Value = &sppb.Payload_Metric_DoubleValue{DoubleValue: v}
	return x
}

func boolv(x *metric, v bool) *metric {
	x.Value = &sppb.Payload_Metric_BooleanValue{BooleanValue: v}
	return x
}

// untyped leaves the datatype out, as data may (6.4.8).
func untyped(x *metric) *metric {
	x.Datatype = nil
	return x
}

func null(x *metric) *metric {
	x.IsNull = proto.Bool(true)
	return x
}

// quality adds the Quality property, an Int32 as the spec says (6.4.9.1).
func quality(x *metric, q uint32) *metric {
	x.Properties = &sppb.Payload_PropertySet{Keys: []string{"Quality"}, Values: []*sppb.Payload_PropertyValue{
		{Type: proto.Uint32(uint32(sppb.DataType_Int32)), Value: &sppb.Payload_PropertyValue_IntValue{IntValue: q}},
	}}
	return x
}

func historical(x *metric, ts uint64) *metric {
	x.IsHistorical = proto.Bool(true)
	if ts != 0 {
		x.Timestamp = proto.Uint64(ts)
	}
	return x
}

const noSeq = -1

// payload encodes a payload with a timestamp, seq (none when noSeq) and the
// metrics.
func payload(tb testing.TB, seq int64, ms ...*metric) []byte {
	tb.Helper()
	p := &sppb.Payload{Timestamp: proto.Uint64(uint64(time.Now().UnixMilli())), Metrics: ms}
	if seq != noSeq {
		p.Seq = proto.Uint64(uint64(seq))
	}
	b, err := proto.Marshal(p)
	require.NoError(tb, err)
	return b
}

// edge is a hand-made edge node: an MQTT client with the NDEATH Will, that
// talks to the broker through a proxy so that the test can cut its
// connection and make the broker send the Will.
type edge struct {
	tb    testing.TB
	cli   pmqtt.Client
	proxy *testproxy.Proxy
	group string
	node  string
}

func connect(tb testing.TB, broker, group, node string, will []byte) *edge {
	tb.Helper()
	p := testproxy.New(tb, broker)
	o := pmqtt.NewClientOptions().AddBroker("tcp://"+p.Addr()).
		SetClientID(fmt.Sprintf("m2mb-hostcheck-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetAutoReconnect(false).
		SetBinaryWill("spBv1.0/"+group+"/NDEATH/"+node, will, 1, false)
	cli := pmqtt.NewClient(o)
	tok := cli.Connect()
	require.True(tb, tok.WaitTimeout(10*time.Second), "connect timed out")
	require.NoError(tb, tok.Error())
	tb.Cleanup(func() { cli.Disconnect(0) })
	return &edge{tb: tb, cli: cli, proxy: p, group: group, node: node}
}

// pub publishes b on the edge node's topic of type typ (and device, when
// not empty) and waits until the broker has it.
func (e *edge) pub(typ, device string, qos byte, retain bool, b []byte) {
	e.tb.Helper()
	topic := "spBv1.0/" + e.group + "/" + typ + "/" + e.node
	if device != "" {
		topic += "/" + device
	}
	tok := e.cli.Publish(topic, qos, retain, b)
	require.True(e.tb, tok.WaitTimeout(10*time.Second), "publish timed out")
	require.NoError(e.tb, tok.Error())
}

func setup(t *testing.T) (broker, group string, h *sparkplughost.Host) {
	sparkplughost.Require(t)
	broker = testproxy.PeerAddr(t, "M2MB_MQTT_ADDR", "127.0.0.1:1883", "MQTT broker")
	group = fmt.Sprintf("m2mb-hostcheck-%d", time.Now().UnixNano())
	return broker, group, sparkplughost.Start(t, "tcp://"+broker, group)
}

func typed(typ, device string) func(sparkplughost.Message) bool {
	return func(m sparkplughost.Message) bool { return m.Type == typ && m.Device == device }
}

// TestConformantSession publishes a session that keeps every rule — Will,
// NBIRTH, DBIRTH, DDATA by alias (one historical), DDEATH and DBIRTH again,
// enough DDATA for seq to wrap past 255, then the connection cut so that
// the broker sends the Will — and checks that the host reports no violation
// and decodes what was sent: values of every width exact, a UInt32 in
// int_value as the spec puts it, is_null, the Quality property,
// is_historical, and the NDEATH's bdSeq against the NBIRTH's.
func TestConformantSession(t *testing.T) {
	broker, group, h := setup(t)
	const bdSeq = 200
	e := connect(t, broker, group, "gw1", payload(t, noSeq, longv(m("bdSeq", -1, sppb.DataType_Int64), bdSeq)))

	e.pub("NBIRTH", "", 0, false, payload(t, 0,
		longv(m("bdSeq", -1, sppb.DataType_Int64), bdSeq),
		boolv(m("Node Control/Rebirth", -1, sppb.DataType_Boolean), false),
		intv(m("Properties/Spool depth", 0, sppb.DataType_UInt32), 3),
	))
	e.pub("DBIRTH", "meter1", 0, false, payload(t, 1,
		quality(floatv(m("voltage", 1, sppb.DataType_Float), 230.5), 192),
		quality(intv(m("energy", 2, sppb.DataType_UInt32), 4000000000), 192),
		quality(intv(m("temp", 3, sppb.DataType_Int16), uint32(0xFFFFFFFB)), 192),
		quality(longv(m("count", 4, sppb.DataType_UInt64), math.MaxUint64), 192),
		quality(null(m("flow", 5, sppb.DataType_Double)), 0),
	))
	e.pub("DBIRTH", "meter2", 0, false, payload(t, 2,
		quality(longv(m("total", 6, sppb.DataType_Int64), uint64(1<<63)), 192), // MinInt64, two's complement
	))
	hist := uint64(time.Now().Add(-time.Minute).UnixMilli())
	e.pub("DDATA", "meter1", 0, false, payload(t, 3,
		quality(floatv(m("", 1, sppb.DataType_Float), 231), 64),
		historical(quality(doublev(untyped(m("", 5, 0)), 1.25), 192), hist),
	))
	e.pub("DDEATH", "meter2", 0, false, payload(t, 4))
	e.pub("DBIRTH", "meter2", 0, false, payload(t, 5,
		quality(longv(m("total", 6, sppb.DataType_Int64), 7), 192),
	))
	// seq 6..300: wraps from 255 to 0.
	for seq := int64(6); seq <= 300; seq++ {
		e.pub("DDATA", "meter2", 0, false, payload(t, seq%256, quality(longv(m("", 6, sppb.DataType_Int64), uint64(seq)), 192)))
	}
	last, _ := h.Wait(t, 0, "the last DDATA", func(m sparkplughost.Message) bool {
		x, ok := m.Metric("total")
		v, err := x.Int()
		return m.Type == "DDATA" && ok && err == nil && v == 300
	})
	require.NotNil(t, last.Seq)
	assert.Equal(t, uint64(300%256), *last.Seq)
	total, ok := last.Metric("total")
	require.True(t, ok, "the alias resolves to the metric born with it: %+v", last)
	v, err := total.Int()
	require.NoError(t, err)
	assert.Equal(t, int64(300), v)

	e.proxy.Cut() // no DISCONNECT: the broker publishes the Will
	death, _ := h.Wait(t, 0, "NDEATH", typed("NDEATH", ""))
	h.RequireNoViolations(t)
	assert.Empty(t, h.Errors())

	// The NDEATH is the Will: QoS 1, not retained, no seq, the NBIRTH's bdSeq.
	assert.Equal(t, 1, death.QoS)
	assert.False(t, death.Retain)
	assert.Nil(t, death.Seq)
	require.NotNil(t, death.BdSeq)
	require.NotNil(t, death.BirthBdSeq)
	assert.Equal(t, int64(bdSeq), *death.BdSeq)
	assert.Equal(t, *death.BirthBdSeq, *death.BdSeq)
	assert.False(t, death.Stale)

	birth, _ := h.Wait(t, 0, "NBIRTH", typed("NBIRTH", ""))
	require.NotNil(t, birth.BdSeq)
	assert.Equal(t, int64(bdSeq), *birth.BdSeq)
	assert.Equal(t, 0, birth.QoS)
	rb, ok := birth.Metric("Node Control/Rebirth")
	require.True(t, ok)
	assert.Equal(t, "Boolean", rb.Datatype)

	db, _ := h.Wait(t, 0, "DBIRTH meter1", typed("DBIRTH", "meter1"))
	want := map[string]struct {
		datatype, field, value string
	}{
		"voltage": {"Float", "float_value", "230.5"},
		"energy":  {"UInt32", "int_value", "4000000000"},
		"temp":    {"Int16", "int_value", "-5"},
		"count":   {"UInt64", "long_value", "18446744073709551615"},
		"flow":    {"Double", "", "null"},
	}
	require.Len(t, db.Metrics, len(want))
	for _, x := range db.Metrics {
		w, ok := want[x.Name]
		require.True(t, ok, x.Name)
		assert.Equal(t, w.datatype, x.Datatype, x.Name)
		assert.Equal(t, w.field, x.Field, x.Name)
		assert.JSONEq(t, w.value, string(x.Value), x.Name)
		require.NotNil(t, x.Alias, x.Name)
	}
	flow, _ := db.Metric("flow")
	assert.True(t, flow.IsNull)
	q, ok := flow.Quality()
	require.True(t, ok)
	assert.Equal(t, int64(0), q)
	m2, _ := h.Wait(t, 0, "DBIRTH meter2", typed("DBIRTH", "meter2"))
	total, _ = m2.Metric("total")
	v, err = total.Int()
	require.NoError(t, err)
	assert.Equal(t, int64(math.MinInt64), v)

	data, _ := h.Wait(t, 0, "DDATA meter1", typed("DDATA", "meter1"))
	require.Len(t, data.Metrics, 2)
	voltage, ok := data.Metric("voltage")
	require.True(t, ok)
	assert.False(t, voltage.HasName, "by alias alone")
	q, _ = voltage.Quality()
	assert.Equal(t, int64(64), q)
	assert.False(t, voltage.IsHistorical)
	flow, ok = data.Metric("flow")
	require.True(t, ok)
	assert.True(t, flow.IsHistorical)
	require.NotNil(t, flow.Timestamp)
	assert.Equal(t, hist, *flow.Timestamp)
	f, err := flow.Float()
	require.NoError(t, err)
	assert.Equal(t, 1.25, f)
}

// TestViolations publishes messages that each break one rule and checks
// that the host names the rule, on the right topic.
func TestViolations(t *testing.T) {
	broker, group, h := setup(t)
	// The Will carries bdSeq 9 and a seq, the NBIRTH bdSeq 8.
	e := connect(t, broker, group, "gw1", payload(t, 5, longv(m("bdSeq", -1, sppb.DataType_Int64), 9)))
	node := "spBv1.0/" + group + "/NBIRTH/gw1"
	dev := func(typ, d string) string { return "spBv1.0/" + group + "/" + typ + "/gw1/" + d }

	e.pub("NBIRTH", "", 0, false, payload(t, 1, // nbirth-seq
		longv(m("bdSeq", -1, sppb.DataType_Int64), 8),
		// no Node Control/Rebirth: nbirth-rebirth
		intv(m("Properties/Depth", 1, sppb.DataType_UInt32), 0),
		m("Properties/Nothing", -1, sppb.DataType_Int32),        // value-missing
		intv(m("Properties/Depth", 2, sppb.DataType_UInt32), 0), // name-unique
	))
	e.pub("DBIRTH", "meter1", 0, false, payload(t, 2,
		floatv(m("voltage", 1, sppb.DataType_Float), 230), // alias-unique: 1 is the node's
		doublev(m("current", 3, sppb.DataType_Float), 5),  // value-field: a Float in double_value
		intv(m("mode", 6, sppb.DataType_UInt16), 70000),   // value-range
		intv(m("temp", 7, sppb.DataType_Int16), 0xFFFB),   // value-range: -5 not sign-extended
		floatv(&metric{Alias: proto.Uint64(4)}, 1),        // metric-name, metric-datatype
		&metric{Name: proto.String("power"), Alias: proto.Uint64(5), Datatype: proto.Uint32(uint32(sppb.DataType_Double)),
			Value: &sppb.Payload_Metric_DoubleValue{DoubleValue: 1},
			Properties: &sppb.Payload_PropertySet{Keys: []string{"Quality"}, Values: []*sppb.Payload_PropertyValue{
				{Type: proto.Uint32(uint32(sppb.DataType_String)), Value: &sppb.Payload_PropertyValue_StringValue{StringValue: "good"}}, // quality-type
			}}},
	))
	e.pub("DDATA", "meter1", 0, false, payload(t, 4, // seq: 3 expected
		floatv(m("voltage", 1, sppb.DataType_Float), 231),         // data-alias: by name, born with an alias
		floatv(m("", 99, sppb.DataType_Float), 1),                 // data-unknown-metric
		intv(m("", 5, sppb.DataType_Int32), 1),                    // data-datatype: born Double
		historical(doublev(m("", 5, sppb.DataType_Double), 2), 0), // historical-timestamp
	))
	e.pub("DDATA", "meter9", 0, false, payload(t, 5, floatv(m("", 1, sppb.DataType_Float), 1)))   // not-born
	e.pub("DDATA", "meter1", 1, false, payload(t, 6, doublev(m("", 5, sppb.DataType_Double), 1))) // qos
	e.pub("NDATA", "", 0, true, payload(t, 7, intv(m("", 1, sppb.DataType_UInt32), 1)))           // retain
	e.pub("NDATA", "", 0, true, nil)                                                              // clears the retained message; the host does not judge it
	e.pub("DDATA", "meter1", 0, false, []byte{0xff, 0xff, 0xff})                                  // decode
	e.pub("DDEATH", "meter1", 0, false, (func() []byte {                                          // timestamp
		b, err := proto.Marshal(&sppb.Payload{Seq: proto.Uint64(8)})
		require.NoError(t, err)
		return b
	})())
	e.pub("DDATA", "meter1", 0, false, payload(t, 9, doublev(m("", 5, sppb.DataType_Double), 1))) // not-born: after its DDEATH
	h.Wait(t, 0, "the last DDATA", func(m sparkplughost.Message) bool { return m.Seq != nil && *m.Seq == 9 })
	e.proxy.Cut() // the Will: ndeath-seq, ndeath-bdseq
	h.Wait(t, 0, "NDEATH", typed("NDEATH", ""))

	want := []struct{ rule, topic, detail string }{
		{"nbirth-seq", node, "NBIRTH seq 1, want 0"},
		{"nbirth-rebirth", node, "no Node Control/Rebirth"},
		{"value-missing", node, `"Properties/Nothing" has no value`},
		{"name-unique", node, `"Properties/Depth" twice`},
		{"alias-unique", dev("DBIRTH", "meter1"), "alias 1 of meter1/voltage is already /Properties/Depth"},
		{"value-field", dev("DBIRTH", "meter1"), `"current" of datatype Float has its value in double_value`},
		{"value-range", dev("DBIRTH", "meter1"), `"mode" of datatype UInt16 holds 70000, outside 0..65535`},
		{"value-range", dev("DBIRTH", "meter1"), `"temp" of datatype Int16 holds 65531, outside -32768..32767`},
		{"metric-name", dev("DBIRTH", "meter1"), "has no name (alias 4)"},
		{"metric-datatype", dev("DBIRTH", "meter1"), "has datatype null"},
		{"quality-type", dev("DBIRTH", "meter1"), "Quality property is String"},
		{"seq", dev("DDATA", "meter1"), "seq 4 after 2, want 3"},
		{"data-alias", dev("DDATA", "meter1"), `"voltage" sent by name, its birth gave alias 1`},
		{"data-unknown-metric", dev("DDATA", "meter1"), "alias 99 was not in the birth"},
		{"data-datatype", dev("DDATA", "meter1"), "is Int32, born Double"},
		{"historical-timestamp", dev("DDATA", "meter1"), "has no timestamp"},
		{"not-born", dev("DDATA", "meter9"), "before its DBIRTH"},
		{"qos", dev("DDATA", "meter1"), "QoS 1, want 0"},
		{"retain", "spBv1.0/" + group + "/NDATA/gw1", "NDATA is retained"},
		{"decode", dev("DDATA", "meter1"), "decode"},
		{"timestamp", dev("DDEATH", "meter1"), "DDEATH payload has no timestamp"},
		{"not-born", dev("DDATA", "meter1"), "after its DDEATH"},
		{"ndeath-seq", "spBv1.0/" + group + "/NDEATH/gw1", "NDEATH carries seq 5"},
		{"ndeath-bdseq", "spBv1.0/" + group + "/NDEATH/gw1", "NDEATH bdSeq 9 is not the bdSeq 8 of the NBIRTH"},
	}
	got := h.Violations()
	for _, w := range want {
		found := false
		for _, v := range got {
			if v.Rule == w.rule && v.Topic == w.topic && strings.Contains(v.Detail, w.detail) {
				found = true
				break
			}
		}
		assert.True(t, found, "no %s violation on %s saying %q; got:\n%v", w.rule, w.topic, w.detail, got)
	}
	// Every violation is one of those asked for: the checker does not cry
	// wolf on the lines that keep the rules.
	for _, v := range got {
		ok := false
		for _, w := range want {
			if v.Rule == w.rule && v.Topic == w.topic {
				ok = true
			}
		}
		assert.True(t, ok, "unexpected violation %s", v)
	}
}

// TestStaleDeath: the Will of an earlier session that arrives after the next
// NBIRTH is marked stale, not a violation (a host ignores it, spec 4.2.1.1.2
// / the bdSeq comparison), while the current session's Will ends it.
func TestStaleDeath(t *testing.T) {
	broker, group, h := setup(t)
	will := func(bd uint64) []byte { return payload(t, noSeq, longv(m("bdSeq", -1, sppb.DataType_Int64), bd)) }
	birth := func(bd uint64) []byte {
		return payload(t, 0, longv(m("bdSeq", -1, sppb.DataType_Int64), bd), boolv(m("Node Control/Rebirth", -1, sppb.DataType_Boolean), false))
	}
	old := connect(t, broker, group, "gw1", will(1))
	old.pub("NBIRTH", "", 0, false, birth(1))
	h.Wait(t, 0, "NBIRTH 1", typed("NBIRTH", ""))
	cur := connect(t, broker, group, "gw1", will(2))
	cur.pub("NBIRTH", "", 0, false, birth(2))
	h.Wait(t, 0, "NBIRTH 2", func(m sparkplughost.Message) bool { return m.Type == "NBIRTH" && m.BdSeq != nil && *m.BdSeq == 2 })
	old.proxy.Cut()
	d, i := h.Wait(t, 0, "the old NDEATH", typed("NDEATH", ""))
	assert.True(t, d.Stale)
	assert.Equal(t, int64(1), *d.BdSeq)
	cur.proxy.Cut()
	d, _ = h.Wait(t, i+1, "the current NDEATH", typed("NDEATH", ""))
	assert.False(t, d.Stale)
	assert.Equal(t, int64(2), *d.BdSeq)
	h.RequireNoViolations(t)
}

// TestLateJoin: a host that starts after the NBIRTH has no birth to judge
// data by, so it marks what comes before the next NBIRTH and judges from
// there on.
func TestLateJoin(t *testing.T) {
	sparkplughost.Require(t)
	broker := testproxy.PeerAddr(t, "M2MB_MQTT_ADDR", "127.0.0.1:1883", "MQTT broker")
	group := fmt.Sprintf("m2mb-hostcheck-%d", time.Now().UnixNano())
	bd := longv(m("bdSeq", -1, sppb.DataType_Int64), 4)
	e := connect(t, broker, group, "gw1", payload(t, noSeq, bd))
	nbirth := payload(t, 0, bd, boolv(m("Node Control/Rebirth", -1, sppb.DataType_Boolean), false))
	e.pub("NBIRTH", "", 0, false, nbirth)
	e.pub("DBIRTH", "meter1", 0, false, payload(t, 1, floatv(m("voltage", 1, sppb.DataType_Float), 230)))
	h := sparkplughost.Start(t, "tcp://"+broker, group)
	e.pub("DDATA", "meter1", 0, false, payload(t, 2, floatv(m("", 1, sppb.DataType_Float), 231)))
	d, _ := h.Wait(t, 0, "DDATA", typed("DDATA", "meter1"))
	assert.True(t, d.BeforeBirth)
	assert.Empty(t, h.Violations(), "nothing to judge it by")

	e.pub("NBIRTH", "", 0, false, nbirth)
	e.pub("DBIRTH", "meter1", 0, false, payload(t, 1, floatv(m("voltage", 1, sppb.DataType_Float), 230)))
	e.pub("DDATA", "meter1", 0, false, payload(t, 3, floatv(m("", 1, sppb.DataType_Float), 231)))
	v := h.WaitViolation(t, "seq")
	assert.Contains(t, v.Detail, "seq 3 after 1, want 2")
	d, _ = h.Wait(t, 0, "DDATA after the birth", func(m sparkplughost.Message) bool { return m.Type == "DDATA" && !m.BeforeBirth })
	voltage, ok := d.Metric("voltage")
	require.True(t, ok)
	f, err := voltage.Float()
	require.NoError(t, err)
	assert.Equal(t, 231.0, f)
}
