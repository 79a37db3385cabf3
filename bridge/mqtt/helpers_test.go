package mqtt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	pmqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
)

// brokerAddr returns the address of the Mosquitto the tests use
// (M2MB_MQTT_ADDR, default 127.0.0.1:1883), skipping the test when nothing
// listens there, unless M2MB_INTEROP=1.
func brokerAddr(tb testing.TB) string {
	tb.Helper()
	addr := os.Getenv("M2MB_MQTT_ADDR")
	if addr == "" {
		addr = "127.0.0.1:1883"
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		if os.Getenv("M2MB_INTEROP") == "1" {
			tb.Fatalf("no MQTT broker at %s (M2MB_INTEROP=1): %v", addr, err)
		}
		tb.Skipf("no MQTT broker at %s: %v", addr, err)
	}
	c.Close()
	return addr
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
		if len(msgs) >= want || ctx.Err() != nil {
			out := make([]bridge.Sample, 0, len(msgs))
			for _, m := range msgs {
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

// proxy is a TCP proxy the test owns between a client and the broker, so
// that it can cut connections abruptly and refuse new ones.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cond  *sync.Cond
	down  bool
	held  bool // hold back what the broker sends
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newProxy(tb testing.TB, target string) *proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	p := &proxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		u, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[u] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, u)
		go p.pipe(u, c)
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	toClient := src.RemoteAddr().String() == p.target
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if toClient {
				p.mu.Lock()
				for p.held && !p.down {
					p.cond.Wait()
				}
				p.mu.Unlock()
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// cut closes every connection through the proxy without any MQTT goodbye and
// refuses new ones until restore.
func (p *proxy) cut() {
	p.mu.Lock()
	p.down = true
	p.cond.Broadcast()
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // reset, not a polite FIN
		}
		c.Close()
	}
	p.mu.Unlock()
}

func (p *proxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// hold stops passing on what the broker sends, as a stalled broker or
// network would, until release; the connections stay open.
func (p *proxy) hold() {
	p.mu.Lock()
	p.held = true
	p.mu.Unlock()
}

func (p *proxy) release() {
	p.mu.Lock()
	p.held = false
	p.cond.Broadcast()
	p.mu.Unlock()
}

func (p *proxy) close() {
	p.ln.Close()
	p.cut()
	p.wg.Wait()
}

// sessionReadback subscribes to filter in a persistent session and
// disconnects at once, so that the broker queues the (QoS 1/2) messages for
// it: the test holds no goroutine while the sink runs, which the goroutine
// leak check of bridgetest needs. The Readback resumes the session and
// collects what was queued.
func sessionReadback(tb testing.TB, addr, filter string) bridgetest.Readback {
	tb.Helper()
	id := "m2mtest-ps-" + uniq()[8:]
	s := &subscriber{}
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
