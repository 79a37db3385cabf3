package opcua_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
	"github.com/m2mbridge/m2mbridge/opcua"
	"github.com/m2mbridge/m2mbridge/opcua/opcuatest"
)

// newServer starts an opcuatest server closed at the end of the test.
func newServer(t *testing.T, opts opcuatest.Options) *opcuatest.Server {
	t.Helper()
	srv, err := opcuatest.New(opts)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	return srv
}

// run starts src with a Recorder and stops it at the end of the test,
// checking that Run returns nil promptly.
func run(t *testing.T, src *opcua.Source, out bridge.Emitter) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				err = errors.New("Run did not return within 10s of cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { require.NoError(t, stop()) })
	return stop
}

// latest returns the last recorded sample of each point after from.
func latest(rec *bridgetest.Recorder, from int) map[string]bridge.Sample {
	m := map[string]bridge.Sample{}
	all := rec.Samples()
	if from > len(all) {
		from = len(all)
	}
	for _, s := range all[from:] {
		m[s.Point] = s
	}
	return m
}

// waitFor polls the recorder until cond holds for the samples recorded
// after from.
func waitFor(t *testing.T, rec *bridgetest.Recorder, from int, timeout time.Duration, what string, cond func([]bridge.Sample) bool) {
	t.Helper()
	ok := assert.Eventually(t, func() bool {
		all := rec.Samples()
		if from > len(all) {
			return false
		}
		return cond(all[from:])
	}, timeout, 10*time.Millisecond, what)
	if !ok {
		all := rec.Samples()
		for _, s := range all[max(0, len(all)-5):] {
			t.Logf("last samples: %s %s %v %s", s.Point, s.Quality, s.Value, s.Reason)
		}
		t.FailNow()
	}
}

func good(point string) func([]bridge.Sample) bool {
	return func(ss []bridge.Sample) bool {
		for _, s := range ss {
			if s.Point == point && s.Quality == bridge.Good {
				return true
			}
		}
		return false
	}
}

func bad(point string) func([]bridge.Sample) bool {
	return func(ss []bridge.Sample) bool {
		for _, s := range ss {
			if s.Point == point && s.Quality == bridge.Bad {
				return true
			}
		}
		return false
	}
}

func allNodes() []opcua.Node {
	return []opcua.Node{
		{Name: "counter", Node: opcuatest.NodeID(opcuatest.Counter)},
		{Name: "ramp", Node: "nsu=" + opcuatest.NamespaceURI + ";s=" + opcuatest.Ramp},
		{Name: "temperature", Node: opcuatest.NodeID(opcuatest.Temperature)},
		{Name: "sine", Node: opcuatest.NodeID(opcuatest.Sine), Unit: "mV"},
		{Name: "toggle", Node: opcuatest.NodeID(opcuatest.Toggle)},
		{Name: "text", Node: opcuatest.NodeID(opcuatest.Text)},
		{Name: "stamp", Node: opcuatest.NodeID(opcuatest.Stamp)},
		{Name: "fault", Node: opcuatest.NodeID(opcuatest.Fault)},
		{Name: "stale", Node: opcuatest.NodeID(opcuatest.Stale)},
		{Name: "vector", Node: opcuatest.NodeID(opcuatest.Vector)},
		{Name: "missing", Node: "nsu=urn:nowhere;s=Missing"},
	}
}

func checkSamples(t *testing.T, m map[string]bridge.Sample) {
	t.Helper()
	now := time.Now()
	c := m["counter"]
	assert.Equal(t, bridge.Good, c.Quality)
	assert.Equal(t, bridge.KindUint, c.Value.Kind())
	assert.Equal(t, "plc", c.Source)
	assert.WithinDuration(t, now, c.Time, 5*time.Second, "Time is the SourceTimestamp")
	assert.Equal(t, bridge.KindFloat, m["ramp"].Value.Kind(), "nsu= id resolved")
	assert.Equal(t, opcuatest.TemperatureUnit, m["temperature"].Unit, "unit from EngineeringUnits")
	assert.Equal(t, "mV", m["sine"].Unit, "configured unit wins")
	assert.Equal(t, bridge.KindBool, m["toggle"].Value.Kind())
	assert.True(t, strings.HasPrefix(m["text"].Value.Str(), "tick-"))
	_, err := time.Parse(time.RFC3339Nano, m["stamp"].Value.Str())
	assert.NoError(t, err, "DateTime as RFC 3339")

	f := m["fault"]
	assert.Equal(t, bridge.Bad, f.Quality)
	assert.Equal(t, uint32(ua.StatusBadSensorFailure), f.Code)
	assert.Equal(t, "BadSensorFailure", f.Reason)
	assert.True(t, f.Value.IsNone())

	s := m["stale"]
	assert.Equal(t, bridge.Uncertain, s.Quality)
	assert.Equal(t, "UncertainLastUsableValue", s.Reason)
	assert.Equal(t, bridge.KindFloat, s.Value.Kind())

	v := m["vector"]
	assert.Equal(t, bridge.Bad, v.Quality)
	assert.Equal(t, uint32(ua.StatusBadTypeMismatch), v.Code)
	assert.Contains(t, v.Reason, "array")

	x := m["missing"]
	assert.Equal(t, bridge.Bad, x.Quality)
	assert.Equal(t, uint32(ua.StatusBadNodeIDUnknown), x.Code)
	assert.Contains(t, x.Reason, "urn:nowhere")
}

func TestSubscribe(t *testing.T) {
	srv := newServer(t, opcuatest.Options{Interval: 20 * time.Millisecond})
	src, err := opcua.New(opcua.Config{Name: "plc", Endpoint: srv.URL(), Interval: 20 * time.Millisecond, Nodes: allNodes()})
	require.NoError(t, err)
	rec := bridgetest.NewRecorder()
	run(t, src, rec)
	need := []string{"counter", "ramp", "temperature", "sine", "toggle", "text", "stamp", "fault", "stale", "vector", "missing"}
	waitFor(t, rec, 0, 10*time.Second, "every point reported", func(ss []bridge.Sample) bool {
		seen := map[string]bool{}
		for _, s := range ss {
			seen[s.Point] = true
		}
		for _, n := range need {
			if !seen[n] {
				return false
			}
		}
		return true
	})
	// The counter moves: several distinct values arrive.
	waitFor(t, rec, 0, 10*time.Second, "counter changes", func(ss []bridge.Sample) bool {
		vals := map[uint64]bool{}
		for _, s := range ss {
			if s.Point == "counter" {
				u, _ := s.Value.Uint()
				vals[u] = true
			}
		}
		return len(vals) >= 3
	})
	checkSamples(t, latest(rec, 0))
	st := src.Stats()
	assert.True(t, st.Connected)
	assert.Equal(t, uint64(1), st.Connects)
	assert.Positive(t, st.Notifications)
}

func TestPollChunksToOperationLimit(t *testing.T) {
	const extra = 230
	srv := newServer(t, opcuatest.Options{Interval: 50 * time.Millisecond, Extra: extra, MaxNodesPerRead: 50})
	nodes := allNodes()
	for i := 0; i < extra; i++ {
		nodes = append(nodes, opcua.Node{Name: opcuatest.ExtraName(i), Node: opcuatest.NodeID(opcuatest.ExtraName(i))})
	}
	src, err := opcua.New(opcua.Config{Name: "plc", Endpoint: srv.URL(), Mode: opcua.Poll, Interval: 50 * time.Millisecond, Nodes: nodes})
	require.NoError(t, err)
	rec := bridgetest.NewRecorder()
	stop := run(t, src, rec)
	// 241 readable... 239 readable nodes (vector and missing are not read)
	// in chunks of 50: 5 requests per cycle.
	waitFor(t, rec, 0, 10*time.Second, "three poll cycles", func(ss []bridge.Sample) bool { return len(ss) >= 3*len(nodes) })
	require.NoError(t, stop())
	checkSamples(t, latest(rec, 0))
	assert.Zero(t, srv.Dropped())
	readable := len(nodes) - 2
	cycles := src.Stats().Reads / 5 // approximately; check the invariants exactly:
	assert.Positive(t, cycles)
	// Every request the server saw was within its limit (a larger one would
	// have been refused and shown as Bad samples) and none was empty.
	for _, s := range rec.Samples() {
		if s.Point != "fault" && s.Point != "vector" && s.Point != "missing" {
			require.NotEqual(t, bridge.Bad, s.Quality, "%s: %s", s.Point, s.Reason)
		}
	}
	// Reads per cycle: ceil(239/50) = 5, plus the connect-time reads.
	assert.Equal(t, (readable+49)/50, 5)
	assert.LessOrEqual(t, float64(srv.ReadNodes())/float64(srv.Reads()), 50.0)
}

func TestReconnectAfterRestartAndDrop(t *testing.T) {
	srv := newServer(t, opcuatest.Options{Interval: 20 * time.Millisecond})
	src, err := opcua.New(opcua.Config{
		Name: "plc", Endpoint: srv.URL(), Interval: 20 * time.Millisecond, Timeout: time.Second,
		Watchdog: 500 * time.Millisecond, ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
		Nodes: []opcua.Node{{Name: "counter", Node: opcuatest.NodeID(opcuatest.Counter)}},
	})
	require.NoError(t, err)
	rec := bridgetest.NewRecorder()
	run(t, src, rec)
	waitFor(t, rec, 0, 10*time.Second, "first samples", good("counter"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A restart loses the session and the subscription.
	mark := rec.Len()
	require.NoError(t, srv.Restart(ctx))
	waitFor(t, rec, mark, 10*time.Second, "bad sample during restart", bad("counter"))
	mark = rec.Len()
	waitFor(t, rec, mark, 10*time.Second, "samples after restart", good("counter"))

	// A dropped connection.
	mark = rec.Len()
	require.Eventually(t, func() bool { return srv.DropConnections() > 0 }, 5*time.Second, 10*time.Millisecond)
	waitFor(t, rec, mark, 10*time.Second, "bad sample after drop", bad("counter"))
	mark = rec.Len()
	waitFor(t, rec, mark, 10*time.Second, "samples after drop", good("counter"))

	// The server down for a while: Bad samples on every attempt, then back.
	require.NoError(t, srv.Stop(ctx))
	mark = rec.Len()
	waitFor(t, rec, mark, 10*time.Second, "bad samples while down", func(ss []bridge.Sample) bool {
		n := 0
		for _, s := range ss {
			if s.Quality == bridge.Bad {
				n++
			}
		}
		return n >= 3
	})
	require.NoError(t, srv.Start(ctx))
	mark = rec.Len()
	waitFor(t, rec, mark, 10*time.Second, "samples after start", good("counter"))
	assert.GreaterOrEqual(t, src.Stats().Reconnects, uint64(3))
	assert.Positive(t, src.Stats().ConnectFailures)
}

func TestWatchdogSilentConnection(t *testing.T) {
	srv := newServer(t, opcuatest.Options{Interval: 20 * time.Millisecond})
	src, err := opcua.New(opcua.Config{
		Name: "plc", Endpoint: srv.URL(), Interval: 20 * time.Millisecond, Timeout: 500 * time.Millisecond,
		Watchdog: 400 * time.Millisecond, ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
		Nodes: []opcua.Node{{Name: "counter", Node: opcuatest.NodeID(opcuatest.Counter)}},
	})
	require.NoError(t, err)
	rec := bridgetest.NewRecorder()
	run(t, src, rec)
	waitFor(t, rec, 0, 10*time.Second, "first samples", good("counter"))

	// The connection stays open but nothing gets through: only the
	// watchdog can notice.
	mark := rec.Len()
	srv.Blackhole(true)
	waitFor(t, rec, mark, 10*time.Second, "silence detected", func(ss []bridge.Sample) bool {
		for _, s := range ss {
			if s.Quality == bridge.Bad && strings.Contains(s.Reason, "silent") {
				return true
			}
		}
		return false
	})
	assert.Positive(t, src.Stats().WatchdogTrips)
	srv.Blackhole(false)
	mark = rec.Len()
	waitFor(t, rec, mark, 10*time.Second, "samples after the path heals", good("counter"))
}

// blockingEmitter blocks every Emit until ctx ends, like a stalled Bridge.
type blockingEmitter struct{ calls atomic.Int64 }

func (b *blockingEmitter) Emit(ctx context.Context, _ []bridge.Sample) error {
	b.calls.Add(1)
	<-ctx.Done()
	return ctx.Err()
}

// TestStalledEmitter checks that a source whose Emit never returns still
// ends promptly when its context does.
func TestStalledEmitter(t *testing.T) {
	srv := newServer(t, opcuatest.Options{Interval: 10 * time.Millisecond})
	src, err := opcua.New(opcua.Config{
		Name: "plc", Endpoint: srv.URL(), Interval: 10 * time.Millisecond,
		Nodes: []opcua.Node{{Name: "counter", Node: opcuatest.NodeID(opcuatest.Counter)}},
	})
	require.NoError(t, err)
	em := &blockingEmitter{}
	stop := run(t, src, em)
	require.Eventually(t, func() bool { return em.calls.Load() == 1 }, 10*time.Second, 5*time.Millisecond)
	start := time.Now()
	require.NoError(t, stop())
	assert.Less(t, time.Since(start), 3*time.Second)
	assert.Equal(t, int64(1), em.calls.Load(), "nothing is queued or dropped behind a blocked Emit")
}

// pausingEmitter blocks the first Emit that carries a Good sample until
// release is closed, then records everything.
type pausingEmitter struct {
	rec     *bridgetest.Recorder
	release chan struct{}
	paused  atomic.Bool
}

func (p *pausingEmitter) Emit(ctx context.Context, b []bridge.Sample) error {
	if len(b) > 0 && b[0].Quality == bridge.Good && p.paused.CompareAndSwap(false, true) {
		select {
		case <-p.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return p.rec.Emit(ctx, b)
}

// TestSlowEmitter checks that an Emit that blocks for longer than the
// watchdog period is not taken for a silent server: once it returns, the
// same session goes on delivering.
func TestSlowEmitter(t *testing.T) {
	srv := newServer(t, opcuatest.Options{Interval: 10 * time.Millisecond})
	src, err := opcua.New(opcua.Config{
		Name: "plc", Endpoint: srv.URL(), Interval: 20 * time.Millisecond, Watchdog: 200 * time.Millisecond,
		Nodes: []opcua.Node{{Name: "counter", Node: opcuatest.NodeID(opcuatest.Counter)}},
	})
	require.NoError(t, err)
	em := &pausingEmitter{rec: bridgetest.NewRecorder(), release: make(chan struct{})}
	run(t, src, em)
	require.Eventually(t, em.paused.Load, 10*time.Second, 5*time.Millisecond)
	deadline := time.Now().Add(600 * time.Millisecond) // three watchdog periods
	require.Eventually(t, func() bool { return time.Now().After(deadline) }, time.Second, 10*time.Millisecond)
	close(em.release)
	waitFor(t, em.rec, 0, 10*time.Second, "samples after Emit returns", func(ss []bridge.Sample) bool {
		n := 0
		for _, s := range ss {
			if s.Quality == bridge.Good {
				n++
			}
		}
		return n >= 10
	})
	assert.Zero(t, src.Stats().WatchdogTrips)
	assert.Zero(t, src.Stats().Reconnects)
	for _, s := range em.rec.Samples() {
		assert.Equal(t, bridge.Good, s.Quality, s.Reason)
	}
}

// TestEndpointsComeBack checks that a server offering no endpoints for a
// while (as one that is starting may) does not stop the source: it reports
// itself down with that reason, retries, and delivers once the endpoints
// are back.
func TestEndpointsComeBack(t *testing.T) {
	srv := newServer(t, opcuatest.Options{Interval: 10 * time.Millisecond})
	src, err := opcua.New(opcua.Config{
		Name: "plc", Endpoint: srv.URL(), Interval: 20 * time.Millisecond,
		ReconnectMin: 20 * time.Millisecond, ReconnectMax: 100 * time.Millisecond,
		Nodes: []opcua.Node{{Name: "counter", Node: opcuatest.NodeID(opcuatest.Counter)}},
	})
	require.NoError(t, err)
	assert.Equal(t, bridge.Health{Since: src.Health().Since, Reason: "not started"}, src.Health())
	srv.HideEndpoints(true)
	rec := bridgetest.NewRecorder()
	stop := run(t, src, rec)
	waitFor(t, rec, 0, 10*time.Second, "Bad samples saying why", func(ss []bridge.Sample) bool {
		n := 0
		for _, s := range ss {
			if s.Quality == bridge.Bad && strings.Contains(s.Reason, "no matching endpoint") {
				n++
			}
		}
		return n >= 3 // retried
	})
	h := src.Health()
	assert.False(t, h.Up)
	assert.Contains(t, h.Reason, "no matching endpoint")

	srv.HideEndpoints(false)
	mark := rec.Len()
	waitFor(t, rec, mark, 10*time.Second, "Good samples once the endpoints are back", good("counter"))
	h = src.Health()
	assert.True(t, h.Up)
	assert.Empty(t, h.Reason)

	// Mid-run too: a reboot that offers no endpoints for a while.
	srv.HideEndpoints(true)
	srv.DropConnections()
	require.Eventually(t, func() bool { return !src.Health().Up }, 10*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return strings.Contains(src.Health().Reason, "no matching endpoint") }, 10*time.Second, 5*time.Millisecond)
	srv.HideEndpoints(false)
	mark = rec.Len()
	waitFor(t, rec, mark, 10*time.Second, "Good samples after the reboot", good("counter"))
	require.NoError(t, stop())
	assert.Equal(t, "stopped", src.Health().Reason)
}

func TestRunEndsItsGoroutines(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	srv, err := opcuatest.New(opcuatest.Options{Interval: 20 * time.Millisecond})
	require.NoError(t, err)
	for _, mode := range []opcua.Mode{opcua.Subscribe, opcua.Poll} {
		src, err := opcua.New(opcua.Config{Name: "plc", Endpoint: srv.URL(), Mode: mode, Interval: 20 * time.Millisecond, Nodes: allNodes()})
		require.NoError(t, err)
		rec := bridgetest.NewRecorder()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- src.Run(ctx, rec) }()
		waitFor(t, rec, 0, 10*time.Second, "samples", good("counter"))
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return")
		}
	}
	require.NoError(t, srv.Close())
	goleak.VerifyNone(t, ignore)
}

func TestWriteNode(t *testing.T) {
	srv := newServer(t, opcuatest.Options{Interval: 50 * time.Millisecond})
	src, err := opcua.New(opcua.Config{Name: "plc", Endpoint: srv.URL(), Mode: opcua.Poll, Interval: 50 * time.Millisecond, Nodes: []opcua.Node{
		{Name: "setpoint", Node: opcuatest.NodeID(opcuatest.Setpoint)},
		{Name: "mode", Node: opcuatest.NodeID(opcuatest.Mode)},
		{Name: "counter", Node: opcuatest.NodeID(opcuatest.Counter)},
	}})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.ErrorIs(t, src.WriteNode(ctx, "setpoint", 1.5), opcua.ErrNotConnected)

	rec := bridgetest.NewRecorder()
	run(t, src, rec)
	require.Eventually(t, func() bool { return src.Stats().Connected }, 10*time.Second, 10*time.Millisecond)

	require.NoError(t, src.WriteNode(ctx, "setpoint", 21.5))
	assert.Equal(t, 21.5, srv.Value(opcuatest.Setpoint))
	require.NoError(t, src.WriteNode(ctx, "setpoint", 3), "an int goes to a Double node")
	assert.Equal(t, 3.0, srv.Value(opcuatest.Setpoint))
	require.NoError(t, src.WriteNode(ctx, "mode", 7.0), "an integral float goes to an Int32 node")
	assert.Equal(t, int32(7), srv.Value(opcuatest.Mode))
	require.NoError(t, src.WriteNode(ctx, "mode", bridge.Int(-2)))
	assert.Equal(t, int32(-2), srv.Value(opcuatest.Mode))

	err = src.WriteNode(ctx, "mode", 7.5)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Int32")
	err = src.WriteNode(ctx, "mode", int64(1)<<40)
	require.Error(t, err, "out of range for Int32")

	err = src.WriteNode(ctx, "counter", uint32(5))
	var we *opcua.WriteError
	require.ErrorAs(t, err, &we)
	assert.Equal(t, ua.StatusBadNotWritable, we.Status)
	assert.ErrorIs(t, err, ua.StatusBadNotWritable)
	assert.Contains(t, err.Error(), "plc/counter")
	require.ErrorIs(t, src.WriteNode(ctx, "nope", 1), opcua.ErrUnknownNode)
}

func TestBrowse(t *testing.T) {
	srv := newServer(t, opcuatest.Options{Interval: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nodes, err := opcua.Browse(ctx, opcua.Config{Endpoint: srv.URL()}, opcuatest.FolderNodeID, 2)
	require.NoError(t, err)
	byName := map[string]opcua.Node{}
	for _, n := range nodes {
		byName[n.Name] = n
	}
	require.Contains(t, byName, opcuatest.Temperature, "got %v", nodes)
	assert.Equal(t, opcuatest.TemperatureUnit, byName[opcuatest.Temperature].Unit)
	assert.Equal(t, "nsu="+opcuatest.NamespaceURI+";s="+opcuatest.Temperature, byName[opcuatest.Temperature].Node)
	assert.NotContains(t, byName, "EngineeringUnits", "properties are not listed")
	assert.Contains(t, byName, opcuatest.Counter)

	// The list is ready to use.
	src, err := opcua.New(opcua.Config{Name: "plc", Endpoint: srv.URL(), Mode: opcua.Poll, Interval: 50 * time.Millisecond, Nodes: nodes})
	require.NoError(t, err)
	rec := bridgetest.NewRecorder()
	run(t, src, rec)
	waitFor(t, rec, 0, 10*time.Second, "samples from browsed nodes", good(opcuatest.Temperature))
}

// TestSecureEndpoints checks endpoint selection and server verification
// against the in-process server. The secure channel itself is tested
// against node-opcua (interop_test.go): the upstream server package v0.8.0
// cannot decrypt a secured OpenSecureChannel ("invalid node id type" on its
// side, BadTimeout on ours).
func TestSecureEndpoints(t *testing.T) {
	srv := newServer(t, opcuatest.Options{Interval: 20 * time.Millisecond, Security: true})
	pki := t.TempDir()

	t.Run("pin mismatch", func(t *testing.T) {
		other, _, err := opcua.GenerateCertificate("urn:other", "other", time.Hour)
		require.NoError(t, err)
		src, err := opcua.New(opcua.Config{
			Name: "plc", Endpoint: srv.URL(), SecurityPolicy: "Basic256Sha256", PKIDir: pki,
			ServerCertificateSHA256: opcua.Thumbprint(other),
			Nodes:                   []opcua.Node{{Name: "counter", Node: opcuatest.NodeID(opcuatest.Counter)}},
		})
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		rec := bridgetest.NewRecorder()
		err = src.Run(ctx, rec)
		require.ErrorIs(t, err, opcua.ErrUntrustedServer)
		require.Positive(t, rec.Len(), "a Bad sample says why")
		assert.Contains(t, rec.Samples()[0].Reason, "not trusted")
	})

	t.Run("no such endpoint", func(t *testing.T) {
		plain := newServer(t, opcuatest.Options{Interval: 20 * time.Millisecond})
		src, err := opcua.New(opcua.Config{
			Name: "plc", Endpoint: plain.URL(), SecurityPolicy: "Basic256Sha256", PKIDir: pki, InsecureSkipVerify: true,
			ReconnectMin: 10 * time.Millisecond, ReconnectMax: 20 * time.Millisecond,
			Nodes: []opcua.Node{{Name: "counter", Node: opcuatest.NodeID(opcuatest.Counter)}},
		})
		require.NoError(t, err)
		rec := bridgetest.NewRecorder()
		stop := run(t, src, rec)
		// Retried, not fatal: the server may be starting.
		waitFor(t, rec, 0, 10*time.Second, "Bad samples from several attempts", func(ss []bridge.Sample) bool { return len(ss) >= 3 })
		assert.Contains(t, rec.Samples()[0].Reason, "None/None")
		assert.Contains(t, src.Health().Reason, "no matching endpoint")
		require.NoError(t, stop())
	})
}

func TestMonitoredItemsInBatches(t *testing.T) {
	const extra = 120
	srv := newServer(t, opcuatest.Options{Interval: 20 * time.Millisecond, Extra: extra, MaxMonitoredItemsPerCall: 50})
	nodes := make([]opcua.Node, extra)
	for i := range nodes {
		nodes[i] = opcua.Node{Name: opcuatest.ExtraName(i), Node: opcuatest.NodeID(opcuatest.ExtraName(i))}
	}
	src, err := opcua.New(opcua.Config{Name: "plc", Endpoint: srv.URL(), Interval: 20 * time.Millisecond, Nodes: nodes})
	require.NoError(t, err)
	rec := bridgetest.NewRecorder()
	run(t, src, rec)
	waitFor(t, rec, 0, 20*time.Second, "every node reports", func(ss []bridge.Sample) bool {
		seen := map[string]bool{}
		for _, s := range ss {
			if s.Quality != bridge.Good {
				return false
			}
			seen[s.Point] = true
		}
		return len(seen) == extra
	})
	// 120 nodes and the heartbeat in calls of at most 50.
	assert.Equal(t, uint64(3), srv.CreateMonitoredItemsCalls())
}

func TestInjectedBadStatusIsDelivered(t *testing.T) {
	srv := newServer(t, opcuatest.Options{Interval: 20 * time.Millisecond})
	src, err := opcua.New(opcua.Config{Name: "plc", Endpoint: srv.URL(), Interval: 20 * time.Millisecond,
		Nodes: []opcua.Node{{Name: "ramp", Node: opcuatest.NodeID(opcuatest.Ramp)}}})
	require.NoError(t, err)
	rec := bridgetest.NewRecorder()
	run(t, src, rec)
	waitFor(t, rec, 0, 10*time.Second, "good samples", good("ramp"))
	require.NoError(t, srv.SetStatus(opcuatest.Ramp, ua.StatusBadOutOfService))
	mark := rec.Len()
	waitFor(t, rec, mark, 10*time.Second, "the Bad value is delivered, not dropped", func(ss []bridge.Sample) bool {
		for _, s := range ss {
			if s.Quality == bridge.Bad && s.Reason == "BadOutOfService" && s.Code == uint32(ua.StatusBadOutOfService) && s.Value.IsNone() {
				return true
			}
		}
		return false
	})
	require.NoError(t, srv.SetStatus(opcuatest.Ramp, ua.StatusOK))
	mark = rec.Len()
	waitFor(t, rec, mark, 10*time.Second, "good again", good("ramp"))
	assert.Zero(t, src.Stats().Reconnects, "a Bad value is not a connection problem")
}

func TestPollLearnsAWrongReadLimit(t *testing.T) {
	const extra = 100
	srv := newServer(t, opcuatest.Options{Interval: 50 * time.Millisecond, Extra: extra, MaxNodesPerRead: 30, AnnouncedMaxNodesPerRead: 100})
	nodes := make([]opcua.Node, extra)
	for i := range nodes {
		nodes[i] = opcua.Node{Name: opcuatest.ExtraName(i), Node: opcuatest.NodeID(opcuatest.ExtraName(i))}
	}
	src, err := opcua.New(opcua.Config{Name: "plc", Endpoint: srv.URL(), Mode: opcua.Poll, Interval: 50 * time.Millisecond,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 100 * time.Millisecond, Nodes: nodes})
	require.NoError(t, err)
	rec := bridgetest.NewRecorder()
	run(t, src, rec)
	waitFor(t, rec, 0, 20*time.Second, "full good cycles", func(ss []bridge.Sample) bool {
		n := 0
		for _, s := range ss {
			if s.Quality == bridge.Good {
				n++
			}
		}
		return n >= 3*extra
	})
	reconnects := src.Stats().Reconnects
	assert.LessOrEqual(t, reconnects, uint64(2), "the learnt limit survives the reconnect")
	mark := rec.Len()
	waitFor(t, rec, mark, 20*time.Second, "more cycles", func(ss []bridge.Sample) bool { return len(ss) >= 3*extra })
	assert.Equal(t, reconnects, src.Stats().Reconnects, "no more reconnects once learnt")
}
