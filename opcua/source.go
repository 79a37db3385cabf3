package opcua

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uacp"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/redact"
)

// Errors a [Source] returns or wraps.
var (
	// ErrAuthentication is wrapped by the error Run returns when the server
	// rejects the configured identity (wrong user name or password,
	// rejected certificate token). Retrying would not help.
	ErrAuthentication = errors.New("opcua: authentication rejected")
	// ErrNoEndpoint is wrapped when the server offers no endpoint with the
	// configured security policy, mode and authentication.
	ErrNoEndpoint = errors.New("opcua: no matching endpoint")
	// ErrNotConnected is returned by WriteNode and Write while the source
	// has no connection.
	ErrNotConnected = errors.New("opcua: not connected")
	// ErrUnknownNode is returned by WriteNode for a name not in the Config
	// (Write answers bridge.ErrUnknownPoint).
	ErrUnknownNode = errors.New("opcua: unknown node")
	// ErrSilent is the reason of the Bad samples emitted when a
	// subscription stayed silent longer than Config.Watchdog.
	ErrSilent = errors.New("opcua: subscription silent")
)

// Stats are a Source's counters since New.
type Stats struct {
	Connects        uint64 // sessions established
	ConnectFailures uint64 // connection attempts that failed
	Reconnects      uint64 // established sessions that were lost and rebuilt
	WatchdogTrips   uint64 // connections rebuilt because a subscription went silent
	Reads           uint64 // Read requests sent by the poller
	Notifications   uint64 // data change notifications received
	Samples         uint64 // samples handed to the Emitter
	// Dropped is always 0: the source has no queue of its own any more
	// (the Bridge owns the queues and counts their losses).
	//
	// Deprecated: read bridge.SourceStats instead.
	Dropped   uint64
	Connected bool // whether a session is up now
}

var _ bridge.HealthReporter = (*Source)(nil)

// Source reads one OPC UA server and produces a [bridge.Sample] per node
// reading. Create it with [New]; run it with Run.
type Source struct {
	st *settings

	running  atomic.Bool
	stats    struct{ connects, failures, reconnects, trips, reads, notifs, samples atomic.Uint64 }
	certMu   sync.Mutex
	cert     []byte
	key      *rsa.PrivateKey
	certDone bool

	mu     sync.Mutex
	live   *session
	health bridge.Health

	// onSleep, when set (by tests), is told every backoff delay.
	onSleep func(time.Duration)

	// guard relays every connection of the Source (guard.go); guardErr is
	// the last reason it cut one, taken by the connection loop.
	guardMu  sync.Mutex
	guard    *guard
	guardErr atomic.Pointer[error]

	// readCap is a MaxNodesPerRead learnt from BadTooManyOperations
	// answers, kept across connections (0: none). A refused Read is a Bad
	// service result, which also ends the upstream client's publish loop
	// and so the connection: without this the next connection would
	// trust the announced limit again.
	readCap atomic.Int64
}

// New validates cfg with [Config.Validate] and returns a Source. A Config
// that does not validate gives a [*ConfigError] holding every problem. New
// does no network I/O; it reads PasswordEnv and PasswordFile.
func New(cfg Config) (*Source, error) {
	st, err := cfg.check()
	if err != nil {
		name := cfg.Name
		if name == "" {
			name = "(unnamed)"
		}
		var fields []error
		for _, fe := range bridge.FieldErrors(err) {
			fields = append(fields, fe)
		}
		return nil, &ConfigError{Name: name, Fields: fields}
	}
	return &Source{st: st, health: bridge.Health{Since: time.Now(), Reason: "not started"}}, nil
}

// Health reports the state of the connection to the server, as
// [bridge.HealthReporter] asks: Up while a session is established; before
// Run "not started", during the first attempt "connecting", after a failed
// attempt or a lost session the error (for example one wrapping
// [ErrNoEndpoint], "opcua: no matching endpoint: ..."), and "stopped" once
// Run has returned. Since is when Up last changed.
func (s *Source) Health() bridge.Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.health
}

func (s *Source) setHealth(up bool, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if up != s.health.Up {
		s.health.Since = time.Now()
	}
	s.health.Up, s.health.Reason = up, reason
}

// Name returns the Config's Name, the Sample.Source of its samples.
func (s *Source) Name() string { return s.st.Name }

// Stats returns the Source's counters.
func (s *Source) Stats() Stats {
	s.mu.Lock()
	connected := s.live != nil
	s.mu.Unlock()
	return Stats{
		Connects:        s.stats.connects.Load(),
		ConnectFailures: s.stats.failures.Load(),
		Reconnects:      s.stats.reconnects.Load(),
		WatchdogTrips:   s.stats.trips.Load(),
		Reads:           s.stats.reads.Load(),
		Notifications:   s.stats.notifs.Load(),
		Samples:         s.stats.samples.Load(),
		Connected:       connected,
	}
}

// Run connects to the server and produces samples into out until ctx ends;
// see the package documentation for the connection lifecycle. It returns nil
// when ctx ends or when out returns [bridge.ErrClosed], or an error wrapping
// [ErrAuthentication] or [ErrUntrustedServer] when the server rejects the
// configuration for good. Run may be called once.
func (s *Source) Run(ctx context.Context, out bridge.Emitter) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("opcua: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer s.setHealth(false, "stopped")
	defer s.closeGuard()
	return s.loop(ctx, &emitter{s: s, out: out, cancel: cancel})
}

// emitter hands batches to the Bridge, in the goroutine that made them.
type emitter struct {
	s      *Source
	out    bridge.Emitter
	cancel context.CancelFunc
}

// emit hands batch to out. It returns false when Run must end: ctx ended
// or the Bridge is closed (then it cancels Run's context). Other errors
// are the Bridge's to count; the source goes on.
func (e *emitter) emit(ctx context.Context, batch []bridge.Sample) bool {
	if len(batch) == 0 {
		return true
	}
	e.s.stats.samples.Add(uint64(len(batch)))
	err := e.out.Emit(ctx, batch)
	switch {
	case err == nil:
		return true
	case ctx.Err() != nil:
		return false
	case errors.Is(err, bridge.ErrClosed):
		e.cancel()
		return false
	}
	return true
}

// loop connects, serves and reconnects with backoff until ctx ends.
func (s *Source) loop(ctx context.Context, q *emitter) error {
	st := s.st
	backoff := st.ReconnectMin
	s.setHealth(false, "connecting")
	for {
		sess, err := s.connect(ctx)
		if ctx.Err() != nil {
			if sess != nil {
				s.closeSession(sess)
			}
			return nil
		}
		if err != nil {
			s.stats.failures.Add(1)
			s.setHealth(false, err.Error())
			s.badAll(ctx, q, err)
			if permanent(err) {
				return &sourceError{name: st.Name, err: err}
			}
			if !s.sleep(ctx, jitter(backoff)) {
				return nil
			}
			backoff = min(backoff*2, st.ReconnectMax)
			continue
		}
		s.stats.connects.Add(1)
		started := time.Now()
		s.setLive(sess)
		s.setHealth(true, "")
		if st.Mode == Poll {
			err = s.poll(ctx, sess, q)
		} else {
			err = s.subscribe(ctx, sess, q)
		}
		s.setLive(nil)
		s.closeSession(sess)
		if ctx.Err() != nil {
			return nil
		}
		err = fmt.Errorf("connection lost: %w", s.explain(err))
		s.setHealth(false, err.Error())
		s.stats.reconnects.Add(1)
		s.badAll(ctx, q, err)
		// A session that delivered data was a good one: the next outage
		// starts again from ReconnectMin, however short the session was.
		if sess.delivered || time.Since(started) > st.ReconnectMax {
			backoff = st.ReconnectMin
		}
		if !s.sleep(ctx, jitter(backoff)) {
			return nil
		}
		backoff = min(backoff*2, st.ReconnectMax)
	}
}

// sourceError names the source in front of an error, without repeating
// the package prefix of the error it wraps.
type sourceError struct {
	name string
	err  error
}

func (e *sourceError) Error() string {
	return "opcua: source " + e.name + ": " + strings.TrimPrefix(e.err.Error(), "opcua: ")
}

func (e *sourceError) Unwrap() error { return e.err }

// permanent tells the errors that retrying cannot fix. ErrNoEndpoint is
// not one: a server may offer no endpoints while it starts.
func permanent(err error) bool {
	return errors.Is(err, ErrAuthentication) || errors.Is(err, ErrUntrustedServer)
}

// jitter returns d ± 20%.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d - d/5 + time.Duration(rand.Int64N(int64(d/5)*2+1))
}

func (s *Source) sleep(ctx context.Context, d time.Duration) bool {
	if s.onSleep != nil {
		s.onSleep(d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (s *Source) setLive(sess *session) {
	s.mu.Lock()
	s.live = sess
	s.mu.Unlock()
}

func (s *Source) getLive() *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live
}

// sample returns a sample of node i with its identity fields set.
func (s *Source) sample(sess *session, i int) bridge.Sample {
	smp := bridge.Sample{Source: s.st.Name, Point: s.st.nodes[i].Name, Unit: s.st.nodes[i].Unit}
	if sess != nil {
		smp.Unit = sess.nodes[i].unit
	}
	return smp
}

// badAll emits a Bad sample for every node with err as the reason and the
// StatusCode err wraps (BadCommunicationError when none) as the code.
func (s *Source) badAll(ctx context.Context, q *emitter, err error) {
	code := ua.StatusBadCommunicationError
	var sc ua.StatusCode
	if errors.As(err, &sc) && sc != ua.StatusOK {
		code = sc
	}
	now := time.Now()
	batch := make([]bridge.Sample, len(s.st.nodes))
	for i := range batch {
		batch[i] = s.sample(nil, i)
		batch[i].Time, batch[i].Quality, batch[i].Code, batch[i].Reason = now, bridge.Bad, uint32(code), err.Error()
	}
	q.emit(ctx, batch)
}

// session is one connection: client, secure channel, session, and what was
// learnt about the nodes at connect.
type session struct {
	c        *opcua.Client
	nodes    []liveNode
	maxRead  int
	maxMon   int
	lost     chan struct{}
	stop     chan struct{}
	drained  chan struct{}
	readable []int // indexes of nodes that can be read

	delivered bool // a read succeeded or a data change arrived
}

type liveNode struct {
	id    *ua.NodeID
	err   error         // why the node cannot be read; nil when it can
	code  ua.StatusCode // the status for err
	unit  string
	dtype *ua.NodeID
}

func (s *Source) clientCert() ([]byte, *rsa.PrivateKey, error) {
	s.certMu.Lock()
	defer s.certMu.Unlock()
	if !s.certDone {
		cert, key, err := s.st.clientCert()
		if err != nil {
			return nil, nil, err
		}
		s.cert, s.key, s.certDone = cert, key, true
	}
	return s.cert, s.key, nil
}

// connect opens a new client: endpoint selection, server verification,
// secure channel, session, namespace resolution and node metadata.
func (s *Source) connect(ctx context.Context) (*session, error) {
	st := s.st
	cert, key, err := s.clientCert()
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 4*st.Timeout)
	defer cancel()
	g, err := s.openGuard()
	if err != nil {
		return nil, err
	}
	s.takeGuardErr()
	eps, err := opcua.GetEndpoints(cctx, g.localURL, opcua.Dialer(s.dialer()), opcua.RequestTimeout(st.Timeout))
	if err != nil {
		return nil, fmt.Errorf("get endpoints: %w", s.explain(err))
	}
	ep, err := st.selectEndpoint(eps)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoEndpoint, err)
	}
	if st.policyURI != ua.SecurityPolicyURINone || st.pin != nil || st.TrustDir != "" {
		if err := st.verifyServer(ep.ServerCertificate); err != nil {
			return nil, err
		}
	}

	stateCh := make(chan opcua.ConnState, 8)
	opts := []opcua.Option{
		opcua.AutoReconnect(false), // see the package doc: the adapter rebuilds instead
		opcua.Dialer(s.dialer()),
		opcua.RequestTimeout(st.Timeout),
		opcua.SessionTimeout(max(30*time.Second, 3*st.Watchdog)),
		opcua.StateChangedCh(stateCh),
		opcua.ApplicationName("m2mbridge"),
		opcua.ApplicationURI(st.ApplicationURI),
		opcua.ProductURI("urn:m2mbridge"),
	}
	if cert != nil {
		opts = append(opts, opcua.Certificate(cert), opcua.PrivateKey(key))
	}
	switch st.auth {
	case ua.UserTokenTypeUserName:
		opts = append(opts, opcua.AuthUsername(st.Username, st.password))
	case ua.UserTokenTypeCertificate:
		opts = append(opts, opcua.AuthCertificate(cert), opcua.AuthPrivateKey(key))
	default:
		opts = append(opts, opcua.AuthAnonymous())
	}
	opts = append(opts, opcua.SecurityFromEndpoint(ep, st.auth))
	c, err := opcua.NewClient(g.localURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	sess := &session{c: c, lost: make(chan struct{}, 1), stop: make(chan struct{}), drained: make(chan struct{})}
	// The state channel must be drained or the client blocks on it.
	go func() {
		defer close(sess.drained)
		for {
			select {
			case <-sess.stop:
				return
			case cs := <-stateCh:
				if cs == opcua.Disconnected || cs == opcua.Closed {
					select {
					case sess.lost <- struct{}{}:
					default:
					}
				}
			}
		}
	}()
	if err := c.Connect(cctx); err != nil {
		s.closeSession(sess)
		err = s.explain(err)
		if isAuthError(err) {
			who := "anonymous"
			if st.auth == ua.UserTokenTypeUserName {
				who = fmt.Sprintf("user %q", st.Username)
			} else if st.auth == ua.UserTokenTypeCertificate {
				who = "certificate"
			}
			return nil, fmt.Errorf("%w: %s: %w", ErrAuthentication, who, err)
		}
		return nil, fmt.Errorf("connect %s (%s/%s): %w", redact.URL(st.Endpoint), policyName(ep.SecurityPolicyURI), modeName(ep.SecurityMode), err)
	}
	// Drop what Connect signalled on the way up.
	for len(sess.lost) > 0 {
		<-sess.lost
	}
	if err := s.learn(cctx, sess); err != nil {
		s.closeSession(sess)
		return nil, s.explain(err)
	}
	return sess, nil
}

// dialer returns the upstream client's dialer: its own Acknowledge limits
// (the upstream options MaxMessageSize and friends write to a shared
// default) and the Timeout.
func (s *Source) dialer() *uacp.Dialer {
	return &uacp.Dialer{
		Dialer: &net.Dialer{Timeout: s.st.Timeout},
		ClientACK: &uacp.Acknowledge{
			ReceiveBufSize: guardChunk,
			SendBufSize:    guardChunk,
			MaxMessageSize: guardMessage,
		},
	}
}

// openGuard starts the Source's guard, once.
func (s *Source) openGuard() (*guard, error) {
	s.guardMu.Lock()
	defer s.guardMu.Unlock()
	if s.guard == nil {
		g, err := newGuard(s.st.Endpoint, s.st.Timeout, s.st.mode == ua.MessageSecurityModeSign, func(err error) {
			s.guardErr.Store(&err)
		})
		if err != nil {
			return nil, err
		}
		s.guard = g
	}
	return s.guard, nil
}

// closeGuard stops the guard and waits for its goroutines.
func (s *Source) closeGuard() {
	s.guardMu.Lock()
	g := s.guard
	s.guard = nil
	s.guardMu.Unlock()
	if g != nil {
		g.close()
	}
}

func (s *Source) takeGuardErr() error {
	if p := s.guardErr.Swap(nil); p != nil {
		return *p
	}
	return nil
}

// explain returns the reason the guard cut the connection (the server
// could not be dialled, or sent a malformed message) instead of err, which
// is then only the client's view of it (EOF); err when the guard saw
// nothing.
func (s *Source) explain(err error) error {
	if gerr := s.takeGuardErr(); gerr != nil {
		return gerr
	}
	return err
}

func isAuthError(err error) bool {
	for _, sc := range []ua.StatusCode{ua.StatusBadUserAccessDenied, ua.StatusBadIdentityTokenRejected, ua.StatusBadIdentityTokenInvalid, ua.StatusBadUserSignatureInvalid} {
		if errors.Is(err, sc) {
			return true
		}
	}
	return false
}

// closeSession closes the client, bounded: a dead server must not hold up
// the rebuild.
func (s *Source) closeSession(sess *session) {
	ctx, cancel := context.WithTimeout(context.Background(), min(s.st.Timeout, time.Second))
	sess.c.Close(ctx)
	cancel()
	close(sess.stop)
	<-sess.drained
}

var (
	nodeMaxNodesPerRead = ua.NewNumericNodeID(0, id.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead)
	nodeMaxMonPerCall   = ua.NewNumericNodeID(0, id.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall)
	nodeCurrentTime     = ua.NewNumericNodeID(0, id.Server_ServerStatus_CurrentTime)
)

// learn resolves node ids against the namespace array, reads the operation
// limits and each node's ValueRank and DataType, and fills in units from
// EngineeringUnits.
func (s *Source) learn(ctx context.Context, sess *session) error {
	st := s.st
	c := sess.c
	res, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{
		{NodeID: nodeMaxNodesPerRead, AttributeID: ua.AttributeIDValue},
		{NodeID: nodeMaxMonPerCall, AttributeID: ua.AttributeIDValue},
	}})
	if err != nil {
		return fmt.Errorf("read operation limits: %w", err)
	}
	sess.maxRead, sess.maxMon = DefaultMaxNodesPerRead, DefaultMaxMonitoredItemsPerCall
	if len(res.Results) == 2 {
		if n := limit(res.Results[0]); n > 0 {
			sess.maxRead = n
		}
		if n := limit(res.Results[1]); n > 0 {
			sess.maxMon = n
		}
	}
	if c := int(s.readCap.Load()); c > 0 && c < sess.maxRead {
		sess.maxRead = c
	}

	namespaces := c.Namespaces()
	sess.nodes = make([]liveNode, len(st.nodes))
	var ids []*ua.ReadValueID
	var idx []int
	for i := range st.nodes {
		ln := &sess.nodes[i]
		ln.unit = st.nodes[i].Unit
		nid, err := st.nodes[i].resolve(namespaces)
		if err != nil {
			ln.err, ln.code = err, ua.StatusBadNodeIDUnknown
			continue
		}
		ln.id = nid
		ids = append(ids,
			&ua.ReadValueID{NodeID: nid, AttributeID: ua.AttributeIDValueRank},
			&ua.ReadValueID{NodeID: nid, AttributeID: ua.AttributeIDDataType})
		idx = append(idx, i)
	}
	results, err := s.readChunked(ctx, sess, ids)
	if err != nil {
		return fmt.Errorf("read node attributes: %w", err)
	}
	for k, i := range idx {
		ln := &sess.nodes[i]
		rank, dt := results[2*k], results[2*k+1]
		if rank != nil && rank.Status != ua.StatusOK && quality(rank.Status) == bridge.Bad {
			ln.err, ln.code = fmt.Errorf("node %s: %s", ln.id, StatusName(rank.Status)), rank.Status
			continue
		}
		if rank != nil && rank.Value != nil {
			if r, ok := rank.Value.Value().(int32); ok && r >= 0 {
				ln.err, ln.code = errArray, ua.StatusBadTypeMismatch
				continue
			}
		}
		if dt != nil && dt.Value != nil {
			switch v := dt.Value.Value().(type) {
			case *ua.NodeID:
				ln.dtype = v
			case *ua.ExpandedNodeID:
				ln.dtype = v.NodeID
			}
		}
	}
	// Units from EngineeringUnits for nodes that have none configured.
	var need []int
	for i := range sess.nodes {
		if sess.nodes[i].unit == "" && sess.nodes[i].err == nil {
			need = append(need, i)
		}
	}
	if len(need) > 0 {
		nids := make([]*ua.NodeID, len(need))
		for k, i := range need {
			nids[k] = sess.nodes[i].id
		}
		units, err := engineeringUnits(ctx, c, nids, min(sess.maxRead, 500), func(req []*ua.ReadValueID) ([]*ua.DataValue, error) {
			return s.readChunked(ctx, sess, req)
		})
		if err != nil {
			return fmt.Errorf("engineering units: %w", err)
		}
		for k, i := range need {
			sess.nodes[i].unit = units[k]
		}
	}
	for i := range sess.nodes {
		if sess.nodes[i].err == nil {
			sess.readable = append(sess.readable, i)
		}
	}
	return nil
}

func limit(dv *ua.DataValue) int {
	if dv == nil || dv.Value == nil || quality(dv.Status) != bridge.Good {
		return 0
	}
	switch v := dv.Value.Value().(type) {
	case uint32:
		return int(min(v, 1<<20))
	case uint16:
		return int(v)
	case int32:
		return int(max(0, min(v, 1<<20)))
	}
	return 0
}

// readChunked reads ids in requests of at most sess.maxRead nodes; it never
// sends an empty request. When the server refuses a request as too large
// (its announced limit was wrong) it halves the chunk size and retries.
func (s *Source) readChunked(ctx context.Context, sess *session, ids []*ua.ReadValueID) ([]*ua.DataValue, error) {
	out := make([]*ua.DataValue, 0, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), sess.maxRead)
		res, err := sess.c.Read(ctx, &ua.ReadRequest{NodesToRead: ids[:n], TimestampsToReturn: ua.TimestampsToReturnBoth})
		s.stats.reads.Add(1)
		if errors.Is(err, ua.StatusBadTooManyOperations) && n > 1 {
			sess.maxRead = n / 2
			s.readCap.Store(int64(n / 2))
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(res.Results) != n {
			return nil, fmt.Errorf("read of %d nodes returned %d results", n, len(res.Results))
		}
		out = append(out, res.Results...)
		ids = ids[n:]
	}
	return out, nil
}

// poll reads every readable node each Interval until ctx ends or a read
// fails.
func (s *Source) poll(ctx context.Context, sess *session, q *emitter) error {
	st := s.st
	ids := make([]*ua.ReadValueID, len(sess.readable))
	for k, i := range sess.readable {
		ids[k] = &ua.ReadValueID{NodeID: sess.nodes[i].id, AttributeID: ua.AttributeIDValue}
	}
	t := time.NewTicker(st.Interval)
	defer t.Stop()
	for {
		batch := make([]bridge.Sample, 0, len(st.nodes))
		batch = s.appendBroken(batch, sess)
		if len(ids) > 0 {
			rctx, cancel := context.WithTimeout(ctx, st.Timeout)
			res, err := s.readChunked(rctx, sess, ids)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("read: %w", err)
			}
			sess.delivered = true
			now := time.Now()
			for k, i := range sess.readable {
				smp := s.sample(sess, i)
				fill(&smp, res[k], now)
				batch = append(batch, smp)
			}
		}
		if !q.emit(ctx, batch) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-sess.lost:
			return errors.New("client disconnected")
		case <-t.C:
		}
	}
}

// appendBroken appends a Bad sample for each node that cannot be read.
func (s *Source) appendBroken(batch []bridge.Sample, sess *session) []bridge.Sample {
	now := time.Now()
	for i := range sess.nodes {
		ln := &sess.nodes[i]
		if ln.err == nil {
			continue
		}
		smp := s.sample(sess, i)
		smp.Time, smp.Quality, smp.Code, smp.Reason = now, bridge.Bad, uint32(ln.code), ln.err.Error()
		batch = append(batch, smp)
	}
	return batch
}

// dataChange turns a notification into samples, one per monitored item
// except the heartbeat (and any handle the source did not create). It
// allocates the batch only.
func (s *Source) dataChange(sess *session, v *ua.DataChangeNotification, now time.Time) []bridge.Sample {
	heartbeat := uint32(len(s.st.nodes))
	batch := make([]bridge.Sample, 0, len(v.MonitoredItems))
	for _, it := range v.MonitoredItems {
		if it == nil || it.ClientHandle >= heartbeat {
			continue
		}
		smp := s.sample(sess, int(it.ClientHandle))
		fill(&smp, it.Value, now)
		batch = append(batch, smp)
	}
	return batch
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// subscribe creates a subscription with a monitored item per readable node
// plus the heartbeat, and turns notifications into samples until ctx ends,
// the connection is lost, or the watchdog finds the subscription silent.
func (s *Source) subscribe(ctx context.Context, sess *session, q *emitter) error {
	st := s.st
	// Read by this goroutine only, which also calls Emit: while Emit
	// blocks, the upstream publish loop blocks once this is full (see the
	// package documentation, "Slow consumers").
	notify := make(chan *opcua.PublishNotificationData, 64)
	ka := max(st.KeepAliveCount, 1)
	sub, err := sess.c.Subscribe(ctx, &opcua.SubscriptionParameters{
		Interval:          st.Interval,
		MaxKeepAliveCount: ka,
		LifetimeCount:     max(10*ka, 30),
	}, notify)
	if err != nil {
		return fmt.Errorf("create subscription: %w", err)
	}
	heartbeat := uint32(len(st.nodes))
	reqs := make([]*ua.MonitoredItemCreateRequest, 0, len(sess.readable)+1)
	for _, i := range sess.readable {
		n := &st.nodes[i]
		r := opcua.NewMonitoredItemCreateRequestWithDefaults(sess.nodes[i].id, ua.AttributeIDValue, uint32(i))
		r.RequestedParameters.SamplingInterval = -1 // the publishing interval (Part 4, 7.16)
		if n.SamplingInterval > 0 {
			r.RequestedParameters.SamplingInterval = ms(n.SamplingInterval)
		}
		r.RequestedParameters.QueueSize = max(n.QueueSize, 1)
		r.RequestedParameters.DiscardOldest = true
		if n.trigger != ua.DataChangeTriggerStatusValue || n.deadband != ua.DeadbandTypeNone {
			r.RequestedParameters.Filter = ua.NewExtensionObject(&ua.DataChangeFilter{
				Trigger:       n.trigger,
				DeadbandType:  uint32(n.deadband),
				DeadbandValue: n.DeadbandValue,
			})
		}
		reqs = append(reqs, r)
	}
	hb := opcua.NewMonitoredItemCreateRequestWithDefaults(nodeCurrentTime, ua.AttributeIDValue, heartbeat)
	hb.RequestedParameters.SamplingInterval = ms(st.Watchdog / 4)
	reqs = append(reqs, hb)

	broken := s.appendBroken(nil, sess)
	hbOK := false
	for len(reqs) > 0 {
		n := min(len(reqs), sess.maxMon)
		res, err := sub.Monitor(ctx, ua.TimestampsToReturnBoth, reqs[:n]...)
		if err != nil {
			return fmt.Errorf("create monitored items: %w", err)
		}
		if len(res.Results) != n {
			return fmt.Errorf("create %d monitored items: %d results", n, len(res.Results))
		}
		for k, r := range res.Results {
			h := reqs[k].RequestedParameters.ClientHandle
			if h == heartbeat {
				hbOK = r.StatusCode == ua.StatusOK
				continue
			}
			if quality(r.StatusCode) == bridge.Bad {
				smp := s.sample(sess, int(h))
				smp.Time, smp.Quality, smp.Code, smp.Reason = time.Now(), bridge.Bad, uint32(r.StatusCode), StatusName(r.StatusCode)
				broken = append(broken, smp)
			}
		}
		reqs = reqs[n:]
	}
	if !q.emit(ctx, broken) {
		return nil
	}

	wd := time.NewTimer(st.Watchdog)
	defer wd.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sess.lost:
			return errors.New("client disconnected")
		case n := <-notify:
			if n.Error != nil {
				return fmt.Errorf("subscription: %w", n.Error)
			}
			if !wd.Stop() {
				select {
				case <-wd.C:
				default:
				}
			}
			wd.Reset(st.Watchdog)
			switch v := n.Value.(type) {
			case *ua.DataChangeNotification:
				s.stats.notifs.Add(1)
				batch := s.dataChange(sess, v, time.Now())
				sess.delivered = sess.delivered || len(batch) > 0
				if !q.emit(ctx, batch) {
					return nil
				}
				// Time spent in Emit is not silence of the server.
				if !wd.Stop() {
					select {
					case <-wd.C:
					default:
					}
				}
				wd.Reset(st.Watchdog)
			case *ua.StatusChangeNotification:
				if quality(v.Status) == bridge.Bad {
					return fmt.Errorf("subscription status %s", StatusName(v.Status))
				}
			}
		case <-wd.C:
			if hbOK {
				// The heartbeat changes every sampling interval: silence
				// means the subscription (or the path to it) is dead even
				// if the secure channel looks fine (upstream #879, #895).
				s.stats.trips.Add(1)
				return fmt.Errorf("%w for %s", ErrSilent, st.Watchdog)
			}
			// No heartbeat: silence may just mean no changes. Probe.
			rctx, cancel := context.WithTimeout(ctx, st.Timeout)
			_, err := sess.c.Read(rctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: nodeCurrentTime, AttributeID: ua.AttributeIDValue}}})
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				s.stats.trips.Add(1)
				return fmt.Errorf("%w and probe read failed: %w", ErrSilent, err)
			}
			wd.Reset(st.Watchdog)
		}
	}
}
