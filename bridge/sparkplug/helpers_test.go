package sparkplug

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	pmqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/sparkplug/internal/sppb"
	"github.com/m2mbridge/m2mbridge/internal/testproxy"
)

// brokerAddr returns the address of the Mosquitto the tests use
// (M2MB_MQTT_ADDR, default 127.0.0.1:1883), skipping the test when nothing
// listens there, unless M2MB_INTEROP=1.
func brokerAddr(tb testing.TB) string {
	tb.Helper()
	return testproxy.PeerAddr(tb, "M2MB_MQTT_ADDR", "127.0.0.1:1883", "MQTT broker")
}

// uniq returns an ID no other test run uses, for group ids.
func uniq() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "m2mtest-" + hex.EncodeToString(b[:])
}

func testCtx(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

var quiet = slog.New(slog.DiscardHandler)

// testConfig is a valid configuration for the broker at addr with a
// group of its own and a fresh state directory.
func testConfig(tb testing.TB, addr string) Config {
	return Config{URL: "tcp://" + addr, GroupID: uniq(), EdgeNodeID: "gw1", StateDir: tb.TempDir(),
		KeepAlive: 10 * time.Second, ConnectTimeout: 5 * time.Second, AckTimeout: 5 * time.Second,
		MaxReconnectInterval: 200 * time.Millisecond, Logger: quiet}
}

// newSink makes a sink that is closed at the end of the test.
func newSink(tb testing.TB, cfg Config) *Sink {
	tb.Helper()
	s, err := New(cfg)
	require.NoError(tb, err)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// msg is one Sparkplug message a host received, decoded.
type msg struct {
	topic    Topic
	raw      string
	payload  *sppb.Payload
	qos      byte
	retained bool
	size     int
}

func (m msg) String() string {
	return fmt.Sprintf("%s seq=%d %v", m.raw, m.payload.GetSeq(), m.payload.GetMetrics())
}

// metric returns the metric of m named name (or with alias).
func (m msg) metric(name string) *sppb.Payload_Metric {
	for _, pm := range m.payload.GetMetrics() {
		if pm.GetName() == name {
			return pm
		}
	}
	return nil
}

// host is a test host application: an independent MQTT 3.1.1 client that
// records and decodes every message of a group.
type host struct {
	tb  testing.TB
	cli pmqtt.Client
	mu  sync.Mutex
	got []msg
}

func newHost(tb testing.TB, addr, group string) *host {
	tb.Helper()
	h := &host{tb: tb}
	o := pmqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("host-" + uniq())
	o.SetCleanSession(true)
	o.SetAutoReconnect(false)
	h.cli = pmqtt.NewClient(o)
	tok := h.cli.Connect()
	require.True(tb, tok.WaitTimeout(10*time.Second), "host connect timed out")
	require.NoError(tb, tok.Error())
	tok = h.cli.Subscribe(Namespace+"/"+group+"/#", 1, func(_ pmqtt.Client, m pmqtt.Message) {
		t, err := ParseTopic(m.Topic())
		if err != nil {
			tb.Errorf("message on %s: %v", m.Topic(), err)
			return
		}
		var p sppb.Payload
		if err := proto.Unmarshal(m.Payload(), &p); err != nil && t.Type != NCMD && t.Type != DCMD {
			tb.Errorf("message on %s: not a Sparkplug B payload: %v", m.Topic(), err)
			return
		}
		h.mu.Lock()
		h.got = append(h.got, msg{topic: t, raw: m.Topic(), payload: &p, qos: m.Qos(), retained: m.Retained(), size: len(m.Payload())})
		h.mu.Unlock()
	})
	require.True(tb, tok.WaitTimeout(10*time.Second), "subscribe timed out")
	require.NoError(tb, tok.Error())
	tb.Cleanup(func() { h.cli.Disconnect(50) })
	return h
}

func (h *host) messages() []msg {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]msg(nil), h.got...)
}

// of returns the messages of type t (and device, when given).
func (h *host) of(t MessageType, device ...string) []msg {
	var out []msg
	for _, m := range h.messages() {
		if m.topic.Type == t && (len(device) == 0 || m.topic.DeviceID == device[0]) {
			out = append(out, m)
		}
	}
	return out
}

// waitFor waits until n messages of type t (of device, when given) came.
func (h *host) waitFor(n int, t MessageType, device ...string) []msg {
	h.tb.Helper()
	require.Eventually(h.tb, func() bool { return len(h.of(t, device...)) >= n }, 20*time.Second, 5*time.Millisecond,
		"waiting for %d %s %v; got:\n%s", n, t, device, dump(h.messages()))
	return h.of(t, device...)
}

// publish sends a command or a STATE to the edge node.
func (h *host) publish(topic string, qos byte, retained bool, payload []byte) {
	h.tb.Helper()
	tok := h.cli.Publish(topic, qos, retained, payload)
	require.True(h.tb, tok.WaitTimeout(5*time.Second))
	require.NoError(h.tb, tok.Error())
}

func dump(ms []msg) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString(m.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// checkSeq checks that the messages' seq numbers count up by one from
// each NBIRTH (0), wrapping after 255, and that NDEATH has none.
func checkSeq(tb testing.TB, ms []msg) {
	tb.Helper()
	var next uint64
	started := false
	for _, m := range ms {
		switch m.topic.Type {
		case NDEATH:
			require.Nil(tb, m.payload.Seq, "NDEATH carries no seq: %s", m)
			continue
		case NCMD, DCMD:
			continue
		case NBIRTH:
			require.EqualValues(tb, 0, m.payload.GetSeq(), "NBIRTH seq: %s", m)
			next, started = 1, true
			continue
		}
		require.True(tb, started, "%s before any NBIRTH", m)
		require.NotNil(tb, m.payload.Seq, "%s has no seq", m)
		require.Equal(tb, next, m.payload.GetSeq(), "seq of %s\nall:\n%s", m, dump(ms))
		next = (next + 1) % 256
	}
}

// at is a fixed time of the tests' samples; a few ms after now, so that
// the samples are not historical.
func now() time.Time { return time.Now() }

func sample(src, pt string, v bridge.Value) bridge.Sample {
	return bridge.Sample{Source: src, Point: pt, Value: v, Time: now()}
}

func quality(pm *sppb.Payload_Metric) (uint32, bool) {
	ps := pm.GetProperties()
	for i, k := range ps.GetKeys() {
		if k == qualityKey {
			return ps.GetValues()[i].GetIntValue(), true
		}
	}
	return 0, false
}

func property(pm *sppb.Payload_Metric, key string) *sppb.Payload_PropertyValue {
	ps := pm.GetProperties()
	for i, k := range ps.GetKeys() {
		if k == key {
			return ps.GetValues()[i]
		}
	}
	return nil
}
