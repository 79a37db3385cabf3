package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// TestPointReportConfigErrors: a point's or node's report block is
// checked merged over the device's, each problem at its own line; a
// device's wrong block is reported once, not again at every point.
func TestPointReportConfigErrors(t *testing.T) {
	_, err := Parse("gw.yaml", []byte(`
devices:
  - name: meter1
    modbus: {url: tcp://127.0.0.1:502}
    report: {deadband_percent: 0.5, heartbeat: 5m}
    points:
      - {name: a, table: input, address: 0, type: float32, report: {deadband: -2}}
      - name: b
        table: input
        address: 2
        type: float32
        report:
          on_change: true
          deadband: 1
      - {name: c, table: input, address: 4, type: float32, report: {heartbeat: 1ms, bogus: 1}}
  - name: meter2
    modbus: {url: tcp://127.0.0.1:502}
    points:
      - {name: a, table: input, address: 0, type: float32, report: {heartbeat: 1m}}
  - name: meter3
    modbus: {url: tcp://127.0.0.1:502}
    report: {deadband: -1}
    points:
      - {name: a, table: input, address: 0, type: float32, report: {on_change: true}}
  - name: plc1
    opcua: {endpoint: "opc.tcp://127.0.0.1:4840", mode: poll}
    nodes:
      - {name: t, node: "ns=2;s=T", report: {deadband: 0.1, range: 10}}
sinks:
  - stdout: {}
`))
	got := configErrors(t, err)
	all := strings.Join(got, "\n")
	assert.Contains(t, all, "gw.yaml:7: devices[0].points[0].report.deadband: -2 is out of range")
	assert.Contains(t, all, "gw.yaml:13: devices[0].points[1].report.on_change: cannot be combined")
	assert.Contains(t, all, "gw.yaml:15: devices[0].points[2].report.bogus: unknown key")
	assert.Contains(t, all, "gw.yaml:15: devices[0].points[2].report.heartbeat: 1ms is out of range")
	assert.Contains(t, all, "gw.yaml:19: devices[1].points[0].report.heartbeat: has no effect without deadband")
	assert.Contains(t, all, "gw.yaml:22: devices[2].report.deadband")
	assert.NotContains(t, all, "devices[2].points[0]", "the device's error is not repeated at its point")
	assert.Contains(t, all, "gw.yaml:28: devices[3].nodes[0].report.range: is only used with deadband_percent")
	assert.Len(t, got, 7, all)
}

// TestPointReportByException: a point's own report block replaces the
// device's rule for that point only, inline and in a profile file.
func TestPointReportByException(t *testing.T) {
	srv, err := modbustest.NewServer(&modbus.Profile{Name: "m", Points: []modbus.Point{
		{Name: "quiet", Table: modbus.Input, Address: 0, Type: modbus.Float32},
		{Name: "chatty", Table: modbus.Input, Address: 2, Type: modbus.Float32},
	}}, modbustest.WithTick(time.Hour)) // the values do not move
	require.NoError(t, err)
	defer srv.Close()
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	cfg, err := Parse(filepath.Join(dir, "gw.yaml"), []byte(`
devices:
  - name: meter1
    interval: 10ms
    modbus: {url: `+srv.URL()+`}
    points:
      - {name: quiet, table: input, address: 0, type: float32, report: {on_change: true}}
      - {name: chatty, table: input, address: 2, type: float32}
sinks:
  - file: {path: `+out+`}
`))
	require.NoError(t, err)
	g, err := cfg.Build(BuildOptions{})
	require.NoError(t, err)
	stop := runGateway(g)
	require.Eventually(t, func() bool { return g.Bridge().Stats().Sources[0].Suppressed >= 5 }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, stop())

	data, err := os.ReadFile(out)
	require.NoError(t, err)
	count := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		s, err := bridge.DecodeJSON([]byte(line))
		require.NoError(t, err, line)
		count[s.Point]++
	}
	st := g.Bridge().Stats().Sources[0]
	assert.Equal(t, 1, count["quiet"], "only the first sample of the unchanged point with on_change")
	assert.EqualValues(t, st.Suppressed+1, count["chatty"], "the other point has no rule: each of its samples is reported")
}

// TestSinkUnfiltered: a sink with unfiltered: true takes every sample while
// the other takes report by exception's stream.
func TestSinkUnfiltered(t *testing.T) {
	srv, err := modbustest.NewServer(&modbus.Profile{Name: "m", Points: []modbus.Point{
		{Name: "v", Table: modbus.Input, Address: 0, Type: modbus.Float32},
	}}, modbustest.WithTick(time.Hour))
	require.NoError(t, err)
	defer srv.Close()
	dir := t.TempDir()
	cfg, err := Parse(filepath.Join(dir, "gw.yaml"), []byte(`
devices:
  - name: meter1
    interval: 10ms
    modbus: {url: `+srv.URL()+`}
    points: [{name: v, table: input, address: 0, type: float32}]
    report: {deadband: 1, heartbeat: 1h}
sinks:
  - file: {path: exceptions.jsonl}
    name: cellular
  - file: {path: all.jsonl}
    name: local
    unfiltered: true
`))
	require.NoError(t, err)
	g, err := cfg.Build(BuildOptions{})
	require.NoError(t, err)
	stop := runGateway(g)
	require.Eventually(t, func() bool { return g.Bridge().Stats().Sources[0].Suppressed >= 5 }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, stop())
	lines := func(name string) int {
		data, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		return strings.Count(string(data), "\n")
	}
	st := g.Bridge().Stats().Sources[0]
	assert.Equal(t, 1, lines("exceptions.jsonl"))
	assert.EqualValues(t, st.Emitted, lines("all.jsonl"), "%+v", st)
}

// TestProfileFileReports: a profile file's points may carry report blocks
// too: checked at the profile file's line, and merged over the device's at
// its profile key; an inline point's own block wins over its profile's.
func TestProfileFileReports(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644))
	}
	write("bad.yaml", `name: bad
points:
  - {name: a, table: input, address: 0, type: float32, report: {deadband: -1}}
  - name: b
    table: input
    address: 2
    type: float32
    report: {heartbeat: 1m, bogus: 1}
`)
	write("good.yaml", `name: good
points:
  - {name: a, table: input, address: 0, type: float32, report: {on_change: true}}
  - {name: b, table: input, address: 2, type: float32, report: {heartbeat: 1m}}
  - {name: c, table: input, address: 4, type: float32}
`)
	_, err := Parse(filepath.Join(dir, "gw.yaml"), []byte(`
devices:
  - name: m1
    modbus: {url: tcp://127.0.0.1:502}
    profile: bad.yaml
  - name: m2
    modbus: {url: tcp://127.0.0.1:502}
    profile: good.yaml
sinks:
  - stdout: {}
`))
	all := strings.Join(configErrors(t, err), "\n")
	assert.Contains(t, all, `bad.yaml:3: point 0 "a": report.deadband: -1 is out of range`)
	assert.Contains(t, all, `bad.yaml:8: point 1 "b": report.bogus: unknown key`)
	assert.Contains(t, all, `gw.yaml:8: devices[1].profile: point "b" of profile good: report.heartbeat: has no effect without deadband`)

	srv, err := modbustest.NewServer(&modbus.Profile{Name: "m", Points: []modbus.Point{
		{Name: "a", Table: modbus.Input, Address: 0, Type: modbus.Float32},
		{Name: "b", Table: modbus.Input, Address: 2, Type: modbus.Float32},
		{Name: "c", Table: modbus.Input, Address: 4, Type: modbus.Float32},
		{Name: "d", Table: modbus.Input, Address: 6, Type: modbus.Float32},
	}}, modbustest.WithTick(time.Hour))
	require.NoError(t, err)
	defer srv.Close()
	cfg, err := Parse(filepath.Join(dir, "gw.yaml"), []byte(`
devices:
  - name: m2
    interval: 10ms
    modbus: {url: `+srv.URL()+`}
    profile: good.yaml
    report: {deadband: 1000}
    points:
      - {name: d, table: input, address: 6, type: float32, report: {deadband: 5}}
sinks:
  - file: {path: out.jsonl}
`))
	require.NoError(t, err)
	g, err := cfg.Build(BuildOptions{})
	require.NoError(t, err)
	stop := runGateway(g)
	require.Eventually(t, func() bool { return g.Bridge().Stats().Sources[0].Suppressed >= 20 }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, stop())
	data, err := os.ReadFile(filepath.Join(dir, "out.jsonl"))
	require.NoError(t, err)
	count := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		s, err := bridge.DecodeJSON([]byte(line))
		require.NoError(t, err)
		count[s.Point]++
	}
	// Nothing moves: each point's first sample only, whatever its rule.
	assert.Equal(t, map[string]int{"a": 1, "b": 1, "c": 1, "d": 1}, count)
}

// TestSinkBandwidthKeys: the sinks' layout, metadata and compression keys
// are checked by each sink's Validate, at their lines.
func TestSinkBandwidthKeys(t *testing.T) {
	_, err := Parse("gw.yaml", []byte(`
devices:
  - name: meter1
    modbus: {url: tcp://127.0.0.1:502}
    points: [{name: v, table: input, address: 0, type: float32}]
sinks:
  - mqtt: {url: tcp://127.0.0.1:1883, layout: batch, compression: zstd}
  - mqtt: {url: tcp://127.0.0.1:1883, version: 5, layout: batches}
    name: m2
  - nats: {url: nats://127.0.0.1:4222, layout: batch, metadata_subject: "m2m.{point}"}
  - http: {url: http://127.0.0.1:8080/in, compression: brotli}
  - influx: {url: http://127.0.0.1:8086, database: db, compression: zstd, gzip: true}
  - file: {path: all.jsonl}
    unfiltered: yes please
`))
	all := strings.Join(configErrors(t, err), "\n")
	assert.Contains(t, all, "gw.yaml:7: sinks[0].mqtt.compression: zstd needs MQTT 5")
	assert.Contains(t, all, `gw.yaml:8: sinks[1].mqtt.layout: unknown layout "batches"`)
	assert.Contains(t, all, `gw.yaml:10: sinks[2].nats.metadata_subject: "m2m.{point}" holds {point}`)
	assert.Contains(t, all, `gw.yaml:11: sinks[3].http.compression: unknown compression "brotli"`)
	assert.Contains(t, all, `gw.yaml:12: sinks[4].influx.gzip: contradicts compression "zstd"`)
	assert.Contains(t, all, `gw.yaml:14: sinks[5].unfiltered`)

	_, err = Parse("gw.yaml", []byte(`
devices:
  - name: meter1
    modbus: {url: tcp://127.0.0.1:502}
    points: [{name: v, table: input, address: 0, type: float32}]
sinks:
  - mqtt: {url: tcp://127.0.0.1:1883, version: 5, layout: batch, compression: zstd, metadata_topic: "m2m/{source}/meta"}
  - nats: {url: nats://127.0.0.1:4222, layout: batch, metadata_subject: "m2m.meta.{source}", subject: "m2m.data.{source}"}
  - http: {url: http://127.0.0.1:8080/in, compression: zstd}
  - influx: {url: http://127.0.0.1:8086, database: db, compression: gzip}
`))
	require.NoError(t, err)
}

// TestCheckShowsReport: -check prints each device's report by exception.
func TestCheckShowsReport(t *testing.T) {
	cfg, err := Parse("gw.yaml", []byte(`
devices:
  - name: meter1
    modbus: {url: tcp://127.0.0.1:502}
    report: {deadband_percent: 0.5, range: 400, heartbeat: 5m}
    points:
      - {name: v, table: input, address: 0, type: float32, report: {on_change: true}}
      - {name: w, table: input, address: 2, type: float32}
  - name: meter2
    modbus: {url: tcp://127.0.0.1:502}
    points: [{name: v, table: input, address: 0, type: float32}]
sinks:
  - stdout: {}
`))
	require.NoError(t, err)
	out := cfg.Check().String()
	assert.Contains(t, out, "  report by exception: deadband_percent 0.5 of range 400, heartbeat 5m0s; 1 point with its own\n")
	assert.Equal(t, 1, strings.Count(out, "report by exception"), "meter2 has none:\n%s", out)
}
