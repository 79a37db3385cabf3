package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/testproxy"
)

// fakeWriter is a WriteFunc that records the requests: a point named
// "locked" is refused, any other is written and read back as sent.
type fakeWriter struct {
	mu   sync.Mutex
	reqs []bridge.WriteRequest
}

func (f *fakeWriter) write(ctx context.Context, req bridge.WriteRequest) bridge.WriteResult {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	if _, ok := ctx.Deadline(); !ok {
		return bridge.WriteResult{ID: req.ID, Err: errors.New("no deadline")}
	}
	if req.Point == "locked" {
		return bridge.WriteResult{ID: req.ID, Err: fmt.Errorf("%s: %w", req.Point, bridge.ErrNotWritable)}
	}
	return bridge.WriteResult{ID: req.ID, OK: true, Value: req.Value, Matched: true, Time: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
}

func (f *fakeWriter) writes(point string) []bridge.WriteRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []bridge.WriteRequest
	for _, r := range f.reqs {
		if r.Point == point {
			out = append(out, r)
		}
	}
	return out
}

// runCommands runs a command source until the test ends, and checks that
// Run then returns nil.
func runCommands(tb testing.TB, cfg CommandsConfig, write bridge.WriteFunc) *Commands {
	tb.Helper()
	c, err := NewCommands(cfg)
	require.NoError(tb, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, write) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(tb, err)
		case <-time.After(10 * time.Second):
			tb.Error("Run did not return after its context ended")
		}
	})
	return c
}

// requester connects a client of the test's own.
func requester(tb testing.TB, addr string) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect("nats://"+addr, nats.Name("m2mtest-requester"))
	require.NoError(tb, err)
	tb.Cleanup(nc.Close)
	return nc
}

// ready sends probes until one is answered: the source has subscribed.
func ready(tb testing.TB, nc *nats.Conn, prefix string) {
	tb.Helper()
	require.Eventually(tb, func() bool {
		_, err := nc.Request(prefix+".probe.probe", []byte(`{"value":1}`), 100*time.Millisecond)
		return err == nil
	}, 20*time.Second, time.Millisecond, "the command source never answered")
}

func request(tb testing.TB, nc *nats.Conn, subject, payload string) map[string]any {
	tb.Helper()
	m, err := nc.Request(subject, []byte(payload), 10*time.Second)
	require.NoError(tb, err)
	var a map[string]any
	require.NoError(tb, json.Unmarshal(m.Data, &a), "answer %s", m.Data)
	return a
}

func TestCommands(t *testing.T) {
	addr := serverAddr(t)
	prefix := uniq() + ".cmd"
	fw := &fakeWriter{}
	runCommands(t, CommandsConfig{Config: Config{URL: "nats://" + addr, Subject: prefix + ".{source}.{point}"}}, fw.write)
	nc := requester(t, addr)
	ready(t, nc, prefix)

	t.Run("ok", func(t *testing.T) {
		subject := prefix + ".plc1.setpoint"
		m, err := nc.Request(subject, []byte(`{"value": 42.5, "id": "abc"}`), 10*time.Second)
		require.NoError(t, err)
		assert.JSONEq(t, `{"id":"abc","ok":true,"value":42.5,"matched":true,"time":"2026-11-21T10:00:00.000000000Z"}`, string(m.Data))
		w := fw.writes("setpoint")
		require.Len(t, w, 1)
		assert.Equal(t, "plc1", w[0].Source)
		assert.Equal(t, "nats "+subject, w[0].Origin)
		assert.True(t, w[0].Value.Equal(bridge.Float(42.5)))
	})
	t.Run("refused", func(t *testing.T) {
		a := request(t, nc, prefix+".plc1.locked", `{"value": 1, "id": "r1"}`)
		assert.Equal(t, map[string]any{"id": "r1", "ok": false, "error": "locked: not writable"}, a)
	})
	t.Run("bad payload", func(t *testing.T) {
		a := request(t, nc, prefix+".plc1.bad", `{"value": {"x":1}, "id": "b1"}`)
		assert.Equal(t, false, a["ok"])
		assert.Equal(t, "b1", a["id"])
		assert.Contains(t, a["error"], "object")
		a = request(t, nc, prefix+".plc1.bad", "\x00\xff")
		assert.Equal(t, false, a["ok"])
		assert.Empty(t, fw.writes("bad"), "nothing written")
	})
	t.Run("duplicate", func(t *testing.T) {
		first := request(t, nc, prefix+".plc1.dup", `{"value": 7, "id": "d1"}`)
		again := request(t, nc, prefix+".plc1.dup", `{"value": 7, "id": "d1"}`)
		assert.Equal(t, first, again, "the duplicate gets the first answer")
		assert.Len(t, fw.writes("dup"), 1, "written once")
		request(t, nc, prefix+".plc1.dup", `{"value": 7, "id": "d2"}`)
		assert.Len(t, fw.writes("dup"), 2, "another id is another command")
	})
}

func TestCommandsReconnect(t *testing.T) {
	addr := serverAddr(t)
	p := testproxy.New(t, addr)
	prefix := uniq() + ".cmd"
	fw := &fakeWriter{}
	runCommands(t, CommandsConfig{Config: Config{URL: "nats://" + p.Addr(), Subject: prefix + ".{source}.{point}",
		ReconnectWait: 20 * time.Millisecond}}, fw.write)
	nc := requester(t, addr)
	ready(t, nc, prefix)
	p.Cut()
	p.Restore()
	ready(t, nc, prefix)
	a := request(t, nc, prefix+".plc1.after", `{"value": 1, "id": "x"}`)
	assert.Equal(t, true, a["ok"])
}

func TestCommandsRunAndClose(t *testing.T) {
	addr := serverAddr(t)
	c, err := NewCommands(CommandsConfig{Config: Config{URL: "nats://" + addr, Subject: uniq() + ".{source}.{point}"}})
	require.NoError(t, err)
	fw := &fakeWriter{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, fw.write) }()
	require.Eventually(t, func() bool {
		return c.life.Running()
	}, 5*time.Second, time.Millisecond)
	assert.ErrorIs(t, c.Run(ctx, fw.write), ErrRunning)
	require.NoError(t, c.Close(testCtx(t, 10*time.Second)))
	require.NoError(t, <-done)
	assert.ErrorIs(t, c.Run(ctx, fw.write), bridge.ErrClosed)
	assert.ErrorIs(t, c.Close(ctx), bridge.ErrClosed)
}

// TestCommandsServerDown: Run keeps trying a server that is not there, and
// its context still ends it at once.
func TestCommandsServerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	c, err := NewCommands(CommandsConfig{Config: Config{URL: "nats://" + addr, ReconnectWait: 20 * time.Millisecond}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, (&fakeWriter{}).write) }()
	select {
	case err := <-done:
		t.Fatalf("Run returned %v while the server is down", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestCommandsConfig(t *testing.T) {
	c, err := NewCommands(CommandsConfig{Config: Config{URL: "nats://127.0.0.1:4222"}})
	require.NoError(t, err)
	assert.Equal(t, "m2m.cmd.*.*", c.Filter())

	for _, tc := range []struct {
		name  string
		cfg   CommandsConfig
		paths []string
	}{
		{"placeholder not a token", CommandsConfig{Config: Config{URL: "nats://h", Subject: "m2m.{source}-{point}"}}, []string{"subject"}},
		{"no source", CommandsConfig{Config: Config{URL: "nats://h", Subject: "m2m.{point}"}}, []string{"subject"}},
		{"wildcard", CommandsConfig{Config: Config{URL: "nats://h", Subject: "m2m.*.{source}.{point}"}}, []string{"subject"}},
		{"sink keys", CommandsConfig{Config: Config{URL: "nats://h", JetStream: true, MaxAckPending: 3}}, []string{"jetstream", "max_ack_pending"}},
		{"connection keys", CommandsConfig{Config: Config{URL: "http://h"}, WriteTimeout: time.Hour}, []string{"write_timeout", "url"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			require.Error(t, err)
			var paths []string
			for _, fe := range bridge.FieldErrors(err) {
				paths = append(paths, fe.Path)
			}
			assert.ElementsMatch(t, tc.paths, paths, "%v", err)
			_, err = NewCommands(tc.cfg)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "nats: "), err.Error())
		})
	}
}

// BenchmarkCommands measures the command path end to end over loopback: a
// request in, the WriteFunc, the answer back, one at a time, and reports
// the latency per write.
func BenchmarkCommands(b *testing.B) {
	addr := serverAddr(b)
	prefix := uniq() + ".cmd"
	write := func(ctx context.Context, req bridge.WriteRequest) bridge.WriteResult {
		return bridge.WriteResult{ID: req.ID, OK: true, Value: req.Value, Matched: true, Time: time.Now()}
	}
	runCommands(b, CommandsConfig{Config: Config{URL: "nats://" + addr, Subject: prefix + ".{source}.{point}"}}, write)
	nc := requester(b, addr)
	ready(b, nc, prefix)
	subject := prefix + ".plc1.setpoint"
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if _, err := nc.Request(subject, fmt.Appendf(nil, `{"value":%d,"id":"%d"}`, i, i), 10*time.Second); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "µs/write")
}
