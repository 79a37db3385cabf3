package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// TestRunFileSIGTERM runs the gateway against a simulated SDM630 into a
// JSON-lines file, stops it with SIGTERM and checks the samples and the
// graceful shutdown.
func TestRunFileSIGTERM(t *testing.T) {
	srv, prof := sdm630(t)
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`
devices:
  - name: meter1
    interval: 100ms
    modbus: {url: %s, timeout: 1s}
    profile: eastron-sdm630
sinks:
  - file: {path: out/samples.jsonl}
    linger: 10ms
`, srv.URL()))
	require.NoError(t, mkdir(filepath.Join(dir, "out")))
	p := start(t, dir, nil, "-config", "gateway.yaml")
	out := filepath.Join(dir, "out/samples.jsonl")
	// Two full cycles have arrived.
	require.Eventually(t, func() bool {
		return len(readSamples(t, out)) >= 2*len(prof.Points)
	}, 30*time.Second, 20*time.Millisecond)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, p.wait(t, 30*time.Second))

	samples := readSamples(t, out)
	assert.True(t, hasAll(pointsOf(samples), prof), "every point of the profile arrived")
	for _, s := range samples {
		assert.Equal(t, "meter1", s.Source)
		assert.Equal(t, bridge.Good, s.Quality, "%s: %s", s.Point, s.Reason)
	}
	v := samples[0]
	pt, ok := prof.Point(v.Point)
	require.True(t, ok)
	assert.Equal(t, pt.Unit, v.Unit)
	// Sequence numbers grow and never repeat.
	seqs := make([]uint64, len(samples))
	for i, s := range samples {
		seqs[i] = s.Seq
	}
	assert.True(t, slices.IsSorted(seqs))
	assert.Len(t, slices.Compact(seqs), len(samples))

	log := p.log()
	assert.Contains(t, log, "device online")
	assert.Equal(t, 1, strings.Count(log, `msg="bridge: sink connected" sink=file`), "the log says when the sink first connects, once")
	assert.Contains(t, log, "shutting down: signal received")
	assert.Regexp(t, `msg="sink stopped" sink=file accepted=(\d+) delivered=(\d+)`, log)
	m := regexp.MustCompile(`accepted=(\d+) delivered=(\d+)`).FindStringSubmatch(log)
	assert.Equal(t, m[1], m[2], "everything accepted was delivered")
	assert.Equal(t, m[2], strconv.Itoa(len(samples)))
	// One line per state change, not per sample.
	assert.Equal(t, 1, strings.Count(log, "device online"))
}

// TestOnce polls every device once into a file and exits: one sample per
// point, and a summary per device.
func TestOnce(t *testing.T) {
	srv, prof := sdm630(t)
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`
devices:
  - name: meter1
    modbus: {url: %s}
    profile: eastron-sdm630
  - name: meter2
    modbus: {url: %s, unit: 1}
    points:
      - {name: v1, table: input, address: 0, type: float32, unit: V}
sinks:
  - file: {path: samples.jsonl}
  - stdout: {}
`, srv.URL(), srv.URL()))
	code, stdout, stderr := runGateway(t, dir, nil, "-once", "-log-format", "json")
	require.Equal(t, 0, code, stderr)
	samples := readSamples(t, filepath.Join(dir, "samples.jsonl"))
	assert.Len(t, samples, len(prof.Points)+1)
	assert.Equal(t, len(prof.Points), countBy(samples, func(s bridge.Sample) bool { return s.Source == "meter1" && s.Quality == bridge.Good }))
	assert.Equal(t, 1, countBy(samples, func(s bridge.Sample) bool { return s.Source == "meter2" && s.Point == "v1" }))
	// The stdout sink got the same samples.
	assert.Len(t, decodeLines(t, strings.NewReader(stdout)), len(samples))
	assert.Contains(t, stderr, fmt.Sprintf("gateway: meter1: %d samples: %d good, 0 uncertain, 0 bad", len(prof.Points), len(prof.Points)))
	assert.Contains(t, stderr, `"msg":"device online"`, "JSON logs")
}

// TestOnceDeviceDown: -once against a device that does not answer gives Bad
// samples with the reason, and a non-zero exit.
func TestOnceDeviceDown(t *testing.T) {
	srv, _ := sdm630(t)
	url := srv.URL()
	srv.Close()
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`
devices:
  - name: meter1
    modbus: {url: %s, timeout: 200ms}
    points:
      - {name: v1, table: input, address: 0, type: float32, unit: V}
sinks:
  - file: {path: samples.jsonl}
`, url))
	code, _, stderr := runGateway(t, dir, nil, "-once")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "gateway: meter1: 1 sample: 0 good, 0 uncertain, 1 bad")
	assert.Contains(t, stderr, "device offline")
	samples := readSamples(t, filepath.Join(dir, "samples.jsonl"))
	require.Len(t, samples, 1)
	assert.Equal(t, bridge.Bad, samples[0].Quality)
	assert.NotEmpty(t, samples[0].Reason)
}

// TestRunMQTT runs the gateway into Mosquitto and checks the samples that
// arrive on a unique topic.
func TestRunMQTT(t *testing.T) {
	needPeer(t, "127.0.0.1:1883", "Mosquitto")
	srv, prof := sdm630(t)
	prefix := fmt.Sprintf("m2mb-gateway-test/%d", time.Now().UnixNano())

	var mu sync.Mutex
	got := map[string]bridge.Sample{}
	opts := paho.NewClientOptions().AddBroker("tcp://127.0.0.1:1883").SetClientID(fmt.Sprintf("gwtest-%d", time.Now().UnixNano()))
	c := paho.NewClient(opts)
	tok := c.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())
	t.Cleanup(func() { c.Disconnect(100) })
	tok = c.Subscribe(prefix+"/#", 1, func(_ paho.Client, m paho.Message) {
		s, err := bridge.DecodeJSON(m.Payload())
		if err != nil {
			t.Errorf("payload %q: %v", m.Payload(), err)
			return
		}
		mu.Lock()
		got[m.Topic()] = s
		mu.Unlock()
	})
	require.True(t, tok.WaitTimeout(10*time.Second))
	require.NoError(t, tok.Error())

	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`
devices:
  - name: meter1
    modbus: {url: %s}
    profile: eastron-sdm630
sinks:
  - mqtt: {url: tcp://127.0.0.1:1883, topic: "%s/{source}/{point}", qos: 1}
`, srv.URL(), prefix))
	code, _, stderr := runGateway(t, dir, nil, "-once")
	require.Equal(t, 0, code, stderr)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == len(prof.Points)
	}, 20*time.Second, 20*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for _, pt := range prof.Points {
		s, ok := got[prefix+"/meter1/"+pt.Name]
		if assert.True(t, ok, pt.Name) {
			assert.Equal(t, bridge.Good, s.Quality)
			assert.Equal(t, pt.Name, s.Point)
			assert.Equal(t, pt.Unit, s.Unit)
			assert.False(t, s.Value.IsNone())
		}
	}
}

// collector is an HTTP endpoint for the http sink that can be switched
// down (503) and up, and records every sample it accepted.
type collectorServer struct {
	mu      sync.Mutex
	down    bool
	refused int
	samples []bridge.Sample
}

func (c *collectorServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		c.refused++
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	var batch []bridge.Sample
	if err := jsonUnmarshal(body, &batch); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.samples = append(c.samples, batch...)
}

func (c *collectorServer) set(down bool) {
	c.mu.Lock()
	c.down = down
	c.mu.Unlock()
}

func (c *collectorServer) stats() (int, []bridge.Sample) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refused, slices.Clone(c.samples)
}

var keptRE = regexp.MustCompile(`msg="sink stopped" sink=ingest accepted=(\d+) delivered=(\d+) kept_in_spool=(\d+)`)

// TestSpoolSIGTERMDuringOutage stops the gateway with SIGTERM while its
// HTTP sink is down: everything the spool accepted stays there and is
// delivered after a restart, with no gap.
func TestSpoolSIGTERMDuringOutage(t *testing.T) {
	srv, prof := sdm630(t)
	coll := &collectorServer{down: true}
	hs := httptest.NewServer(coll)
	t.Cleanup(hs.Close)
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`
devices:
  - name: meter1
    interval: 50ms
    modbus: {url: %s}
    profile: eastron-sdm630
sinks:
  - http: {url: "%s", retries: -1, timeout: 2s}
    name: ingest
    overflow: spool
    retry: {initial: 10ms, max: 50ms}
spool:
  dir: spool
  max_bytes: 64MiB
shutdown:
  drain_timeout: 300ms
`, srv.URL(), hs.URL))
	p := start(t, dir, nil)
	require.Eventually(t, func() bool {
		refused, _ := coll.stats()
		return refused >= 3 && strings.Contains(p.log(), "sink down")
	}, 30*time.Second, 20*time.Millisecond)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, p.wait(t, 30*time.Second), "nothing in memory was lost")
	m := keptRE.FindStringSubmatch(p.log())
	require.NotNil(t, m, "the shutdown says what it left")
	accepted, _ := strconv.Atoi(m[1])
	kept, _ := strconv.Atoi(m[3])
	assert.Equal(t, "0", m[2], "delivered while down")
	assert.Equal(t, accepted, kept, "everything accepted is kept in the spool")
	require.GreaterOrEqual(t, kept, len(prof.Points))

	// Restart with the endpoint up: the backlog comes first, then a fresh
	// poll.
	coll.set(false)
	code, _, stderr := runGateway(t, dir, nil, "-once")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "spool holds samples from before")
	_, got := coll.stats()
	require.Len(t, got, kept+len(prof.Points))
	// The first kept samples are the first run's, in order and without a
	// gap in their sequence numbers; the new run numbers above them.
	for i := 1; i < kept; i++ {
		require.Equal(t, got[i-1].Seq+1, got[i].Seq, "sample %d", i)
	}
	assert.Greater(t, got[kept].Seq, got[kept-1].Seq)
}

// TestMetricsAndHealthz scrapes the Prometheus metrics and /healthz of a
// gateway with one good and one failing device.
func TestMetricsAndHealthz(t *testing.T) {
	srv, prof := sdm630(t)
	dead, _ := sdm630(t)
	deadURL := dead.URL()
	dead.Close()
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`
devices:
  - name: good
    interval: 100ms
    modbus: {url: %s}
    profile: eastron-sdm630
  - name: broken
    interval: 100ms
    modbus: {url: %s, timeout: 100ms}
    points:
      - {name: v1, table: input, address: 0, type: float32}
sinks:
  - file: {path: samples.jsonl}
health:
  max_failing: 1s
`, srv.URL(), deadURL))
	p := start(t, dir, nil, "-metrics", "127.0.0.1:0")
	base := p.metricsBase(t)

	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	var metrics string
	require.Eventually(t, func() bool {
		_, metrics = get("/metrics")
		return strings.Contains(metrics, `m2mbridge_device_online{device="broken"} 0`) &&
			strings.Contains(metrics, `m2mbridge_device_online{device="good"} 1`) &&
			regexp.MustCompile(`m2mbridge_sink_delivered_total\{sink="file"\} [1-9]`).MatchString(metrics)
	}, 30*time.Second, 50*time.Millisecond, "metrics:\n%s", metrics)
	for _, want := range []string{
		`m2mbridge_device_online{device="good"} 1`,
		`m2mbridge_source_emitted_total{device="good"}`,
		`m2mbridge_device_samples_total{device="broken",quality="bad"}`,
		`m2mbridge_modbus_poll_latency_seconds{device="good"}`,
		`m2mbridge_modbus_link_utilisation_ratio{link="`,
		`m2mbridge_source_forwarded_total{device="good"}`,
		`m2mbridge_sink_in_flight{sink="file"}`,
		`m2mbridge_modbus_requests_total{device="good"}`,
		`m2mbridge_sink_up{sink="file"} 1`,
		`m2mbridge_sink_queued{sink="file"}`,
		`# TYPE m2mbridge_sink_accepted_total counter`,
		`go_goroutines`,
	} {
		assert.Contains(t, metrics, want)
	}
	lat := regexp.MustCompile(`m2mbridge_modbus_poll_latency_seconds\{device="good"\} (\S+)`).FindStringSubmatch(metrics)
	require.NotNil(t, lat)
	v, err := strconv.ParseFloat(lat[1], 64)
	require.NoError(t, err)
	assert.Greater(t, v, 0.0)

	// The broken device fails for longer than max_failing: unhealthy.
	var body string
	require.Eventually(t, func() bool {
		var code int
		code, body = get("/healthz")
		return code == http.StatusServiceUnavailable
	}, 30*time.Second, 50*time.Millisecond)
	assert.Contains(t, body, "device broken failing for")
	assert.NotContains(t, body, "device good")

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	assert.Equal(t, 0, p.wait(t, 30*time.Second))
	assert.Equal(t, 1, strings.Count(p.log(), `msg="device offline" device=broken`), "one line per state change")
	_ = prof
}

// TestSecretsNeverPrinted runs -check and a run whose sinks fail, with
// debug logs, and checks that no secret appears in any output.
func TestSecretsNeverPrinted(t *testing.T) {
	srv, _ := sdm630(t)
	dir := t.TempDir()
	const fileSecret = "file-secret-7f3a"
	require.NoError(t, writeFile(filepath.Join(dir, "nats.pw"), fileSecret+"\n"))
	writeConfig(t, dir, fmt.Sprintf(`
devices:
  - name: meter1
    modbus: {url: %s}
    points:
      - {name: v1, table: input, address: 0, type: float32}
sinks:
  - mqtt: {url: "tcp://127.0.0.1:1", username: gw, password_env: GW_MQTT_PW, connect_timeout: 200ms}
    retry: {initial: 10ms, max: 20ms}
  - nats: {url: "nats://127.0.0.1:1", username: gw, password_file: nats.pw, connect_timeout: 200ms}
  - http: {url: "http://127.0.0.1:1/ingest", token_env: GW_TOKEN, retries: -1}
shutdown:
  drain_timeout: 500ms
  close_timeout: 500ms
`, srv.URL()))
	env := []string{"GW_MQTT_PW=env-secret-91bc", "GW_TOKEN=token-secret-c0de"}
	code, stdout, stderr := runGateway(t, dir, env, "-check")
	require.Equal(t, 0, code, stderr)
	out := stdout + stderr
	code, stdout, stderr = runGateway(t, dir, env, "-once", "-log-level", "debug")
	assert.Equal(t, 1, code, "samples held in memory were lost")
	out += stdout + stderr
	assert.Contains(t, out, "sink down", "the sinks failed and said so")
	assert.Contains(t, out, "lost_in_memory")
	for _, s := range []string{"env-secret-91bc", "token-secret-c0de", fileSecret} {
		assert.NotContains(t, out, s)
	}
}

// TestBadConfigStartsNothing: with an error in the file, the gateway does
// not poll the device nor create any file.
func TestBadConfigStartsNothing(t *testing.T) {
	srv, _ := sdm630(t)
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`
devices:
  - name: meter1
    modbus: {url: %s}
    profile: eastron-sdm630
sinks:
  - file: {path: samples.jsonl}
    overflow: spool
spool: {dir: spool, max_bytes: 1KiB}
`, srv.URL()))
	code, _, stderr := runGateway(t, dir, nil)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "gateway.yaml:9: spool.max_bytes: 1KiB is out of range: from 16KiB to 16TiB")
	assert.Contains(t, stderr, "nothing started")
	assert.Zero(t, srv.RequestCount())
	assert.NoFileExists(t, filepath.Join(dir, "samples.jsonl"))
	assert.NoDirExists(t, filepath.Join(dir, "spool"))
}

// TestSpoolInUse: a second gateway on the same spool directory, or on a
// metrics address in use, refuses to start.
func TestSpoolInUse(t *testing.T) {
	srv, _ := sdm630(t)
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`
devices:
  - name: meter1
    modbus: {url: %s}
    points: [{name: v, table: input, address: 0, type: float32}]
sinks:
  - file: {path: samples.jsonl}
    overflow: spool
spool: {dir: spool}
`, srv.URL()))
	first := start(t, dir, nil, "-metrics", "127.0.0.1:0")
	base := first.metricsBase(t)
	require.Eventually(t, func() bool { return strings.Contains(first.log(), `msg="gateway running"`) }, 30*time.Second, 20*time.Millisecond)

	code, _, stderr := runGateway(t, dir, nil)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, `msg="cannot open spool" sink=file`)

	other := t.TempDir()
	writeConfig(t, other, fmt.Sprintf(`
devices:
  - name: meter1
    modbus: {url: %s}
    points: [{name: v, table: input, address: 0, type: float32}]
sinks:
  - stdout: {}
`, srv.URL()))
	code, _, stderr = runGateway(t, other, nil, "-metrics", strings.TrimPrefix(base, "http://"))
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, `msg="cannot serve metrics"`)

	require.NoError(t, first.cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, 0, first.wait(t, 30*time.Second))
}
