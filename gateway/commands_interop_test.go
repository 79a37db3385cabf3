package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	pmqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/pymodbus"
	"github.com/m2mbridge/m2mbridge/internal/testproxy"
	"github.com/m2mbridge/m2mbridge/modbus"
)

// The interop tests of the write path: commands published on a real
// Mosquitto go through the gateway (Parse, Build, Run) to pymodbus, over
// Modbus TCP and over RTU on a socat pseudo-terminal pair. They skip when
// a peer is missing, unless M2MB_INTEROP=1, where that fails.

// interopSetup fills the pymodbus datastore (Python; see internal/pymodbus).
// The neighbours of the written registers hold patterns a stray write would
// change.
const interopSetup = `
hr[0:2] = regs('f', 20.0)                      # temp
hr[10] = regs('h', 7)[0]                       # limit
hr[20] = 0xA005                                # flags: bits 0, 2, 13, 15
hr[29] = 0x5555
hr[30:32] = regs('i', 1)                       # i32_hi
hr[32:34] = list(reversed(regs('i', 2)))       # i32_lo: low word first
hr[34] = 0xAAAA
co[2:5] = [True, False, True]                  # relay is coil 3
`

// interopGateway is the configuration: the device at url, its samples to
// the interoprec sink key, commands on Mosquitto at broker under prefix.
const interopGateway = `
devices:
  - name: py
    interval: 100ms
    modbus: {url: %q, timeout: 1s}
    points:
      - {name: temp, table: holding, address: 0, type: float32, writable: true, min: 0, max: 100}
      - {name: limit, table: holding, address: 10, type: int16, writable: true, min: 0, max: 50}
      - {name: flags, table: holding, address: 20, type: uint16}
      - {name: flag0, table: holding, address: 20, type: bool, bit: 0, writable: true}
      - {name: flag4, table: holding, address: 20, type: bool, bit: 4, writable: true}
      - {name: i32_hi, table: holding, address: 30, type: int32, word_order: high_first, writable: true}
      - {name: i32_lo, table: holding, address: 32, type: int32, word_order: low_first, writable: true}
      - {name: relay, table: coil, address: 3, type: bool, writable: true}
sinks:
  - interoprec: {key: %q}
commands:
  - mqtt: {url: "tcp://%s", topic: "%s/{source}/{point}"}
`

// interopRecorders are the samples the interoprec sinks received, by the
// key in their block, so that each test reads its own gateway's.
var (
	interopRecOnce sync.Once
	interopRecMu   sync.Mutex
	interopRec     = map[string][]bridge.Sample{}
)

type interopRecConfig struct {
	Key string `yaml:"key"`
}

func registerInteropRec() {
	interopRecOnce.Do(func() {
		RegisterSink("interoprec", SinkKind{
			Config: func() any { return new(interopRecConfig) },
			Build: func(cfg any, _ SinkEnv) (bridge.Sink, error) {
				key := cfg.(*interopRecConfig).Key
				return bridge.SinkFunc(func(_ context.Context, b []bridge.Sample) error {
					interopRecMu.Lock()
					interopRec[key] = append(interopRec[key], b...)
					interopRecMu.Unlock()
					return nil
				}), nil
			},
		})
	})
}

func interopSamples(key string) []bridge.Sample {
	interopRecMu.Lock()
	defer interopRecMu.Unlock()
	return append([]bridge.Sample(nil), interopRec[key]...)
}

func TestInteropCommandsPymodbusTCP(t *testing.T) {
	broker := testproxy.PeerAddr(t, "M2MB_MQTT_ADDR", "127.0.0.1:1883", "MQTT broker")
	checkCommandsInterop(t, broker, pymodbus.StartTCP(t, interopSetup))
}

func TestInteropCommandsPymodbusRTU(t *testing.T) {
	broker := testproxy.PeerAddr(t, "M2MB_MQTT_ADDR", "127.0.0.1:1883", "MQTT broker")
	checkCommandsInterop(t, broker, pymodbus.StartRTU(t, interopSetup))
}

// checkCommandsInterop runs the gateway against srv and writes through it
// from an MQTT client. The registers are read back over srv's TCP side by
// a client of the test's own, and checked against words worked out by hand.
func checkCommandsInterop(t *testing.T, broker string, srv *pymodbus.Server) {
	registerInteropRec()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "m2mcmd-interop-" + hex.EncodeToString(b)
	cfg, err := Parse("gw.yaml", fmt.Appendf(nil, interopGateway, srv.URL, prefix, broker, prefix))
	require.NoError(t, err)
	g, err := cfg.Build(BuildOptions{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// The independent reader: pymodbus's TCP side, never the serial line
	// the gateway owns.
	mb, err := modbus.NewClient(modbus.ClientConfig{URL: "tcp://" + srv.Addr})
	require.NoError(t, err)
	defer mb.Close()
	rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
	defer rcancel()
	holding := func(addr, n uint16) []uint16 {
		t.Helper()
		regs, err := mb.ReadRegisters(rctx, 1, modbus.Holding, addr, n)
		require.NoError(t, err)
		return regs
	}

	// The IoT side.
	replies := make(chan map[string]any, 64)
	cli := pmqtt.NewClient(pmqtt.NewClientOptions().AddBroker("tcp://" + broker).SetClientID(prefix + "-cli").SetCleanSession(true))
	tok := cli.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	defer cli.Disconnect(100)
	tok = cli.Subscribe(prefix+"/+/+/reply", 1, func(_ pmqtt.Client, m pmqtt.Message) {
		var r map[string]any
		if json.Unmarshal(m.Payload(), &r) == nil {
			replies <- r
		}
	})
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	await := func(id string, deadline time.Time) (map[string]any, bool) {
		for {
			select {
			case r := <-replies:
				if r["id"] == id {
					return r, true
				}
			case <-time.After(time.Until(deadline)):
				return nil, false
			}
		}
	}
	publish := func(point, id string, value any) {
		t.Helper()
		payload, err := json.Marshal(map[string]any{"id": id, "value": value})
		require.NoError(t, err)
		tok := cli.Publish(prefix+"/py/"+point, 1, false, payload)
		require.True(t, tok.WaitTimeout(10*time.Second))
		require.NoError(t, tok.Error())
	}

	// The command source subscribes once it is connected: a command to a
	// point that is not writable is resent until its answer comes. From
	// then on every command is published once.
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		id := fmt.Sprintf("probe%d", i)
		publish("flags", id, 1)
		if r, ok := await(id, time.Now().Add(500*time.Millisecond)); ok {
			assert.Equal(t, false, r["ok"], "%v", r)
			assert.Contains(t, r["error"], "not writable")
			break
		}
		require.True(t, time.Now().Before(deadline), "no answer from the command source")
	}
	send := func(point, id string, value any) map[string]any {
		t.Helper()
		publish(point, id, value)
		r, ok := await(id, time.Now().Add(20*time.Second))
		require.True(t, ok, "no reply to %s %v", point, value)
		return r
	}
	// nextSample waits for a sample of point taken after the write
	// answered at the reply's time: a poll's, not the read-back's.
	nextSample := func(point string, r map[string]any) bridge.Sample {
		t.Helper()
		s, _ := r["time"].(string)
		at, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err, "reply time %q", s)
		var got bridge.Sample
		require.Eventually(t, func() bool {
			for _, s := range interopSamples(prefix) {
				if s.Point == point && s.Time.After(at) {
					got = s
					return true
				}
			}
			return false
		}, 10*time.Second, 10*time.Millisecond, "no sample of %s after the write", point)
		return got
	}

	answered := map[string]map[string]any{}
	for _, w := range []struct {
		point string
		value any          // as the client sends it (and the reply carries it)
		want  bridge.Value // the samples after the write
		addr  uint16       // the holding registers (from addr) after the write
		words []uint16
	}{
		// (a) a float32 setpoint: 42.5 is 0x422A0000.
		{point: "temp", value: 42.5, want: bridge.Float(42.5), addr: 0, words: []uint16{0x422A, 0x0000}},
		// (c) bits inside one register, read-modify-write: the other bits
		// (0, 2, 13, 15 of 0xA005) stay, and the second write keeps the
		// first's.
		{point: "flag4", value: true, want: bridge.Bool(true), addr: 20, words: []uint16{0xA015}},
		{point: "flag0", value: false, want: bridge.Bool(false), addr: 20, words: []uint16{0xA014}},
		// (d) an int32 in both word orders (0xFFFE1DC0, 0x12345678), the
		// registers around them untouched.
		{point: "i32_hi", value: -123456, want: bridge.Int(-123456), addr: 29, words: []uint16{0x5555, 0xFFFE, 0x1DC0}},
		{point: "i32_lo", value: 0x12345678, want: bridge.Int(0x12345678), addr: 32, words: []uint16{0x5678, 0x1234, 0xAAAA}},
	} {
		r := send(w.point, "w-"+w.point, w.value)
		answered[w.point] = r
		require.Equal(t, true, r["ok"], "%s: %v", w.point, r)
		assert.Equal(t, true, r["matched"], "%s: %v", w.point, r)
		assert.EqualValues(t, w.value, r["value"], "%s: the reply carries the read-back", w.point)
		assert.Equal(t, w.words, holding(w.addr, uint16(len(w.words))), "%s: registers from %d", w.point, w.addr)
		s := nextSample(w.point, r)
		assert.Equal(t, bridge.Good, s.Quality, "%s: %s", w.point, s.Reason)
		assert.True(t, w.want.Equal(s.Value), "%s: next sample %v (%s), want %v", w.point, s.Value, s.Value.Kind(), w.want)
	}
	flags := nextSample("flags", answered["flag0"])
	assert.True(t, bridge.Uint(0xA014).Equal(flags.Value), "the whole register after both bits: %v", flags.Value)

	// (b) a coil: coil 3 set, coils 2 and 4 as they were.
	r := send("relay", "w-relay", true)
	require.Equal(t, true, r["ok"], "%v", r)
	assert.Equal(t, true, r["value"])
	assert.Equal(t, true, r["matched"])
	coils, err := mb.ReadBits(rctx, 1, modbus.Coil, 2, 3)
	require.NoError(t, err)
	assert.Equal(t, []bool{true, true, true}, coils)
	s := nextSample("relay", r)
	assert.True(t, bridge.Bool(true).Equal(s.Value), "relay: next sample %v", s.Value)

	// (e) refusals out of range: nothing written, the registers keep what
	// they held.
	r = send("limit", "r-limit", 95)
	assert.Equal(t, false, r["ok"], "%v", r)
	assert.Contains(t, r["error"], "above max 50")
	r = send("temp", "r-temp", -1)
	assert.Equal(t, false, r["ok"], "%v", r)
	assert.Contains(t, r["error"], "below min 0")
	assert.Equal(t, []uint16{0x422A, 0x0000}, holding(0, 2), "temp unchanged")
	assert.Equal(t, []uint16{7}, holding(10, 1), "limit unchanged")

	stats := map[string]bridge.WriteStats{}
	for _, w := range g.Bridge().Stats().Writes {
		stats[w.Point] = w
	}
	assert.Equal(t, bridge.WriteStats{Source: "py", Point: "temp", Accepted: 1, Refused: 1}, stats["temp"])
	assert.Equal(t, bridge.WriteStats{Source: "py", Point: "limit", Refused: 1}, stats["limit"])
	assert.Equal(t, bridge.WriteStats{Source: "py", Point: "relay", Accepted: 1}, stats["relay"])
}
