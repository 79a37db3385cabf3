package nats

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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
)

// serverAddr returns the address of the nats-server the tests use
// (M2MB_NATS_ADDR, default 127.0.0.1:4222), skipping the test when nothing
// listens there, unless M2MB_INTEROP=1.
func serverAddr(tb testing.TB) string {
	tb.Helper()
	addr := os.Getenv("M2MB_NATS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:4222"
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		if os.Getenv("M2MB_INTEROP") == "1" {
			tb.Fatalf("no nats-server at %s (M2MB_INTEROP=1): %v", addr, err)
		}
		tb.Skipf("no nats-server at %s: %v", addr, err)
	}
	c.Close()
	return addr
}

// uniq returns a name no other test run uses, usable as a subject token and
// a stream name.
func uniq() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "m2mtest" + hex.EncodeToString(b[:])
}

func testCtx(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// withJS runs f with a short-lived JetStream connection of the test's own.
func withJS(tb testing.TB, addr string, f func(context.Context, jetstream.JetStream) error) error {
	tb.Helper()
	nc, err := nats.Connect("nats://"+addr, nats.Name("m2mtest"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return f(ctx, js)
}

// makeStream creates a stream on subjects and deletes it when the test ends.
func makeStream(tb testing.TB, addr, name string, subjects ...string) {
	tb.Helper()
	require.NoError(tb, withJS(tb, addr, func(ctx context.Context, js jetstream.JetStream) error {
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: subjects, Storage: jetstream.MemoryStorage})
		return err
	}))
	deleteStreamAtEnd(tb, addr, name)
}

func deleteStreamAtEnd(tb testing.TB, addr, name string) {
	tb.Cleanup(func() {
		err := withJS(tb, addr, func(ctx context.Context, js jetstream.JetStream) error {
			return js.DeleteStream(ctx, name)
		})
		if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			tb.Errorf("delete stream %s: %v", name, err)
		}
	})
}

// stored is one message read back from a stream.
type stored struct {
	subject string
	sample  bridge.Sample
}

// consume reads the stream from the start until it has at least want
// messages or ctx ends. It holds no goroutine between calls.
func consume(ctx context.Context, addr, stream string, want int) ([]stored, error) {
	nc, err := nats.Connect("nats://"+addr, nats.Name("m2mtest-reader"))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	var out []stored
	for len(out) < want {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		batch, err := cons.Fetch(min(want-len(out), 500), jetstream.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			return out, err
		}
		for m := range batch.Messages() {
			smp, err := bridge.DecodeJSON(m.Data())
			if err != nil {
				return out, err
			}
			out = append(out, stored{subject: m.Subject(), sample: smp})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return out, err
		}
	}
	return out, nil
}

// readback is a bridgetest.Readback over a stream.
func readback(addr, stream string) bridgetest.Readback {
	return func(ctx context.Context, want int) ([]bridge.Sample, error) {
		got, err := consume(ctx, addr, stream, want)
		out := make([]bridge.Sample, len(got))
		for i, g := range got {
			out[i] = g.sample
		}
		return out, err
	}
}

// proxy is a TCP proxy the test owns between the sink and the server, so
// that it can cut connections abruptly and refuse new ones: the shared
// server itself cannot be restarted.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cond  *sync.Cond
	down  bool
	held  bool // hold back what the server sends
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

// cut resets every connection through the proxy and refuses new ones until
// restore.
func (p *proxy) cut() {
	p.mu.Lock()
	p.down = true
	p.cond.Broadcast()
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
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

// hold stops passing on what the server sends, as a stalled server or
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
