package modbus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// ClientConfig configures a [Client]. Only URL is required. It loads from
// YAML with the keys of its tags (the `modbus:` block of the gateway
// configuration); [ClientConfig.Validate] gives every setting's range.
type ClientConfig struct {
	// URL says how to reach the device: tcp://host:502, tcp+tls://host:802,
	// udp://host:502, rtu:///dev/ttyUSB0, rtuovertcp://gw:4001,
	// rtuoverudp://gw:4001, ascii:///dev/ttyUSB0, asciiovertcp://gw:4001
	// (see [ParseURL]).
	URL string `yaml:"url"`
	// Serial settings; a zero field keeps the URL's value or its default
	// (19200 baud, even parity, 8 data bits (7 for ASCII), 1 stop bit with
	// parity and 2 without, as the serial line specification says).
	Speed    int    `yaml:"speed,omitempty"`
	Parity   Parity `yaml:"parity,omitempty"`
	DataBits int    `yaml:"data_bits,omitempty"`
	StopBits int    `yaml:"stop_bits,omitempty"`
	// Timeout bounds each request: how long to wait for the answer.
	// Default 1s (500ms for rtu). On a local serial line (rtu, ascii) the
	// time the request and its longest possible reply take on the wire at
	// the line's speed and character format is added to it, so that a
	// full-size read at a low speed (125 registers in ASCII at 4800 baud
	// 7E1: 1.1s) does not time out by its length alone; through a gateway
	// (rtuovertcp, asciiovertcp) the line is unknown and Timeout must
	// cover it.
	Timeout time.Duration `yaml:"timeout,omitempty"`
	// TLS client certificate and the CAs (or pinned server certificates)
	// that authenticate the server, for tcp+tls. Either the parsed values
	// or PEM file names; Modbus/TCP Security requires both.
	TLSCertificate *tls.Certificate `yaml:"-"`
	TLSRootCAs     *x509.CertPool   `yaml:"-"`
	TLSCertFile    string           `yaml:"cert_file,omitempty"`
	TLSKeyFile     string           `yaml:"key_file,omitempty"`
	TLSCAFile      string           `yaml:"ca_file,omitempty"`
	// Logger receives the link's debug messages (a reply discarded because
	// it answers no request in progress). Nil discards them.
	Logger *slog.Logger `yaml:"-"`
	// MinBackoff and MaxBackoff bound the exponential backoff (with jitter)
	// between failed connection attempts, and on a shared RTU link the
	// backoff of a unit that stopped answering. Defaults 100ms and 30s.
	MinBackoff time.Duration `yaml:"min_backoff,omitempty"`
	MaxBackoff time.Duration `yaml:"max_backoff,omitempty"`
	// LateReplyWait applies to the serial-line framings (rtu, rtuovertcp,
	// rtuoverudp, ascii, asciiovertcp), which have no transaction ids: after a request times out, the link
	// listens up to this long for its late reply, discarding what arrives,
	// before it sends the next request; the wait ends as soon as the late
	// reply has arrived. Every reply is also checked against its request
	// (unit, function, byte count) and a stray one is discarded and counted
	// (Stats.Discarded). Default 3 × Timeout. A reply later than Timeout +
	// LateReplyWait to a read of the same unit, function and quantity as a
	// later request is the one case the protocol cannot tell apart.
	LateReplyWait time.Duration `yaml:"late_reply_wait,omitempty"`
	// InterCharTimeout applies to ASCII framing (ascii, asciiovertcp): a
	// gap longer than this between two characters of a frame abandons the
	// frame (Modbus over Serial Line V1.02, 2.5.2.1); it is counted in
	// Stats.Discarded and never decoded. Default 1s, the specification's.
	InterCharTimeout time.Duration `yaml:"inter_char_timeout,omitempty"`
}

// Client is a connection to one Modbus link — a TCP device, a serial line,
// a gateway — that may serve several unit ids. It speaks the protocol over
// this package's own transports (MBAP for tcp, tcp+tls and udp, see
// mbapConn; RTU and ASCII framing on serial lines and through gateways,
// see lineConn), which the upstream client (github.com/simonvetter/modbus)
// cannot replace: it has no context, its requests cannot be interrupted,
// and it has no ASCII framing and no guard against late replies.
//
//   - One lock is held across a request (or a read-modify-write), so one
//     Client may be shared by goroutines and by devices of different units.
//   - It connects lazily and re-connects after a transport error, with
//     backoff.
//   - Every reply is matched to its request (MBAP transaction id; on serial
//     lines unit, function and byte count) and checked against it; a reply
//     to another request is discarded and counted, never decoded.
//   - On RTU and ASCII framing it guards against late replies (see
//     [ClientConfig.LateReplyWait]) and keeps RTU's 3.5-character silence
//     between frames, also across reconnections.
//   - Exceptions become [*ExceptionError] and failures [*OpError].
//
// Contexts: each request waits at most Timeout for its answer. The context
// is honoured throughout: while a call waits for the link (another request
// in progress, a backoff, the inter-frame silence, a late-reply wait),
// while it connects, and while its request is on the wire: when ctx ends,
// the request is abandoned and its connection closed, and the call returns
// at once (within one 2 ms poll on a serial port). A write abandoned after
// it was sent may have taken effect although the call reported ctx's
// error.
//
// A Client is safe for concurrent use; requests are serialised.
type Client struct {
	ep  Endpoint
	cfg ClientConfig
	tls *tls.Certificate
	cas *x509.CertPool

	sem chan struct{} // the link lock; a channel so waiting honours ctx

	// Guarded by sem.
	conn        link
	pending     late // RTU: a timed-out request whose reply may still come
	backoff     time.Duration
	retryAt     time.Time
	lastErr     error
	quietUntil  time.Time // RTU: no frame before this (silence, late replies)
	unitBackoff map[uint8]*unitState
	// The Done channel of the context whose end aborts the request in
	// progress, and how to stop watching it: one registration serves every
	// request made with the same context (a Device's Run), instead of one
	// per request. (Channels, not contexts, are compared: a context's
	// dynamic type need not be comparable.)
	watched <-chan struct{}
	unwatch func() bool

	mu          sync.Mutex // guards stats, closed, inflight and inflightCtx
	closed      bool
	inflight    link            // the link a request is running on, for abort
	inflightCtx <-chan struct{} // the Done channel of that request's context
	stats       Stats
	start       time.Time
}

type unitState struct {
	fails   int
	retryAt time.Time
	lastErr error
}

// Stats are a Client's (or a Bus's) counters since it was created.
type Stats struct {
	Requests uint64 // requests sent
	Errors   uint64 // requests that failed (exceptions included)
	Timeouts uint64 // requests that got no answer in time
	Connects uint64 // connections opened
	// Discarded counts replies (frames, or stray bytes) received on an RTU
	// or ASCII link that did not answer the request in progress — a late
	// reply to a request that timed out, a frame of another unit, function
	// or byte count, a frame with a bad CRC or LRC, an ASCII frame that is
	// not well formed or was cut by the inter-character timeout — and were
	// thrown away, never decoded.
	Discarded   uint64
	Busy        time.Duration // time the link spent on requests (send to answer)
	Elapsed     time.Duration // time since the Client was created
	Utilisation float64       // Busy / Elapsed
	// Units holds per-unit figures, by unit id.
	Units map[uint8]UnitStats
}

// UnitStats are the figures of one unit id on a link.
type UnitStats struct {
	Requests    uint64
	Errors      uint64
	LastLatency time.Duration // of the last answered request
	MeanLatency time.Duration // of answered requests
	MaxLatency  time.Duration
	// BackoffUntil is when a unit that stopped answering on a shared RTU
	// link will be tried again; zero when it is not backed off.
	BackoffUntil time.Time
	totalLatency time.Duration
	answered     uint64
}

// NewClient checks cfg and returns a Client; it does no I/O (the connection
// is made by the first request or by Connect). All problems are returned
// at once.
func NewClient(cfg ClientConfig) (*Client, error) {
	ep, cert, cas, err := cfg.prepare()
	if err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Second
		if ep.Scheme == SchemeRTU {
			cfg.Timeout = 500 * time.Millisecond
		}
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.LateReplyWait <= 0 {
		cfg.LateReplyWait = 3 * cfg.Timeout
	}
	return &Client{ep: ep, cfg: cfg, sem: make(chan struct{}, 1), start: time.Now(), tls: cert, cas: cas}, nil
}

// Endpoint returns the parsed URL and serial settings the Client uses.
func (c *Client) Endpoint() Endpoint { return c.ep }

// Timeout returns the per-request timeout.
func (c *Client) Timeout() time.Duration { return c.cfg.Timeout }

// lock takes the link, or returns when ctx ends or the Client is closed.
func (c *Client) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		<-c.sem
		return ErrClosed
	}
	return nil
}

func (c *Client) unlock() { <-c.sem }

// Connect opens the connection now, if it is not open, instead of at the
// first request. It fails fast with an error wrapping [ErrBackoff] while a
// previous failure's backoff runs.
func (c *Client) Connect(ctx context.Context) error {
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer c.unlock()
	err := c.connectLocked(ctx, 0)
	var op *OpError
	if errors.As(err, &op) {
		op.noUnit = true // a connection serves every unit
	}
	return err
}

func (c *Client) connectLocked(ctx context.Context, unit uint8) error {
	if c.conn != nil {
		return nil
	}
	now := time.Now()
	if now.Before(c.retryAt) {
		return &OpError{Op: "connect", Device: c.ep.String(), Unit: unit,
			Err: fmt.Errorf("%w until %s: %w", ErrBackoff, c.retryAt.Format(time.RFC3339Nano), c.lastErr)}
	}
	// RTU: keep the line silent between frames, also across a reopen.
	if err := sleepUntil(ctx, c.quietUntil); err != nil {
		return err
	}
	conn, err := c.open(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if c.backoff == 0 {
			c.backoff = c.cfg.MinBackoff
		} else {
			c.backoff = min(c.backoff*2, c.cfg.MaxBackoff)
		}
		c.retryAt = time.Now().Add(jitter(c.backoff))
		c.lastErr = err
		return &OpError{Op: "connect", Device: c.ep.String(), Unit: unit, Err: err}
	}
	c.conn = conn
	c.backoff = 0
	c.lastErr = nil
	c.mu.Lock()
	c.stats.Connects++
	c.mu.Unlock()
	return nil
}

// open makes a new link over this package's own transports: the
// serial-line one for RTU and ASCII framing (see lineConn), the MBAP one for
// tcp, tcp+tls and udp (see mbapConn).
func (c *Client) open(ctx context.Context) (link, error) {
	if !c.ep.SerialFramed() {
		m, err := dialMBAP(ctx, c.ep, c.cfg, c.tls, c.cas)
		if err != nil {
			return nil, err
		}
		m.discarded = c.countDiscarded
		return &reqLink{t: m}, nil
	}
	port, err := dialLine(ctx, c.ep)
	if err != nil {
		return nil, err
	}
	rc := newLineConn(port, c.ep, c.cfg, &c.pending, c.countDiscarded)
	// Stale input from before this connection is no reply of ours.
	if got, err := rc.drain(50*time.Microsecond, time.Now().Add(time.Second)); err != nil && !isTimeout(err) {
		_ = port.Close()
		return nil, err
	} else if got {
		c.countDiscarded()
	}
	return &reqLink{t: rc}, nil
}

func (c *Client) countDiscarded() {
	c.mu.Lock()
	c.stats.Discarded++
	c.mu.Unlock()
	if c.cfg.Logger != nil {
		c.cfg.Logger.Debug("modbus: discarded a reply that answers no request in progress", "link", c.ep.String())
	}
}

// jitter returns d ± 20%.
func jitter(d time.Duration) time.Duration {
	return d - d/5 + time.Duration(rand.Int64N(int64(d)*2/5+1))
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// disconnectLocked drops the connection after a transport failure. A
// timeout on a serial-line (RTU or ASCII) link keeps it: the link's own
// transport waits for the late reply before the next request (see
// lineConn), and a reconnection would not keep a gateway from forwarding it.
func (c *Client) disconnectLocked(timedOut bool) {
	if timedOut && c.ep.SerialFramed() {
		return
	}
	if c.conn != nil {
		_ = c.conn.close()
		c.conn = nil
	}
}

// do runs one request on the link for unit: it takes the lock, connects,
// sets the unit id and calls fn, mapping errors and keeping the statistics.
// When ctx ends while the request is on the wire, the request is abandoned
// and its connection closed (see exec), so the call returns at once.
func (c *Client) do(ctx context.Context, op string, unit uint8, table Table, fc uint8, addr, qty uint16,
	fn func(l link) error) error {
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer c.unlock()
	return c.exec(ctx, op, unit, table, fc, addr, qty, fn)
}

// modifyRegister is a read-modify-write of holding register addr of unit:
// it reads the register (FC 03), and writes modify's result back (FC 06),
// holding the link across both requests, so that no other request of this
// Client — a poll of the same device, a request of another device on a
// shared [Bus], another write — runs between the read and the write. (A
// second master on the device's other port, or on the same serial line,
// is beyond its reach: Modbus has no lock.) The context is honoured as by
// the requests of [Client.do]; the write is not sent when ctx ended after
// the read.
func (c *Client) modifyRegister(ctx context.Context, unit uint8, addr uint16, modify func(uint16) uint16) error {
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer c.unlock()
	var reg []uint16
	err := c.exec(ctx, "read", unit, Holding, fcReadHolding, addr, 1, func(l link) (err error) {
		reg, err = l.readRegisters(unit, fcReadHolding, addr, 1)
		return err
	})
	if err != nil {
		return err
	}
	if len(reg) != 1 {
		return &OpError{Op: "read", Device: c.ep.String(), Unit: unit, Table: Holding, Address: addr, Quantity: 1,
			Err: fmt.Errorf("%w: %d registers in the answer, want 1", ErrProtocol, len(reg))}
	}
	val := []uint16{modify(reg[0])}
	return c.exec(ctx, "write", unit, Holding, fcWriteSingleReg, addr, 1, func(l link) error {
		return l.writeRegisters(unit, addr, val)
	})
}

// exec is do's work, with the link held.
func (c *Client) exec(ctx context.Context, op string, unit uint8, table Table, fc uint8, addr, qty uint16,
	fn func(l link) error) error {
	opErr := func(err error) error {
		return &OpError{Op: op, Device: c.ep.String(), Unit: unit, Table: table, Address: addr, Quantity: qty, Err: err}
	}
	var us *unitState
	if c.ep.SerialFramed() {
		if c.unitBackoff == nil {
			c.unitBackoff = make(map[uint8]*unitState)
		}
		us = c.unitBackoff[unit]
		if us == nil {
			us = &unitState{}
			c.unitBackoff[unit] = us
		}
		if time.Now().Before(us.retryAt) {
			return opErr(fmt.Errorf("%w: unit %d did not answer (%d times); next try at %s: %w",
				ErrBackoff, unit, us.fails, us.retryAt.Format(time.RFC3339Nano), us.lastErr))
		}
	}
	if err := c.connectLocked(ctx, unit); err != nil {
		return err
	}
	if err := sleepUntil(ctx, c.quietUntil); err != nil {
		return err
	}
	conn := c.conn
	c.watch(ctx)
	c.mu.Lock()
	c.inflight, c.inflightCtx = conn, ctx.Done()
	c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		c.mu.Lock()
		c.inflight, c.inflightCtx = nil, nil
		c.mu.Unlock()
		return err
	}
	t0 := time.Now()
	raw := fn(conn)
	t1 := time.Now()
	c.mu.Lock()
	c.inflight, c.inflightCtx = nil, nil
	closed := c.closed
	c.mu.Unlock()
	abandoned := false
	if ctx.Err() != nil || closed {
		// Abandoned (or the Client closed meanwhile): whatever the answer,
		// this connection's state is not to be trusted.
		_ = conn.close()
		c.conn = nil
		if closed {
			return ErrClosed // no Bad samples for a link closed under them
		}
		// The caller gave up, not the device: its context's error (a
		// deadline is no device timeout), and nothing learned of the unit.
		raw, abandoned = ctx.Err(), true
	}
	err, transport := raw, true
	if !abandoned {
		err, transport = classifyError(raw)
	}
	timedOut := errors.Is(err, ErrTimeout)
	if c.ep.SerialFramed() {
		c.quietUntil = t1.Add(c.ep.FrameSilence())
	}
	if transport {
		c.disconnectLocked(timedOut)
	}
	if us != nil && !abandoned {
		// A unit that does not answer costs the line a timeout per request;
		// so does one a gateway reports as not answering (exception 0x0B),
		// since the gateway waited out its own serial timeout first.
		if timedOut || errors.Is(err, ErrGatewayTargetDeviceFailedToRespond) {
			us.fails++
			us.lastErr = err
			if us.fails > 1 { // one timeout may be noise; a second one backs the unit off
				b := c.cfg.MinBackoff << min(us.fails-2, 20)
				us.retryAt = t1.Add(jitter(min(b, c.cfg.MaxBackoff)))
			}
		} else {
			us.fails = 0
			us.retryAt = time.Time{}
		}
	}
	c.mu.Lock()
	c.stats.Requests++
	c.stats.Busy += t1.Sub(t0)
	if c.stats.Units == nil {
		c.stats.Units = make(map[uint8]UnitStats)
	}
	u := c.stats.Units[unit]
	u.Requests++
	if err != nil {
		c.stats.Errors++
		u.Errors++
		if timedOut {
			c.stats.Timeouts++
		}
	}
	if !timedOut && (err == nil || !transport) {
		lat := t1.Sub(t0)
		u.answered++
		u.totalLatency += lat
		u.LastLatency = lat
		u.MeanLatency = u.totalLatency / time.Duration(u.answered)
		u.MaxLatency = max(u.MaxLatency, lat)
	}
	if us != nil {
		u.BackoffUntil = us.retryAt
	}
	c.stats.Units[unit] = u
	c.mu.Unlock()
	if err != nil {
		return opErr(err)
	}
	return nil
}

// watch makes the end of ctx abort the request in progress made with ctx
// (see exec): the connection is closed under it, and it returns at once.
// Called with the link held.
func (c *Client) watch(ctx context.Context) {
	done := ctx.Done()
	if done == nil || done == c.watched {
		return
	}
	if c.unwatch != nil {
		c.unwatch()
	}
	c.watched = done
	c.unwatch = context.AfterFunc(ctx, func() {
		c.mu.Lock()
		l, ldone := c.inflight, c.inflightCtx
		c.mu.Unlock()
		if l != nil && ldone == done {
			l.abort()
		}
	})
}

// Stats returns the Client's counters: requests, errors, time the link was
// busy and its share of the elapsed time, and per-unit latency.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Units = make(map[uint8]UnitStats, len(c.stats.Units))
	for k, v := range c.stats.Units {
		s.Units[k] = v
	}
	s.Elapsed = time.Since(c.start)
	if s.Elapsed > 0 {
		s.Utilisation = float64(s.Busy) / float64(s.Elapsed)
	}
	return s
}

// function codes (Application Protocol 6).
const (
	fcReadCoils          = 0x01
	fcReadDiscrete       = 0x02
	fcReadHolding        = 0x03
	fcReadInput          = 0x04
	fcWriteSingleCoil    = 0x05
	fcWriteSingleReg     = 0x06
	fcWriteMultipleCoils = 0x0F
	fcWriteMultipleRegs  = 0x10
)

// ReadRegisters reads qty registers of the holding or input table from unit,
// starting at addr (FC 03 or 04). The values are the registers as sent,
// big-endian within each register.
func (c *Client) ReadRegisters(ctx context.Context, unit uint8, table Table, addr, qty uint16) ([]uint16, error) {
	var fc uint8
	switch table {
	case Holding:
		fc = fcReadHolding
	case Input:
		fc = fcReadInput
	default:
		return nil, configErrorf("table", "ReadRegisters of table %q (want holding or input)", table)
	}
	if err := checkRange("ReadRegisters", addr, qty, 125); err != nil {
		return nil, err
	}
	var regs []uint16
	err := c.do(ctx, "read", unit, table, fc, addr, qty, func(l link) (err error) {
		regs, err = l.readRegisters(unit, fc, addr, qty)
		return err
	})
	if err != nil {
		return nil, err // (regs may still be written by a request that outlived ctx)
	}
	return regs, nil
}

// ReadBits reads qty coils or discrete inputs from unit, starting at addr
// (FC 01 or 02).
func (c *Client) ReadBits(ctx context.Context, unit uint8, table Table, addr, qty uint16) ([]bool, error) {
	var fc uint8
	switch table {
	case Coil:
		fc = fcReadCoils
	case Discrete:
		fc = fcReadDiscrete
	default:
		return nil, configErrorf("table", "ReadBits of table %q (want coil or discrete)", table)
	}
	if err := checkRange("ReadBits", addr, qty, 2000); err != nil {
		return nil, err
	}
	var bits []bool
	err := c.do(ctx, "read", unit, table, fc, addr, qty, func(l link) (err error) {
		bits, err = l.readBits(unit, fc, addr, qty)
		return err
	})
	if err != nil {
		return nil, err
	}
	return bits, nil
}

// WriteRegisters writes holding registers of unit starting at addr: FC 06
// for one register, FC 16 for more.
func (c *Client) WriteRegisters(ctx context.Context, unit uint8, addr uint16, values []uint16) error {
	if err := checkRange("WriteRegisters", addr, uint16(min(len(values), 0xFFFF)), 123); err != nil {
		return err
	}
	fc := uint8(fcWriteMultipleRegs)
	if len(values) == 1 {
		fc = fcWriteSingleReg
	}
	return c.do(ctx, "write", unit, Holding, fc, addr, uint16(len(values)), func(l link) error {
		return l.writeRegisters(unit, addr, values)
	})
}

// WriteCoils writes coils of unit starting at addr: FC 05 for one coil,
// FC 15 for more.
func (c *Client) WriteCoils(ctx context.Context, unit uint8, addr uint16, values []bool) error {
	if err := checkRange("WriteCoils", addr, uint16(min(len(values), 0xFFFF)), 1968); err != nil {
		return err
	}
	fc := uint8(fcWriteMultipleCoils)
	if len(values) == 1 {
		fc = fcWriteSingleCoil
	}
	return c.do(ctx, "write", unit, Coil, fc, addr, uint16(len(values)), func(l link) error {
		return l.writeCoils(unit, addr, values)
	})
}

func checkRange(op string, addr, qty, limit uint16) error {
	switch {
	case qty == 0:
		return configErrorf("quantity", "%s of 0 items", op)
	case qty > limit:
		return configErrorf("quantity", "%s of %d items exceeds the protocol's %d", op, qty, limit)
	case int(addr)+int(qty) > 0x10000:
		return configErrorf("address", "%s at %d+%d runs past address 65535", op, addr, qty)
	}
	return nil
}

// Close closes the connection; every later call returns [ErrClosed]. A
// request in progress is aborted. Close waits for the link at most
// closeWait (a serial port's write cannot be aborted): then it returns and
// the connection is closed when that request ends. Close is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	l := c.inflight
	c.mu.Unlock()
	if l != nil {
		l.abort()
	}
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case c.sem <- struct{}{}:
	case <-t.C:
		return nil // the request's goroutine closes the connection (see exec)
	}
	defer func() { <-c.sem }()
	if c.unwatch != nil {
		c.unwatch()
		c.watched, c.unwatch = nil, nil
	}
	if c.conn != nil {
		err := c.conn.close()
		c.conn = nil
		return err
	}
	return nil
}

// closeWait bounds how long Close waits for a request to give up the link.
const closeWait = time.Second

// disconnect drops the connection, if any, unless a request holds it: a
// request abandoned by its context closes the connection itself when it
// ends (see exec), and one still wanted keeps it. It never waits, so a
// Device's Run returns promptly after its context ends.
func (c *Client) disconnect() {
	select {
	case c.sem <- struct{}{}:
	default:
		return
	}
	defer func() { <-c.sem }()
	if c.conn != nil {
		_ = c.conn.close()
		c.conn = nil
	}
}
