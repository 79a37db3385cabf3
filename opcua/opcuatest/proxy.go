package opcuatest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// proxy is the TCP front of a Server: clients connect to it, it connects to
// the current inner OPC UA server and copies bytes both ways. Owning the
// client connections is what lets the Server drop them or make them silent.
type proxy struct {
	ln        net.Listener
	blackhole atomic.Bool
	delay     atomic.Int64 // time.Duration
	// hide makes GetEndpoints answer an empty list: the endpoint URL in
	// the clients' requests (encodedURL) is replaced by one the server
	// does not have.
	hide       atomic.Bool
	encodedURL []byte

	mu     sync.Mutex
	target string // inner server address; "" refuses new connections
	pairs  map[*pair]struct{}
	closed bool

	accepted atomic.Uint64
	wg       sync.WaitGroup
}

type pair struct {
	client, server net.Conn
	once           sync.Once
}

func (p *pair) close() {
	p.once.Do(func() {
		p.client.Close()
		p.server.Close()
	})
}

func newProxy(addr string) (*proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, pairs: make(map[*pair]struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *proxy) setTarget(addr string) {
	p.mu.Lock()
	p.target = addr
	p.mu.Unlock()
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.accepted.Add(1)
		p.mu.Lock()
		target, closed := p.target, p.closed
		p.mu.Unlock()
		if target == "" || closed {
			c.Close() // the server is down: refuse, like a closed port would
			continue
		}
		s, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		pr := &pair{client: c, server: s}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			pr.close()
			continue
		}
		p.pairs[pr] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(pr, pr.server, pr.client, true)
		go p.pipe(pr, pr.client, pr.server, false)
	}
}

// pipe copies src to dst until either fails, discarding what it reads while
// the proxy is a black hole. From the client (fromClient) it copies whole
// chunks of the OPC UA Connection Protocol (Part 6, 7.1.2), so that it can
// rewrite the endpoint URL while hiding the endpoints.
func (p *proxy) pipe(pr *pair, dst io.Writer, src io.Reader, fromClient bool) {
	defer p.wg.Done()
	defer func() {
		pr.close()
		p.mu.Lock()
		delete(p.pairs, pr)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	if fromClient {
		buf = make([]byte, 1<<20)
	}
	for {
		var n int
		var err error
		if fromClient {
			n, err = readChunk(src, buf)
		} else {
			n, err = src.Read(buf)
		}
		if n > 0 && fromClient && p.hide.Load() && bytes.HasPrefix(buf, []byte("MSG")) {
			p.hideURL(buf[:n])
		}
		if d := time.Duration(p.delay.Load()); n > 0 && d > 0 {
			time.Sleep(d)
		}
		if n > 0 && !p.blackhole.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// readChunk reads one chunk into buf and returns its size.
func readChunk(r io.Reader, buf []byte) (int, error) {
	if _, err := io.ReadFull(r, buf[:8]); err != nil {
		return 0, err
	}
	size := int(binary.LittleEndian.Uint32(buf[4:8]))
	if size < 8 || size > len(buf)-64 {
		return 8, errors.New("opcuatest: chunk too large for the proxy")
	}
	n, err := io.ReadFull(r, buf[8:size])
	return 8 + n, err
}

// hideURL replaces, in place, the server's endpoint URL in a chunk by one
// of the same length that it does not serve.
func (p *proxy) hideURL(ch []byte) {
	i := bytes.Index(ch, p.encodedURL)
	if i < 0 {
		return
	}
	at := i + 4 + len("opc.tcp://")
	for k := at; k < i+len(p.encodedURL) && ch[k] != ':' && ch[k] != '/'; k++ {
		ch[k] = 'x' // "opc.tcp://xxxxxxxxx:port": no such endpoint
	}
}

// drop closes every proxied connection and returns how many there were.
func (p *proxy) drop() int {
	p.mu.Lock()
	prs := make([]*pair, 0, len(p.pairs))
	for pr := range p.pairs {
		prs = append(prs, pr)
	}
	p.mu.Unlock()
	for _, pr := range prs {
		pr.close()
	}
	return len(prs)
}

func (p *proxy) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pairs)
}

// close stops accepting, drops every connection and waits for the proxy's
// goroutines, which end promptly once their sockets are closed.
func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.target = ""
	p.mu.Unlock()
	p.ln.Close()
	p.drop()
	p.wg.Wait()
}
