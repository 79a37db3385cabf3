package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/testproxy"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
	"github.com/m2mbridge/m2mbridge/opcua/opcuatest"
)

// scriptValue is what the string point of the status tests holds: a page
// that shows it as HTML would run it.
const scriptValue = `<script>window.pwned=1</script>`

// statusSim is a simulated meter for the status tests: a moving voltage, a
// string point holding scriptValue and a coil.
func statusSim(t testing.TB, opts ...modbustest.Option) *modbustest.Server {
	srv, err := modbustest.NewServer(&modbus.Profile{Name: "meter", Points: []modbus.Point{
		{Name: "voltage", Table: modbus.Input, Address: 0, Type: modbus.Float32, Unit: "V"},
		{Name: "label", Table: modbus.Holding, Address: 10, Type: modbus.String, Length: 16},
		{Name: "relay", Table: modbus.Coil, Address: 0, Type: modbus.Bool},
	}}, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	require.NoError(t, srv.Set("label", scriptValue))
	return srv
}

// noLeaks checks, after the test's other cleanups, that the test left no
// goroutine running.
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		goleak.VerifyNone(t, opt)
	})
}

// statusGateway builds the gateway of config, serves its Handler and runs
// it until the test ends.
func statusGateway(t testing.TB, config string) (*Gateway, *httptest.Server) {
	cfg, err := Parse("gw.yaml", []byte(config))
	require.NoError(t, err)
	g, err := cfg.Build(BuildOptions{Stdout: io.Discard})
	require.NoError(t, err)
	hs := httptest.NewServer(g.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("Run did not end")
		}
		hs.Close()
	})
	return g, hs
}

// getStatus returns the status at url, or the zero Status (and an error
// of the test) when it cannot; safe in a require.Eventually condition.
func getStatus(t testing.TB, url string) Status {
	t.Helper()
	var st Status
	resp, err := http.Get(url + "/status.json")
	if !assert.NoError(t, err) {
		return st
	}
	defer resp.Body.Close()
	if assert.Equal(t, http.StatusOK, resp.StatusCode) {
		assert.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	}
	if len(st.Devices) == 0 {
		st.Devices = []DeviceStatus{{}}
	}
	return st
}

func get(t testing.TB, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func pointOf(d DeviceStatus, name string) (PointStatus, bool) {
	for _, p := range d.Points {
		if p.Name == name {
			return p, true
		}
	}
	return PointStatus{}, false
}

// TestStatusPage: the page, rendered on the server, shows the devices, their
// latest values with quality and age, the read plan and the sinks; a string
// point holding <script> is text; /status.json has the documented fields.
func TestStatusPage(t *testing.T) {
	noLeaks(t)
	srv := statusSim(t)
	g, hs := statusGateway(t, `
devices:
  - name: meter1
    interval: 50ms
    modbus: {url: `+srv.URL()+`, timeout: 500ms}
    points:
      - {name: voltage, table: input, address: 0, type: float32, unit: V}
      - {name: label, table: holding, address: 10, type: string, length: 16}
      - {name: relay, table: coil, address: 0, type: bool}
sinks:
  - stdout: {}
`)
	var st Status
	require.Eventually(t, func() bool {
		st = getStatus(t, hs.URL)
		return len(st.Devices[0].Points) == 3 && len(st.Sinks) == 1 && st.Sinks[0].State == "up"
	}, 10*time.Second, 20*time.Millisecond)

	d := st.Devices[0]
	assert.Equal(t, StatusVersion, st.Version)
	assert.Equal(t, "gw.yaml", st.Config)
	assert.True(t, st.Healthy)
	assert.Equal(t, "meter1", d.Name)
	assert.Equal(t, "modbus", d.Kind)
	assert.Equal(t, "up", d.State)
	assert.Empty(t, d.Error)
	assert.Equal(t, "modbus "+srv.URL()+" unit 1", d.Transport)
	assert.Equal(t, 0.05, d.Interval)
	assert.False(t, d.LastCycle.IsZero())
	assert.Equal(t, []string{"voltage", "label", "relay"}, []string{d.Points[0].Name, d.Points[1].Name, d.Points[2].Name}, "the configuration's order")
	label, _ := pointOf(d, "label")
	assert.Equal(t, scriptValue, label.Value)
	assert.Equal(t, scriptValue, label.Text)
	assert.Equal(t, "string", label.Kind)
	assert.Equal(t, "good", label.Quality)
	volt, _ := pointOf(d, "voltage")
	assert.Equal(t, "V", volt.Unit)
	assert.Equal(t, "float", volt.Kind)
	want, err := srv.Value("voltage")
	require.NoError(t, err)
	assert.InDelta(t, want.Float(), volt.Value, 1000, "a voltage the simulator gives")
	assert.GreaterOrEqual(t, volt.Age, 0.0)
	assert.Less(t, volt.Age, 5.0)
	require.NotNil(t, d.Modbus)
	assert.Greater(t, d.Modbus.Cycles, uint64(0))
	assert.Greater(t, d.Modbus.Latency, 0.0)
	require.Len(t, d.Modbus.Plan.Requests, 3, "one request per table")
	assert.Equal(t, RequestStatus{Table: "holding", Address: 10, Quantity: 16, Points: []string{"label"}}, d.Modbus.Plan.Requests[0])
	s := st.Sinks[0]
	assert.Equal(t, "stdout", s.Name)
	assert.Equal(t, "up", s.State)
	assert.Equal(t, 10_000, s.QueueSize)
	assert.Equal(t, "block", s.Overflow)
	require.Eventually(t, func() bool {
		st := getStatus(t, hs.URL)
		return len(st.Sinks) == 1 && st.Sinks[0].DeliveredPerSecond > 0 && st.Devices[0].SamplesPerSecond > 0 && st.RateSeconds > 0
	}, 10*time.Second, 50*time.Millisecond, "rates")

	// The HTML snapshot: complete without JavaScript, the string point
	// escaped.
	resp, page := get(t, hs.URL+"/status")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'")
	assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	for _, want := range []string{
		`<article class="device" data-device="meter1">`,
		`<span class="state state-up" data-state="up">up</span>`,
		`<tr data-point="voltage"><td class="point">voltage</td><td class="value">`,
		`<td class="value">&lt;script&gt;window.pwned=1&lt;/script&gt;</td>`,
		`<td class="quality q-good">good</td>`,
		`<tr data-sink="stdout">`,
		`read plan: 3 requests`,
		`<td>holding</td><td>10–25</td><td>16</td><td>label</td>`,
		`<script src="status/status.js" defer></script>`,
	} {
		assert.Contains(t, page, want)
	}
	assert.NotContains(t, page, scriptValue)
	assert.Equal(t, 1, strings.Count(page, "<script"), "the page's own script only")

	// Its assets.
	for path, ctype := range map[string]string{"/status/status.js": "text/javascript; charset=utf-8", "/status/status.css": "text/css; charset=utf-8"} {
		resp, body := get(t, hs.URL+path)
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
		assert.Equal(t, ctype, resp.Header.Get("Content-Type"), path)
		assert.NotEmpty(t, body, path)
	}
	_, js := get(t, hs.URL+"/status/status.js")
	assert.NotContains(t, js, "innerHTML", "data goes in as text")
	resp, _ = get(t, hs.URL+"/status/nothing.js")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)

	// The embedding program's view is the same document.
	assert.Equal(t, "meter1", g.Status().Devices[0].Name)
}

// TestStatusJSONSchema: /status.json has exactly the documented field names
// (scripts rely on them; a new field is added here and in the docs).
func TestStatusJSONSchema(t *testing.T) {
	srv := statusSim(t)
	_, hs := statusGateway(t, `
devices:
  - name: meter1
    interval: 50ms
    modbus: {url: `+srv.URL()+`}
    points:
      - {name: voltage, table: input, address: 0, type: float32, unit: V}
sinks:
  - stdout: {}
    overflow: spool
spool: {dir: `+t.TempDir()+`}
`)
	require.Eventually(t, func() bool {
		d := getStatus(t, hs.URL).Devices[0]
		return d.State == "up" && len(d.Points) == 1
	}, 10*time.Second, 20*time.Millisecond)
	_, body := get(t, hs.URL+"/status.json")
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &doc))
	keys := func(v any) []string { return slices.Sorted(maps.Keys(v.(map[string]any))) }
	assert.Equal(t, []string{"config", "devices", "healthy", "rate_seconds", "sinks", "started", "time", "unhealthy", "version"}, keys(doc))
	dev := doc["devices"].([]any)[0]
	assert.Equal(t, []string{"dropped", "interval_seconds", "kind", "last_cycle", "last_cycle_age_seconds", "modbus", "name", "points",
		"samples", "samples_per_second", "since", "state", "suppressed", "transport"}, keys(dev))
	assert.Equal(t, []string{"bad", "good", "uncertain"}, keys(dev.(map[string]any)["samples"]))
	mb := dev.(map[string]any)["modbus"]
	assert.Equal(t, []string{"cycles", "holes_learned", "overruns", "plan", "poll_latency_max_seconds", "poll_latency_mean_seconds",
		"poll_latency_seconds", "requests", "unit"}, keys(mb))
	plan := mb.(map[string]any)["plan"]
	assert.Equal(t, []string{"cost_seconds", "requests"}, keys(plan))
	assert.Equal(t, []string{"address", "points", "quantity", "table"}, keys(plan.(map[string]any)["requests"].([]any)[0]))
	pt := dev.(map[string]any)["points"].([]any)[0]
	assert.Equal(t, []string{"age_seconds", "kind", "name", "quality", "text", "time", "unit", "value"}, keys(pt))
	assert.IsType(t, float64(0), pt.(map[string]any)["value"], "a JSON number")
	sink := doc["sinks"].([]any)[0]
	assert.Equal(t, []string{"accepted", "delivered", "delivered_per_second", "dropped", "dropped_per_second", "failed", "in_flight",
		"kind", "name", "overflow", "queue_size", "queued", "rejected", "retried", "spool", "state", "target"}, keys(sink))
	assert.Equal(t, []string{"bytes", "samples"}, keys(sink.(map[string]any)["spool"]))
}

// TestStatusNoSecrets: no password, token or query value of the
// configuration appears on the page, in status.json or in the events, while
// the sinks that carry them are down with errors that name their URLs.
func TestStatusNoSecrets(t *testing.T) {
	t.Setenv("M2MB_STATUS_PW", "PWfromENV")
	t.Setenv("M2MB_STATUS_TOKEN", "TOKENfromENV")
	srv := statusSim(t)
	port := testproxy.FreePort(t) // nothing listens: the sinks fail
	_, hs := statusGateway(t, fmt.Sprintf(`
devices:
  - name: meter1
    interval: 50ms
    modbus: {url: %q}
    points:
      - {name: voltage, table: input, address: 0, type: float32}
sinks:
  - mqtt: {url: "tcp://127.0.0.1:%d", topic: "t/{source}/{point}", username: gw, password_env: M2MB_STATUS_PW}
    retry: {initial: 10ms, max: 50ms}
  - http: {url: "http://127.0.0.1:%d/ingest?api_key=KEYinURL", token_env: M2MB_STATUS_TOKEN}
    retry: {initial: 10ms, max: 50ms}
  - http: {url: "http://u:PWinURL@127.0.0.1:%d/ingest"}
    name: http2
    retry: {initial: 10ms, max: 50ms}
shutdown: {drain_timeout: 100ms}
`, srv.URL(), port, port, port))
	require.Eventually(t, func() bool {
		st := getStatus(t, hs.URL)
		for _, s := range st.Sinks {
			if s.State != "down" || s.Error == "" {
				return false
			}
		}
		return len(st.Sinks) == 3 && len(st.Devices[0].Points) == 1
	}, 20*time.Second, 20*time.Millisecond)
	st := getStatus(t, hs.URL)
	assert.Contains(t, st.Sinks[1].Target, "api_key=xxxxx")
	assert.Contains(t, st.Sinks[2].Target, "u:xxxxx@127.0.0.1")
	t.Logf("the sinks' errors: %q, %q, %q", st.Sinks[0].Error, st.Sinks[1].Error, st.Sinks[2].Error)

	_, page := get(t, hs.URL+"/status")
	_, doc := get(t, hs.URL+"/status.json")
	events := readEvents(t, hs.URL+"/status/events?interval=250ms", 2)
	for what, text := range map[string]string{"page": page, "status.json": doc, "events": strings.Join(events, "\n")} {
		for _, secret := range []string{"PWinURL", "PWfromENV", "TOKENfromENV", "KEYinURL"} {
			assert.NotContains(t, text, secret, what)
		}
		assert.Contains(t, text, "xxxxx", what)
	}
}

// readEvents reads n "status" events of the stream at url and returns
// their data.
func readEvents(t testing.TB, url string, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	var out []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	event := ""
	for len(out) < n && sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "status":
			out = append(out, strings.TrimPrefix(line, "data: "))
		}
	}
	require.Len(t, out, n, "events: %v", sc.Err())
	return out
}

// TestStatusEvents: the event stream sends a snapshot at once and then at
// the interval asked for, with values that move; it ends when the client
// goes away (its goroutine and its slot freed) and, with an "end" event,
// when the gateway stops.
func TestStatusEvents(t *testing.T) {
	noLeaks(t)
	srv := statusSim(t, modbustest.WithTick(10*time.Millisecond))
	cfg, err := Parse("gw.yaml", []byte(`
devices:
  - name: meter1
    interval: 20ms
    modbus: {url: `+srv.URL()+`}
    points:
      - {name: voltage, table: input, address: 0, type: float32, unit: V}
sinks:
  - stdout: {}
`))
	require.NoError(t, err)
	g, err := cfg.Build(BuildOptions{Stdout: io.Discard})
	require.NoError(t, err)
	hs := httptest.NewServer(g.Handler())
	defer hs.Close()
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- g.Run(ctx) }()

	// Updates that move.
	events := readEvents(t, hs.URL+"/status/events?interval=250ms", 4)
	var times []time.Time
	values := map[string]bool{}
	for _, e := range events {
		var st Status
		require.NoError(t, json.Unmarshal([]byte(e), &st))
		times = append(times, st.Time)
		if len(st.Devices[0].Points) == 1 {
			values[st.Devices[0].Points[0].Text] = true
		}
	}
	for i := 1; i < len(times); i++ {
		assert.GreaterOrEqual(t, times[i].Sub(times[i-1]), 200*time.Millisecond, "the interval asked for")
	}
	assert.GreaterOrEqual(t, len(values), 2, "the voltage moves: %v", values)
	require.Eventually(t, func() bool { return len(g.status.streams) == 0 }, 5*time.Second, 10*time.Millisecond, "the stream ended with its client")

	// A bad interval is refused with the reason.
	resp, body := get(t, hs.URL+"/status/events?interval=1ms")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, body, `interval "1ms": want a duration from 250ms to 1m0s`)

	// Too many streams at once: the next is told to poll.
	var cancels []context.CancelFunc
	for range maxStreams {
		c, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		req, _ := http.NewRequestWithContext(c, http.MethodGet, hs.URL+"/status/events", nil)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
	}
	require.Eventually(t, func() bool { return len(g.status.streams) == maxStreams }, 5*time.Second, 10*time.Millisecond)
	resp, body = get(t, hs.URL+"/status/events")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Contains(t, body, "poll /status.json instead")
	for _, c := range cancels {
		c()
	}
	require.Eventually(t, func() bool { return len(g.status.streams) == 0 }, 5*time.Second, 10*time.Millisecond)

	// The gateway stops: the stream says so and ends.
	req, err := http.NewRequest(http.MethodGet, hs.URL+"/status/events", nil)
	require.NoError(t, err)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "retry: 2000\n", line)
	stop()
	require.NoError(t, <-ran)
	rest, err := io.ReadAll(br) // ends: the server closed the stream
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(string(rest), "event: end\ndata: {}\n\n"), "%q", rest)
	hs.Close()
}

// TestStatusReadOnly: only GET and HEAD are served; every other method is
// refused with 405 and Allow: GET, HEAD, and changes nothing.
func TestStatusReadOnly(t *testing.T) {
	srv := statusSim(t)
	g, hs := statusGateway(t, `
devices:
  - name: meter1
    modbus: {url: `+srv.URL()+`}
    points: [{name: voltage, table: input, address: 0, type: float32}]
sinks:
  - stdout: {}
`)
	for _, path := range []string{"/status", "/status.json", "/status/events", "/status/status.js", "/status/status.css"} {
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
			req, err := http.NewRequest(method, hs.URL+path, strings.NewReader(`{"value": 1}`))
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "%s %s", method, path)
			assert.Equal(t, "GET, HEAD", resp.Header.Get("Allow"), "%s %s", method, path)
		}
		resp, err := http.Head(hs.URL + path)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "HEAD %s", path)
		assert.Empty(t, b, "HEAD %s", path)
	}
	assert.Empty(t, g.Bridge().Stats().Writes, "no write reached the bridge")
}

// TestStatusDeviceDown: a device whose server goes away is shown down, since
// when, with its error; its last values stay, with their Bad samples.
func TestStatusDeviceDown(t *testing.T) {
	srv := statusSim(t)
	_, hs := statusGateway(t, `
devices:
  - name: meter1
    interval: 50ms
    modbus: {url: `+srv.URL()+`, timeout: 200ms}
    points: [{name: voltage, table: input, address: 0, type: float32}]
sinks:
  - stdout: {}
health: {max_failing: 300ms}
`)
	require.Eventually(t, func() bool { return getStatus(t, hs.URL).Devices[0].State == "up" }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, srv.Close())
	var d DeviceStatus
	require.Eventually(t, func() bool {
		d = getStatus(t, hs.URL).Devices[0]
		return d.State == "down"
	}, 10*time.Second, 20*time.Millisecond)
	assert.NotEmpty(t, d.Error)
	assert.False(t, d.Since.IsZero())
	require.Eventually(t, func() bool {
		p, _ := pointOf(getStatus(t, hs.URL).Devices[0], "voltage")
		return p.Quality == "bad" && p.Error != ""
	}, 10*time.Second, 20*time.Millisecond)
	_, page := get(t, hs.URL+"/status")
	assert.Contains(t, page, `data-state="down">down</span>`)
	assert.Contains(t, page, `<p class="error">`)

	// Past health.max_failing it is unhealthy, as /healthz says.
	var st Status
	require.Eventually(t, func() bool {
		st = getStatus(t, hs.URL)
		return !st.Healthy
	}, 10*time.Second, 20*time.Millisecond)
	require.Len(t, st.Unhealthy, 1)
	assert.Contains(t, st.Unhealthy[0], "device meter1 failing for")
	_, page = get(t, hs.URL+"/status")
	assert.Contains(t, page, `<div id="health" class="health health-bad" data-healthy="false">unhealthy<ul><li>device meter1 failing for`)
}

// TestStatusOPCUA: an OPC UA device shows its session and nodes, and the
// values of its nodes in the configuration's order, a bad one with its
// status.
func TestStatusOPCUA(t *testing.T) {
	srv, err := opcuatest.New(opcuatest.Options{Interval: 20 * time.Millisecond})
	require.NoError(t, err)
	defer srv.Close()
	_, hs := statusGateway(t, `
devices:
  - name: plc1
    interval: 50ms
    opcua: {endpoint: "`+srv.URL()+`"}
    nodes:
      - {name: text, node: "`+opcuatest.NodeID(opcuatest.Text)+`"}
      - {name: ramp, node: "`+opcuatest.NodeID(opcuatest.Ramp)+`", unit: mm}
      - {name: fault, node: "`+opcuatest.NodeID(opcuatest.Fault)+`"}
sinks:
  - stdout: {}
`)
	var d DeviceStatus
	require.Eventually(t, func() bool {
		d = getStatus(t, hs.URL).Devices[0]
		return d.State == "up" && len(d.Points) == 3
	}, 20*time.Second, 20*time.Millisecond)
	assert.Equal(t, "opcua", d.Kind)
	assert.Nil(t, d.Modbus)
	require.NotNil(t, d.OPCUA)
	assert.True(t, d.OPCUA.Connected)
	assert.Equal(t, "subscribe", d.OPCUA.Mode)
	assert.Equal(t, []NodeStatus{
		{Name: "text", Node: opcuatest.NodeID(opcuatest.Text)},
		{Name: "ramp", Node: opcuatest.NodeID(opcuatest.Ramp), Unit: "mm"},
		{Name: "fault", Node: opcuatest.NodeID(opcuatest.Fault)},
	}, d.OPCUA.Nodes)
	assert.Equal(t, []string{"text", "ramp", "fault"}, []string{d.Points[0].Name, d.Points[1].Name, d.Points[2].Name})
	assert.True(t, strings.HasPrefix(d.Points[0].Text, "tick-"), d.Points[0].Text)
	assert.Equal(t, "mm", d.Points[1].Unit)
	assert.Equal(t, "bad", d.Points[2].Quality)
	assert.Contains(t, d.Points[2].Error, "BadSensorFailure")
	assert.NotZero(t, d.Points[2].Code)
	assert.Nil(t, d.Points[2].Value)
	_, page := get(t, hs.URL+"/status")
	assert.Contains(t, page, `<summary>nodes: 3</summary>`)
}

// TestStatusValuesBounded: the latest values keep at most MaxStatusPoints
// points per device; the samples of the others are counted.
func TestStatusValuesBounded(t *testing.T) {
	lv := &latestValues{points: map[string]*latestValue{}}
	batch := make([]bridge.Sample, MaxStatusPoints+10)
	for i := range batch {
		batch[i] = bridge.Sample{Source: "d", Point: fmt.Sprintf("p%05d", i), Value: bridge.Int(int64(i))}
	}
	lv.observe(batch)
	lv.observe(batch)
	vals, last, hidden := lv.values()
	assert.Len(t, vals, MaxStatusPoints)
	assert.Equal(t, uint64(20), hidden)
	assert.False(t, last.IsZero())
	// The latest sample of a point wins.
	lv.observe([]bridge.Sample{{Point: "p00001", Value: bridge.String("new"), Quality: bridge.Uncertain, Reason: "why"}})
	vals, _, _ = lv.values()
	i := slices.IndexFunc(vals, func(v latestValue) bool { return v.s.Point == "p00001" })
	require.GreaterOrEqual(t, i, 0)
	assert.Equal(t, "new", vals[i].s.Value.Str())
	assert.Equal(t, bridge.Uncertain, vals[i].s.Quality)

	// A long string is kept cut, at a character boundary.
	lv.observe([]bridge.Sample{{Point: "p00002", Value: bridge.String("a" + strings.Repeat("é", 600))}})
	vals, _, _ = lv.values()
	i = slices.IndexFunc(vals, func(v latestValue) bool { return v.s.Point == "p00002" })
	require.GreaterOrEqual(t, i, 0)
	assert.Equal(t, "a"+strings.Repeat("é", 511)+"…", vals[i].s.Value.Str())

	// Batches in another order, or of other points, than the last.
	lv = &latestValues{points: map[string]*latestValue{}}
	lv.observe([]bridge.Sample{{Point: "a", Value: bridge.Int(1)}, {Point: "b", Value: bridge.Int(2)}})
	lv.observe([]bridge.Sample{{Point: "b", Value: bridge.Int(3)}, {Point: "a", Value: bridge.Int(4)}, {Point: "c", Value: bridge.Int(5)}})
	lv.observe([]bridge.Sample{{Point: "c", Value: bridge.Int(6)}})
	vals, _, hidden = lv.values()
	got := map[string]int64{}
	for _, v := range vals {
		got[v.s.Point], _ = v.s.Value.Int()
	}
	assert.Equal(t, map[string]int64{"a": 4, "b": 3, "c": 6}, got)
	assert.Zero(t, hidden)
}

// TestStatusValueJSON: values as JSON for scripts and as text for people.
func TestStatusValueJSON(t *testing.T) {
	for _, c := range []struct {
		name string
		v    bridge.Value
		json string
		text string
	}{
		{"float", bridge.Float(230.5), `230.5`, "230.5"},
		{"nan", bridge.Float(math.NaN()), `"NaN"`, "NaN"},
		{"int", bridge.Int(-9007199254740993), `-9007199254740993`, "-9007199254740993"},
		{"uint", bridge.Uint(18446744073709551615), `18446744073709551615`, "18446744073709551615"},
		{"bool", bridge.Bool(true), `true`, "true"},
		{"string", bridge.String(scriptValue), `"\u003cscript\u003ewindow.pwned=1\u003c/script\u003e"`, scriptValue},
		{"none", bridge.Value{}, `null`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, text := jsonValue(c.v)
			b, err := json.Marshal(v)
			require.NoError(t, err)
			assert.Equal(t, c.json, string(b))
			assert.Equal(t, c.text, text)
		})
	}
}

// TestStatusScrub: URLs in error texts lose their passwords and query
// values; the rest of the text stays.
func TestStatusScrub(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"connection refused", "connection refused"},
		{`Post "http://h:1/x?api_key=K": dial tcp 127.0.0.1:1: refused`, `Post "http://h:1/x?api_key=xxxxx": dial tcp 127.0.0.1:1: refused`},
		{"dial tcp://u:PW@h:1883 failed", "dial tcp://u:xxxxx@h:1883 failed"},
		{"broker u:P,W(1)@h:9092 down", "broker u:xxxxx@h:9092 down"},
		{"nats://a:4222,nats://u:PW@b:4222: no servers", "nats://a:4222,nats://u:xxxxx@b:4222: no servers"},
		{"user@host is fine", "user@host is fine"},
		{"#tcp://user:0@host:1883", "#tcp://user:xxxxx@host:1883"},
		{"(tcp://u:PW@h)", "(tcp://u:xxxxx@h)"},
		{"#u:PW@h:9092", "#u:xxxxx@h:9092"},
	} {
		assert.Equal(t, c.want, scrub(c.in), c.in)
	}
}

// FuzzStatusScrub: whatever text surrounds a URL with a password (of the
// characters a URL's user information may hold), the password does not
// survive scrub; and no text makes it panic.
func FuzzStatusScrub(f *testing.F) {
	f.Add("dial ", "s3cret", ": refused")
	f.Add(`Post "`, "p,a(s)s'w!", `": EOF`)
	f.Add("", "x@y", "")
	f.Add("nats://a:4222,", "pw", ",nats://c:4222 down")
	f.Fuzz(func(t *testing.T, before, pw, after string) {
		_ = scrub(before + pw + after)
		for _, r := range pw {
			if !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:%@", r) {
				return // url.Parse refuses it: no client takes such a URL
			}
		}
		if pw == "" {
			return
		}
		secret := "tcp://user:" + pw + "@host:1883"
		assert.NotContains(t, scrub(before+secret+after), ":"+pw+"@host", "%q", before+secret+after)
	})
}

// TestStatusRateBase: rates are taken from the oldest snapshot of the last
// ten seconds that is at least two seconds old; else from the last one
// before (a client that polls seldom); else from the start.
func TestStatusRateBase(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	st := &statusState{g: &Gateway{started: t0}}
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	base := func(s float64) time.Time { return st.rateBase(rateMark{at: at(s)}).at }
	assert.Equal(t, t0, base(1), "nothing before: the start")
	assert.Equal(t, t0, base(1.5), "the last is too recent")
	assert.Equal(t, at(1), base(3))
	assert.Equal(t, at(1), base(4.5))
	assert.Equal(t, at(3), base(12), "the oldest within ten seconds")
	assert.Equal(t, at(12), base(60), "a minute later: since the last")
	assert.Equal(t, at(12), base(61))
	assert.Equal(t, at(60), base(63))
	for s := 64.0; s < 200; s += 0.5 {
		base(s)
	}
	assert.LessOrEqual(t, len(st.history), rateMarks, "bounded")
	assert.Equal(t, at(190), base(200))
}

// runGateway runs g until stop, which returns Run's error.
func runGateway(g *Gateway) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	return func() error {
		cancel()
		return <-done
	}
}
