package mqtt

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"github.com/m2mbridge/m2mbridge/internal/quickack"
	"net"
	"net/url"
	"sync"
	"time"
)

// The MQTT clients read a packet a few bytes at a time and write each packet
// with its own system call. At tens of thousands of messages a second the
// system calls, and the wake-ups of the broker they cause, are the cost, so
// the sink gives the clients a connection that reads through a buffer and
// coalesces writes: a Write copies the packet into a buffer that one
// goroutine writes out, so the packets published while the previous write
// was in progress go out together in the next one.

const (
	readBufSize  = 32 << 10
	maxWriteBuf  = 256 << 10 // a Write waits while this much is unwritten
	closeTimeout = time.Second
)

// fastConn is a net.Conn with a read buffer and write coalescing.
type fastConn struct {
	net.Conn
	r *bufio.Reader

	pkt sync.Mutex // held by paho.golang across the writes of one packet

	mu      sync.Mutex
	cond    *sync.Cond
	buf     []byte // waiting to be written
	spare   []byte
	busy    bool  // the writer goroutine is writing
	err     error // the first write error; every later Write returns it
	closing bool
	done    chan struct{} // closed when the writer goroutine ends
}

func newFastConn(c net.Conn) *fastConn {
	fc := &fastConn{Conn: c, r: bufio.NewReaderSize(c, readBufSize), done: make(chan struct{})}
	fc.cond = sync.NewCond(&fc.mu)
	go fc.writer()
	return fc
}

// dial connects to a tcp:// or TLS broker URL and wraps the connection.
func dial(ctx context.Context, u *url.URL, tc *tls.Config, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	c = quickack.Wrap(c)
	switch u.Scheme {
	case "ssl", "tls", "mqtts":
		tlsc := tls.Client(c, tc)
		if err := tlsc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		c = tlsc
	}
	return newFastConn(c), nil
}

// Lock and Unlock make fastConn a sync.Locker, which paho.golang holds
// while it writes the parts of one packet, so that packets written from
// several goroutines do not interleave.
func (c *fastConn) Lock()   { c.pkt.Lock() }
func (c *fastConn) Unlock() { c.pkt.Unlock() }

func (c *fastConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Write queues p to be written, waiting while too much is queued. An error
// of an earlier write is returned here.
func (c *fastConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.buf) >= maxWriteBuf && c.err == nil && !c.closing {
		c.cond.Wait()
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.closing {
		return 0, net.ErrClosed
	}
	c.buf = append(c.buf, p...)
	c.cond.Broadcast()
	return len(p), nil
}

func (c *fastConn) writer() {
	defer close(c.done)
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for len(c.buf) == 0 && !c.closing {
			c.cond.Wait()
		}
		if len(c.buf) == 0 {
			return // closing, and everything written
		}
		out := c.buf
		c.buf, c.spare = c.spare[:0], nil
		c.busy = true
		c.mu.Unlock()
		_, err := c.Conn.Write(out)
		c.mu.Lock()
		c.busy = false
		c.spare = out[:0]
		if err != nil {
			c.err = err
			c.buf = nil
			_ = c.Conn.Close() // so that the reader sees the failure too
			c.cond.Broadcast()
			return
		}
		c.cond.Broadcast()
	}
}

// Close writes out what is queued (within a second: the client's last
// packet is often a DISCONNECT, which keeps the broker from sending the
// will), closes the connection and waits for the writer goroutine.
func (c *fastConn) Close() error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		<-c.done
		return net.ErrClosed
	}
	c.closing = true
	c.cond.Broadcast()
	c.mu.Unlock()
	_ = c.Conn.SetWriteDeadline(time.Now().Add(closeTimeout))
	<-c.done
	err := c.Conn.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// isWebSocket reports whether u is a ws:// or wss:// URL, which the clients
// dial themselves.
func isWebSocket(u *url.URL) bool { return u.Scheme == "ws" || u.Scheme == "wss" }
