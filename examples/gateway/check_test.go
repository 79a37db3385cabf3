package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCheckErrors runs -check on each testdata/check/*.yaml, every one a
// kind of mistake, and compares the error lines with the .golden file next
// to it (go test -run TestCheckErrors -update rewrites them).
func TestCheckErrors(t *testing.T) {
	files, err := filepath.Glob("testdata/check/*.yaml")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 10)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// check-gaps.yaml names a password variable that is set
			// but empty.
			env := []string{"M2MB_TEST_EMPTY_SECRET="}
			code, stdout, stderr := runGateway(t, "testdata/check", env, "-config", name+".yaml", "-check")
			assert.NotContains(t, stdout+stderr, "PW", "url-secrets.yaml: a URL's secrets are never printed")
			assert.Equal(t, 1, code, "exit code")
			assert.Empty(t, stdout, "a failed check prints no plan")
			golden := filepath.Join("testdata/check", name+".golden")
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(stderr), 0o644))
				return
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			assert.Equal(t, string(want), stderr)
		})
	}
}

// TestCheckExamples checks the complete example configurations, one per
// transport, that README.md shows.
func TestCheckExamples(t *testing.T) {
	files, err := filepath.Glob("testdata/examples/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	env := []string{"MQTT_PASSWORD=mqtt-secret-1", "INFLUX_PASSWORD=influx-secret-2", "PLC1_PASSWORD=plc-secret-3", "INGEST_TOKEN=token-secret-4"}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runGateway(t, "testdata/examples", env, "-config", name, "-check")
			require.Equal(t, 0, code, "stderr: %s", stderr)
			assert.Contains(t, stdout, name+": ok:")
			for _, secret := range []string{"mqtt-secret-1", "influx-secret-2", "plc-secret-3", "token-secret-4"} {
				assert.NotContains(t, stdout+stderr, secret)
			}
		})
	}
	// -check creates nothing: no spool, no output file, no PKI.
	for _, p := range []string{"spool", "samples.jsonl", "pki-opcua"} {
		assert.NoFileExists(t, filepath.Join("testdata/examples", p))
		assert.NoDirExists(t, filepath.Join("testdata/examples", p))
	}
}

// TestCheckPlan checks what -check prints for a good file: the read plan
// of a Modbus device (requests per table with their ranges and points,
// the cycle cost), an OPC UA device's nodes and the sinks.
func TestCheckPlan(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, `
devices:
  - name: meter1
    interval: 2s
    modbus: {url: tcp://127.0.0.1:5020, unit: 3}
    points:
      - {name: voltage, table: input, address: 0, type: float32, unit: V}
      - {name: current, table: input, address: 6, type: float32, unit: A}
      - {name: energy, table: holding, address: 100, type: uint32, interval: 1m}
      - {name: relay, table: coil, address: 4, type: bool}
  - name: plc1
    opcua: {endpoint: "opc.tcp://127.0.0.1:4840", mode: poll}
    nodes:
      - {name: temperature, node: "ns=2;s=Temperature", unit: "°C"}
      - {name: pressure, node: "ns=2;s=Pressure"}
sinks:
  - stdout: {}
  - file: {path: out.jsonl}
    queue_size: 100
    overflow: drop_oldest
`)
	code, stdout, stderr := runGateway(t, dir, nil, "-check")
	require.Equal(t, 0, code, stderr)
	want := `gateway.yaml: ok: 2 devices, 2 sinks

device meter1: modbus tcp://127.0.0.1:5020 unit 3, every 2s, 4 points
  (1 point has its own interval; the plan below reads every point, as a cycle where all are due)
  holding: 1 request, 2 registers, 1.02ms
    100-101 (2 registers, 1.02ms): energy
  input: 1 request, 8 registers, 1.03ms
    0-7 (8 registers, 1.03ms): voltage current
  coil: 1 request, 1 bits, 1.017ms
    4-4 (1 bits, 1.017ms): relay
  total: 3 requests, 3.067ms

device plc1: opcua opc.tcp://127.0.0.1:4840 poll, every 1s, 2 nodes
  temperature  ns=2;s=Temperature  °C
  pressure     ns=2;s=Pressure     (unit from the server)

link tcp://127.0.0.1:5020: 1 device, estimated 0.2% busy

sink stdout: stdout (JSON lines); queue 10000, batch 500, overflow block
sink file: file out.jsonl (JSON lines); queue 100, batch 100, overflow drop_oldest
`
	assert.Equal(t, want, stdout)
	assert.NoFileExists(t, filepath.Join(dir, "out.jsonl"))
}

// TestCheckRedactsURLs: -check prints a URL's query values and passwords as
// xxxxx (issue 10, defect 8), in the plan as in errors (url-secrets.yaml).
func TestCheckRedactsURLs(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, `
devices:
  - name: meter1
    modbus: {url: tcp://127.0.0.1:5020}
    points: [{name: v, table: input, address: 0, type: float32}]
sinks:
  - http: {url: "https://127.0.0.1:8443/ingest?api_key=PW&site=PW2"}
`)
	code, stdout, stderr := runGateway(t, dir, nil, "-check")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "sink http: http https://127.0.0.1:8443/ingest?api_key=xxxxx&site=xxxxx;")
	assert.NotContains(t, stdout+stderr, "PW")
}

// TestCheckDeprecated: a deprecated setting (the HTTP sink's retries, now
// the bridge's retry block) is accepted and ignored, and -check says so
// with its line; the run logs it.
func TestCheckDeprecated(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, `
devices:
  - name: meter1
    modbus: {url: tcp://127.0.0.1:5020}
    points: [{name: v, table: input, address: 0, type: float32}]
sinks:
  - http:
      url: http://127.0.0.1:8080/ingest
      retries: 3
`)
	code, stdout, stderr := runGateway(t, dir, nil, "-check")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "\nwarning: gateway.yaml:9: sinks[0].http.retries: deprecated and ignored: the sink sends each request once (set the sink's retry: block instead; remove retries)\n")
}
