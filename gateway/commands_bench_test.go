package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	pmqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/internal/quickack"
	"github.com/m2mbridge/m2mbridge/internal/testproxy"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// BenchmarkCommandWrite measures the write path end to end over loopback:
// an MQTT command published to Mosquitto, the gateway's command source, the
// bridge's checks, the write and read-back on a simulated Modbus device, and
// the reply received by the requester; one command at a time, in turn over
// ten points (the rate limit is one write per point per millisecond here).
func BenchmarkCommandWrite(b *testing.B) {
	addr := testproxy.PeerAddr(b, "M2MB_MQTT_ADDR", "127.0.0.1:1883", "MQTT broker")
	const points = 10
	prof := &modbus.Profile{Name: "plc"}
	var yamlPoints strings.Builder
	for i := range points {
		name := fmt.Sprintf("sp%d", i)
		prof.Points = append(prof.Points, modbus.Point{Name: name, Table: modbus.Holding, Address: uint16(100 + 2*i), Type: modbus.Float32})
		fmt.Fprintf(&yamlPoints, "      - {name: %s, table: holding, address: %d, type: float32, writable: true}\n", name, 100+2*i)
	}
	srv, err := modbustest.NewServer(prof, modbustest.WithTick(time.Hour))
	require.NoError(b, err)
	defer srv.Close()
	rb := make([]byte, 6)
	_, _ = rand.Read(rb)
	prefix := "m2mbench-" + hex.EncodeToString(rb)
	cfg, err := Parse("gw.yaml", []byte(fmt.Sprintf(`
devices:
  - name: plc1
    interval: 1h
    modbus: {url: %s}
    points:
%ssinks:
  - file: {path: %s/out.jsonl}
commands:
  - mqtt: {url: "tcp://%s", topic: "%s/{source}/{point}"}
writes: {min_interval: 1ms}
`, srv.URL(), yamlPoints.String(), b.TempDir(), addr, prefix)))
	require.NoError(b, err)
	g, err := cfg.Build(BuildOptions{})
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() { cancel(); <-done }()

	replies := make(chan bool, 1)
	opts := pmqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(prefix + "-cli").SetCleanSession(true)
	opts.SetCustomOpenConnectionFn(func(*url.URL, pmqtt.ClientOptions) (net.Conn, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		return quickack.Wrap(c), nil
	})
	cli := pmqtt.NewClient(opts)
	tok := cli.Connect()
	require.True(b, tok.WaitTimeout(10*time.Second))
	require.NoError(b, tok.Error())
	defer cli.Disconnect(100)
	tok = cli.Subscribe(prefix+"/+/+/reply", 1, func(_ pmqtt.Client, m pmqtt.Message) {
		var r struct{ OK bool }
		_ = json.Unmarshal(m.Payload(), &r)
		replies <- r.OK
	})
	require.True(b, tok.WaitTimeout(10*time.Second))
	require.NoError(b, tok.Error())
	write := func(i int) bool {
		cli.Publish(fmt.Sprintf("%s/plc1/sp%d", prefix, i%points), 1, false, fmt.Sprintf(`{"value": %d.5, "id": "w%d"}`, i, i))
		select {
		case ok := <-replies:
			return ok
		case <-time.After(2 * time.Second):
			return false
		}
	}
	// The command source subscribes once connected: wait for a first reply.
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; !write(i); i++ {
		require.True(b, time.Now().Before(deadline), "no reply from the gateway")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if !write(i + 1) {
			b.Fatalf("write %d: no ok reply", i+1)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/write")
}
