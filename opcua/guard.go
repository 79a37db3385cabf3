package opcua

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopcua/opcua/ua"
)

// The guard is a relay on 127.0.0.1 between the upstream client and the
// server. The upstream client only dials a *net.TCPConn (uacp.NewConn), so
// checking what the server sends before the client decodes it takes a hop
// of our own. The guard reads the OPC UA Connection Protocol framing (Part
// 6, 7.1.2) and, on a channel whose bodies are readable (security policy
// None, or mode Sign), checks every service message with checkService
// before passing its final chunk on. It also enforces the chunk and message
// size limits the client announced in its Hello, which the upstream client
// does not (it checks the limits the server announces for itself). A
// message that fails is not delivered: both connections are closed and
// the reason is reported to the Source.

// guardRead is the guard's read buffer on each side: a chunk (or several)
// that has arrived is read with one system call, not two.
const guardRead = 64 << 10

// Limits the client announces in its Hello and the guard enforces.
const (
	guardChunk   = 0xffff   // ReceiveBufferSize: largest chunk accepted
	guardMessage = 16 << 20 // MaxMessageSize: largest message accepted (16 MiB)
)

// ErrMalformed is wrapped by the reason of the Bad samples (and of Health)
// when a server sent a message the guard refused: a length that exceeds
// the bytes sent, a negative count, nesting deeper than allowed, or a
// chunk or message larger than the client accepts. See the package
// documentation, "Hostile input".
var ErrMalformed = errors.New("opcua: malformed message from server")

type guard struct {
	ln       net.Listener
	target   string // host:port of the server
	realURL  string // the configured endpoint URL
	localURL string // the same URL with the guard's address
	timeout  time.Duration
	sign     bool // channels with a policy other than None use mode Sign
	report   func(error)

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newGuard(endpoint string, timeout time.Duration, sign bool, report func(error)) (*guard, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("endpoint: %w", err)
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "4840")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("guard: %w", err)
	}
	local := *u
	local.Host = ln.Addr().String()
	local.User = nil
	g := &guard{
		ln: ln, target: target, realURL: endpoint, localURL: local.String(),
		timeout: timeout, sign: sign, report: report, conns: map[net.Conn]struct{}{},
	}
	g.wg.Add(1)
	go g.accept()
	return g, nil
}

// close stops the guard and waits for its goroutines.
func (g *guard) close() {
	g.mu.Lock()
	g.closed = true
	for c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
	g.ln.Close()
	g.wg.Wait()
}

func (g *guard) track(c net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		c.Close()
		return false
	}
	g.conns[c] = struct{}{}
	return true
}

func (g *guard) untrack(c net.Conn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
	c.Close()
}

func (g *guard) accept() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		if !g.track(c) {
			continue
		}
		g.wg.Add(1)
		go g.relay(c)
	}
}

// relay joins one client connection to a new server connection.
func (g *guard) relay(client net.Conn) {
	defer g.wg.Done()
	defer g.untrack(client)
	server, err := net.DialTimeout("tcp", g.target, g.timeout)
	if err != nil {
		g.report(err)
		return
	}
	if !g.track(server) {
		return
	}
	defer g.untrack(server)
	var policy atomic.Value // the channel's policy URI, from the client's OPN
	policy.Store("")
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := g.upstream(client, server, &policy)
		if err != nil {
			g.report(err)
		}
		server.Close()
		client.Close()
	}()
	if err := g.downstream(server, client, &policy); err != nil {
		g.report(err)
	}
	server.Close()
	client.Close()
	<-done
}

// readChunk reads one chunk: its 8-byte header and the rest, at most max
// bytes in all.
func readChunk(r io.Reader, buf []byte, max int) ([]byte, error) {
	if _, err := io.ReadFull(r, buf[:8]); err != nil {
		return nil, err
	}
	size := int(binary.LittleEndian.Uint32(buf[4:8]))
	if size < 8 || size > max {
		return nil, fmt.Errorf("%w: %s chunk of %d bytes (the client accepts %d)", ErrMalformed, buf[:3], size, max)
	}
	if _, err := io.ReadFull(r, buf[8:size]); err != nil {
		return nil, err
	}
	return buf[:size], nil
}

// upstream passes the client's messages on: the Hello with the real
// endpoint URL (the client was given the guard's), the rest as they are;
// it notes the security policy of the client's OpenSecureChannel.
func (g *guard) upstream(client, server net.Conn, policy *atomic.Value) error {
	buf := make([]byte, 1<<20)
	in := bufio.NewReaderSize(client, guardRead)
	for {
		ch, err := readChunk(in, buf, len(buf))
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return nil // the client's problem, reported by the client
		}
		switch string(ch[:3]) {
		case "HEL":
			ch = rewriteHello(ch, g.realURL)
		case "MSG":
			// GetEndpoints and CreateSession carry the endpoint URL, and
			// servers answer GetEndpoints only with the endpoints of the
			// URL asked for. A plaintext body (policy None) gets the real
			// URL back; a signed or encrypted one cannot be changed, and
			// servers do not depend on it there.
			if policy.Load().(string) == ua.SecurityPolicyURINone {
				ch = replaceURL(ch, g.localURL, g.realURL)
			}
		case "OPN":
			c := &checker{b: ch, pos: 12}
			start := c.pos
			c.bytes("policy")
			if c.err == nil && c.pos-start > 4 {
				policy.Store(string(ch[start+4 : c.pos]))
			}
		}
		if _, err := server.Write(ch); err != nil {
			return nil
		}
	}
}

// rewriteHello returns the Hello with its EndpointUrl replaced (Part 6,
// 7.1.2.3: five UInt32 after the header, then the URL).
func rewriteHello(ch []byte, endpoint string) []byte {
	if len(ch) < 28 {
		return ch
	}
	out := make([]byte, 0, 32+len(endpoint))
	out = append(out, ch[:28]...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(endpoint)))
	out = append(out, endpoint...)
	binary.LittleEndian.PutUint32(out[4:8], uint32(len(out)))
	return out
}

// replaceURL replaces the encoded String from in chunk ch by to, and fixes
// the chunk's size.
func replaceURL(ch []byte, from, to string) []byte {
	enc := func(s string) []byte { return append(binary.LittleEndian.AppendUint32(nil, uint32(len(s))), s...) }
	f := enc(from)
	i := bytes.Index(ch, f)
	if i < 0 {
		return ch
	}
	out := make([]byte, 0, len(ch)+len(to)-len(from))
	out = append(out, ch[:i]...)
	out = append(out, enc(to)...)
	out = append(out, ch[i+len(f):]...)
	binary.LittleEndian.PutUint32(out[4:8], uint32(len(out)))
	return out
}

// signatureSize is the size of a symmetric signature under a policy in
// mode Sign (Part 7, the policies' SymmetricSignatureAlgorithm).
func signatureSize(policyURI string) int {
	switch policyURI {
	case ua.SecurityPolicyURIBasic128Rsa15, ua.SecurityPolicyURIBasic256:
		return 20 // HMAC-SHA1
	}
	return 32 // HMAC-SHA256
}

// downstream checks and passes on the server's messages.
func (g *guard) downstream(server, client net.Conn, policy *atomic.Value) error {
	buf := make([]byte, guardChunk)
	in := bufio.NewReaderSize(server, guardRead)
	pending := map[uint32][]byte{} // message bodies by request id, chunks so far
	total := 0
	for {
		ch, err := readChunk(in, buf, len(buf))
		if err != nil {
			if errors.Is(err, ErrMalformed) {
				return err
			}
			return nil // EOF, reset: the client sees it too
		}
		pol := policy.Load().(string)
		switch string(ch[:3]) {
		case "OPN":
			if pol == ua.SecurityPolicyURINone || pol == "" {
				c := &checker{b: ch, pos: 12}
				c.bytes("policy")
				c.bytes("certificate")
				c.bytes("thumbprint")
				c.skip(8, "sequence header")
				if c.err == nil {
					c.err = checkService(ch[c.pos:])
				}
				if c.err != nil {
					return fmt.Errorf("%w: OpenSecureChannelResponse: %w", ErrMalformed, c.err)
				}
			}
		case "MSG":
			readable := pol == ua.SecurityPolicyURINone || (g.sign && pol != "")
			if !readable || len(ch) < 24 {
				break
			}
			body := ch[24:]
			if pol != ua.SecurityPolicyURINone {
				n := signatureSize(pol)
				if len(body) < n {
					return fmt.Errorf("%w: chunk shorter than its signature", ErrMalformed)
				}
				body = body[:len(body)-n]
			}
			req := binary.LittleEndian.Uint32(ch[20:24])
			switch ch[3] {
			case 'A':
				total -= len(pending[req])
				delete(pending, req)
			case 'C', 'F':
				if total+len(body) > guardMessage {
					return fmt.Errorf("%w: message larger than %d bytes", ErrMalformed, guardMessage)
				}
				prev, chunked := pending[req]
				if ch[3] == 'C' {
					pending[req] = append(prev, body...)
					total += len(body)
					break
				}
				msg := body
				if chunked {
					msg = append(prev, body...)
					total -= len(prev)
					delete(pending, req)
				}
				if err := checkService(msg); err != nil {
					return fmt.Errorf("%w: %w", ErrMalformed, err)
				}
			}
		}
		if _, err := client.Write(ch); err != nil {
			return nil
		}
	}
}
