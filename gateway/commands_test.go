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
	"github.com/m2mbridge/m2mbridge/internal/testproxy"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// cmdRecorder is a sink kind that keeps every sample, for the command test.
var (
	cmdRecOnce sync.Once
	cmdRecMu   sync.Mutex
	cmdRec     []bridge.Sample
)

func cmdSamples() []bridge.Sample {
	cmdRecMu.Lock()
	defer cmdRecMu.Unlock()
	return append([]bridge.Sample(nil), cmdRec...)
}

// TestCommandsOverMQTT is the "done when": a command published on
// MQTT changes a register of the simulated device, the reply says so with
// the value read back, the next samples carry it; a write to a point that
// is not writable, out of range or of the wrong type is refused with a
// reply that says why, and nothing is sent to the device.
func TestCommandsOverMQTT(t *testing.T) {
	addr := testproxy.PeerAddr(t, "M2MB_MQTT_ADDR", "127.0.0.1:1883", "MQTT broker")
	cmdRecOnce.Do(func() {
		RegisterSink("cmdrec", SinkKind{Build: func(any, SinkEnv) (bridge.Sink, error) {
			return bridge.SinkFunc(func(_ context.Context, b []bridge.Sample) error {
				cmdRecMu.Lock()
				cmdRec = append(cmdRec, b...)
				cmdRecMu.Unlock()
				return nil
			}), nil
		}})
	})
	srv, err := modbustest.NewServer(&modbus.Profile{Name: "plc", Points: []modbus.Point{
		{Name: "setpoint", Table: modbus.Holding, Address: 100, Type: modbus.Float32, Unit: "°C"},
		{Name: "mode", Table: modbus.Holding, Address: 102, Type: modbus.Int16},
	}}, modbustest.WithTick(time.Hour))
	require.NoError(t, err)
	defer srv.Close()
	require.NoError(t, srv.Set("setpoint", 20.0))

	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "m2mcmd-" + hex.EncodeToString(b)
	cfg, err := Parse("gw.yaml", []byte(fmt.Sprintf(`
devices:
  - name: plc1
    interval: 50ms
    modbus: {url: %s}
    points:
      - {name: setpoint, table: holding, address: 100, type: float32, unit: "°C", writable: true, min: 0, max: 80}
      - {name: mode, table: holding, address: 102, type: int16}
sinks:
  - cmdrec: {}
commands:
  - mqtt: {url: "tcp://%s", topic: "%s/{source}/{point}"}
`, srv.URL(), addr, prefix)))
	require.NoError(t, err)
	assert.Contains(t, cfg.Check().String(), "commands: mqtt tcp://"+addr)
	g, err := cfg.Build(BuildOptions{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// The IoT side: a client that publishes commands and reads the replies.
	replies := make(chan map[string]any, 16)
	cli := pmqtt.NewClient(pmqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(prefix + "-cli").SetCleanSession(true))
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
	send := func(point, payload string) map[string]any {
		t.Helper()
		// The command source subscribes once it is connected: resend until
		// the first answer comes.
		deadline := time.Now().Add(20 * time.Second)
		for {
			tok := cli.Publish(prefix+"/plc1/"+point, 1, false, payload)
			require.True(t, tok.WaitTimeout(10*time.Second))
			select {
			case r := <-replies:
				return r
			case <-time.After(500 * time.Millisecond):
			}
			require.True(t, time.Now().Before(deadline), "no reply to %s", payload)
		}
	}

	writes := func() int {
		n := 0
		for _, q := range srv.Requests() {
			if q.Write {
				n++
			}
		}
		return n
	}
	w0 := writes()
	for _, tc := range []struct{ point, payload, want string }{
		{"setpoint", `{"value": 95, "id": "r1"}`, "above max 80"},
		{"mode", `{"value": 1, "id": "r2"}`, "not writable"},
		{"setpoint", `{"value": "warm", "id": "r3"}`, "a string value for a float32 point"},
		{"nope", `{"value": 1, "id": "r4"}`, "no such point"},
		{"setpoint", `{"id": "r5"}`, `no "value"`},
	} {
		r := send(tc.point, tc.payload)
		assert.Equal(t, false, r["ok"], "%s: %v", tc.payload, r)
		assert.Contains(t, r["error"], tc.want, "%s", tc.payload)
	}
	assert.Equal(t, w0, writes(), "nothing was sent to the device for a refused command")

	// Refusals touch no device and do not count against the rate limit.
	r := send("setpoint", `{"value": 42.5, "id": "a1"}`)
	assert.Equal(t, "a1", r["id"])
	assert.Equal(t, true, r["ok"], "%v", r)
	assert.Equal(t, 42.5, r["value"])
	assert.Equal(t, true, r["matched"])
	v, err := srv.Value("setpoint")
	require.NoError(t, err)
	assert.Equal(t, 42.5, v.Float(), "the register changed")
	require.Eventually(t, func() bool {
		n := 0
		for _, s := range cmdSamples() {
			if s.Point == "setpoint" && s.Value.Float() == 42.5 {
				n++
			}
		}
		return n >= 2 // the read-back sample, then a poll
	}, 10*time.Second, 10*time.Millisecond, "the samples carry the new value")

	var accepted, refused uint64
	for _, w := range g.Bridge().Stats().Writes {
		accepted += w.Accepted
		refused += w.Refused
	}
	assert.EqualValues(t, 1, accepted)
	assert.EqualValues(t, 4, refused, "the payload without a value never reached the bridge")
}
