package opcua_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gopcua "github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
	"github.com/m2mbridge/m2mbridge/internal/nodeopcua"
	"github.com/m2mbridge/m2mbridge/opcua"
)

// cutProxy is a TCP proxy the test owns: cut closes every connection and
// refuses new ones until heal.
type cutProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	cut    bool
	silent atomic.Bool // bytes are read and dropped: the path is dead but TCP does not know
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.setCut(true)
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) url() string { return "opc.tcp://" + p.ln.Addr().String() }

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.mu.Unlock()
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = struct{}{}, struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			defer dst.Close()
			defer src.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := src.Read(buf)
				if n > 0 && !p.silent.Load() {
					if _, err := dst.Write(buf[:n]); err != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}
		go pipe(c, s)
		go pipe(s, c)
	}
}

func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
		p.conns = map[net.Conn]struct{}{}
	}
}

func interopNodes() []opcua.Node {
	return []opcua.Node{
		{Name: "counter", Node: nodeopcua.NodeID("Counter")},
		{Name: "ramp", Node: nodeopcua.NodeID("Ramp")},
		{Name: "temperature", Node: nodeopcua.NodeID("Temperature")},
		{Name: "text", Node: nodeopcua.NodeID("Text")},
		{Name: "fault", Node: nodeopcua.NodeID("Fault")},
	}
}

func checkInterop(t *testing.T, rec *bridgetest.Recorder) {
	t.Helper()
	waitFor(t, rec, 0, 30*time.Second, "every point reported", func(ss []bridge.Sample) bool {
		seen := map[string]bool{}
		for _, s := range ss {
			seen[s.Point] = true
		}
		return len(seen) == 5
	})
	waitFor(t, rec, 0, 30*time.Second, "counter moves", func(ss []bridge.Sample) bool {
		vals := map[uint64]bool{}
		for _, s := range ss {
			if s.Point == "counter" && s.Quality == bridge.Good {
				u, _ := s.Value.Uint()
				vals[u] = true
			}
		}
		return len(vals) >= 3
	})
	m := latest(rec, 0)
	assert.Equal(t, bridge.Good, m["counter"].Quality, m["counter"].Reason)
	assert.Equal(t, bridge.KindUint, m["counter"].Value.Kind())
	assert.WithinDuration(t, time.Now(), m["counter"].Time, 10*time.Second)
	assert.Equal(t, "°C", m["temperature"].Unit, "unit from EngineeringUnits")
	assert.Equal(t, bridge.KindFloat, m["temperature"].Value.Kind())
	assert.True(t, strings.HasPrefix(m["text"].Value.Str(), "tick-"))
	assert.Equal(t, bridge.Bad, m["fault"].Quality)
	assert.Equal(t, "BadSensorFailure", m["fault"].Reason)
	assert.Equal(t, uint32(ua.StatusBadSensorFailure), m["fault"].Code)
}

// TestInteropNodeOPCUA runs the source against node-opcua
// (internal/nodeopcua): it skips without the peer, unless M2MB_INTEROP=1.
func TestInteropNodeOPCUA(t *testing.T) {
	srv := nodeopcua.Start(t)

	t.Run("poll", func(t *testing.T) {
		src, err := opcua.New(opcua.Config{Name: "node", Endpoint: srv.URL(), Mode: opcua.Poll, Interval: 100 * time.Millisecond, Nodes: interopNodes()})
		require.NoError(t, err)
		rec := bridgetest.NewRecorder()
		stop := run(t, src, rec)
		checkInterop(t, rec)
		require.NoError(t, stop())
	})

	t.Run("subscribe", func(t *testing.T) {
		src, err := opcua.New(opcua.Config{Name: "node", Endpoint: srv.URL(), Interval: 100 * time.Millisecond, Nodes: interopNodes()})
		require.NoError(t, err)
		rec := bridgetest.NewRecorder()
		stop := run(t, src, rec)
		checkInterop(t, rec)
		require.NoError(t, stop())
	})

	t.Run("deadband", func(t *testing.T) {
		// Fine grows by 0.1 every 100ms: without a deadband every change
		// is reported, with an absolute deadband of 1 one in ten.
		src, err := opcua.New(opcua.Config{Name: "node", Endpoint: srv.URL(), Interval: 50 * time.Millisecond, Nodes: []opcua.Node{
			{Name: "all", Node: nodeopcua.NodeID("Fine"), SamplingInterval: 50 * time.Millisecond},
			{Name: "deadband", Node: nodeopcua.NodeID("Fine"), SamplingInterval: 50 * time.Millisecond, Deadband: "absolute", DeadbandValue: 1},
		}})
		require.NoError(t, err)
		rec := bridgetest.NewRecorder()
		stop := run(t, src, rec)
		waitFor(t, rec, 0, 60*time.Second, "enough samples", func(ss []bridge.Sample) bool {
			n := 0
			for _, s := range ss {
				if s.Point == "all" {
					n++
				}
			}
			return n >= 40
		})
		require.NoError(t, stop())
		count := map[string]int{}
		for _, s := range rec.Samples() {
			require.Equal(t, bridge.Good, s.Quality, s.Reason)
			count[s.Point]++
		}
		t.Logf("notifications without deadband %d, with deadband 1.0: %d", count["all"], count["deadband"])
		assert.Positive(t, count["deadband"])
		assert.Less(t, count["deadband"]*3, count["all"], "the deadband reduces notifications")
	})

	t.Run("writes", func(t *testing.T) {
		src, err := opcua.New(opcua.Config{Name: "node", Endpoint: srv.URL(), Interval: 100 * time.Millisecond, Nodes: []opcua.Node{
			{Name: "setpoint", Node: nodeopcua.NodeID("Setpoint"), Writable: true, Min: ptr(-100), Max: ptr(100)},
			{Name: "mode", Node: nodeopcua.NodeID("Mode"), Writable: true},
			{Name: "locked", Node: nodeopcua.NodeID("Locked"), Writable: true},
		}})
		require.NoError(t, err)
		rec := bridgetest.NewRecorder()
		stop := run(t, src, rec)
		require.Eventually(t, func() bool { return src.Stats().Connected }, 30*time.Second, 10*time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()

		for _, tc := range []struct {
			point string
			v     bridge.Value
			kind  bridge.Kind
		}{
			{"setpoint", bridge.Float(42.25), bridge.KindFloat},
			{"setpoint", bridge.Int(-3), bridge.KindFloat},
			{"mode", bridge.Int(-123456), bridge.KindInt},
			{"mode", bridge.Float(7), bridge.KindInt},
		} {
			s, err := src.Write(ctx, tc.point, tc.v)
			require.NoError(t, err, "%s = %s", tc.point, tc.v)
			assert.Equal(t, bridge.Good, s.Quality, s.Reason)
			assert.Equal(t, tc.kind, s.Value.Kind(), "read back as the node's type")
			assert.True(t, s.Value.Equal(tc.v), "read back %s, wrote %s", s.Value, tc.v)
			assert.WithinDuration(t, time.Now(), s.Time, 10*time.Second)
			// The subscription sees it too: it reached the server.
			want := s.Value
			waitFor(t, rec, 0, 10*time.Second, tc.point+" notified", func(ss []bridge.Sample) bool {
				for _, x := range ss {
					if x.Point == tc.point && x.Value.Equal(want) {
						return true
					}
				}
				return false
			})
		}

		_, err = src.Write(ctx, "mode", bridge.Float(7.5))
		require.ErrorIs(t, err, bridge.ErrWrongType, "refused before the server is asked")
		_, err = src.Write(ctx, "mode", bridge.Int(1<<31))
		require.ErrorIs(t, err, bridge.ErrOutOfRange)
		_, err = src.Write(ctx, "setpoint", bridge.Float(101))
		require.ErrorIs(t, err, bridge.ErrOutOfRange)

		_, err = src.Write(ctx, "locked", bridge.Float(6))
		var we *opcua.WriteError
		require.ErrorAs(t, err, &we, "read-only on the server")
		t.Logf("read-only node: %v", err)
		assert.False(t, bridge.IsRefusal(err))
		assert.Contains(t, []ua.StatusCode{ua.StatusBadNotWritable, ua.StatusBadUserAccessDenied}, we.Status)
		assert.Contains(t, err.Error(), opcua.StatusName(we.Status))
		require.NoError(t, stop())
	})

	thumb := serverThumbprint(t, srv.URL())
	secure := func(password string) opcua.Config {
		return opcua.Config{
			Name: "node", Endpoint: srv.URL(), Interval: 100 * time.Millisecond,
			SecurityPolicy: "Basic256Sha256", SecurityMode: "SignAndEncrypt",
			Username: nodeopcua.User, Password: opcua.Secret(password),
			PKIDir: t.TempDir(), ServerCertificateSHA256: thumb,
			Nodes: interopNodes(),
		}
	}

	t.Run("Basic256Sha256 SignAndEncrypt with user name", func(t *testing.T) {
		src, err := opcua.New(secure(nodeopcua.Password))
		require.NoError(t, err)
		rec := bridgetest.NewRecorder()
		stop := run(t, src, rec)
		checkInterop(t, rec)
		require.NoError(t, stop())
	})

	for _, tc := range []struct{ policy, mode, auth string }{
		{"Aes128_Sha256_RsaOaep", "Sign", "anonymous"},
		{"Aes256_Sha256_RsaPss", "SignAndEncrypt", "anonymous"},
		{"Basic256Sha256", "Sign", "certificate"},
	} {
		t.Run(tc.policy+" "+tc.mode+" "+tc.auth, func(t *testing.T) {
			cfg := secure("")
			cfg.SecurityPolicy, cfg.SecurityMode, cfg.Auth, cfg.Username = opcua.SecurityPolicy(tc.policy), opcua.SecurityMode(tc.mode), tc.auth, ""
			src, err := opcua.New(cfg)
			require.NoError(t, err)
			rec := bridgetest.NewRecorder()
			stop := run(t, src, rec)
			checkInterop(t, rec)
			require.NoError(t, stop())
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		const wrong = "wrong-password-never-shown"
		src, err := opcua.New(secure(wrong))
		require.NoError(t, err)
		rec := bridgetest.NewRecorder()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		err = src.Run(ctx, rec)
		require.Error(t, err)
		require.ErrorIs(t, err, opcua.ErrAuthentication)
		t.Log(err)
		assert.Contains(t, err.Error(), `user "operator"`)
		assert.NotContains(t, err.Error(), wrong)
		for _, s := range rec.Samples() {
			assert.Equal(t, bridge.Bad, s.Quality)
			assert.NotContains(t, s.Reason, wrong)
		}
	})

	t.Run("pinned certificate mismatch", func(t *testing.T) {
		cfg := secure(nodeopcua.Password)
		cfg.ServerCertificateSHA256 = strings.Repeat("00", 32)
		src, err := opcua.New(cfg)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		err = src.Run(ctx, bridgetest.NewRecorder())
		require.ErrorIs(t, err, opcua.ErrUntrustedServer)
	})

	t.Run("network blip", func(t *testing.T) {
		px := newCutProxy(t, srv.Addr())
		src, err := opcua.New(opcua.Config{
			Name: "node", Endpoint: px.url(), Interval: 100 * time.Millisecond, Timeout: 2 * time.Second,
			Watchdog: 1500 * time.Millisecond, ReconnectMin: 100 * time.Millisecond, ReconnectMax: time.Second,
			Nodes: interopNodes(),
		})
		require.NoError(t, err)
		rec := bridgetest.NewRecorder()
		stop := run(t, src, rec)
		waitFor(t, rec, 0, 30*time.Second, "samples", good("counter"))
		for i := 0; i < 2; i++ {
			mark := rec.Len()
			px.setCut(true)
			waitFor(t, rec, mark, 15*time.Second, "outage reported", bad("counter"))
			px.setCut(false)
			healed := time.Now()
			mark = rec.Len()
			waitFor(t, rec, mark, 15*time.Second, "subscription resumes", good("counter"))
			t.Logf("blip %d: samples again %s after the network came back", i+1, time.Since(healed).Round(time.Millisecond))
		}
		// A silent path: connections stay open, nothing arrives. Only the
		// watchdog notices.
		mark := rec.Len()
		px.silent.Store(true)
		waitFor(t, rec, mark, 15*time.Second, "silence reported", func(ss []bridge.Sample) bool {
			for _, s := range ss {
				if s.Quality == bridge.Bad && strings.Contains(s.Reason, "silent") {
					return true
				}
			}
			return false
		})
		px.silent.Store(false)
		healed := time.Now()
		mark = rec.Len()
		waitFor(t, rec, mark, 15*time.Second, "subscription resumes", good("counter"))
		t.Logf("silent path: samples again %s after it healed", time.Since(healed).Round(time.Millisecond))
		require.NoError(t, stop())
	})

	t.Run("server killed and restarted", func(t *testing.T) {
		src, err := opcua.New(opcua.Config{
			Name: "node", Endpoint: srv.URL(), Interval: 100 * time.Millisecond, Timeout: 2 * time.Second,
			Watchdog: 2 * time.Second, ReconnectMin: 100 * time.Millisecond, ReconnectMax: time.Second,
			Nodes: interopNodes(),
		})
		require.NoError(t, err)
		rec := bridgetest.NewRecorder()
		stop := run(t, src, rec)
		waitFor(t, rec, 0, 30*time.Second, "samples", good("counter"))
		mark := rec.Len()
		srv.Kill()
		waitFor(t, rec, mark, 15*time.Second, "outage reported", bad("counter"))
		srv.Restart()
		mark = rec.Len()
		waitFor(t, rec, mark, 60*time.Second, "subscription resumes", good("counter"))
		assert.Positive(t, src.Stats().Reconnects)
		require.NoError(t, stop())
	})
}

// serverThumbprint asks the server for its endpoints and returns the
// SHA-256 of its certificate, as an operator would read it off the server.
func serverThumbprint(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eps, err := gopcua.GetEndpoints(ctx, url)
	require.NoError(t, err)
	for _, ep := range eps {
		if len(ep.ServerCertificate) > 0 {
			return opcua.Thumbprint(ep.ServerCertificate)
		}
	}
	require.Fail(t, "no endpoint has a certificate")
	return ""
}
