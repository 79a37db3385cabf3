package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	pmqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/testproxy"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// TestMeteredLinkThroughMosquitto: the gateway's metered-link setup end to
// end: a device with report by exception into an MQTT 5 sink in the batch
// layout with zstd and a metadata topic, read back from Mosquitto and
// decoded as a consumer would, beside a local file that takes every
// sample.
func TestMeteredLinkThroughMosquitto(t *testing.T) {
	broker := testproxy.PeerAddr(t, "M2MB_MQTT_ADDR", "127.0.0.1:1883", "MQTT broker")
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "m2mtest/" + hex.EncodeToString(b[:])

	srv, err := modbustest.NewServer(&modbus.Profile{Name: "m", Points: []modbus.Point{
		{Name: "v", Table: modbus.Input, Address: 0, Type: modbus.Float32, Unit: "V"},
		{Name: "n", Table: modbus.Input, Address: 2, Type: modbus.Uint16},
	}}, modbustest.WithTick(time.Hour)) // unchanging: only first samples and nothing more
	require.NoError(t, err)
	defer srv.Close()

	var mu sync.Mutex
	var data, meta [][]byte
	cli := pmqtt.NewClient(pmqtt.NewClientOptions().AddBroker("tcp://" + broker).SetClientID(strings.ReplaceAll(prefix, "/", "-")).SetCleanSession(true))
	tok := cli.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	defer cli.Disconnect(100)
	tok = cli.Subscribe(prefix+"/#", 1, func(_ pmqtt.Client, m pmqtt.Message) {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasSuffix(m.Topic(), "/meta") {
			meta = append(meta, append([]byte(nil), m.Payload()...))
		} else {
			data = append(data, append([]byte(nil), m.Payload()...))
		}
	})
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	defer func() { // the retained metadata
		cli.Publish(prefix+"/meter1/meta", 1, true, []byte{}).WaitTimeout(5 * time.Second)
	}()

	dir := t.TempDir()
	cfg, err := Parse(filepath.Join(dir, "gw.yaml"), []byte(`
devices:
  - name: meter1
    interval: 10ms
    modbus: {url: `+srv.URL()+`}
    points:
      - {name: v, table: input, address: 0, type: float32, unit: V}
      - {name: n, table: input, address: 2, type: uint16, report: {on_change: true}}
    report: {deadband_percent: 0.5, heartbeat: 5m}
sinks:
  - file: {path: all.jsonl}
    name: local
    unfiltered: true
  - mqtt: {url: "tcp://`+broker+`", version: 5, layout: batch, compression: zstd, qos: 1,
           topic: "`+prefix+`/{source}", metadata_topic: "`+prefix+`/{source}/meta"}
    name: cellular
`))
	require.NoError(t, err)
	g, err := cfg.Build(BuildOptions{})
	require.NoError(t, err)
	stop := runGateway(g)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(data) >= 1 && len(meta) >= 1 && g.Bridge().Stats().Sources[0].Suppressed >= 10
	}, 20*time.Second, 5*time.Millisecond)
	require.NoError(t, stop())

	mu.Lock()
	defer mu.Unlock()
	src, units, err := bridge.DecodeMetaJSON(meta[0])
	require.NoError(t, err)
	assert.Equal(t, "meter1", src)
	assert.Equal(t, map[string]string{"v": "V", "n": ""}, units)
	dec, err := zstd.NewReader(nil)
	require.NoError(t, err)
	defer dec.Close()
	require.Len(t, data, 1, "the values do not move: one message with each point's first sample")
	js, err := dec.DecodeAll(data[0], nil)
	require.NoError(t, err)
	ss, err := bridge.DecodeBatchJSON(js)
	require.NoError(t, err)
	require.Len(t, ss, 2)
	assert.Equal(t, []string{"v", "n"}, []string{ss[0].Point, ss[1].Point})
	all, err := os.ReadFile(filepath.Join(dir, "all.jsonl"))
	require.NoError(t, err)
	st := g.Bridge().Stats().Sources[0]
	assert.EqualValues(t, st.Emitted, strings.Count(string(all), "\n"), "the local file has every sample")
}
