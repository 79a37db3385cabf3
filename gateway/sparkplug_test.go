package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pmqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/internal/testproxy"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

const sparkplugDevice = `
devices:
  - name: meter1
    modbus: {url: tcp://127.0.0.1:5020}
    points:
      - {name: v, table: input, address: 0, type: float32}
`

// TestSparkplugSinkParse: the sparkplug sink kind decodes its block into
// sparkplug.Config (state_dir and TLS files relative to the file, the
// password from password_env), and -check describes it; the report is a
// golden file.
func TestSparkplugSinkParse(t *testing.T) {
	t.Setenv("SPB_PASSWORD", "secret-pw")
	cfg, err := Parse("conf/gw.yaml", []byte(sparkplugDevice+`
sinks:
  - sparkplug:
      url: tcp://127.0.0.1:1883
      version: 5
      group_id: plant1
      edge_node_id: gw1
      primary_host_id: scada
      state_dir: ./state
      aliases: true
      commands: true
      username: edge
      password_env: SPB_PASSWORD
    overflow: drop_oldest
`))
	require.NoError(t, err)
	got := cfg.Check().String()
	assert.NotContains(t, got, "secret-pw")
	golden := filepath.Join("testdata", "sparkplug-check.golden")
	if os.Getenv("M2MB_UPDATE_GOLDEN") == "1" {
		require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.Equal(t, string(want), got)
	require.Len(t, cfg.Check().Sinks, 1)
	assert.Equal(t, "sparkplug", cfg.Check().Sinks[0].Kind)
	assert.Contains(t, cfg.Check().Sinks[0].Desc, filepath.Join("conf", "state"), "state_dir is relative to the file")
}

// TestSparkplugSinkErrors: the block's mistakes are reported at their
// lines, checked by sparkplug.Config.Validate.
func TestSparkplugSinkErrors(t *testing.T) {
	_, err := Parse("gw.yaml", []byte(sparkplugDevice+`
sinks:
  - sparkplug:
      url: tcp://127.0.0.1:1883
      group_id: plant/1
      primary_host_id: "scada#"
      aliases: maybe
      topic: x
`))
	got := configErrors(t, err)
	require.Len(t, got, 6, "%q", got)
	joined := strings.Join(got, "\n")
	for _, want := range []string{
		"gw.yaml:10: sinks[0].sparkplug.edge_node_id: missing (e.g. gw1)",
		"gw.yaml:10: sinks[0].sparkplug.state_dir: missing (e.g. ./state)",
		"gw.yaml:11: sinks[0].sparkplug.group_id:",
		"gw.yaml:12: sinks[0].sparkplug.primary_host_id:",
		`gw.yaml:13: sinks[0].sparkplug.aliases: want true or false, not "maybe"`,
		"gw.yaml:14: sinks[0].sparkplug.topic: unknown key",
	} {
		assert.Contains(t, joined, want)
	}
}

// TestSparkplugGateway runs a gateway with a sparkplug sink against
// Mosquitto and a simulated Modbus device: the edge node is born with the
// device (the bridge hands itself to the sink), keeps its bdSeq in the
// state_dir relative to the file, and stopping the gateway publishes the
// NDEATH. The payloads are checked in bridge/sparkplug's own tests.
func TestSparkplugGateway(t *testing.T) {
	addr := testproxy.PeerAddr(t, "M2MB_MQTT_ADDR", "127.0.0.1:1883", "MQTT broker")
	srv, err := modbustest.NewServer(&modbus.Profile{Name: "plc", Points: []modbus.Point{
		{Name: "setpoint", Table: modbus.Holding, Address: 100, Type: modbus.Float32},
	}}, modbustest.WithTick(time.Hour))
	require.NoError(t, err)
	defer srv.Close()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	group := "m2mspb-" + hex.EncodeToString(b)
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.yaml")
	require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf(`
devices:
  - name: plc1
    interval: 50ms
    modbus: {url: %s}
    points:
      - {name: setpoint, table: holding, address: 100, type: float32, writable: true}
sinks:
  - sparkplug: {url: "tcp://%s", group_id: %s, edge_node_id: gw1, state_dir: state, commands: true}
`, srv.URL(), addr, group)), 0o644))

	var mu sync.Mutex
	var topics []string
	cli := pmqtt.NewClient(pmqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(group + "-host").SetCleanSession(true))
	tok := cli.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	defer cli.Disconnect(100)
	tok = cli.Subscribe("spBv1.0/"+group+"/#", 1, func(_ pmqtt.Client, m pmqtt.Message) {
		mu.Lock()
		topics = append(topics, m.Topic())
		mu.Unlock()
	})
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	seen := func(topic string) bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(topics, topic)
	}

	cfg, err := Load(path)
	require.NoError(t, err)
	g, err := cfg.Build(BuildOptions{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() { cancel(); <-done }()

	prefix := "spBv1.0/" + group + "/"
	require.Eventually(t, func() bool { return seen(prefix + "NBIRTH/gw1") }, 20*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return seen(prefix + "DBIRTH/gw1/plc1") }, 20*time.Second, 10*time.Millisecond)
	// The value is that of the birth until it changes: DDATA carries
	// changes.
	require.NoError(t, srv.Set("setpoint", 21.5))
	require.Eventually(t, func() bool { return seen(prefix + "DDATA/gw1/plc1") }, 20*time.Second, 10*time.Millisecond)
	// The edge node's counters are in the metrics.
	require.Eventually(t, func() bool {
		rec := httptest.NewRecorder()
		g.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		body := rec.Body.String()
		return regexp.MustCompile(`m2mbridge_sparkplug_connected\{sink="sparkplug"\} 1`).MatchString(body) &&
			regexp.MustCompile(`m2mbridge_sparkplug_births_total\{sink="sparkplug",type="DBIRTH"\} [1-9]`).MatchString(body) &&
			regexp.MustCompile(`m2mbridge_sparkplug_data_messages_total\{sink="sparkplug"\} [1-9]`).MatchString(body) &&
			regexp.MustCompile(`m2mbridge_sparkplug_unchanged_total\{sink="sparkplug"\} [1-9]`).MatchString(body)
	}, 20*time.Second, 10*time.Millisecond, "sparkplug counters in /metrics")
	// The sink finds the points' declared types through the bridge.
	pl, ok := g.Bridge().Source("plc1").(interface{ Points() []modbus.Point })
	require.True(t, ok, "a device source tells its points")
	require.Len(t, pl.Points(), 1)
	assert.Equal(t, modbus.Float32, pl.Points()[0].Type)
	bd, err := os.ReadFile(filepath.Join(dir, "state", "bdseq"))
	require.NoError(t, err, "state_dir is relative to the configuration file")
	assert.Equal(t, "0\n", string(bd))

	cancel()
	require.NoError(t, <-done)
	done <- nil
	require.Eventually(t, func() bool { return seen(prefix + "NDEATH/gw1") }, 20*time.Second, 10*time.Millisecond,
		"stopping the gateway publishes the NDEATH")
}
