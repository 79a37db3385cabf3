package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// TestDeviceReportByException: a device's report block is the bridge's
// Report, checked by its Validate; unchanged values are held back and
// counted.
func TestDeviceReportByException(t *testing.T) {
	_, err := Parse("gw.yaml", []byte(`
devices:
  - name: meter1
    modbus: {url: tcp://127.0.0.1:502}
    points: [{name: v, table: input, address: 0, type: float32}]
    report: {deadband: -1, heartbeat: 1ms}
sinks:
  - stdout: {}
`))
	got := strings.Join(configErrors(t, err), "\n")
	assert.Contains(t, got, "gw.yaml:6: devices[0].report.deadband")
	assert.Contains(t, got, "gw.yaml:6: devices[0].report.heartbeat")

	srv, err := modbustest.NewServer(&modbus.Profile{Name: "m", Points: []modbus.Point{
		{Name: "v", Table: modbus.Input, Address: 0, Type: modbus.Float32},
	}}, modbustest.WithTick(time.Hour)) // the value does not move
	require.NoError(t, err)
	defer srv.Close()
	cfg, err := Parse("gw.yaml", []byte(`
devices:
  - name: meter1
    interval: 10ms
    modbus: {url: `+srv.URL()+`}
    points: [{name: v, table: input, address: 0, type: float32}]
    report: {on_change: true, heartbeat: 1h}
sinks:
  - file: {path: `+t.TempDir()+`/out.jsonl}
`))
	require.NoError(t, err)
	g, err := cfg.Build(BuildOptions{})
	require.NoError(t, err)
	stop := runGateway(g)
	require.Eventually(t, func() bool { return g.Bridge().Stats().Sources[0].Suppressed >= 5 }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, stop())
	st := g.Bridge().Stats()
	assert.EqualValues(t, 1, st.Sinks[0].Delivered, "only the first sample of an unchanged point is reported")
}

// TestCommandsConfigErrors: a commands section is checked like the sinks:
// unknown kinds with a suggestion, settings by their owner's Validate.
func TestCommandsConfigErrors(t *testing.T) {
	_, err := Parse("gw.yaml", []byte(`
devices:
  - name: meter1
    modbus: {url: tcp://127.0.0.1:502}
    points: [{name: v, table: input, address: 0, type: float32}]
sinks:
  - stdout: {}
commands:
  - mqt: {url: tcp://127.0.0.1:1883}
  - mqtt: {url: tcp://127.0.0.1:1883, qos: 2}
  - nats: {url: "nats://127.0.0.1:4222", subject: "m2m.{source}", bogus: 1}
`))
	got := strings.Join(configErrors(t, err), "\n")
	assert.Contains(t, got, `gw.yaml:9: commands[0]: unknown command source "mqt"; did you mean "mqtt"?`)
	assert.Contains(t, got, "gw.yaml:10: commands[1].mqtt.qos")
	assert.Contains(t, got, "gw.yaml:11: commands[2].nats.bogus: unknown key")
}
