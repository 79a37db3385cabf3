package faultsuite

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/gateway"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// key identifies one sample of the at-least-once stream.
type key struct {
	source, point string
	seq           uint64
}

// ledger records samples by key and checks duplicates: a sample seen twice
// must be the same sample (equal seq means equal contents).
type ledger struct {
	mu    sync.Mutex
	got   map[key]bridge.Sample
	dups  int
	wrong []string // duplicates whose contents differ
}

func newLedger() *ledger { return &ledger{got: make(map[key]bridge.Sample)} }

func (l *ledger) add(batch []bridge.Sample) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range batch {
		k := key{s.Source, s.Point, s.Seq}
		if old, ok := l.got[k]; ok {
			l.dups++
			if !old.Value.Equal(s.Value) || !old.Time.Equal(s.Time) || old.Quality != s.Quality {
				l.wrong = append(l.wrong, fmt.Sprintf("%v: %v then %v", k, old, s))
			}
			continue
		}
		l.got[k] = s
	}
}

func (l *ledger) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.got)
}

func (l *ledger) keys() map[key]bridge.Sample {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[key]bridge.Sample, len(l.got))
	for k, v := range l.got {
		m[k] = v
	}
	return m
}

// missing returns the keys of want that l lacks, except those skip says to
// skip.
func (l *ledger) missing(want *ledger, skip func(key) bool) []key {
	got := l.keys()
	var out []key
	for k := range want.keys() {
		if _, ok := got[k]; !ok && (skip == nil || !skip(k)) {
			out = append(out, k)
		}
	}
	return out
}

// references are the reference sinks' ledgers by label: a sink kind that
// never fails, configured from the same YAML as the sink under attack, so
// that it sees every sample the sources produced.
var (
	refsMu sync.Mutex
	refs   = map[string]*ledger{}
)

type refConfig struct {
	Label string `yaml:"label"`
}

func init() {
	gateway.RegisterSink("reference", gateway.SinkKind{
		Config: func() any { return new(refConfig) },
		Build: func(cfg any, env gateway.SinkEnv) (bridge.Sink, error) {
			refsMu.Lock()
			l := refs[cfg.(*refConfig).Label]
			refsMu.Unlock()
			if l == nil {
				return nil, fmt.Errorf("label: no ledger %q", cfg.(*refConfig).Label)
			}
			return bridge.SinkFunc(func(ctx context.Context, batch []bridge.Sample) error {
				l.add(batch)
				return nil
			}), nil
		},
	})
}

func reference(t *testing.T) (label string, l *ledger) { return referenceNamed(t, "") }

// referenceNamed is reference for a second gateway in the same test.
func referenceNamed(t *testing.T, suffix string) (label string, l *ledger) {
	label = strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + suffix
	l = newLedger()
	refsMu.Lock()
	refs[label] = l
	refsMu.Unlock()
	t.Cleanup(func() {
		refsMu.Lock()
		delete(refs, label)
		refsMu.Unlock()
	})
	return label, l
}

// endpoint is an HTTP ingest endpoint whose answers the test switches: a
// status for every request (with a Retry-After), or a 400 for any batch
// that holds a sample of one point.
type endpoint struct {
	*httptest.Server
	got *ledger

	mu         sync.Mutex
	status     int
	retryAfter string
	badPoint   string
	requests   int
	refused    int
}

func newEndpoint(t *testing.T) *endpoint {
	e := &endpoint{got: newLedger()}
	e.Server = httptest.NewServer(e)
	t.Cleanup(e.Close)
	return e
}

func (e *endpoint) set(status int, retryAfter string) {
	e.mu.Lock()
	e.status, e.retryAfter = status, retryAfter
	e.mu.Unlock()
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		http.Error(w, "not a JSON array: "+err.Error(), http.StatusBadRequest)
		return
	}
	batch := make([]bridge.Sample, 0, len(raw))
	for _, m := range raw {
		s, err := bridge.DecodeJSON(m)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		batch = append(batch, s)
	}
	e.mu.Lock()
	e.requests++
	status, after, bad := e.status, e.retryAfter, e.badPoint
	if status != 0 && status != http.StatusOK {
		e.refused++
	}
	e.mu.Unlock()
	if status != 0 && status != http.StatusOK {
		if after != "" {
			w.Header().Set("Retry-After", after)
		}
		http.Error(w, http.StatusText(status), status)
		return
	}
	for _, s := range batch {
		if bad != "" && s.Point == bad {
			http.Error(w, "invalid sample: point "+bad, http.StatusBadRequest)
			return
		}
	}
	e.got.add(batch)
	w.WriteHeader(http.StatusNoContent)
}

// meter starts a simulated meter with three float points.
func meter(t *testing.T, opts ...modbustest.Option) *modbustest.Server {
	t.Helper()
	srv, err := modbustest.NewServer(&modbus.Profile{Name: "meter", Points: []modbus.Point{
		{Name: "voltage", Table: modbus.Input, Address: 0, Type: modbus.Float32, Unit: "V"},
		{Name: "current", Table: modbus.Input, Address: 2, Type: modbus.Float32, Unit: "A"},
		{Name: "energy", Table: modbus.Input, Address: 4, Type: modbus.Float32, Unit: "kWh"},
	}}, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// meterYAML is the devices section for the meter: polled every interval,
// its first n points (voltage, current, energy), with extra settings for its
// modbus block (", timeout: 200ms").
func meterYAML(url, interval string, n int, extra string) string {
	points := []string{
		"{name: voltage, table: input, address: 0, type: float32, unit: V}",
		"{name: current, table: input, address: 2, type: float32, unit: A}",
		"{name: energy, table: input, address: 4, type: float32, unit: kWh}",
	}
	y := fmt.Sprintf("devices:\n  - name: meter1\n    interval: %s\n    modbus: {url: %s%s}\n    points:\n", interval, url, extra)
	for _, p := range points[:n] {
		y += "      - " + p + "\n"
	}
	return y
}

// start builds the gateway from yaml and runs it until the returned stop is
// called; stop returns Run's error.
func start(t *testing.T, yaml string) (*gateway.Gateway, func() error) {
	t.Helper()
	cfg, err := gateway.Parse("fault.yaml", []byte(yaml))
	require.NoError(t, err)
	g, err := cfg.Build(gateway.BuildOptions{Logger: testLogger(t)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("the gateway did not stop within 30s")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return g, stop
}

// sinkStats returns the named sink's counters.
func sinkStats(t *testing.T, g *gateway.Gateway, name string) bridge.SinkStats {
	t.Helper()
	for _, s := range g.Bridge().Stats().Sinks {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no sink %q", name)
	return bridge.SinkStats{}
}

// sums returns the two sides of a sink's invariant: accepted + replayed, and
// delivered + rejected + failed + dropped + aborted + left + queued + in
// flight.
func sums(st bridge.SinkStats) (in, out uint64) {
	in = st.Accepted + st.Replayed
	out = st.Delivered + st.Rejected + st.Failed + st.Dropped + st.Aborted + st.Left + uint64(st.Queued) + uint64(st.InFlight)
	return in, out
}

// addsUp asserts a sink's counters add up.
func addsUp(t *testing.T, st bridge.SinkStats) {
	t.Helper()
	in, out := sums(st)
	assert.Equal(t, in, out, "sink %s: accepted+replayed != delivered+rejected+failed+dropped+aborted+left+queued+inflight: %+v", st.Name, st)
}

// scrape checks that every sink's counters add up while the gateway runs,
// until stop is closed.
func scrape(t *testing.T, g *gateway.Gateway, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, st := range g.Bridge().Stats().Sinks {
				if in, out := sums(st); in != out {
					t.Errorf("scrape: sink %s counters do not add up: %+v", st.Name, st)
					return
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return &wg
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) time.Duration {
	t.Helper()
	took, ok := waitUntil(d, cond)
	if !ok {
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
	return took
}

// waitUntil waits up to d for cond, and says how long it waited and
// whether cond held.
func waitUntil(d time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	deadline := start.Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return time.Since(start), false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start), true
}

// TestHTTPUnauthorisedKeepsTheSpool: an endpoint that answers 401 (then
// 503 with Retry-After) for a while must not empty the spool: nothing is
// rejected, the sink is reported down and unhealthy, and once the endpoint
// accepts again every sample the meter produced arrives (issue 10, defect
// 2).
func TestHTTPUnauthorisedKeepsTheSpool(t *testing.T) {
	label, ref := reference(t)
	ep := newEndpoint(t)
	ep.set(http.StatusUnauthorized, "")
	srv := meter(t)
	dir := t.TempDir()
	g, stop := start(t, fmt.Sprintf(`
%ssinks:
  - reference: {label: %s}
  - http: {url: %s}
    overflow: spool
    batch_size: 50
    retry: {initial: 20ms, max: 200ms}
spool: {dir: %s}
health: {max_failing: 100ms}
shutdown: {drain_timeout: 10s}
`, meterYAML(srv.URL(), "20ms", 2, ""), label, ep.URL, filepath.Join(dir, "spool")))
	stopScrape := make(chan struct{})
	wg := scrape(t, g, stopScrape)

	waitFor(t, "300 samples while the endpoint answers 401", 20*time.Second, func() bool { return ref.len() >= 300 })
	st := sinkStats(t, g, "http")
	assert.False(t, st.Up, "a sink answered 401 is down: %+v", st)
	assert.Contains(t, st.LastError, "401")
	assert.Zero(t, st.Rejected, "401 is not bad data")
	assert.Positive(t, st.Queued, "the samples wait in the spool")
	waitFor(t, "the gateway to report the sink unhealthy", 10*time.Second, func() bool {
		return strings.Contains(strings.Join(g.Unhealthy(), "\n"), "sink http")
	})

	ep.set(http.StatusServiceUnavailable, "1")
	waitFor(t, "a 503", 10*time.Second, func() bool { return strings.Contains(sinkStats(t, g, "http").LastError, "503") })
	ep.set(http.StatusOK, "")
	produced := ref.len()
	took := waitFor(t, "every sample produced so far to arrive", 30*time.Second, func() bool {
		return len(ep.got.missing(ref, nil)) == 0 && ep.got.len() >= produced
	})
	t.Logf("recovered %d samples in %v after the endpoint accepted again", produced, took)
	close(stopScrape)
	wg.Wait()
	require.NoError(t, stop())

	assert.Empty(t, ep.got.missing(ref, nil), "every sample the meter produced was delivered")
	assert.Empty(t, ep.got.wrong, "duplicates only with equal seq and contents")
	st = sinkStats(t, g, "http")
	assert.Zero(t, st.Rejected)
	assert.Zero(t, st.Dropped)
	assert.True(t, st.Up)
	addsUp(t, st)
}

// TestHTTPBadSampleGoesToTheDeadLetter: a 400 for a batch that holds one
// bad point rejects exactly that point's samples, which are kept in the
// dead-letter file beside the spool, and delivers all the others.
func TestHTTPBadSampleGoesToTheDeadLetter(t *testing.T) {
	label, ref := reference(t)
	ep := newEndpoint(t)
	ep.badPoint = "energy"
	srv := meter(t)
	dir := t.TempDir()
	g, stop := start(t, fmt.Sprintf(`
%ssinks:
  - reference: {label: %s}
  - http: {url: %s}
    overflow: spool
    batch_size: 30
    retry: {initial: 20ms, max: 200ms}
spool: {dir: %s}
`, meterYAML(srv.URL(), "20ms", 3, ""), label, ep.URL, filepath.Join(dir, "spool")))
	waitFor(t, "300 samples", 20*time.Second, func() bool { return ref.len() >= 300 })
	produced := ref.len()
	waitFor(t, "every good sample to arrive", 30*time.Second, func() bool {
		return len(ep.got.missing(ref, func(k key) bool { return k.point == "energy" })) == 0 && ep.got.len() >= produced*2/3-3
	})
	require.NoError(t, stop())

	st := sinkStats(t, g, "http")
	addsUp(t, st)
	assert.Positive(t, st.Rejected)
	assert.Equal(t, st.Rejected, st.DeadLettered, "every rejected sample is kept in the dead letter")
	for k := range ep.got.keys() {
		assert.NotEqual(t, "energy", k.point, "the bad point was never accepted")
	}
	// The dead letter holds exactly the rejected samples, each with its
	// reason.
	dl := filepath.Join(dir, "spool", "http", "deadletter.jsonl")
	f, err := os.Open(dl)
	require.NoError(t, err, "the dead letter is next to the spool")
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		s, err := bridge.DecodeJSON(sc.Bytes())
		require.NoError(t, err, "line %d", n+1)
		assert.Equal(t, "energy", s.Point)
		assert.Contains(t, sc.Text(), "400")
		n++
	}
	assert.EqualValues(t, st.DeadLettered, n)
}

// TestSoak runs the HTTP scenario with faults switched on and off in cycles
// for M2MB_SOAK (a duration); it is skipped without it.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("M2MB_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("soak: set M2MB_SOAK to a duration, e.g. M2MB_SOAK=10m, to run it")
	}
	label, ref := reference(t)
	ep := newEndpoint(t)
	srv := meter(t, modbustest.WithHook(modbustest.Chain(
		soakHook(),
	)))
	dir := t.TempDir()
	g, stop := start(t, fmt.Sprintf(`
%ssinks:
  - reference: {label: %s}
  - http: {url: %s}
    overflow: spool
    batch_size: 200
    retry: {initial: 20ms, max: 1s}
spool: {dir: %s, max_bytes: 64MiB}
`, meterYAML(srv.URL(), "10ms", 3, ", timeout: 200ms"), label, ep.URL, filepath.Join(dir, "spool")))
	stopScrape := make(chan struct{})
	wg := scrape(t, g, stopScrape)
	statuses := []int{http.StatusUnauthorized, http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusOK}
	end := time.Now().Add(d)
	for i := 0; time.Now().Before(end); i++ {
		ep.set(statuses[i%len(statuses)], strconv.Itoa(i%2))
		time.Sleep(min(5*time.Second, time.Until(end)))
		ep.set(http.StatusOK, "")
		time.Sleep(min(5*time.Second, time.Until(end)))
		st := sinkStats(t, g, "http")
		t.Logf("%v: produced %d, delivered %d, queued %d, %+v", time.Until(end).Round(time.Second), ref.len(), ep.got.len(), st.Queued, st)
	}
	produced := ref.len()
	waitFor(t, "every sample to arrive", 5*time.Minute, func() bool {
		return len(ep.got.missing(ref, nil)) == 0 && ep.got.len() >= produced
	})
	close(stopScrape)
	wg.Wait()
	require.NoError(t, stop())
	assert.Empty(t, ep.got.missing(ref, nil))
	assert.Empty(t, ep.got.wrong)
	st := sinkStats(t, g, "http")
	assert.Zero(t, st.Rejected)
	assert.Zero(t, st.Dropped)
	addsUp(t, st)
}

// soakHook drops a connection or delays a reply now and then, for the
// soak's duration.
func soakHook() modbustest.Hook {
	var mu sync.Mutex
	n := 0
	return func(r modbustest.Request) modbustest.Fault {
		mu.Lock()
		n++
		k := n
		mu.Unlock()
		switch {
		case k%997 == 0:
			return modbustest.DropConnection()(r)
		case k%503 == 0:
			return modbustest.Delay(300 * time.Millisecond)(r)
		}
		return modbustest.Fault{}
	}
}

// testLogger discards the gateway's log: goroutines that log after a test
// ended must not call t.Log.
func testLogger(t *testing.T) *slog.Logger { return slog.New(slog.DiscardHandler) }
