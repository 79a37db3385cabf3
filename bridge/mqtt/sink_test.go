package mqtt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	pmqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
	"github.com/m2mbridge/m2mbridge/internal/testproxy"
)

var versions = []Version{V311, V5}

// newSink makes a sink and closes it at the end of the test.
func newSink(tb testing.TB, cfg Config) *Sink {
	tb.Helper()
	s, err := New(cfg)
	require.NoError(tb, err)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// samples returns n samples of every kind, with a Bad one among them.
func samples(source string, n int) []bridge.Sample {
	out := bridgetest.Samples(source, n, time.Now().Truncate(time.Microsecond))
	if n > 3 {
		out[3] = bridge.BadSample(source, "broken", out[3].Time, errors.New("modbus: exception 2 (illegal data address)"))
		out[3].Code = 2
	}
	return out
}

// checkArrived decodes every message and compares it with what was sent,
// field by field, and the topic each came on.
func checkArrived(t *testing.T, s *Sink, want []bridge.Sample, got []message) {
	t.Helper()
	require.Len(t, got, len(want), "one message per sample, no duplicates")
	type key struct {
		topic string
		time  int64
	}
	byKey := make(map[key]bridge.Sample, len(got))
	for _, m := range got {
		smp, err := bridge.DecodeJSON(m.payload)
		require.NoError(t, err, "payload %s", m.payload)
		byKey[key{m.topic, smp.Time.UnixNano()}] = smp
	}
	for _, w := range want {
		g, ok := byKey[key{s.Topic(w.Source, w.Point), w.Time.UnixNano()}]
		if !assert.True(t, ok, "sample %s/%s at %v did not arrive on %s", w.Source, w.Point, w.Time, s.Topic(w.Source, w.Point)) {
			continue
		}
		assert.Equal(t, w.Source, g.Source)
		assert.Equal(t, w.Point, g.Point)
		assert.True(t, w.Value.Equal(g.Value), "value %v, got %v", w.Value, g.Value)
		assert.Equal(t, w.Unit, g.Unit)
		assert.Equal(t, w.Quality, g.Quality)
		assert.Equal(t, w.Reason, g.Reason)
		assert.Equal(t, w.Code, g.Code)
		assert.True(t, w.Time.Equal(g.Time))
	}
}

func TestDeliveryEveryQoS(t *testing.T) {
	addr := brokerAddr(t)
	for _, v := range versions {
		for qos := 0; qos <= 2; qos++ {
			t.Run(fmt.Sprintf("v%d/qos%d", v, qos), func(t *testing.T) {
				ctx := testCtx(t, 30*time.Second)
				prefix := uniq()
				sub := subscribe(t, addr, prefix+"/#", 2)
				s := newSink(t, Config{URL: "tcp://" + addr, Version: v, QoS: qos, Topic: prefix + "/{source}/{point}", MaxInFlight: 16})
				require.NoError(t, s.Connect(ctx))

				want := samples("meter/1+#", 300) // the source needs escaping
				for off := 0; off < len(want); off += 100 {
					require.NoError(t, s.Write(ctx, want[off:off+100]))
				}
				got := sub.wait(t, len(want))
				for _, m := range got {
					assert.True(t, strings.HasPrefix(m.topic, prefix+"/meter_1__/"), m.topic)
					assert.False(t, m.retained)
				}
				checkArrived(t, s, want, got)
				require.NoError(t, s.Close(ctx))
			})
		}
	}
}

func TestRetain(t *testing.T) {
	addr := brokerAddr(t)
	for _, v := range versions {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			ctx := testCtx(t, 30*time.Second)
			prefix := uniq()
			s := newSink(t, Config{URL: "tcp://" + addr, Version: v, QoS: 1, Retain: true, Topic: prefix + "/{source}/{point}"})
			want := samples("plc", 7) // one per point p0..p6 (p3 is "broken")
			require.NoError(t, s.Write(ctx, want))
			var topics []string
			for _, w := range want {
				topics = append(topics, s.Topic(w.Source, w.Point))
			}
			t.Cleanup(func() { clearRetained(t, addr, topics...) })

			// A subscriber that arrives afterwards gets the last value of
			// every point at once.
			sub := subscribe(t, addr, prefix+"/#", 1)
			got := sub.wait(t, len(want))
			for _, m := range got {
				assert.True(t, m.retained, "message on %s not retained", m.topic)
			}
			checkArrived(t, s, want, got)
		})
	}
}

func TestStatusBirthAndWill(t *testing.T) {
	addr := brokerAddr(t)
	for _, v := range versions {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			ctx := testCtx(t, 60*time.Second)
			prefix := uniq()
			status := prefix + "/status"
			t.Cleanup(func() { clearRetained(t, addr, status) })
			sub := subscribe(t, addr, status, 1)
			px := testproxy.New(t, addr)
			s := newSink(t, Config{
				URL: "tcp://" + px.Addr(), Version: v, QoS: 1, Topic: prefix + "/{source}/{point}",
				StatusTopic: status, KeepAlive: 2 * time.Second, MaxReconnectInterval: 200 * time.Millisecond,
			})
			// The status messages in order; QoS 1 may deliver one twice
			// (paho.mqtt.golang resends a birth published while it
			// resumes), which says nothing new, so repeats are merged.
			payloads := func() []string {
				var out []string
				for _, m := range sub.messages() {
					if p := string(m.payload); len(out) == 0 || out[len(out)-1] != p {
						out = append(out, p)
					}
				}
				return out
			}
			waitFor := func(want ...string) {
				t.Helper()
				var got []string
				require.Eventually(t, func() bool {
					got = payloads()
					return assert.ObjectsAreEqual(want, got)
				}, 20*time.Second, 10*time.Millisecond, "status messages: want %q, got %q", want, &got)
			}

			require.NoError(t, s.Connect(ctx))
			waitFor("online")

			// The connection dies without DISCONNECT: the broker sends the
			// will; the sink reconnects and is born again.
			px.Cut()
			waitFor("online", "offline")
			px.Restore()
			waitFor("online", "offline", "online")

			// The retained status is what a newcomer sees.
			late := subscribe(t, addr, status, 1)
			m := late.wait(t, 1)[0]
			assert.Equal(t, "online", string(m.payload))
			assert.True(t, m.retained)

			// A clean Close says offline itself.
			require.NoError(t, s.Close(ctx))
			waitFor("online", "offline", "online", "offline")
		})
	}
}

func TestConformance(t *testing.T) {
	addr := brokerAddr(t)
	for _, v := range versions {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			bridgetest.TestSink(t, bridgetest.Harness{
				New: func(t *testing.T) (bridge.Sink, bridgetest.Readback) {
					prefix := uniq()
					rb := sessionReadback(t, addr, prefix+"/#")
					s, err := New(Config{URL: "tcp://" + addr, Version: v, QoS: 1, Topic: prefix + "/{source}/{point}"})
					require.NoError(t, err)
					return s, rb
				},
			})
		})
	}
}

func TestBrokerAwayAndBack(t *testing.T) {
	addr := brokerAddr(t)
	for _, v := range versions {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			ctx := testCtx(t, 60*time.Second)
			prefix := uniq()
			sub := subscribe(t, addr, prefix+"/#", 2)
			px := testproxy.New(t, addr)
			s := newSink(t, Config{
				URL: "tcp://" + px.Addr(), Version: v, QoS: 1, Topic: prefix + "/{source}/{point}",
				KeepAlive: 2 * time.Second, MaxReconnectInterval: 200 * time.Millisecond, AckTimeout: 2 * time.Second,
			})
			require.NoError(t, s.Connect(ctx))
			var delivered []bridge.Sample
			first := samples("before", 20)
			require.NoError(t, s.Write(ctx, first))
			delivered = append(delivered, first...)

			px.Cut()
			// The sink notices and reports errors rather than losing
			// samples silently.
			var lastErr error
			require.Eventually(t, func() bool {
				lastErr = s.Write(ctx, samples("during", 5))
				// A Write made before the loss was noticed may wait for
				// acknowledgements and time out instead.
				return errors.Is(lastErr, ErrNotConnected)
			}, 20*time.Second, 20*time.Millisecond)
			var be *bridge.BatchError
			require.ErrorAs(t, lastErr, &be)
			assert.Len(t, be.Failed, 5)
			assert.True(t, bridge.IsRetriable(lastErr))

			px.Restore()
			// It reconnects by itself; a later Write succeeds.
			var after []bridge.Sample
			require.Eventually(t, func() bool {
				after = samples("after", 10)
				return s.Write(ctx, after) == nil
			}, 20*time.Second, 20*time.Millisecond)
			delivered = append(delivered, after...)

			// The subscriber may also get samples of a Write made before the
			// loss was noticed; every delivered one must be among them.
			var mismatch atomic.Value
			ok := assert.Eventually(t, func() bool {
				got, err := sub.readback(ctx, 0)
				if err != nil {
					mismatch.Store(err.Error())
					return false
				}
				m := bridgetest.Match(delivered, got)
				mismatch.Store(m)
				return m == ""
			}, 10*time.Second, 10*time.Millisecond)
			require.True(t, ok, "%v", mismatch.Load())
		})
	}
}

func TestConnectFails(t *testing.T) {
	// A port nothing listens on: take one and give it back.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	for _, v := range versions {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			ctx := testCtx(t, 20*time.Second)
			s := newSink(t, Config{URL: "tcp://" + addr, Version: v, ConnectTimeout: time.Second})
			err := s.Connect(ctx)
			require.Error(t, err)
			assert.Contains(t, err.Error(), addr)
			err = s.Write(ctx, samples("x", 2))
			require.Error(t, err)
			assert.True(t, bridge.IsRetriable(err))
		})
	}
}

func TestWriteAfterCloseWithoutConnect(t *testing.T) {
	s, err := New(Config{URL: "tcp://127.0.0.1:1"})
	require.NoError(t, err)
	require.NoError(t, s.Close(context.Background()))
	require.ErrorIs(t, s.Write(context.Background(), samples("x", 1)), bridge.ErrClosed)
	require.ErrorIs(t, s.Connect(context.Background()), bridge.ErrClosed)
	require.ErrorIs(t, s.Close(context.Background()), bridge.ErrClosed)
}

func TestAckTimeout(t *testing.T) {
	addr := brokerAddr(t)
	for _, v := range versions {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			ctx := testCtx(t, 60*time.Second)
			px := testproxy.New(t, addr)
			s := newSink(t, Config{
				URL: "tcp://" + px.Addr(), Version: v, QoS: 1, Topic: uniq() + "/{source}/{point}",
				AckTimeout: 300 * time.Millisecond, KeepAlive: time.Minute,
			})
			require.NoError(t, s.Connect(ctx))
			require.NoError(t, s.Write(ctx, samples("before", 5)))

			// The broker's acknowledgements are held back: every publish
			// times out.
			px.Hold()
			err := s.Write(ctx, samples("held", 10))
			var be *bridge.BatchError
			require.ErrorAs(t, err, &be)
			assert.Len(t, be.Failed, 10)
			assert.ErrorIs(t, err, ErrAckTimeout)
			assert.True(t, bridge.IsRetriable(err))

			px.Release()
			require.Eventually(t, func() bool {
				return s.Write(ctx, samples("after", 10)) == nil
			}, 20*time.Second, 20*time.Millisecond)
		})
	}
}

func TestWriteCancelledMidway(t *testing.T) {
	addr := brokerAddr(t)
	for _, v := range versions {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			ctx := testCtx(t, 60*time.Second)
			px := testproxy.New(t, addr)
			s := newSink(t, Config{URL: "tcp://" + px.Addr(), Version: v, QoS: 1, Topic: uniq() + "/{source}/{point}", KeepAlive: time.Minute})
			require.NoError(t, s.Connect(ctx))
			px.Hold()
			wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := s.Write(wctx, samples("cancelled", 50))
			assert.Less(t, time.Since(start), 5*time.Second)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			var be *bridge.BatchError
			require.ErrorAs(t, err, &be)
			assert.Len(t, be.Failed, 50)
			px.Release()
			require.Eventually(t, func() bool {
				return s.Write(ctx, samples("after", 10)) == nil
			}, 20*time.Second, 20*time.Millisecond)
		})
	}
}

func TestPersistentSession(t *testing.T) {
	addr := brokerAddr(t)
	for _, v := range versions {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			ctx := testCtx(t, 30*time.Second)
			id := "m2mtest-ps" + uniq()[8:]
			cfg := Config{URL: "tcp://" + addr, Version: v, QoS: 1, ClientID: id, PersistentSession: true, SessionExpiry: time.Minute}
			s := newSink(t, cfg)
			require.NoError(t, s.Connect(ctx))
			require.NoError(t, s.Write(ctx, samples("persistent", 5)))
			require.NoError(t, s.Close(ctx))

			// The broker kept the session: a client resuming it is told so
			// (CONNACK session present), and that connection, with a clean
			// session, also ends it.
			probe := func(clean bool) bool {
				o := pmqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetCleanSession(clean).SetAutoReconnect(false)
				c := pmqtt.NewClient(o)
				tok := c.Connect()
				require.True(t, tok.WaitTimeout(10*time.Second))
				require.NoError(t, tok.Error())
				defer c.Disconnect(100)
				return tok.(*pmqtt.ConnectToken).SessionPresent()
			}
			assert.True(t, probe(false), "session kept by the broker")
			probe(true)

			// A sink with a clean session leaves none behind.
			cfg.PersistentSession = false
			s = newSink(t, cfg)
			require.NoError(t, s.Connect(ctx))
			require.NoError(t, s.Close(ctx))
			assert.False(t, probe(false), "no session after a clean one")
			probe(true)
		})
	}
}
