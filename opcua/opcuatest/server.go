package opcuatest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/server/attrs"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"
)

// NamespaceURI is the namespace of the served variables. It is always at
// index 1 of the server's namespace array, so its node ids are "ns=1;s=Name"
// or, independent of the index, "nsu=urn:m2mbridge:opcuatest;s=Name".
const NamespaceURI = "urn:m2mbridge:opcuatest"

// Names of the served variables.
const (
	Counter     = "Counter"     // UInt32, +1 per tick
	Ramp        = "Ramp"        // Double, 0..99 then again
	Sine        = "Sine"        // Double, 100·sin(tick/10)
	Toggle      = "Toggle"      // Boolean, flips every tick
	Text        = "Text"        // String, "tick-<n>"
	Stamp       = "Stamp"       // DateTime, the tick's time
	Temperature = "Temperature" // Double with EngineeringUnits "°C"
	Fault       = "Fault"       // Double, status always BadSensorFailure, no value
	Stale       = "Stale"       // Double, status UncertainLastUsableValue
	Vector      = "Vector"      // Double array (ValueRank 1) of 3 elements
	Setpoint    = "Setpoint"    // Double, writable, does not move by itself
	Mode        = "Mode"        // Int32, writable, does not move by itself
)

// TemperatureUnit is the EngineeringUnits display name of [Temperature].
const TemperatureUnit = "°C"

// DefaultMaxNodesPerRead is the operation limit the server announces (node
// i=11705) and enforces (BadTooManyOperations) when Options leaves it zero.
const DefaultMaxNodesPerRead = 100

// Options configure a Server. The zero value is usable.
type Options struct {
	// Addr is the address clients connect to; default "127.0.0.1:0" (an
	// OS-chosen port). The simulator binary sets it.
	Addr string
	// Interval is how often the moving variables change. Zero means 100ms;
	// a negative value means never by themselves: call [Server.Tick]. The
	// server's CurrentTime (i=2258) is notified on every tick too, so a
	// client using it as a heartbeat (as package opcua does) sees silence
	// when ticks stop.
	Interval time.Duration
	// Extra adds this many Double variables named ExtraName(0), ExtraName(1)
	// ... whose value changes on every tick, for benchmarks.
	Extra int
	// MaxNodesPerRead is the operation limit announced and enforced; zero
	// means DefaultMaxNodesPerRead.
	MaxNodesPerRead uint32
	// AnnouncedMaxNodesPerRead, when not zero, is announced instead of
	// MaxNodesPerRead (which is still enforced): a server that lies about
	// its limit.
	AnnouncedMaxNodesPerRead uint32
	// MaxMonitoredItemsPerCall is the operation limit announced (node
	// i=11714) and enforced on CreateMonitoredItems; zero means no limit
	// (and none announced).
	MaxMonitoredItemsPerCall uint32
	// Logger receives the upstream server's log messages; nil discards
	// them. (*slog.Logger satisfies it.)
	Logger server.Logger
	// Security also offers the endpoints Basic256Sha256,
	// Aes128_Sha256_RsaOaep and Aes256_Sha256_RsaPss in modes Sign and
	// SignAndEncrypt, and user name authentication, with a server
	// certificate generated at New ([Server.Certificate]). The endpoints
	// are announced (for tests of endpoint selection and certificate
	// checks) but the upstream server v0.8.0 fails to decrypt a secured
	// OpenSecureChannel, so secure sessions do not work: test those
	// against node-opcua.
	Security bool
}

// ExtraName returns the name of the i-th extra variable ("x00042").
func ExtraName(i int) string { return fmt.Sprintf("x%05d", i) }

type variable struct {
	name     string
	id       *ua.NodeID
	key      string // id.String(), the monitored item map key
	dtype    ua.TypeID
	array    bool
	writable bool
	status   ua.StatusCode
	next     func(tick uint64, now time.Time) any // nil: static
	dv       atomic.Pointer[ua.DataValue]
}

// Server is an in-process OPC UA server with fault injection. Create it with
// [New] and stop it with [Server.Close].
type Server struct {
	opts  Options
	vars  []*variable
	byKey map[string]*variable
	named map[string]*variable
	cert  []byte
	key   *rsa.PrivateKey

	px        *proxy
	url       string
	pubHost   string
	pubPort   int
	innerPort int

	mu        sync.Mutex // guards srv, srvCancel, closed
	srv       *server.Server
	srvCancel context.CancelFunc
	closed    bool
	up        atomic.Bool

	statusMu  sync.Mutex // guards variable.status
	tick      atomic.Uint64
	reads     atomic.Uint64
	readNodes atomic.Uint64
	writes    atomic.Uint64
	creates   atomic.Uint64
	dropped   atomic.Uint64
	starts    atomic.Uint64

	stop chan struct{}
	wg   sync.WaitGroup
}

// New starts a Server on 127.0.0.1 with an OS-chosen port.
func New(opts Options) (*Server, error) {
	if opts.Interval == 0 {
		opts.Interval = 100 * time.Millisecond
	}
	if opts.MaxNodesPerRead == 0 {
		opts.MaxNodesPerRead = DefaultMaxNodesPerRead
	}
	if opts.Extra < 0 {
		return nil, fmt.Errorf("opcuatest: Extra %d is negative", opts.Extra)
	}
	s := &Server{
		opts:  opts,
		byKey: make(map[string]*variable),
		named: make(map[string]*variable),
		stop:  make(chan struct{}),
	}
	if opts.Security {
		cert, key, err := generateCert()
		if err != nil {
			return nil, fmt.Errorf("opcuatest: server certificate: %w", err)
		}
		s.cert, s.key = cert, key
	}
	s.defineVariables()
	now := time.Now()
	for _, v := range s.vars {
		s.update(v, 0, now)
	}

	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	px, err := newProxy(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("opcuatest: listen: %w", err)
	}
	s.px = px
	ta := px.ln.Addr().(*net.TCPAddr)
	s.pubHost, s.pubPort = ta.IP.String(), ta.Port
	if ta.IP.IsUnspecified() {
		// Listening on every interface: announce the host name, and use
		// the loopback address locally.
		s.pubHost = "127.0.0.1"
		if h, err := os.Hostname(); err == nil {
			s.pubHost = h
		}
		s.url = "opc.tcp://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ta.Port))
	} else {
		s.url = "opc.tcp://" + net.JoinHostPort(s.pubHost, strconv.Itoa(ta.Port))
	}
	px.encodedURL = binary.LittleEndian.AppendUint32(nil, uint32(len(s.url)))
	px.encodedURL = append(px.encodedURL, s.url...)

	if err := s.Start(context.Background()); err != nil {
		px.close()
		return nil, err
	}
	if opts.Interval > 0 {
		s.wg.Add(1)
		go s.ticker()
	}
	return s, nil
}

func (s *Server) defineVariables() {
	add := func(name string, t ua.TypeID, next func(uint64, time.Time) any) *variable {
		v := &variable{name: name, id: ua.NewStringNodeID(1, name), dtype: t, next: next}
		v.key = v.id.String()
		s.vars = append(s.vars, v)
		s.byKey[v.key] = v
		s.named[name] = v
		return v
	}
	add(Counter, ua.TypeIDUint32, func(t uint64, _ time.Time) any { return uint32(t) })
	add(Ramp, ua.TypeIDDouble, func(t uint64, _ time.Time) any { return float64(t % 100) })
	add(Sine, ua.TypeIDDouble, func(t uint64, _ time.Time) any { return 100 * math.Sin(float64(t)/10) })
	add(Toggle, ua.TypeIDBoolean, func(t uint64, _ time.Time) any { return t%2 == 1 })
	add(Text, ua.TypeIDString, func(t uint64, _ time.Time) any { return "tick-" + strconv.FormatUint(t, 10) })
	add(Stamp, ua.TypeIDDateTime, func(_ uint64, now time.Time) any { return now.UTC() })
	add(Temperature, ua.TypeIDDouble, func(t uint64, _ time.Time) any { return 20 + 5*math.Sin(float64(t)/20) })
	add(Fault, ua.TypeIDDouble, func(uint64, time.Time) any { return nil }).status = ua.StatusBadSensorFailure
	add(Stale, ua.TypeIDDouble, func(t uint64, _ time.Time) any { return float64(t) }).status = ua.StatusUncertainLastUsableValue
	add(Vector, ua.TypeIDDouble, func(t uint64, _ time.Time) any {
		f := float64(t)
		return []float64{f, f + 1, f + 2}
	}).array = true
	add(Setpoint, ua.TypeIDDouble, nil).writable = true
	add(Mode, ua.TypeIDInt32, nil).writable = true
	for i := 0; i < s.opts.Extra; i++ {
		off := float64(i)
		add(ExtraName(i), ua.TypeIDDouble, func(t uint64, _ time.Time) any { return float64(t) + off })
	}
}

func zeroOf(t ua.TypeID) any {
	switch t {
	case ua.TypeIDInt32:
		return int32(0)
	case ua.TypeIDUint32:
		return uint32(0)
	case ua.TypeIDBoolean:
		return false
	case ua.TypeIDString:
		return ""
	}
	return float64(0)
}

// update computes v's value for tick t and stores it; it reports whether the
// variable moves.
func (s *Server) update(v *variable, t uint64, now time.Time) bool {
	var val any
	if v.next != nil {
		val = v.next(t, now)
	} else if v.dv.Load() == nil {
		val = zeroOf(v.dtype)
	} else {
		return false
	}
	s.store(v, val, s.status(v), now)
	return true
}

func (s *Server) status(v *variable) ua.StatusCode {
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	return v.status
}

func (s *Server) store(v *variable, val any, status ua.StatusCode, now time.Time) {
	dv := &ua.DataValue{
		EncodingMask:    ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
		SourceTimestamp: now,
		ServerTimestamp: now,
	}
	if val != nil {
		dv.EncodingMask |= ua.DataValueValue
		dv.Value = ua.MustVariant(val)
	}
	if status != ua.StatusOK {
		dv.EncodingMask |= ua.DataValueStatusCode
		dv.Status = status
	}
	v.dv.Store(dv)
}

func (s *Server) ticker() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Tick()
		}
	}
}

var currentTime = ua.NewNumericNodeID(0, id.Server_ServerStatus_CurrentTime)

// Tick moves every moving variable one step and notifies subscribers, as the
// automatic ticker does every Interval. It also notifies the server's
// CurrentTime (i=2258), so a client can monitor it as a heartbeat.
func (s *Server) Tick() {
	t := s.tick.Add(1)
	now := time.Now()
	ids := make([]*variable, 0, len(s.vars))
	for _, v := range s.vars {
		if s.update(v, t, now) {
			ids = append(ids, v)
		}
	}
	s.notify(ids, true)
}

// Ticks returns how many ticks have happened.
func (s *Server) Ticks() uint64 { return s.tick.Load() }

// notify pushes the current values of vars to the monitored items watching
// them. It replaces the upstream ChangeNotification, which blocks forever
// (holding the monitored item lock) when a subscription's goroutine has
// ended but its items are not deleted yet: here a tick gives up after
// 250ms and counts what it could not deliver ([Server.Dropped]).
func (s *Server) notify(vars []*variable, heartbeat bool) {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil || srv.MonitoredItemService == nil {
		return
	}
	mis := srv.MonitoredItemService
	ns1, err1 := srv.Namespace(1)
	ns0, err0 := srv.Namespace(0)
	if err1 != nil || err0 != nil {
		return
	}
	deadline := time.NewTimer(250 * time.Millisecond)
	defer deadline.Stop()
	expired := false
	send := func(ns server.NameSpace, nid *ua.NodeID, key string) {
		for _, it := range mis.Nodes[key] {
			if it == nil || it.Sub == nil || it.Req == nil || it.Req.ItemToMonitor == nil {
				continue
			}
			n := &ua.MonitoredItemNotification{
				ClientHandle: it.Req.RequestedParameters.ClientHandle,
				Value:        ns.Attribute(nid, it.Req.ItemToMonitor.AttributeID),
			}
			if expired {
				select {
				case it.Sub.NotifyChannel <- n:
				default:
					s.dropped.Add(1)
				}
				continue
			}
			select {
			case it.Sub.NotifyChannel <- n:
			case <-deadline.C:
				expired = true
				s.dropped.Add(1)
			}
		}
	}
	mis.Mu.Lock()
	defer mis.Mu.Unlock()
	for _, v := range vars {
		send(ns1, v.id, v.key)
	}
	if heartbeat {
		send(ns0, currentTime, currentTime.String())
	}
}

// Set gives the variable a new value (with SourceTimestamp now and status
// Good, or the variable's fixed status) and notifies subscribers. The value
// must have the variable's type: float64, int32, uint32, bool, string,
// time.Time, or []float64 for Vector.
func (s *Server) Set(name string, value any) error {
	v, ok := s.named[name]
	if !ok {
		return fmt.Errorf("opcuatest: no variable %q", name)
	}
	vr, err := ua.NewVariant(value)
	if err != nil {
		return fmt.Errorf("opcuatest: %s: %w", name, err)
	}
	if vr.Type() != v.dtype {
		return fmt.Errorf("opcuatest: %s: value of type %s, want %s", name,
			strings.TrimPrefix(vr.Type().String(), "TypeID"), strings.TrimPrefix(v.dtype.String(), "TypeID"))
	}
	s.store(v, value, s.status(v), time.Now())
	s.notify([]*variable{v}, false)
	return nil
}

// SetStatus gives the variable a new status from now on (ua.StatusOK for
// Good), keeping its value, and notifies subscribers: a way to inject Bad
// or Uncertain values into any variable.
func (s *Server) SetStatus(name string, status ua.StatusCode) error {
	v, ok := s.named[name]
	if !ok {
		return fmt.Errorf("opcuatest: no variable %q", name)
	}
	s.statusMu.Lock()
	v.status = status
	s.statusMu.Unlock()
	var val any
	if dv := v.dv.Load(); dv != nil && dv.Value != nil {
		val = dv.Value.Value()
	}
	s.store(v, val, status, time.Now())
	s.notify([]*variable{v}, false)
	return nil
}

// Delay makes the proxy hold every chunk of bytes for d before passing it
// on, in both directions (0 turns it off): a slow network or an
// overloaded server.
func (s *Server) Delay(d time.Duration) { s.px.delay.Store(int64(d)) }

// HideEndpoints makes GetEndpoints answer an empty list while on is true, as
// some servers do while they start: the endpoint URL in clients' requests
// is replaced by one the server does not serve (on connections using
// security policy None, where requests are plaintext; GetEndpoints always
// is).
func (s *Server) HideEndpoints(on bool) { s.px.hide.Store(on) }

// Value returns the variable's current value, nil when it has none.
func (s *Server) Value(name string) any {
	v, ok := s.named[name]
	if !ok {
		return nil
	}
	dv := v.dv.Load()
	if dv == nil || dv.Value == nil {
		return nil
	}
	return dv.Value.Value()
}

// NodeID returns the node id of a served variable ("ns=1;s=Counter").
func NodeID(name string) string { return "ns=1;s=" + name }

// FolderNodeID is the folder holding the served variables (the namespace's
// Objects folder); it is also referenced from the standard Objects folder.
const FolderNodeID = "ns=1;i=85"

// Names returns the names of the served variables, in a fixed order.
func (s *Server) Names() []string {
	names := make([]string, len(s.vars))
	for i, v := range s.vars {
		names[i] = v.name
	}
	return names
}

// URL returns the endpoint URL, "opc.tcp://127.0.0.1:<port>". It stays the
// same across [Server.Restart].
func (s *Server) URL() string { return s.url }

// Addr returns the host:port clients connect to.
func (s *Server) Addr() string { return s.px.ln.Addr().String() }

// Certificate returns the server's DER certificate when Options.Security is
// set, else nil.
func (s *Server) Certificate() []byte { return s.cert }

// Reads returns how many Read requests the server has answered (including
// refused ones), and ReadNodes how many nodes they asked for in total.
func (s *Server) Reads() uint64 { return s.reads.Load() }

// ReadNodes returns the total number of nodes asked for by Read requests.
func (s *Server) ReadNodes() uint64 { return s.readNodes.Load() }

// CreateMonitoredItemsCalls returns how many CreateMonitoredItems requests
// the server has answered.
func (s *Server) CreateMonitoredItemsCalls() uint64 { return s.creates.Load() }

// Writes returns how many Write requests the server has answered.
func (s *Server) Writes() uint64 { return s.writes.Load() }

// Dropped returns how many value notifications could not be handed to a
// subscription in time (see the package doc).
func (s *Server) Dropped() uint64 { return s.dropped.Load() }

// Starts returns how many times the server was started (1 after New, +1 per
// Restart or Start of a stopped server).
func (s *Server) Starts() uint64 { return s.starts.Load() }

// Connections returns the number of client connections currently open.
func (s *Server) Connections() int { return s.px.count() }

// Accepted returns how many client connections the server accepted in total
// (including those refused while it was stopped).
func (s *Server) Accepted() uint64 { return s.px.accepted.Load() }

// DropConnections closes every client connection at once, as a network
// failure or a server crash would; the server keeps running and accepts new
// connections. Sessions and subscriptions stay on the server until they time
// out. It returns how many connections were dropped.
func (s *Server) DropConnections() int { return s.px.drop() }

// Blackhole makes every client connection silent while on is true: bytes in
// both directions are read and discarded, connections stay open. It
// simulates a dead network path that TCP has not noticed yet.
func (s *Server) Blackhole(on bool) { s.px.blackhole.Store(on) }

// Stop takes the server down, as if its process ended: every client is
// disconnected, new connections are refused until [Server.Start], and every
// subscription is deleted. (The upstream server cannot be restarted and
// takes seconds to build, so it keeps running behind the proxy; the
// sessions it had stay valid, unlike after a real restart. Clients that
// rebuild their sessions, as they must after a real restart, cannot tell.)
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	s.up.Store(false)
	s.px.setTarget("")
	s.px.drop()
	if srv == nil {
		return nil
	}
	deleteSubscriptions(srv)
	return ctx.Err()
}

// deleteSubscriptions ends the upstream subscription goroutines now rather
// than when their lifetime runs out.
func deleteSubscriptions(srv *server.Server) {
	ss := srv.SubscriptionService
	if ss == nil {
		return
	}
	ss.Mu.Lock()
	ids := make([]uint32, 0, len(ss.Subs))
	for id := range ss.Subs {
		ids = append(ids, id)
	}
	ss.Mu.Unlock()
	for _, id := range ids {
		ss.DeleteSubscription(id)
	}
}

// Start brings a stopped server up again on the same address, with the same
// variables and values. Start on a running server does nothing.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("opcuatest: server closed")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("opcuatest: start: %w", err)
	}
	if s.srv == nil {
		var lastErr error
		for attempt := 0; attempt < 10 && s.srv == nil; attempt++ {
			port, err := freePort()
			if err != nil {
				return fmt.Errorf("opcuatest: reserve port: %w", err)
			}
			srv := s.build(port)
			sctx, cancel := context.WithCancel(context.Background())
			if err := srv.Start(sctx); err != nil {
				cancel()
				lastErr = err // the reserved port was taken meanwhile: retry
				continue
			}
			s.innerPort, s.srv, s.srvCancel = port, srv, cancel
		}
		if s.srv == nil {
			return fmt.Errorf("opcuatest: start: %w", lastErr)
		}
	}
	if !s.up.Swap(true) {
		s.starts.Add(1)
		s.px.setTarget(net.JoinHostPort("127.0.0.1", strconv.Itoa(s.innerPort)))
	}
	return nil
}

// Restart stops the server and starts it again on the same address: clients
// lose their connection and subscriptions.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(ctx); err != nil {
		return err
	}
	return s.Start(ctx)
}

// Shutdown stops the server and its ticker and waits for its goroutines, or
// until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	srv, cancel := s.srv, s.srvCancel
	s.mu.Unlock()
	close(s.stop)
	s.up.Store(false)
	s.px.close() // clients gone first, so that the upstream Close is quick
	done := make(chan struct{})
	go func() {
		defer close(done)
		if srv != nil {
			deleteSubscriptions(srv)
			srv.Close()
			cancel()
		}
		s.wg.Wait()
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("opcuatest: shutdown: %w", ctx.Err())
	}
}

// Close is Shutdown bounded by five seconds.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Shutdown(ctx)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// quiet drops the upstream server's log output.
type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Error(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}

// build creates a gopcua server listening on 127.0.0.1:port whose endpoint
// list also names the proxy's URL, so that clients connecting through the
// proxy find their endpoint.
func (s *Server) build(port int) *server.Server {
	var logger server.Logger = quiet{}
	if s.opts.Logger != nil {
		logger = s.opts.Logger
	}
	opts := []server.Option{
		server.EndPoint("127.0.0.1", port),
		server.EndPoint(s.pubHost, s.pubPort),
		server.ServerName("m2mbridge opcuatest"),
		server.SetLogger(logger),
		server.EnableSecurity("None", ua.MessageSecurityModeNone),
		server.EnableAuthMode(ua.UserTokenTypeAnonymous),
	}
	if s.opts.Security {
		opts = append(opts, server.PrivateKey(s.key), server.Certificate(s.cert))
		for _, p := range []string{"Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"} {
			opts = append(opts,
				server.EnableSecurity(p, ua.MessageSecurityModeSign),
				server.EnableSecurity(p, ua.MessageSecurityModeSignAndEncrypt))
		}
		opts = append(opts, server.EnableAuthMode(ua.UserTokenTypeUserName))
	}
	srv := server.New(opts...)
	ns := server.NewNodeNameSpace(srv, NamespaceURI)
	folder := ns.Objects()
	if root := srv.Node(ua.NewNumericNodeID(0, id.ObjectsFolder)); root != nil {
		root.AddRef(folder, server.RefType(id.Organizes), true)
	}
	for _, v := range s.vars {
		n := s.node(v)
		ns.AddNode(n)
		folder.AddRef(n, server.RefType(id.HasComponent), true)
		if v.name == Temperature {
			eu := euNode(v)
			ns.AddNode(eu)
			n.AddRef(eu, server.RefType(id.HasProperty), true)
		}
	}
	// Registered before Start, these replace the upstream handlers.
	srv.RegisterHandler(id.ReadRequest_Encoding_DefaultBinary, s.handleRead(srv))
	srv.RegisterHandler(id.WriteRequest_Encoding_DefaultBinary, s.handleWrite(srv))
	srv.RegisterHandler(id.CreateMonitoredItemsRequest_Encoding_DefaultBinary, s.handleCreateMonitoredItems(srv))
	srv.RegisterHandler(id.DeleteMonitoredItemsRequest_Encoding_DefaultBinary, s.handleDeleteMonitoredItems(srv))
	return srv
}

func (s *Server) node(v *variable) *server.Node {
	access := byte(ua.AccessLevelTypeCurrentRead)
	if v.writable {
		access |= byte(ua.AccessLevelTypeCurrentWrite)
	}
	rank := int32(-1)
	if v.array {
		rank = 1
	}
	return server.NewNode(v.id, server.Attributes{
		ua.AttributeIDNodeClass:       server.DataValueFromValue(uint32(ua.NodeClassVariable)),
		ua.AttributeIDBrowseName:      server.DataValueFromValue(&ua.QualifiedName{NamespaceIndex: 1, Name: v.name}),
		ua.AttributeIDDisplayName:     server.DataValueFromValue(attrs.DisplayName(v.name, "")),
		ua.AttributeIDDataType:        server.DataValueFromValue(ua.NewNumericExpandedNodeID(0, uint32(v.dtype))),
		ua.AttributeIDValueRank:       server.DataValueFromValue(rank),
		ua.AttributeIDAccessLevel:     server.DataValueFromValue(access),
		ua.AttributeIDUserAccessLevel: server.DataValueFromValue(access),
	}, nil, func() *ua.DataValue { return v.dv.Load() })
}

func euNode(v *variable) *server.Node {
	eu := ua.NewExtensionObject(&ua.EUInformation{
		NamespaceURI: "http://www.opcfoundation.org/UA/units/un/cefact",
		UnitID:       4408652, // UNECE code CEL (degree Celsius)
		DisplayName:  ua.NewLocalizedText(TemperatureUnit),
		Description:  ua.NewLocalizedText("degree Celsius"),
	})
	val := &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(eu)}
	return server.NewNode(ua.NewStringNodeID(1, v.name+".EngineeringUnits"), server.Attributes{
		ua.AttributeIDNodeClass:   server.DataValueFromValue(uint32(ua.NodeClassVariable)),
		ua.AttributeIDBrowseName:  server.DataValueFromValue(&ua.QualifiedName{Name: "EngineeringUnits"}),
		ua.AttributeIDDisplayName: server.DataValueFromValue(attrs.DisplayName("EngineeringUnits", "")),
		ua.AttributeIDDataType:    server.DataValueFromValue(ua.NewNumericExpandedNodeID(0, id.EUInformation)),
		ua.AttributeIDValueRank:   server.DataValueFromValue(int32(-1)),
	}, nil, func() *ua.DataValue { return val })
}

func header(req ua.Request, status ua.StatusCode) *ua.ResponseHeader {
	return &ua.ResponseHeader{
		Timestamp:          time.Now(),
		RequestHandle:      req.Header().RequestHandle,
		ServiceResult:      status,
		ServiceDiagnostics: &ua.DiagnosticInfo{},
		StringTable:        []string{},
		AdditionalHeader:   ua.NewExtensionObject(nil),
	}
}

var (
	maxNodesPerRead = ua.NewNumericNodeID(0, id.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead)
	maxMonPerCall   = ua.NewNumericNodeID(0, id.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall)
)

// handleCreateMonitoredItems counts the requests and enforces
// MaxMonitoredItemsPerCall before handing over to the upstream handler
// (registered first, this one replaces it; the upstream service object
// exists once the server has started).
func (s *Server) handleCreateMonitoredItems(srv *server.Server) server.Handler {
	return func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		req, ok := r.(*ua.CreateMonitoredItemsRequest)
		if !ok {
			return nil, ua.StatusBadRequestTypeInvalid
		}
		s.creates.Add(1)
		switch {
		case len(req.ItemsToCreate) == 0:
			return nil, ua.StatusBadNothingToDo
		case s.opts.MaxMonitoredItemsPerCall > 0 && uint32(len(req.ItemsToCreate)) > s.opts.MaxMonitoredItemsPerCall:
			return nil, ua.StatusBadTooManyOperations
		}
		return srv.MonitoredItemService.CreateMonitoredItems(sc, r, reqID)
	}
}

// handleDeleteMonitoredItems answers unknown ids with
// BadMonitoredItemIdInvalid; the upstream handler panics on them.
func (s *Server) handleDeleteMonitoredItems(srv *server.Server) server.Handler {
	return func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		req, ok := r.(*ua.DeleteMonitoredItemsRequest)
		if !ok {
			return nil, ua.StatusBadRequestTypeInvalid
		}
		mis := srv.MonitoredItemService
		results := make([]ua.StatusCode, len(req.MonitoredItemIDs))
		var known []uint32
		mis.Mu.Lock()
		for i, id := range req.MonitoredItemIDs {
			if it, ok := mis.Items[id]; !ok || it == nil || it.Sub == nil {
				results[i] = ua.StatusBadMonitoredItemIDInvalid
				continue
			}
			known = append(known, id)
		}
		mis.Mu.Unlock()
		for _, id := range known {
			mis.DeleteMonitoredItem(id)
		}
		return &ua.DeleteMonitoredItemsResponse{ResponseHeader: header(req, ua.StatusOK), Results: results, DiagnosticInfos: []*ua.DiagnosticInfo{}}, nil
	}
}

// handleRead answers Read requests like the upstream handler, but counts
// them, announces Options.MaxNodesPerRead and refuses requests above it or
// empty ones, as the specification says a server should (Part 4, 5.10.2).
func (s *Server) handleRead(srv *server.Server) server.Handler {
	return func(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
		req, ok := r.(*ua.ReadRequest)
		if !ok {
			return nil, ua.StatusBadRequestTypeInvalid
		}
		s.reads.Add(1)
		s.readNodes.Add(uint64(len(req.NodesToRead)))
		switch {
		case len(req.NodesToRead) == 0:
			return nil, ua.StatusBadNothingToDo
		case uint32(len(req.NodesToRead)) > s.opts.MaxNodesPerRead:
			return nil, ua.StatusBadTooManyOperations
		}
		results := make([]*ua.DataValue, len(req.NodesToRead))
		for i, n := range req.NodesToRead {
			if n.NodeID != nil && n.NodeID.Equal(maxNodesPerRead) && n.AttributeID == ua.AttributeIDValue {
				announced := s.opts.MaxNodesPerRead
				if s.opts.AnnouncedMaxNodesPerRead != 0 {
					announced = s.opts.AnnouncedMaxNodesPerRead
				}
				results[i] = &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(announced)}
				continue
			}
			if n.NodeID != nil && n.NodeID.Equal(maxMonPerCall) && n.AttributeID == ua.AttributeIDValue {
				results[i] = &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(s.opts.MaxMonitoredItemsPerCall)}
				continue
			}
			ns, err := srv.Namespace(int(n.NodeID.Namespace()))
			if err != nil {
				results[i] = &ua.DataValue{EncodingMask: ua.DataValueStatusCode, Status: ua.StatusBadNodeIDUnknown}
				continue
			}
			results[i] = ns.Attribute(n.NodeID, n.AttributeID)
		}
		return &ua.ReadResponse{ResponseHeader: header(req, ua.StatusOK), Results: results, DiagnosticInfos: []*ua.DiagnosticInfo{}}, nil
	}
}

// handleWrite answers Write requests for the served variables with a type
// check (BadTypeMismatch) and an access check (BadNotWritable), keeping the
// variable's value function intact (the upstream handler replaces it).
func (s *Server) handleWrite(srv *server.Server) server.Handler {
	return func(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
		req, ok := r.(*ua.WriteRequest)
		if !ok {
			return nil, ua.StatusBadRequestTypeInvalid
		}
		s.writes.Add(1)
		if len(req.NodesToWrite) == 0 {
			return nil, ua.StatusBadNothingToDo
		}
		results := make([]ua.StatusCode, len(req.NodesToWrite))
		var changed []*variable
		for i, w := range req.NodesToWrite {
			v := s.byKey[w.NodeID.String()]
			switch {
			case v == nil:
				results[i] = ua.StatusBadNodeIDUnknown
			case w.AttributeID != ua.AttributeIDValue || !v.writable:
				results[i] = ua.StatusBadNotWritable
			case w.Value == nil || w.Value.Value == nil || w.Value.Value.Type() != v.dtype || w.Value.Value.ArrayLength() > 0:
				results[i] = ua.StatusBadTypeMismatch
			default:
				s.store(v, w.Value.Value.Value(), s.status(v), time.Now())
				changed = append(changed, v)
			}
		}
		if len(changed) > 0 {
			go s.notify(changed, false) // not under the server's request loop
		}
		return &ua.WriteResponse{ResponseHeader: header(req, ua.StatusOK), Results: results, DiagnosticInfos: []*ua.DiagnosticInfo{}}, nil
	}
}

// generateCert makes a self-signed RSA certificate for the server with its
// application URI and 127.0.0.1/localhost as subject alternative names.
func generateCert() ([]byte, *rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, nil, err
	}
	appURI, _ := url.Parse("urn:m2mbridge:opcuatest:server")
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "m2mbridge opcuatest", Organization: []string{"m2mbridge"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageContentCommitment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		URIs:                  []*url.URL{appURI},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	return der, key, nil
}
