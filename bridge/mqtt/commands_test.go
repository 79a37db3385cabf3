package mqtt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	pmqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/quickack"
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

// writes returns the requests for point.
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

// reply is an answer a requester received.
type reply struct {
	topic   string
	payload []byte
	corr    []byte
}

// requester publishes commands and collects the answers, with MQTT 3.1.1
// (paho.mqtt.golang) or MQTT 5 (paho.golang).
type requester struct {
	v3 pmqtt.Client
	v5 *paho.Client

	mu  sync.Mutex
	got []reply
	n   map[string]int // answers by topic
	sig chan struct{}  // signalled on every answer
}

func (r *requester) add(m reply) {
	r.mu.Lock()
	r.got = append(r.got, m)
	if r.n == nil {
		r.n = make(map[string]int)
	}
	r.n[m.topic]++
	r.mu.Unlock()
	select {
	case r.sig <- struct{}{}:
	default:
	}
}

// count returns how many answers arrived on topic.
func (r *requester) count(topic string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[topic]
}

// newRequester connects to addr and subscribes to filter, where the
// answers arrive.
func newRequester(tb testing.TB, v Version, addr, filter string) *requester {
	tb.Helper()
	r := &requester{sig: make(chan struct{}, 1)}
	id := "m2mtest-req-" + uniq()[8:]
	if v == V311 {
		o := pmqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetAutoReconnect(false)
		// Mosquitto does not set TCP_NODELAY: without quick ACKs a reply
		// can wait for the delayed ACK (40ms), as for the sink.
		o.SetCustomOpenConnectionFn(func(u *url.URL, _ pmqtt.ClientOptions) (net.Conn, error) {
			return dial(context.Background(), u, nil, 10*time.Second)
		})
		r.v3 = pmqtt.NewClient(o)
		tok := r.v3.Connect()
		require.True(tb, tok.WaitTimeout(10*time.Second))
		require.NoError(tb, tok.Error())
		tok = r.v3.Subscribe(filter, 1, func(_ pmqtt.Client, m pmqtt.Message) {
			r.add(reply{topic: m.Topic(), payload: append([]byte(nil), m.Payload()...)})
		})
		require.True(tb, tok.WaitTimeout(10*time.Second))
		require.NoError(tb, tok.Error())
		tb.Cleanup(func() { r.v3.Disconnect(100) })
		return r
	}
	conn, err := net.Dial("tcp", addr)
	require.NoError(tb, err)
	conn = quickack.Wrap(conn)
	r.v5 = paho.NewClient(paho.ClientConfig{Conn: conn, ClientID: id,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			m := reply{topic: pr.Packet.Topic, payload: append([]byte(nil), pr.Packet.Payload...)}
			if pr.Packet.Properties != nil {
				m.corr = append([]byte(nil), pr.Packet.Properties.CorrelationData...)
			}
			r.add(m)
			return true, nil
		}}})
	ctx := testCtx(tb, 10*time.Second)
	_, err = r.v5.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30})
	require.NoError(tb, err)
	_, err = r.v5.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
	require.NoError(tb, err)
	tb.Cleanup(func() {
		_ = r.v5.Disconnect(&paho.Disconnect{})
		<-r.v5.Done()
	})
	return r
}

// publish sends a command at QoS 1; with responseTopic (MQTT 5) it asks for
// the answer there with the correlation data corr.
func (r *requester) publish(tb testing.TB, topic, payload, responseTopic string, corr []byte) {
	tb.Helper()
	if r.v3 != nil {
		tok := r.v3.Publish(topic, 1, false, payload)
		require.True(tb, tok.WaitTimeout(10*time.Second))
		require.NoError(tb, tok.Error())
		return
	}
	p := &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(payload)}
	if responseTopic != "" {
		p.Properties = &paho.PublishProperties{ResponseTopic: responseTopic, CorrelationData: corr}
	}
	_, err := r.v5.Publish(testCtx(tb, 10*time.Second), p)
	require.NoError(tb, err)
}

// replies returns the answers that arrived on topic.
func (r *requester) replies(topic string) []reply {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []reply
	for _, m := range r.got {
		if m.topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// wait returns the answers on topic once there are n, or fails.
func (r *requester) wait(tb testing.TB, topic string, n int) []reply {
	tb.Helper()
	require.Eventually(tb, func() bool { return len(r.replies(topic)) >= n }, 20*time.Second, 2*time.Millisecond,
		"want %d answers on %s", n, topic)
	return r.replies(topic)
}

// ready sends probes (each a new command to point "probe") until one is
// answered: the source has subscribed.
func (r *requester) ready(tb testing.TB, prefix string) {
	tb.Helper()
	topic := prefix + "/probe/probe"
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		r.publish(tb, topic, fmt.Sprintf(`{"value":%d,"id":"probe-%d"}`, i, i), "", nil)
		tick := time.Now().Add(100 * time.Millisecond)
		for time.Now().Before(tick) {
			if len(r.replies(topic+"/reply")) > 0 {
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		require.True(tb, time.Now().Before(deadline), "the command source never answered")
	}
}

func answer(tb testing.TB, payload []byte) map[string]any {
	tb.Helper()
	var m map[string]any
	require.NoError(tb, json.Unmarshal(payload, &m), "answer %s", payload)
	return m
}

func TestCommands(t *testing.T) {
	addr := brokerAddr(t)
	for _, v := range versions {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			prefix := uniq() + "/cmd"
			fw := &fakeWriter{}
			runCommands(t, CommandsConfig{Config: Config{URL: "tcp://" + addr, Version: v, Topic: prefix + "/{source}/{point}"}}, fw.write)
			r := newRequester(t, v, addr, prefix+"/#")
			r.ready(t, prefix)

			t.Run("ok", func(t *testing.T) {
				topic := prefix + "/plc1/setpoint"
				r.publish(t, topic, `{"value": 42.5, "id": "abc"}`, "", nil)
				got := r.wait(t, topic+"/reply", 1)
				assert.JSONEq(t, `{"id":"abc","ok":true,"value":42.5,"matched":true,"time":"2026-11-21T10:00:00.000000000Z"}`, string(got[0].payload))
				w := fw.writes("setpoint")
				require.Len(t, w, 1)
				assert.Equal(t, "plc1", w[0].Source)
				assert.Equal(t, "abc", w[0].ID)
				assert.Equal(t, "mqtt "+topic, w[0].Origin)
				assert.True(t, w[0].Value.Equal(bridge.Float(42.5)))
			})
			t.Run("refused", func(t *testing.T) {
				topic := prefix + "/plc1/locked"
				r.publish(t, topic, `{"value": 1, "id": "r1"}`, "", nil)
				got := r.wait(t, topic+"/reply", 1)
				assert.JSONEq(t, `{"id":"r1","ok":false,"error":"locked: not writable"}`, string(got[0].payload))
			})
			t.Run("bad payload", func(t *testing.T) {
				topic := prefix + "/plc1/bad"
				r.publish(t, topic, `{"value": [1], "id": "b1"}`, "", nil)
				got := r.wait(t, topic+"/reply", 1)
				a := answer(t, got[0].payload)
				assert.Equal(t, false, a["ok"])
				assert.Equal(t, "b1", a["id"])
				assert.Contains(t, a["error"], "array")
				r.publish(t, topic, "\xff not json", "", nil)
				got = r.wait(t, topic+"/reply", 2)
				assert.Equal(t, false, answer(t, got[1].payload)["ok"])
				assert.Empty(t, fw.writes("bad"), "nothing written")
			})
			t.Run("duplicate", func(t *testing.T) {
				topic := prefix + "/plc1/dup"
				r.publish(t, topic, `{"value": 7, "id": "d1"}`, "", nil)
				r.publish(t, topic, `{"value": 7, "id": "d1"}`, "", nil)
				got := r.wait(t, topic+"/reply", 2)
				assert.Equal(t, string(got[0].payload), string(got[1].payload), "the duplicate gets the first answer")
				assert.Len(t, fw.writes("dup"), 1, "written once")
				r.publish(t, topic, `{"value": 7, "id": "d2"}`, "", nil)
				r.wait(t, topic+"/reply", 3)
				assert.Len(t, fw.writes("dup"), 2, "another id is another command")
			})
			if v == V5 {
				t.Run("response topic", func(t *testing.T) {
					topic := prefix + "/plc1/rt"
					rt := prefix + "/answers/here"
					r.publish(t, topic, `{"value": true, "id": "c1"}`, rt, []byte{0, 1, 2, 0xff})
					got := r.wait(t, rt, 1)
					assert.JSONEq(t, `{"id":"c1","ok":true,"value":true,"matched":true,"time":"2026-11-21T10:00:00.000000000Z"}`, string(got[0].payload))
					assert.Equal(t, []byte{0, 1, 2, 0xff}, got[0].corr)
					assert.Empty(t, r.replies(topic+"/reply"), "not also on /reply")
				})
			}
		})
	}
}

func TestCommandsReconnect(t *testing.T) {
	addr := brokerAddr(t)
	for _, v := range versions {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			p := testproxy.New(t, addr)
			prefix := uniq() + "/cmd"
			fw := &fakeWriter{}
			runCommands(t, CommandsConfig{Config: Config{URL: "tcp://" + p.Addr(), Version: v, Topic: prefix + "/{source}/{point}",
				MaxReconnectInterval: 200 * time.Millisecond}}, fw.write)
			r := newRequester(t, v, addr, prefix+"/#")
			r.ready(t, prefix)
			p.Cut()
			p.Restore()
			// Probes until the source has reconnected and subscribed again.
			r.mu.Lock()
			r.got, r.n = nil, nil
			r.mu.Unlock()
			r.ready(t, prefix)
			topic := prefix + "/plc1/after"
			r.publish(t, topic, `{"value": 1, "id": "x"}`, "", nil)
			got := r.wait(t, topic+"/reply", 1)
			assert.Equal(t, true, answer(t, got[0].payload)["ok"])
		})
	}
}

func TestCommandsRunAndClose(t *testing.T) {
	addr := brokerAddr(t)
	for _, v := range versions {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			c, err := NewCommands(CommandsConfig{Config: Config{URL: "tcp://" + addr, Version: v, Topic: uniq() + "/{source}/{point}"}})
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
		})
	}
}

// TestCommandsBrokerDown: Run keeps trying a broker that is not there, and
// its context still ends it at once.
func TestCommandsBrokerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	for _, v := range versions {
		c, err := NewCommands(CommandsConfig{Config: Config{URL: "tcp://" + addr, Version: v}})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx, (&fakeWriter{}).write) }()
		select {
		case err := <-done:
			t.Fatalf("Run returned %v while the broker is down", err)
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
}

func TestCommandsConfig(t *testing.T) {
	c, err := NewCommands(CommandsConfig{Config: Config{URL: "tcp://127.0.0.1:1883"}})
	require.NoError(t, err)
	assert.Equal(t, "m2m/cmd/+/+", c.Filter())

	for _, tc := range []struct {
		name  string
		cfg   CommandsConfig
		paths []string
	}{
		{"placeholder not a level", CommandsConfig{Config: Config{URL: "tcp://h", Topic: "m2m/{source}-{point}"}}, []string{"topic"}},
		{"no point", CommandsConfig{Config: Config{URL: "tcp://h", Topic: "m2m/{source}"}}, []string{"topic"}},
		{"wildcard", CommandsConfig{Config: Config{URL: "tcp://h", Topic: "m2m/+/{source}/{point}"}}, []string{"topic"}},
		{"sink keys", CommandsConfig{Config: Config{URL: "tcp://h", QoS: 1, Retain: true, MaxInFlight: 3}}, []string{"qos", "retain", "max_in_flight"}},
		{"connection keys", CommandsConfig{Config: Config{Version: 4}, WriteTimeout: time.Hour}, []string{"write_timeout", "url", "version"}},
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
			assert.True(t, strings.HasPrefix(err.Error(), "mqtt: "), err.Error())
		})
	}
}

// BenchmarkCommands measures the command path end to end over loopback:
// an MQTT 5 request with a response topic in, the WriteFunc, the answer
// back, one command at a time, and reports the latency per write.
func BenchmarkCommands(b *testing.B) {
	addr := brokerAddr(b)
	for _, v := range versions {
		b.Run(fmt.Sprintf("v%d", v), func(b *testing.B) {
			prefix := uniq() + "/cmd"
			var n atomic.Int64
			write := func(ctx context.Context, req bridge.WriteRequest) bridge.WriteResult {
				n.Add(1)
				return bridge.WriteResult{ID: req.ID, OK: true, Value: req.Value, Matched: true, Time: time.Now()}
			}
			runCommands(b, CommandsConfig{Config: Config{URL: "tcp://" + addr, Version: v, Topic: prefix + "/{source}/{point}"}}, write)
			r := newRequester(b, v, addr, prefix+"/#")
			r.ready(b, prefix)
			topic := prefix + "/plc1/setpoint"
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				r.publish(b, topic, fmt.Sprintf(`{"value":%d,"id":"%d"}`, i, i), "", nil)
				for r.count(topic+"/reply") <= i {
					<-r.sig
				}
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "µs/write")
		})
	}
}
