package modbustest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
)

// Framing is how requests and responses are framed on a connection.
type Framing int

// Framings. TCP is Modbus TCP (MBAP header, Modbus Messaging on TCP/IP
// Implementation Guide V1.0b, 3.1.3); RTU is the serial line framing with a
// CRC (Modbus over Serial Line V1.02, 2.5.1.1), used by RTU-over-TCP
// gateways and on serial lines.
const (
	TCP Framing = iota
	RTU
)

// Request is one request the server received, as kept in its log and passed
// to a [Hook].
type Request struct {
	Seq      uint64       // 1 for the first request the server received
	Conn     uint64       // which connection (1 for the first accepted)
	Unit     uint8        // the unit id addressed
	Function uint8        // the function code
	Table    modbus.Table // "" for a function the server does not implement
	Address  uint16       // the first address
	Quantity uint16       // registers or bits (1 for FC 05 and 06)
	Write    bool         // FC 05, 06, 15 or 16
	Time     time.Time    // when the request was received
}

// Fault is what a [Hook] asks the server to do with a request instead of (or
// before) answering it normally. The zero Fault answers normally.
type Fault struct {
	// Delay holds the answer back this long (the server's connection is
	// busy meanwhile, as a real device's would be).
	Delay time.Duration
	// Exception, when non-zero, answers with this exception code.
	Exception modbus.ExceptionCode
	// NoReply swallows the request: no answer, the connection stays open.
	NoReply bool
	// Drop closes the connection without answering.
	Drop bool
	// Reset resets the connection (TCP RST) without answering.
	Reset bool
	// Corrupt sends the answer with a wrong checksum (the CRC of RTU, the
	// LRC of ASCII), as line noise would; Modbus TCP, which has none,
	// answers intact.
	Corrupt bool
}

// Hook decides, for each request, whether to inject a fault, like kfake's
// ControlKey. It is called from the connection's goroutine; it must be safe
// for concurrent use when several clients connect.
type Hook func(r Request) Fault

// Option configures a [Server].
type Option func(*Server)

// WithFraming sets the framing: [TCP] (the default), [RTU] for an
// RTU-over-TCP gateway or [ASCII] for an ASCII-over-TCP one.
func WithFraming(f Framing) Option { return func(s *Server) { s.framing = f } }

// WithUnits makes the server answer only these unit ids and stay silent for
// others, as absent units on a serial line do. By default it answers every
// unit id.
func WithUnits(ids ...uint8) Option {
	return func(s *Server) {
		for _, id := range ids {
			s.units[id] = true
		}
	}
}

// WithHook sets the fault injection hook (see also [Server.SetHook]).
func WithHook(h Hook) Option { return func(s *Server) { s.hook.Store(&h) } }

// WithLogSize bounds the request log to n entries (default 10000): older
// entries are dropped and counted by [Server.Dropped].
func WithLogSize(n int) Option { return func(s *Server) { s.logSize = max(n, 1) } }

// WithTick sets how often the moving values change (default 100ms). Between
// ticks every read sees the same values, and encoding costs nothing.
func WithTick(d time.Duration) Option { return func(s *Server) { s.tick = max(d, time.Microsecond) } }

// WithUDP serves over UDP instead of TCP: one request per datagram, MBAP
// framed (udp://) or, with WithFraming(RTU), RTU framed (rtuoverudp://).
// Drop and Reset faults become NoReply: UDP has no connection.
func WithUDP() Option { return func(s *Server) { s.udp = true } }

// WithFilledGaps makes reads that span unmapped addresses between mapped
// ones answer those addresses with zeros, as many devices do, instead of
// Illegal Data Address. Reads that cover no mapped address, or run past the
// table's first or last mapped address, still answer Illegal Data Address.
// It is the default for a profile whose limits set
// [modbus.Limits.FillsGaps].
func WithFilledGaps() Option { return func(s *Server) { s.gaps = gapsFilled } }

// WithRefusedGaps makes reads that span unmapped addresses answer Illegal
// Data Address even when the profile says the device fills them
// ([modbus.Limits.FillsGaps]), to test hole learning with such a profile.
func WithRefusedGaps() Option { return func(s *Server) { s.gaps = gapsRefused } }

// How the server answers reads across unmapped addresses.
const (
	gapsAsProfile = iota // as the profile's Limits.FillsGaps says
	gapsFilled
	gapsRefused
)

// WithAddress listens on addr instead of 127.0.0.1:0.
func WithAddress(addr string) Option { return func(s *Server) { s.addr = addr } }

// Server is an in-process Modbus device serving a profile's points, like
// httptest.Server: [NewServer] starts it on 127.0.0.1 on a port the OS
// chooses; [Server.URL] says where it is; [Server.Close] stops it and waits
// for its connections to end.
//
// Values move: floats follow sine waves around a level chosen from the
// point's unit (230 V, 50 Hz ...), points in energy units (kWh, Wh, varh ...)
// count up, integers ramp, bools toggle, strings are fixed. Each value is
// encoded with [modbus.Point.Encode], so types, word and byte orders, scale
// and offset are those of the profile. [Server.Set] fixes a value; writes by
// clients (FC 05, 06, 15, 16 on mapped holding registers and coils) fix the
// values they write. Addresses that no point covers answer Illegal Data
// Address, as do writes to them; reads across such addresses between mapped
// ones answer zeros there instead when the profile's limits say the device
// fills gaps ([modbus.Limits.FillsGaps]; see [WithFilledGaps] and
// [WithRefusedGaps]).
//
// The server has no client limit (the upstream server's default is 10).
// All methods are safe for concurrent use.
type Server struct {
	profile *modbus.Profile
	framing Framing
	units   map[uint8]bool
	hook    atomic.Pointer[Hook]
	logSize int
	tick    time.Duration
	addr    string
	udp     bool
	gaps    int // gapsAsProfile, gapsFilled or gapsRefused
	// interChar is the ASCII inter-character timeout (0: the default).
	interChar time.Duration
	filled    bool // reads across unmapped addresses answer zeros there
	start     time.Time

	ln     net.Listener
	pc     net.PacketConn
	port   io.ReadWriteCloser // for a serial server
	wg     sync.WaitGroup
	done   chan struct{}
	closed atomic.Bool

	mu      sync.Mutex // guards the data below
	tables  map[modbus.Table]*table
	fixed   []bool // per point: value fixed by Set or a write
	lastGen int64  // tick of the last refresh
	log     []Request
	logHead int
	seq     uint64
	dropped uint64
	conns   map[uint64]net.Conn
	connSeq uint64
}

// table is a dense window of one Modbus table covering its mapped points.
type table struct {
	first  int
	regs   []uint16
	bits   []bool
	mapped []bool
	points []int // indexes of the profile's points in this table
}

func (t *table) covers(addr, qty uint16, filled bool) bool {
	if t == nil || int(addr) < t.first || int(addr)+int(qty) > t.first+len(t.mapped) {
		return false
	}
	any := false
	for i := int(addr) - t.first; i < int(addr)-t.first+int(qty); i++ {
		if !t.mapped[i] && !filled {
			return false
		}
		any = any || t.mapped[i]
	}
	return any
}

// NewServer validates profile and starts serving it on 127.0.0.1 on a port
// the OS chooses.
func NewServer(profile *modbus.Profile, opts ...Option) (*Server, error) {
	s, err := newServer(profile, opts)
	if err != nil {
		return nil, err
	}
	if s.addr == "" {
		s.addr = "127.0.0.1:0"
	}
	if s.udp && s.framing == ASCII {
		return nil, errors.New("modbustest: ASCII framing over UDP is not served (the client has no asciioverudp)")
	}
	if s.udp {
		s.pc, err = net.ListenPacket("udp", s.addr)
		if err != nil {
			return nil, fmt.Errorf("modbustest: %w", err)
		}
		s.wg.Add(1)
		go s.serveUDP()
		return s, nil
	}
	s.ln, err = net.Listen("tcp", s.addr)
	if err != nil {
		return nil, fmt.Errorf("modbustest: %w", err)
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// NewRTUServer serves profile with RTU framing on port, for instance one
// end of a pseudo-terminal pair made with socat (see [SocatPTY]), until
// Close, which closes port.
func NewRTUServer(profile *modbus.Profile, port io.ReadWriteCloser, opts ...Option) (*Server, error) {
	return newPortServer(profile, port, RTU, opts)
}

// newPortServer serves profile with framing on port until Close.
func newPortServer(profile *modbus.Profile, port io.ReadWriteCloser, framing Framing, opts []Option) (*Server, error) {
	s, err := newServer(profile, opts)
	if err != nil {
		return nil, err
	}
	s.framing = framing
	s.port = port
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.serve(port, 1, nil)
	}()
	return s, nil
}

func newServer(profile *modbus.Profile, opts []Option) (*Server, error) {
	if profile == nil {
		return nil, errors.New("modbustest: nil profile")
	}
	if err := profile.Validate(); err != nil {
		return nil, fmt.Errorf("modbustest: %w", err)
	}
	s := &Server{
		profile: profile.Clone(),
		units:   make(map[uint8]bool),
		logSize: 10000,
		tick:    100 * time.Millisecond,
		start:   time.Now(),
		done:    make(chan struct{}),
		tables:  make(map[modbus.Table]*table),
		conns:   make(map[uint64]net.Conn),
		lastGen: -1,
	}
	for _, o := range opts {
		o(s)
	}
	s.filled = s.gaps == gapsFilled || (s.gaps == gapsAsProfile && s.profile.Limits.FillsGaps)
	s.fixed = make([]bool, len(s.profile.Points))
	lo := map[modbus.Table]int{}
	hi := map[modbus.Table]int{}
	for _, p := range s.profile.Points {
		last := int(p.Address) + int(p.Registers()) - 1
		if p.Table.IsBits() {
			last = int(p.Address)
		}
		if l, ok := lo[p.Table]; !ok || int(p.Address) < l {
			lo[p.Table] = int(p.Address)
		}
		hi[p.Table] = max(hi[p.Table], last)
	}
	for t, l := range lo {
		n := hi[t] - l + 1
		tb := &table{first: l, mapped: make([]bool, n)}
		if t.IsBits() {
			tb.bits = make([]bool, n)
		} else {
			tb.regs = make([]uint16, n)
		}
		s.tables[t] = tb
	}
	for i, p := range s.profile.Points {
		tb := s.tables[p.Table]
		tb.points = append(tb.points, i)
		n := int(p.Registers())
		if p.Table.IsBits() {
			n = 1
		}
		for a := int(p.Address); a < int(p.Address)+n; a++ {
			tb.mapped[a-tb.first] = true
		}
	}
	s.mu.Lock()
	s.refreshLocked(time.Now())
	s.mu.Unlock()
	return s, nil
}

// Addr returns the host:port the server listens on ("" for a serial server).
func (s *Server) Addr() string {
	switch {
	case s.ln != nil:
		return s.ln.Addr().String()
	case s.pc != nil:
		return s.pc.LocalAddr().String()
	}
	return ""
}

// URL returns the URL a modbus.Client reaches the server at:
// tcp://127.0.0.1:port, or rtuovertcp://127.0.0.1:port with RTU framing.
func (s *Server) URL() string {
	switch {
	case s.udp && s.framing == RTU:
		return "rtuoverudp://" + s.Addr()
	case s.udp:
		return "udp://" + s.Addr()
	case s.framing == RTU:
		return "rtuovertcp://" + s.Addr()
	case s.framing == ASCII:
		return "asciiovertcp://" + s.Addr()
	}
	return "tcp://" + s.Addr()
}

// Profile returns (a copy of) the profile the server serves.
func (s *Server) Profile() *modbus.Profile { return s.profile.Clone() }

// SetHook replaces the fault injection hook; nil removes it.
func (s *Server) SetHook(h Hook) {
	if h == nil {
		s.hook.Store(nil)
		return
	}
	s.hook.Store(&h)
}

// Close stops the server: it stops accepting, closes every connection and
// waits for their goroutines to end. Close is idempotent.
func (s *Server) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.done)
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	if s.port != nil {
		err = s.port.Close()
	}
	if s.pc != nil {
		err = s.pc.Close()
	}
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// CloseConnections closes every client connection now, as a device that
// reboots would; the server keeps accepting new ones.
func (s *Server) CloseConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

// Connections returns the number of open client connections.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Set fixes a point's value: v is a bridge.Value or a Go bool, integer,
// float or string. The value is encoded with the point's rules; an error
// names the point.
func (s *Server) Set(point string, v any) error {
	val, err := toValue(v)
	if err != nil {
		return fmt.Errorf("modbustest: Set %q: %w", point, err)
	}
	i := s.index(point)
	if i < 0 {
		return fmt.Errorf("modbustest: Set %q: no such point in profile %q", point, s.profile.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.storeLocked(i, val); err != nil {
		return fmt.Errorf("modbustest: Set %q: %w", point, err)
	}
	s.fixed[i] = true
	return nil
}

// Release lets a point fixed by Set or a write move again.
func (s *Server) Release(point string) {
	if i := s.index(point); i >= 0 {
		s.mu.Lock()
		s.fixed[i] = false
		s.lastGen = -1
		s.mu.Unlock()
	}
}

// Value returns the point's current value, decoded from the registers (or
// bit) the server would answer with now.
func (s *Server) Value(point string) (bridge.Value, error) {
	i := s.index(point)
	if i < 0 {
		return bridge.Value{}, fmt.Errorf("modbustest: Value %q: no such point in profile %q", point, s.profile.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshLocked(time.Now())
	p := s.profile.Points[i]
	tb := s.tables[p.Table]
	off := int(p.Address) - tb.first
	if p.Table.IsBits() {
		return p.DecodeBit(tb.bits[off]), nil
	}
	return p.Decode(tb.regs[off : off+int(p.Registers())])
}

func (s *Server) index(name string) int {
	for i, p := range s.profile.Points {
		if p.Name == name {
			return i
		}
	}
	return -1
}

// toValue converts a Go value to a bridge.Value (see bridge.ValueOf).
func toValue(v any) (bridge.Value, error) {
	if val, ok := bridge.ValueOf(v); ok {
		return val, nil
	}
	return bridge.Value{}, fmt.Errorf("unsupported value type %T", v)
}

// storeLocked encodes v into the point's registers or bit.
func (s *Server) storeLocked(i int, v bridge.Value) error {
	p := s.profile.Points[i]
	tb := s.tables[p.Table]
	off := int(p.Address) - tb.first
	switch {
	case p.Table.IsBits():
		on, err := p.EncodeBit(v)
		if err != nil {
			return err
		}
		tb.bits[off] = on
	case p.IsBitPoint():
		on, err := p.EncodeBit(v)
		if err != nil {
			return err
		}
		tb.regs[off] = p.SetBit(tb.regs[off], on)
	default:
		regs, err := p.Encode(v)
		if err != nil {
			return err
		}
		copy(tb.regs[off:], regs)
	}
	return nil
}

// Requests returns a copy of the request log, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, 0, len(s.log))
	if len(s.log) < s.logSize {
		return append(out, s.log...)
	}
	out = append(out, s.log[s.logHead:]...)
	return append(out, s.log[:s.logHead]...)
}

// RequestCount returns how many requests the server has received.
func (s *Server) RequestCount() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

// Dropped returns how many requests fell out of the bounded log.
func (s *Server) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// ResetRequests empties the request log (the count goes on).
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = s.log[:0]
	s.logHead = 0
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.closed.Load() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			select {
			case <-s.done:
				return
			case <-time.After(10 * time.Millisecond): // e.g. EMFILE: back off, then go on
			}
			continue
		}
		s.mu.Lock()
		if s.closed.Load() {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.connSeq++
		id := s.connSeq
		s.conns[id] = c
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c, id, c)
			c.Close()
			s.mu.Lock()
			delete(s.conns, id)
			s.mu.Unlock()
		}()
	}
}

// serve answers requests on rw until it fails or the server closes. conn is
// rw as a net.Conn, for Reset; nil for a serial port.
func (s *Server) serve(rw io.ReadWriter, id uint64, conn net.Conn) {
	in := make([]byte, 0, 512)
	out := make([]byte, 0, 512)
	buf := make([]byte, 520)
	var ar *asciiReader
	if s.framing == ASCII {
		ar = newASCIIReader(rw, s.interChar)
	}
	for {
		var unit uint8
		var pdu []byte
		var txn uint16
		var err error
		switch s.framing {
		case TCP:
			txn, unit, pdu, err = readMBAP(rw, buf)
		case ASCII:
			unit, pdu, err = ar.read(buf)
		default:
			unit, pdu, err = readRTU(rw, buf)
		}
		if err != nil {
			if errors.Is(err, errBadFrame) && (conn == nil || s.framing == ASCII) {
				continue // line noise: resynchronise on the next frame
			}
			return
		}
		if len(s.units) > 0 && !s.units[unit] {
			continue
		}
		req := parseRequest(pdu)
		req.Conn, req.Unit, req.Time = id, unit, time.Now()
		s.record(&req)
		var fault Fault
		if h := s.hook.Load(); h != nil {
			fault = (*h)(req)
		}
		if fault.Delay > 0 {
			t := time.NewTimer(fault.Delay)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
				return
			}
		}
		switch {
		case fault.Reset:
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			return
		case fault.Drop:
			return
		case fault.NoReply:
			continue
		}
		in = append(in[:0], pdu...)
		resp := s.handle(in, out[:0], fault.Exception)
		switch s.framing {
		case TCP:
			err = writeMBAP(rw, txn, unit, resp, buf)
		case ASCII:
			err = writeASCII(rw, unit, resp, buf, fault.Corrupt)
		default:
			err = writeRTU(rw, unit, resp, buf, fault.Corrupt)
		}
		if err != nil {
			return
		}
	}
}

// serveUDP answers one request per datagram until the server closes.
func (s *Server) serveUDP() {
	defer s.wg.Done()
	dgram := make([]byte, 512)
	buf := make([]byte, 512)
	in := make([]byte, 0, 512)
	out := make([]byte, 0, 512)
	var w bytes.Buffer
	for {
		n, from, err := s.pc.ReadFrom(dgram)
		if err != nil {
			if s.closed.Load() {
				return
			}
			continue
		}
		r := bytes.NewReader(dgram[:n])
		var unit uint8
		var pdu []byte
		var txn uint16
		if s.framing == TCP {
			txn, unit, pdu, err = readMBAP(r, buf)
		} else {
			unit, pdu, err = readRTU(r, buf)
		}
		if err != nil || (len(s.units) > 0 && !s.units[unit]) {
			continue
		}
		req := parseRequest(pdu)
		req.Unit, req.Time = unit, time.Now()
		s.record(&req)
		var fault Fault
		if h := s.hook.Load(); h != nil {
			fault = (*h)(req)
		}
		if fault.Delay > 0 {
			t := time.NewTimer(fault.Delay)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
				return
			}
		}
		if fault.NoReply || fault.Drop || fault.Reset {
			continue
		}
		in = append(in[:0], pdu...)
		resp := s.handle(in, out[:0], fault.Exception)
		w.Reset()
		if s.framing == TCP {
			err = writeMBAP(&w, txn, unit, resp, buf)
		} else {
			err = writeRTU(&w, unit, resp, buf, fault.Corrupt)
		}
		if err == nil {
			_, _ = s.pc.WriteTo(w.Bytes(), from)
		}
	}
}

func (s *Server) record(r *Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	r.Seq = s.seq
	if len(s.log) < s.logSize {
		s.log = append(s.log, *r)
		return
	}
	s.log[s.logHead] = *r
	s.logHead = (s.logHead + 1) % s.logSize
	s.dropped++
}

func parseRequest(pdu []byte) Request {
	var r Request
	if len(pdu) == 0 {
		return r
	}
	r.Function = pdu[0]
	if len(pdu) >= 5 {
		r.Address = binary.BigEndian.Uint16(pdu[1:])
		r.Quantity = binary.BigEndian.Uint16(pdu[3:])
	}
	switch r.Function {
	case 0x01:
		r.Table = modbus.Coil
	case 0x02:
		r.Table = modbus.Discrete
	case 0x03:
		r.Table = modbus.Holding
	case 0x04:
		r.Table = modbus.Input
	case 0x05:
		r.Table, r.Quantity, r.Write = modbus.Coil, 1, true
	case 0x06:
		r.Table, r.Quantity, r.Write = modbus.Holding, 1, true
	case 0x0F:
		r.Table, r.Write = modbus.Coil, true
	case 0x10:
		r.Table, r.Write = modbus.Holding, true
	}
	return r
}

func exception(out []byte, fc uint8, code modbus.ExceptionCode) []byte {
	return append(out, fc|0x80, byte(code))
}

// handle answers one request PDU; out is reused for the response PDU.
func (s *Server) handle(pdu, out []byte, forced modbus.ExceptionCode) []byte {
	fc := pdu[0]
	if forced != 0 {
		return exception(out, fc, forced)
	}
	if fc == 0 || fc > 0x10 || (fc > 0x06 && fc < 0x0F) {
		return exception(out, fc, modbus.IllegalFunction)
	}
	if len(pdu) < 5 {
		return exception(out, fc, modbus.IllegalDataValue)
	}
	addr := binary.BigEndian.Uint16(pdu[1:])
	qty := binary.BigEndian.Uint16(pdu[3:])
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	switch fc {
	case 0x01, 0x02: // Application Protocol 6.1, 6.2
		if qty == 0 || qty > 2000 {
			return exception(out, fc, modbus.IllegalDataValue)
		}
		t := modbus.Coil
		if fc == 0x02 {
			t = modbus.Discrete
		}
		tb := s.tables[t]
		if !tb.covers(addr, qty, s.filled) {
			return exception(out, fc, modbus.IllegalDataAddress)
		}
		s.refreshLocked(now)
		n := (int(qty) + 7) / 8
		out = append(out, fc, byte(n))
		for i := 0; i < n; i++ {
			var b byte
			for j := 0; j < 8 && i*8+j < int(qty); j++ {
				if tb.bits[int(addr)-tb.first+i*8+j] {
					b |= 1 << j
				}
			}
			out = append(out, b)
		}
		return out
	case 0x03, 0x04: // 6.3, 6.4
		if qty == 0 || qty > 125 {
			return exception(out, fc, modbus.IllegalDataValue)
		}
		t := modbus.Holding
		if fc == 0x04 {
			t = modbus.Input
		}
		tb := s.tables[t]
		if !tb.covers(addr, qty, s.filled) {
			return exception(out, fc, modbus.IllegalDataAddress)
		}
		s.refreshLocked(now)
		out = append(out, fc, byte(2*qty))
		for _, r := range tb.regs[int(addr)-tb.first : int(addr)-tb.first+int(qty)] {
			out = binary.BigEndian.AppendUint16(out, r)
		}
		return out
	case 0x05: // 6.5
		v := qty
		if v != 0xFF00 && v != 0x0000 {
			return exception(out, fc, modbus.IllegalDataValue)
		}
		tb := s.tables[modbus.Coil]
		if !tb.covers(addr, 1, false) {
			return exception(out, fc, modbus.IllegalDataAddress)
		}
		s.refreshLocked(now)
		tb.bits[int(addr)-tb.first] = v == 0xFF00
		s.fixWrittenLocked(modbus.Coil, addr, 1)
		return append(out, pdu[:5]...)
	case 0x06: // 6.6
		tb := s.tables[modbus.Holding]
		if !tb.covers(addr, 1, false) {
			return exception(out, fc, modbus.IllegalDataAddress)
		}
		s.refreshLocked(now)
		tb.regs[int(addr)-tb.first] = qty
		s.fixWrittenLocked(modbus.Holding, addr, 1)
		return append(out, pdu[:5]...)
	case 0x0F: // 6.11
		if qty == 0 || qty > 0x7B0 || len(pdu) < 6 || int(pdu[5]) != (int(qty)+7)/8 || len(pdu) < 6+int(pdu[5]) {
			return exception(out, fc, modbus.IllegalDataValue)
		}
		tb := s.tables[modbus.Coil]
		if !tb.covers(addr, qty, false) {
			return exception(out, fc, modbus.IllegalDataAddress)
		}
		s.refreshLocked(now)
		for i := 0; i < int(qty); i++ {
			tb.bits[int(addr)-tb.first+i] = pdu[6+i/8]&(1<<(i%8)) != 0
		}
		s.fixWrittenLocked(modbus.Coil, addr, qty)
		return append(out, pdu[:5]...)
	case 0x10: // 6.12
		if qty == 0 || qty > 0x7B || len(pdu) < 6 || int(pdu[5]) != 2*int(qty) || len(pdu) < 6+2*int(qty) {
			return exception(out, fc, modbus.IllegalDataValue)
		}
		tb := s.tables[modbus.Holding]
		if !tb.covers(addr, qty, false) {
			return exception(out, fc, modbus.IllegalDataAddress)
		}
		s.refreshLocked(now)
		for i := 0; i < int(qty); i++ {
			tb.regs[int(addr)-tb.first+i] = binary.BigEndian.Uint16(pdu[6+2*i:])
		}
		s.fixWrittenLocked(modbus.Holding, addr, qty)
		return append(out, pdu[:5]...)
	}
	return exception(out, fc, modbus.IllegalFunction)
}

// fixWrittenLocked marks the points a write touched as fixed, so the
// written value stays.
func (s *Server) fixWrittenLocked(t modbus.Table, addr, qty uint16) {
	for _, i := range s.tables[t].points {
		p := s.profile.Points[i]
		n := p.Registers()
		if t.IsBits() {
			n = 1
		}
		if int(p.Address) < int(addr)+int(qty) && int(p.Address)+int(n) > int(addr) {
			s.fixed[i] = true
		}
	}
}

// refreshLocked re-encodes the moving values, at most once per tick.
func (s *Server) refreshLocked(now time.Time) {
	tick := int64(now.Sub(s.start) / s.tick)
	if tick == s.lastGen {
		return
	}
	s.lastGen = tick
	secs := float64(tick) * s.tick.Seconds()
	for i, p := range s.profile.Points {
		if s.fixed[i] {
			continue
		}
		v := Moving(p, i, secs)
		if err := s.storeLocked(i, v); err != nil {
			// A level the point's type cannot hold (a narrow scaled
			// integer): fall back to zero, which every type holds.
			_ = s.storeLocked(i, zeroOf(p))
		}
	}
}

func zeroOf(p modbus.Point) bridge.Value {
	switch p.Type {
	case modbus.Bool:
		return bridge.Bool(false)
	case modbus.String:
		return bridge.String("")
	}
	return bridge.Float(p.Offset)
}

// SocatPTY is a helper for serial tests: it starts socat linking two
// pseudo-terminals and returns their paths; stop ends socat. It fails when
// socat is not installed.
func SocatPTY(ctx context.Context, dir string) (a, b string, stop func(), err error) {
	return socatPTY(ctx, dir)
}
