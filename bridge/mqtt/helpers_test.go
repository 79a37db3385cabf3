package mqtt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	pmqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
	"github.com/m2mbridge/m2mbridge/internal/testproxy"
)

// brokerAddr returns the address of the Mosquitto the tests use
// (M2MB_MQTT_ADDR, default 127.0.0.1:1883), skipping the test when nothing
// listens there, unless M2MB_INTEROP=1.
func brokerAddr(tb testing.TB) string {
	tb.Helper()
	return testproxy.PeerAddr(tb, "M2MB_MQTT_ADDR", "127.0.0.1:1883", "MQTT broker")
}

// uniq returns a prefix no other test run uses.
func uniq() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "m2mtest/" + hex.EncodeToString(b[:])
}

func testCtx(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// message is one message a subscriber received.
type message struct {
	topic    string
	payload  []byte
	retained bool
	qos      byte
}

// subscriber is an independent MQTT 3.1.1 client that records what arrives
// on a topic filter.
type subscriber struct {
	cli pmqtt.Client
	mu  sync.Mutex
	got []message
	// decode turns a payload into samples; nil: one JSON sample.
	decode func([]byte) ([]bridge.Sample, error)
}

func subscribe(tb testing.TB, addr, filter string, qos byte) *subscriber {
	tb.Helper()
	s := &subscriber{}
	o := pmqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("m2mtest-sub-" + uniq()[8:])
	o.SetCleanSession(true)
	o.SetAutoReconnect(false)
	s.cli = pmqtt.NewClient(o)
	tok := s.cli.Connect()
	require.True(tb, tok.WaitTimeout(10*time.Second), "subscriber connect timed out")
	require.NoError(tb, tok.Error())
	tok = s.cli.Subscribe(filter, qos, func(_ pmqtt.Client, m pmqtt.Message) {
		s.mu.Lock()
		s.got = append(s.got, message{topic: m.Topic(), payload: append([]byte(nil), m.Payload()...), retained: m.Retained(), qos: m.Qos()})
		s.mu.Unlock()
	})
	require.True(tb, tok.WaitTimeout(10*time.Second), "subscribe timed out")
	require.NoError(tb, tok.Error())
	tb.Cleanup(func() { s.cli.Disconnect(100) })
	return s
}

func (s *subscriber) messages() []message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]message(nil), s.got...)
}

// wait returns the messages once at least n have arrived, or fails.
func (s *subscriber) wait(tb testing.TB, n int) []message {
	tb.Helper()
	require.Eventually(tb, func() bool { return len(s.messages()) >= n }, 20*time.Second, 5*time.Millisecond,
		"want %d messages", n)
	return s.messages()
}

// readback decodes what arrived as samples, for bridgetest.
func (s *subscriber) readback(ctx context.Context, want int) ([]bridge.Sample, error) {
	for {
		msgs := s.messages()
		if n := s.count(msgs); n >= want || ctx.Err() != nil {
			out := make([]bridge.Sample, 0, len(msgs))
			for _, m := range msgs {
				if s.decode != nil {
					ss, err := s.decode(m.payload)
					if err != nil {
						return out, err
					}
					out = append(out, ss...)
					continue
				}
				smp, err := bridge.DecodeJSON(m.payload)
				if err != nil {
					return out, err
				}
				out = append(out, smp)
			}
			return out, ctx.Err()
		}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// count returns how many samples msgs hold.
func (s *subscriber) count(msgs []message) int {
	if s.decode == nil {
		return len(msgs)
	}
	n := 0
	for _, m := range msgs {
		ss, _ := s.decode(m.payload)
		n += len(ss)
	}
	return n
}

// clearRetained removes the retained message of a topic from the broker.
func clearRetained(tb testing.TB, addr string, topics ...string) {
	tb.Helper()
	o := pmqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("m2mtest-clr-" + uniq()[8:])
	c := pmqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		tb.Logf("clear retained: connect: %v", tok.Error())
		return
	}
	for _, t := range topics {
		c.Publish(t, 1, true, []byte{}).WaitTimeout(5 * time.Second)
	}
	c.Disconnect(100)
}

// sessionReadback subscribes to filter in a persistent session and
// disconnects at once, so that the broker queues the (QoS 1/2) messages for
// it: the test holds no goroutine while the sink runs, which the goroutine
// leak check of bridgetest needs. The Readback resumes the session and
// collects what was queued.
func sessionReadback(tb testing.TB, addr, filter string) bridgetest.Readback {
	return sessionReadbackWith(tb, addr, filter, nil)
}

// sessionReadbackWith is sessionReadback with the payloads decoded by
// decode (nil: one JSON sample each).
func sessionReadbackWith(tb testing.TB, addr, filter string, decode func([]byte) ([]bridge.Sample, error)) bridgetest.Readback {
	tb.Helper()
	id := "m2mtest-ps-" + uniq()[8:]
	s := &subscriber{decode: decode}
	opts := func(clean bool) *pmqtt.ClientOptions {
		return pmqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
			SetCleanSession(clean).SetAutoReconnect(false).
			SetDefaultPublishHandler(func(_ pmqtt.Client, m pmqtt.Message) {
				s.mu.Lock()
				s.got = append(s.got, message{topic: m.Topic(), payload: append([]byte(nil), m.Payload()...), retained: m.Retained(), qos: m.Qos()})
				s.mu.Unlock()
			})
	}
	c := pmqtt.NewClient(opts(false))
	tok := c.Connect()
	require.True(tb, tok.WaitTimeout(10*time.Second), "subscriber connect timed out")
	require.NoError(tb, tok.Error())
	tok = c.Subscribe(filter, 2, nil)
	require.True(tb, tok.WaitTimeout(10*time.Second), "subscribe timed out")
	require.NoError(tb, tok.Error())
	c.Disconnect(100)

	var once sync.Once
	var resumed pmqtt.Client
	tb.Cleanup(func() {
		if resumed != nil {
			resumed.Disconnect(100)
		}
		// End the session at the broker.
		c := pmqtt.NewClient(opts(true))
		if tok := c.Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
			c.Disconnect(100)
		}
	})
	return func(ctx context.Context, want int) ([]bridge.Sample, error) {
		var err error
		once.Do(func() {
			resumed = pmqtt.NewClient(opts(false))
			tok := resumed.Connect()
			if !tok.WaitTimeout(10 * time.Second) {
				err = errors.New("resume session: connect timed out")
			} else {
				err = tok.Error()
			}
		})
		if err != nil {
			return nil, err
		}
		return s.readback(ctx, want)
	}
}
