package sparkplug

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/eclipse/paho.golang/paho"
	"google.golang.org/protobuf/proto"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/sparkplug/internal/sppb"
	"github.com/m2mbridge/m2mbridge/internal/cfgcheck"
	"github.com/m2mbridge/m2mbridge/internal/redact"
	"github.com/m2mbridge/m2mbridge/modbus"
)

// Errors a Write fails with while the edge node is not born; both are
// retriable, so the bridge keeps the samples (in its queue, or in the
// spool with overflow: spool) and replays them after the births.
var (
	// ErrNotConnected means there is no connection to the broker.
	ErrNotConnected = errors.New("sparkplug: not connected")
	// ErrPrimaryHostOffline means the edge node is connected but the
	// primary host application is not online, so it is not born.
	ErrPrimaryHostOffline = errors.New("sparkplug: primary host offline")
)

// Limits that keep the edge node's memory bounded.
const (
	// MaxMetrics bounds the metrics (source, point pairs) the edge node
	// tracks; samples of more, and of a new source (device) once the
	// limit is reached, are refused permanently.
	MaxMetrics = 100_000
	// maxPayloadMetrics bounds the metrics of one DDATA.
	maxPayloadMetrics = 1000
	// commandQueue bounds the DCMD messages waiting to be written.
	commandQueue = 64
	// eventQueue bounds the NCMD and STATE messages waiting for the
	// session goroutine.
	eventQueue = 64
	// healthInterval is how often the sources' health (and the queue
	// depth) is read.
	healthInterval = 250 * time.Millisecond
	// depthInterval is the least time between two NDATA of the queue
	// depth, which is sent when it changed.
	depthInterval = time.Second
)

// Host is what the edge node uses of the bridge that feeds it:
// [*bridge.Bridge] implements it. Stats gives the sources' health (DDEATH,
// DBIRTH) and the sink's queue depth (the NBIRTH's spool depth); Write
// takes the writes DCMD asks for.
type Host interface {
	Stats() bridge.Stats
	Write(ctx context.Context, req bridge.WriteRequest) bridge.WriteResult
}

// Stats are the edge node's own counters, as [Sink.Stats] returns them.
type Stats struct {
	BdSeq        uint64 // the bdSeq of the current (or last) connection
	Connected    bool   // connected to the broker now
	Born         bool   // NBIRTH published on the current connection
	Connects     uint64 // connections made
	NodeBirths   uint64 // NBIRTH messages (a rebirth counts)
	DeviceBirths uint64 // DBIRTH messages
	DeviceDeaths uint64 // DDEATH messages
	DataMessages uint64 // DDATA messages
	// DataBytes counts the bytes of those DDATA messages on the wire: the
	// MQTT 3.1.1 PUBLISH packets at QoS 0 (fixed header, topic, payload).
	DataBytes uint64
	// Absorbed counts Bad samples of a device whose source reports it
	// down, after its DDEATH: the death says what they say (a DDATA may
	// not follow a DDEATH without a DBIRTH, spec 5.7).
	Absorbed uint64
	// Historical counts samples sent with is_historical.
	Historical uint64
	// Unchanged counts samples not sent because their metric's value and
	// quality equal what the host already has (Config.SendUnchanged
	// false): they count as delivered.
	Unchanged uint64
	// Commands counts DCMD metrics handed to the bridge's Write;
	// CommandsRefused those refused here (commands: false, an unknown
	// metric or device, a value of the wrong datatype) or by the bridge;
	// CommandsDropped the DCMD messages dropped because commandQueue
	// were waiting.
	Commands        uint64
	CommandsRefused uint64
	CommandsDropped uint64
	// EventsDropped counts the NCMD messages dropped because eventQueue
	// were waiting for the session goroutine. A STATE of the primary host
	// is never dropped: the latest one waits in a slot of its own, which a
	// newer one replaces.
	EventsDropped uint64
}

// Sink is a Sparkplug B edge node: a [bridge.Sink] that publishes samples
// as DDATA of the devices named by their Source, with the session, births,
// deaths, rebirths, commands and primary host rules of the package doc. It
// implements [bridge.Connector] and [bridge.BridgeUser]. Its methods may be
// called from any goroutine.
type Sink struct {
	cfg     Config
	dial    dialer
	store   bdSeqStore
	log     *slog.Logger
	aliases bool

	connectTimeout, ackTimeout, maxBackoff time.Duration

	topicNBIRTH, topicNDEATH, topicNCMD, topicDCMD, topicState string

	startOnce   sync.Once
	ctx         context.Context // the goroutines' context, cancelled by Close
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	events      chan message // NCMD, for the session goroutine
	cmdsDropped atomic.Uint64
	evDropped   atomic.Uint64
	dropLogAt   atomic.Int64 // unix nanoseconds of the last "dropped" log line
	// The latest STATE not yet handled, and a signal that it is there
	// (capacity 1): a STATE is replaced by a newer one, never dropped.
	stateMu    sync.Mutex
	stateMsg   *message
	stateReady chan struct{}
	cmds       chan message // DCMD, for the command goroutine

	hostMu   sync.Mutex
	host     Host
	hostName string

	mu     sync.Mutex // guards what follows; held while publishing, so that seq order is wire order
	closed bool
	c      conn // the current connection; nil when none
	born   bool // NBIRTH published on c
	bdSeq  uint64
	seq    seqCounter
	// liveFrom: samples measured before it were held while the edge node
	// was away and are sent with is_historical (package doc,
	// Store-and-forward).
	liveFrom     time.Time
	created      time.Time // when New made the sink
	failedBefore bool      // a connection attempt failed or a connection ended
	stateSeen    bool      // a STATE of the primary host was accepted
	stateTS      int64
	online       bool // the primary host is online (always, without one)
	lastErr      error
	changed      chan struct{}      // closed and replaced when c, born or lastErr change
	devices      map[string]*device // by source
	byID         map[string]*device // by device_id
	devOrder     []*device
	nextAlias    uint64
	nMetrics     int
	health       map[string]bridge.Health
	gen          uint64 // counts Writes
	depth        int64  // this sink's queue depth at the last health check
	depthSent    int64  // the depth in the last NBIRTH or NDATA
	depthAt      time.Time
	haveDepth    bool
	st           Stats
}

// device is a Sparkplug device: one source.
type device struct {
	id      string // the device_id: the source's name, made a topic element
	source  string
	metrics map[string]*metric
	order   []*metric
	// born: DBIRTH published on the current connection and no DDEATH
	// since. dead: a DDEATH was published (or the source reported down
	// before any birth) and its source has not come back.
	born, dead bool
	aliveSince time.Time // when it was last born or revived
	deadSince  time.Time
	pend       *pendingData      // the DDATA being built by Write
	declared   map[string]string // the points' declared types, when the source says
	// Of the batch being written (gen): whether it was born before it.
	gen        uint64
	bornBefore bool
}

// metric is one point of a device.
type metric struct {
	name     string
	declared string // the point's declared type, "" when unknown
	alias    uint64
	dt       sppb.DataType
	unit     string
	last     bridge.Sample // the last live sample published or born with
	hasLast  bool
	// unsent: last is not what the host has (kept while its device was
	// dead, or its DDATA failed); the next birth sends it.
	unsent bool
	// in the DDATA being built: pendRound == pend.round of its device's
	// pendingData.
	pendRound uint64
	// first is the index of its first sample in the batch being written
	// (gen).
	gen   uint64
	first int
}

var (
	_ bridge.Sink       = (*Sink)(nil)
	_ bridge.Connector  = (*Sink)(nil)
	_ bridge.BridgeUser = (*Sink)(nil)
)

// New validates cfg and returns an edge node. It does not dial, nor touch
// the state directory: [Sink.Connect] (or the first Write) starts the
// session. Every problem with cfg is reported at once, as
// [Config.Validate] reports it, and what is wrong with the TLS files.
func New(cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, cfgcheck.Wrap("sparkplug", err)
	}
	d, err := newDialer(cfg.mqttConfig())
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("sparkplug", cfg.GroupID+"/"+cfg.EdgeNodeID)
	s := &Sink{
		cfg: cfg, dial: d, store: bdSeqStore{dir: cfg.StateDir}, log: log, aliases: cfg.aliases(),
		connectTimeout: orDur(cfg.ConnectTimeout, 10*time.Second),
		ackTimeout:     orDur(cfg.AckTimeout, 10*time.Second),
		maxBackoff:     orDur(cfg.MaxReconnectInterval, 10*time.Second),
		topicNBIRTH:    Topic{GroupID: cfg.GroupID, Type: NBIRTH, EdgeNodeID: cfg.EdgeNodeID}.String(),
		topicNDEATH:    Topic{GroupID: cfg.GroupID, Type: NDEATH, EdgeNodeID: cfg.EdgeNodeID}.String(),
		topicNCMD:      Topic{GroupID: cfg.GroupID, Type: NCMD, EdgeNodeID: cfg.EdgeNodeID}.String(),
		topicDCMD:      Topic{GroupID: cfg.GroupID, Type: DCMD, EdgeNodeID: cfg.EdgeNodeID, DeviceID: "+"}.String(),
		events:         make(chan message, eventQueue),
		stateReady:     make(chan struct{}, 1),
		cmds:           make(chan message, commandQueue),
		changed:        make(chan struct{}),
		devices:        make(map[string]*device),
		byID:           make(map[string]*device),
		health:         make(map[string]bridge.Health),
		online:         cfg.PrimaryHostID == "",
		created:        time.Now(),
	}
	if cfg.PrimaryHostID != "" {
		s.topicState = StateTopic(cfg.PrimaryHostID)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

func orDur(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// UseBridge hands the edge node the bridge that feeds it, under the sink's
// name: [bridge.Bridge.AddSink] calls it. See [Sink.Use].
func (s *Sink) UseBridge(b *bridge.Bridge, name string) { s.Use(b, name) }

// Use sets the host whose sources' health makes devices die and be reborn
// and whose Write takes DCMD writes; name is this sink's name among the
// host's sinks (its queue depth goes in the NBIRTH). Without a host, a
// device never dies and every DCMD is refused.
func (s *Sink) Use(h Host, name string) {
	s.hostMu.Lock()
	s.host, s.hostName = h, name
	s.hostMu.Unlock()
}

func (s *Sink) getHost() (Host, string) {
	s.hostMu.Lock()
	defer s.hostMu.Unlock()
	return s.host, s.hostName
}

// Topic returns the topic of a message type for this edge node;
// deviceID is "" for a node message type.
func (s *Sink) Topic(t MessageType, deviceID string) string {
	return Topic{GroupID: s.cfg.GroupID, Type: t, EdgeNodeID: s.cfg.EdgeNodeID, DeviceID: deviceID}.String()
}

// Stats returns the edge node's counters.
func (s *Sink) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.BdSeq, st.Connected, st.Born = s.bdSeq, s.c != nil, s.born
	st.CommandsDropped = s.cmdsDropped.Load()
	st.EventsDropped = s.evDropped.Load()
	return st
}

// start starts the session and command goroutines, once.
func (s *Sink) start() {
	s.startOnce.Do(func() {
		s.wg.Add(2)
		go func() { defer s.wg.Done(); s.run(s.ctx) }()
		go func() { defer s.wg.Done(); s.runCommands(s.ctx) }()
	})
}

// Connect starts the edge node's session, which from then on connects
// and reconnects by itself, and waits until it is born (NBIRTH and the
// DBIRTHs published), or for the error of the next connection attempt, or
// at most the connect timeout: then it returns why it is not born yet
// (waiting for the primary host, say).
func (s *Sink) Connect(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("sparkplug: %w", bridge.ErrClosed)
	}
	s.mu.Unlock()
	s.start()
	t := time.NewTimer(s.connectTimeout + s.ackTimeout)
	defer t.Stop()
	first := true
	for {
		s.mu.Lock()
		born, err, ch := s.born, s.lastErr, s.changed
		s.mu.Unlock()
		if born {
			return nil
		}
		if err != nil && !first {
			return err
		}
		first = false
		select {
		case <-ch:
		case <-t.C:
			return s.notReady()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// notReady is the error of a Write or Connect while not born.
func (s *Sink) notReady() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notReadyLocked()
}

func (s *Sink) notReadyLocked() error {
	switch {
	case s.c != nil && !s.online:
		return fmt.Errorf("%w: waiting for %s online", ErrPrimaryHostOffline, s.topicState)
	case s.lastErr != nil:
		return fmt.Errorf("%w: %v", ErrNotConnected, s.lastErr)
	}
	return ErrNotConnected
}

func (s *Sink) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// run is the session goroutine: connect, subscribe, be born, serve, and
// again after the connection ends, with back-off, until ctx ends.
func (s *Sink) run(ctx context.Context) {
	for attempt := 0; ; attempt++ {
		if attempt > 0 && !sleep(ctx, backoff(attempt, s.maxBackoff)) {
			return
		}
		c, err := s.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.mu.Lock()
			s.lastErr = err
			s.failedBefore = true
			s.notifyLocked()
			s.mu.Unlock()
			s.log.Warn("sparkplug: connect failed", "url", redact.URL(s.cfg.URL), "err", err)
			continue
		}
		attempt = 0
		s.serve(ctx, c)
		s.mu.Lock()
		s.failedBefore = true
		s.mu.Unlock()
		if ctx.Err() != nil {
			return // Close publishes the NDEATH and disconnects
		}
	}
}

// connect makes one connection with a new bdSeq in its Will, subscribes
// to the edge node's commands (and the primary host's STATE), and is born
// unless it waits for the primary host.
func (s *Sink) connect(ctx context.Context) (conn, error) {
	bd, err := s.store.next()
	if err != nil {
		return nil, err
	}
	will := &paho.WillMessage{Topic: s.topicNDEATH, QoS: 1, Retain: false, Payload: deathPayload(bd, time.Now())}
	dctx, cancel := context.WithTimeout(ctx, s.connectTimeout+time.Second)
	defer cancel()
	c, err := s.dial(dctx, will, s.onMessage)
	if err != nil {
		return nil, fmt.Errorf("sparkplug: connect %s: %w", redact.URL(s.cfg.URL), err)
	}
	filters := []string{s.topicNCMD, s.topicDCMD}
	if s.topicState != "" {
		filters = append(filters, s.topicState)
	}
	if err := c.subscribe(ctx, filters...); err != nil {
		c.close(ctx)
		return nil, err
	}
	s.checkHealth(ctx) // the devices' health and the queue depth, for the births
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || ctx.Err() != nil {
		c.close(context.Background())
		return nil, fmt.Errorf("sparkplug: %w", bridge.ErrClosed)
	}
	s.c, s.bdSeq, s.born, s.lastErr = c, bd, false, nil
	s.liveFrom = time.Time{}
	if s.online && !s.failedBefore && s.st.Connects == 0 {
		// The first connection, at once: what was measured while it was
		// made is live; what is older (a spool's backlog of an earlier
		// run) is not.
		s.liveFrom = s.created
	}
	s.st.Connects++
	s.log.Info("sparkplug: connected", "url", redact.URL(s.cfg.URL), "bdSeq", bd)
	if s.online {
		if err := s.birthLocked(ctx); err != nil {
			// A session that cannot be born is ended, and made again.
			s.deathLocked(ctx)
			s.notifyLocked()
			return nil, fmt.Errorf("sparkplug: birth: %w", err)
		}
	} else {
		s.log.Info("sparkplug: waiting for the primary host", "topic", s.topicState)
	}
	s.notifyLocked()
	return c, nil
}

// serve handles the connection's events until it ends, the primary host
// goes offline, or ctx ends.
func (s *Sink) serve(ctx context.Context, c conn) {
	tick := time.NewTicker(healthInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.lost():
			s.mu.Lock()
			if s.c == c {
				s.c, s.born = nil, false
				s.lastErr = errors.New("connection lost")
				s.notifyLocked()
			}
			s.mu.Unlock()
			c.close(ctx) // end the client's goroutines
			s.log.Warn("sparkplug: connection lost; the broker publishes the NDEATH Will", "bdSeq", s.Stats().BdSeq)
			return
		case m := <-s.events:
			if !s.handleEvent(ctx, c, m) {
				return
			}
		case <-s.stateReady:
			s.stateMu.Lock()
			m := s.stateMsg
			s.stateMsg = nil
			s.stateMu.Unlock()
			if m != nil && !s.handleEvent(ctx, c, *m) {
				return
			}
		case <-tick.C:
			s.checkHealth(ctx)
		}
	}
}

// onMessage is called by the MQTT client for each message of the
// subscriptions; it must not block.
func (s *Sink) onMessage(m message) {
	if m.topic == s.topicState && s.topicState != "" {
		// The latest STATE is what counts (a dropped retained "online"
		// would leave the edge node unborn): it replaces one not yet
		// handled. stateMu is never held while waiting for anything.
		s.stateMu.Lock()
		s.stateMsg = &m
		s.stateMu.Unlock()
		select {
		case s.stateReady <- struct{}{}:
		default: // already signalled
		}
		return
	}
	q, n := s.events, &s.evDropped
	if t, err := ParseTopic(m.topic); err == nil && t.Type == DCMD {
		q, n = s.cmds, &s.cmdsDropped
	}
	select {
	case q <- m:
	default:
		// Atomic, not under s.mu: the client's goroutine must never wait
		// for a lock held while the client is disconnected.
		n.Add(1)
		s.logDrop(m.topic)
	}
}

// dropLogInterval is the least time between two log lines about dropped
// messages; the counters hold the number.
const dropLogInterval = 10 * time.Second

// logDrop logs a dropped message, at most once per dropLogInterval.
func (s *Sink) logDrop(topic string) {
	now := time.Now().UnixNano()
	last := s.dropLogAt.Load()
	if last != 0 && now-last < int64(dropLogInterval) || !s.dropLogAt.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn("sparkplug: message dropped: too many waiting (counted in Stats: CommandsDropped, EventsDropped; logged at most every 10s)",
		"topic", topic, "commands_dropped", s.cmdsDropped.Load(), "events_dropped", s.evDropped.Load())
}

// handleEvent handles an NCMD or STATE message; false when the connection
// was closed (the primary host went offline).
func (s *Sink) handleEvent(ctx context.Context, c conn, m message) bool {
	if m.topic == s.topicState && s.topicState != "" {
		return s.handleState(ctx, c, m.payload)
	}
	if m.topic == s.topicNCMD {
		var p sppb.Payload
		if err := proto.Unmarshal(m.payload, &p); err != nil {
			s.log.Warn("sparkplug: NCMD ignored: not a Sparkplug B payload", "err", err)
			return true
		}
		for _, pm := range p.GetMetrics() {
			if pm.GetName() == MetricRebirth {
				if !pm.GetBooleanValue() {
					continue
				}
				s.mu.Lock()
				if s.c == c && s.born {
					s.log.Info("sparkplug: rebirth requested by NCMD")
					if err := s.birthLocked(ctx); err != nil {
						s.log.Warn("sparkplug: rebirth failed; ending the session", "err", err)
						s.deathLocked(ctx)
						s.notifyLocked()
						s.mu.Unlock()
						return false
					}
				}
				s.mu.Unlock()
				continue
			}
			s.log.Warn("sparkplug: NCMD metric ignored: only Node Control/Rebirth is known", "metric", pm.GetName())
		}
	}
	return true
}

// birthLocked publishes the NBIRTH (seq 0, the connection's bdSeq) and a
// DBIRTH for every device that is not dead (spec 6.4.19, 6.4.20). Write
// holds the same lock, so no data is published in between.
func (s *Sink) birthLocked(ctx context.Context) error {
	now := time.Now()
	s.seq.birth()
	nb := nodeBirth(s.bdSeq, now, s.depth, s.haveDepth)
	s.depthSent, s.depthAt = s.depth, now
	b, err := proto.Marshal(nb)
	if err != nil {
		return err
	}
	if err := s.c.publish(ctx, s.topicNBIRTH, 0, b); err != nil {
		return err
	}
	s.st.NodeBirths++
	if !s.born && s.liveFrom.IsZero() {
		s.liveFrom = now
	}
	s.born = true
	for _, d := range s.devOrder {
		d.born = false
		if d.dead || len(d.order) == 0 {
			continue
		}
		if err := s.deviceBirthLocked(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// deviceBirthLocked publishes the DBIRTH of d with every metric it has.
func (s *Sink) deviceBirthLocked(ctx context.Context, d *device) error {
	now := time.Now()
	p := &sppb.Payload{Timestamp: proto.Uint64(ms(now)), Seq: proto.Uint64(s.seq.take())}
	for _, m := range d.order {
		p.Metrics = append(p.Metrics, birthMetric(m, s.aliases))
	}
	b, err := proto.Marshal(p)
	if err != nil {
		return err
	}
	if err := s.c.publish(ctx, s.Topic(DBIRTH, d.id), 0, b); err != nil {
		return err
	}
	s.st.DeviceBirths++
	for _, m := range d.order {
		m.unsent = false
	}
	d.born, d.dead = true, false
	d.aliveSince = now
	return nil
}

// nodeDataLocked publishes an NDATA with the queue depth (the node
// metric of the NBIRTH, by name: it has no alias; spec 4.2.1.2, 6.4.21).
func (s *Sink) nodeDataLocked(ctx context.Context, now time.Time) error {
	p := &sppb.Payload{Timestamp: proto.Uint64(ms(now)), Seq: proto.Uint64(s.seq.take()),
		Metrics: []*sppb.Payload_Metric{{Name: proto.String(MetricSpoolDepth), Timestamp: proto.Uint64(ms(now)),
			Datatype: proto.Uint32(uint32(sppb.DataType_UInt64)), Value: &sppb.Payload_Metric_LongValue{LongValue: uint64(max(s.depth, 0))}}}}
	b, _ := proto.Marshal(p)
	if err := s.c.publish(ctx, s.Topic(NDATA, ""), 0, b); err != nil {
		return err
	}
	s.depthSent, s.depthAt = s.depth, now
	return nil
}

// deviceDeathLocked publishes the DDEATH of d (spec 4.2.2.3, 6.4.26).
func (s *Sink) deviceDeathLocked(ctx context.Context, d *device) error {
	p := &sppb.Payload{Timestamp: proto.Uint64(ms(time.Now())), Seq: proto.Uint64(s.seq.take())}
	b, _ := proto.Marshal(p)
	if err := s.c.publish(ctx, s.Topic(DDEATH, d.id), 0, b); err != nil {
		return err
	}
	s.st.DeviceDeaths++
	return nil
}

// checkHealth reads the sources' health and publishes DDEATH for a born
// device whose source went down after its birth, DBIRTH for a dead one
// whose source came back (spec 5.7: the edge node reports a device's
// death; STYLE: the source is the one that knows).
func (s *Sink) checkHealth(ctx context.Context) {
	h, name := s.getHost()
	if h == nil {
		return
	}
	st := h.Stats() // never under s.mu: the bridge takes its own locks
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sk := range st.Sinks {
		if sk.Name == name {
			s.depth, s.haveDepth = sk.Queued+sk.InFlight, true
		}
	}
	now := time.Now()
	if s.born && s.c != nil && s.haveDepth && s.depth != s.depthSent && now.Sub(s.depthAt) >= depthInterval {
		if err := s.nodeDataLocked(ctx, now); err != nil {
			s.log.Warn("sparkplug: NDATA not published", "err", err)
		}
	}
	for _, src := range st.Sources {
		if src.Health == nil {
			continue
		}
		hl := *src.Health
		s.health[src.Name] = hl
		d := s.devices[src.Name]
		if d == nil {
			continue
		}
		switch {
		case !d.dead && !hl.Up && hl.Since.After(d.aliveSince):
			if s.born && d.born && s.c != nil {
				if err := s.deviceDeathLocked(ctx, d); err != nil {
					s.log.Warn("sparkplug: DDEATH not published", "device", d.id, "err", err)
					continue
				}
			}
			s.log.Info("sparkplug: device died", "device", d.id, "reason", hl.Reason)
			d.dead, d.born, d.deadSince = true, false, now
		case d.dead && hl.Up && hl.Since.After(d.deadSince):
			d.dead = false
			d.aliveSince = now
			if s.born && s.c != nil && len(d.order) > 0 {
				if err := s.deviceBirthLocked(ctx, d); err != nil {
					s.log.Warn("sparkplug: DBIRTH not published", "device", d.id, "err", err)
					continue
				}
			}
			s.log.Info("sparkplug: device answers again", "device", d.id)
		}
	}
}

// downLocked reports whether the source id reports its device down.
func (s *Sink) downLocked(id string) bool {
	h, ok := s.health[id]
	return ok && !h.Up
}

// pendingData is the DDATA of one device being built by Write.
type pendingData struct {
	p     *sppb.Payload
	idx   []int // the batch indexes of its metrics
	round uint64
}

// Write publishes batch as DDATA, one message per device (more when a
// batch holds a metric twice or more than 1000 metrics), each metric by
// alias with its own timestamp and Quality property. A sample of a new
// device or metric, or whose datatype changed, first (re)births its
// device with every metric. A sample measured before the current
// connection's NBIRTH (on the first connection: before New) was held while
// the edge node was away and is sent with is_historical (spec 6.4.6). The
// Bad samples of a dead device are kept as its metrics' values, not sent.
// Write returns nil when all of batch was handed to the connection, an
// error wrapping [ErrNotConnected] or [ErrPrimaryHostOffline] when nothing
// could be (the bridge keeps the samples and tries again), or a
// [*bridge.BatchError] naming the samples that failed: permanently for a
// sample of a source that cannot be a device_id (or shares one with
// another source), or of a value that does not fit its metric; retriably
// for the samples after a publish failed.
func (s *Sink) Write(ctx context.Context, batch []bridge.Sample) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sparkplug: write: %w", err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("sparkplug: %w", bridge.ErrClosed)
	}
	s.mu.Unlock()
	s.start()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if s.c == nil || !s.born {
		return s.notReadyLocked()
	}
	w := batchWrite{s: s, ctx: ctx, batch: batch}
	s.gen++
	w.gen = s.gen
	w.register()
	w.publish()
	if w.be != nil {
		return w.be
	}
	return nil
}

// batchWrite is one Write, under s.mu.
type batchWrite struct {
	s     *Sink
	ctx   context.Context
	batch []bridge.Sample
	gen   uint64
	dev   []*device // of each sample; nil when it failed
	met   []*metric
	// consumed marks the samples a birth carried as their metric's
	// value; made at the first birth.
	consumed []bool
	pend     []*device // devices with a DDATA being built
	be       *bridge.BatchError
	werr     error // the first publish error: every later sample fails with it
}

func (w *batchWrite) fail(i int, err error) {
	if w.be == nil {
		w.be = bridge.NewBatchError()
	}
	w.be.Fail(i, err)
}

// register adds the batch's new devices and metrics first, so that a
// device with several new metrics is born once with all of them. A new
// metric, or a new datatype, unbirths its device (spec 5.16: a DBIRTH
// lists every metric the device will publish).
func (w *batchWrite) register() {
	s := w.s
	w.dev = make([]*device, len(w.batch))
	w.met = make([]*metric, len(w.batch))
	for i := range w.batch {
		smp := &w.batch[i]
		d, err := s.deviceLocked(smp.Source)
		if err != nil {
			w.fail(i, bridge.Permanent(err))
			continue
		}
		if d.gen != w.gen {
			d.gen, d.bornBefore = w.gen, d.born
		}
		m, err := s.metricLocked(d, smp)
		if err != nil {
			w.fail(i, bridge.Permanent(err))
			continue
		}
		if m.gen != w.gen {
			m.gen, m.first = w.gen, i
		}
		w.dev[i], w.met[i] = d, m
	}
}

func (w *batchWrite) publish() {
	s := w.s
	for i := range w.batch {
		d, m := w.dev[i], w.met[i]
		if d == nil {
			continue // failed in register
		}
		smp := &w.batch[i]
		if w.werr != nil {
			w.fail(i, w.werr)
			continue
		}
		if w.consumed != nil && w.consumed[i] {
			continue // published by a birth
		}
		if !d.bornBefore && !d.born && smp.Quality == bridge.Bad && s.downLocked(d.source) {
			// The device is dead (its DDEATH says so) or never came
			// up: keep the value for its next birth, unless it was
			// measured before the NBIRTH (a birth's value is live).
			if !smp.Time.Before(s.liveFrom) {
				m.last, m.hasLast = *smp, true
			}
			m.unsent = true
			d.dead = true
			s.st.Absorbed++
			continue
		}
		if d.dead {
			d.dead = false
			s.log.Info("sparkplug: device answers again", "device", d.id)
		}
		if dt := dataType(smp.Value.Kind(), m.declared); dt != sppb.DataType_Unknown && dt != m.dt {
			// A new datatype: the device is born again with it, in the
			// batch's order.
			m.dt = dt
			d.born = false
		}
		if !d.born {
			w.flush(d)
			if w.werr == nil {
				w.birth(i, d)
			}
			if w.werr != nil {
				w.fail(i, w.werr)
				continue
			}
			if w.consumed[i] {
				continue
			}
		}
		historical := smp.Time.Before(s.liveFrom)
		if !s.cfg.SendUnchanged && !historical && m.hasLast && !m.unsent && sameReading(m.last, *smp) {
			// The host has this reading already (spec 5.8: DDATA
			// carries changes).
			s.st.Unchanged++
			continue
		}
		if d.pend == nil {
			d.pend = &pendingData{p: &sppb.Payload{}, round: 1}
		}
		pd := d.pend
		if m.pendRound == pd.round && len(pd.p.Metrics) > 0 {
			w.flush(d) // each metric once per DDATA, so that its order is kept
			if w.werr != nil {
				w.fail(i, w.werr)
				continue
			}
		}
		pm, err := sampleMetric(*smp, m.dt)
		if err != nil {
			w.fail(i, bridge.Permanent(err))
			continue
		}
		if s.aliases {
			pm.Alias = proto.Uint64(m.alias)
		} else {
			pm.Name = proto.String(m.name)
		}
		if historical {
			pm.IsHistorical = proto.Bool(true)
			s.st.Historical++
		}
		if len(pd.p.Metrics) == 0 {
			w.pend = append(w.pend, d)
		}
		pd.p.Metrics = append(pd.p.Metrics, pm)
		pd.idx = append(pd.idx, i)
		m.pendRound = pd.round
		// A historical value goes to the host's history, not its current
		// value: last stays the last live value (what a birth carries),
		// and the next live sample is sent whatever it is.
		if historical {
			m.unsent = true
		} else {
			m.last, m.hasLast, m.unsent = *smp, true, false
		}
		if len(pd.p.Metrics) >= maxPayloadMetrics {
			w.flush(d)
		}
	}
	for _, d := range w.pend {
		w.flush(d)
	}
}

// birth publishes the DBIRTH of d at sample i: each metric's value is its
// first sample in the batch from i on, which the birth then carries (it is
// not sent again as DDATA), else its last value (or null). A sample
// measured before the NBIRTH is never a birth's value: a birth holds
// current values, and it follows as DDATA with is_historical.
func (w *batchWrite) birth(i int, d *device) {
	if w.consumed == nil {
		w.consumed = make([]bool, len(w.batch))
	}
	var took []int
	for _, m := range d.order {
		if m.gen == w.gen && m.first >= i && !w.consumed[m.first] && fits(w.batch[m.first].Value, m) &&
			!w.batch[m.first].Time.Before(w.s.liveFrom) {
			j := m.first
			m.last, m.hasLast = w.batch[j], true
			took = append(took, j)
		}
	}
	if w.werr = w.s.deviceBirthLocked(w.ctx, d); w.werr != nil {
		return
	}
	for _, j := range took {
		w.consumed[j] = true
	}
}

// publishSize is the size of an MQTT 3.1.1 PUBLISH packet at QoS 0: the
// fixed header (1 byte and the remaining length, 1 to 4 bytes), the topic
// with its 2-byte length, the payload (MQTT 3.1.1 section 3.3).
func publishSize(topic string, payload int) int {
	rem := 2 + len(topic) + payload
	n := 1 + 1
	for r := rem; r >= 128; r >>= 7 {
		n++
	}
	return n + rem
}

// sameReading reports whether b says nothing a host that has a does not
// know: the same value of the same kind, quality, code and reason. The
// time is not compared: a Sparkplug metric holds its value until told
// otherwise.
func sameReading(a, b bridge.Sample) bool {
	return a.Value.Kind() == b.Value.Kind() && a.Value.Equal(b.Value) &&
		a.Quality == b.Quality && a.Code == b.Code && a.Reason == b.Reason
}

// fits reports whether v is of the kind of m's datatype (or no value), so
// that a birth can carry it.
func fits(v bridge.Value, m *metric) bool {
	k := dataType(v.Kind(), m.declared)
	return k == sppb.DataType_Unknown || k == m.dt
}

// flush publishes the DDATA being built for d.
func (w *batchWrite) flush(d *device) {
	s := w.s
	pd := d.pend
	if pd == nil || len(pd.p.Metrics) == 0 {
		return
	}
	if w.werr == nil {
		pd.p.Timestamp = proto.Uint64(ms(time.Now()))
		pd.p.Seq = proto.Uint64(s.seq.take())
		b, err := proto.Marshal(pd.p)
		if err == nil {
			err = s.c.publish(w.ctx, s.Topic(DDATA, d.id), 0, b)
		}
		if err == nil {
			s.st.DataMessages++
			s.st.DataBytes += uint64(publishSize(s.Topic(DDATA, d.id), len(b)))
		} else {
			w.werr = err
		}
	}
	if w.werr != nil {
		for _, i := range pd.idx {
			w.met[i].unsent = true // the host does not have it: never skip its retry as unchanged
			w.fail(i, w.werr)
		}
	}
	pd.p.Metrics = pd.p.Metrics[:0]
	pd.idx = pd.idx[:0]
	pd.round++
}

// deviceLocked returns the device of a source, adding it when new.
func (s *Sink) deviceLocked(source string) (*device, error) {
	if d := s.devices[source]; d != nil {
		return d, nil
	}
	id, err := DeviceID(source)
	if err != nil {
		return nil, err
	}
	if other := s.byID[id]; other != nil {
		return nil, fmt.Errorf("sparkplug: sources %q and %q are both device_id %q: rename one", other.source, source, id)
	}
	if s.nMetrics >= MaxMetrics {
		// A new device would hold a new metric, which the limit refuses:
		// refused here, the devices stay bounded too.
		return nil, fmt.Errorf("sparkplug: source %q: the edge node tracks %d metrics already (MaxMetrics): no new device", source, MaxMetrics)
	}
	d := &device{id: id, source: source, metrics: make(map[string]*metric), declared: s.declaredTypes(source)}
	s.devices[source] = d
	s.byID[id] = d
	s.devOrder = append(s.devOrder, d)
	return d, nil
}

// declaredTypes returns the declared type of each point of a source whose
// points say it (a modbus.Device: "float32", "int16"...), nil for others;
// the datatypes of the births follow them (see dataType). The host's
// Source takes the bridge's lock, never the other way round.
func (s *Sink) declaredTypes(source string) map[string]string {
	h, _ := s.getHost()
	sl, ok := h.(interface{ Source(string) bridge.Source })
	if !ok {
		return nil
	}
	pl, ok := sl.Source(source).(interface{ Points() []modbus.Point })
	if !ok {
		return nil
	}
	m := make(map[string]string)
	for _, p := range pl.Points() {
		if (p.Scale != 0 && p.Scale != 1) || p.Offset != 0 || p.ScaleFactor != "" {
			// The register's type is not the value's: a float32 register
			// times a scale is a float64, which Float would round.
			continue
		}
		m[p.Name] = string(p.Type)
	}
	return m
}

// DeviceID returns the device_id of a source: its name, with each
// character a topic element cannot hold (+ / # and U+0000, spec 4.1.5)
// and each byte of invalid UTF-8 replaced by '_', as the MQTT sink does in
// its topics. An empty source is an error.
func DeviceID(source string) (string, error) {
	if source == "" {
		return "", errors.New("sparkplug: a sample without a source cannot be a device")
	}
	if CheckID(source) == nil {
		return source, nil
	}
	b := make([]byte, 0, len(source))
	for i := 0; i < len(source); {
		r, n := utf8.DecodeRuneInString(source[i:])
		switch {
		case r == utf8.RuneError && n <= 1, r == '+', r == '/', r == '#', r == 0:
			b = append(b, '_')
		default:
			b = append(b, source[i:i+n]...)
		}
		i += n
	}
	return string(b), nil
}

// metricLocked returns the metric of smp in d, adding it when new. A new
// metric unbirths d, so that Write births it again with every metric (spec
// 6.4.19: a DBIRTH lists every metric a device will publish); a new
// datatype does too, in the batch's order (Write).
func (s *Sink) metricLocked(d *device, smp *bridge.Sample) (*metric, error) {
	declared := d.declared[smp.Point]
	dt := dataType(smp.Value.Kind(), declared)
	m := d.metrics[smp.Point]
	if m == nil {
		if s.nMetrics >= MaxMetrics {
			return nil, fmt.Errorf("sparkplug: %s/%s: the edge node tracks %d metrics already (MaxMetrics)", smp.Source, smp.Point, MaxMetrics)
		}
		if dt == sppb.DataType_Unknown {
			// No value yet (a Bad sample): announced as a null String
			// until a value gives the datatype, with a rebirth.
			dt = sppb.DataType_String
		}
		s.nextAlias++
		s.nMetrics++
		m = &metric{name: smp.Point, alias: s.nextAlias, dt: dt, unit: smp.Unit, declared: declared}
		d.metrics[smp.Point] = m
		d.order = append(d.order, m)
		d.born = false
		return m, nil
	}
	if smp.Unit != "" {
		m.unit = smp.Unit
	}
	return m, nil
}

// handleState handles a STATE message of the primary host (spec 4.2.3, 5.4):
// JSON {"online": bool, "timestamp": ms}; a timestamp older than the last
// accepted one is stale and ignored (the host's Will carries the
// timestamp of its birth, so an equal one is accepted). Online: be born
// if not yet. Offline: publish NDEATH, disconnect (false), and wait for
// the host on the next connection.
func (s *Sink) handleState(ctx context.Context, c conn, payload []byte) bool {
	st, err := parseState(payload)
	if err != nil {
		s.log.Warn("sparkplug: STATE ignored", "topic", s.topicState, "err", err)
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stateSeen && st.timestamp < s.stateTS {
		s.log.Info("sparkplug: stale STATE ignored", "online", st.online, "timestamp", st.timestamp, "last", s.stateTS)
		return true
	}
	s.stateSeen, s.stateTS, s.online = true, st.timestamp, st.online
	if s.c != c {
		return true
	}
	if st.online {
		if !s.born {
			s.log.Info("sparkplug: primary host online", "host", s.cfg.PrimaryHostID)
			if err := s.birthLocked(ctx); err != nil {
				s.log.Warn("sparkplug: birth failed; ending the session", "err", err)
				s.deathLocked(ctx)
				s.notifyLocked()
				return false
			}
			s.notifyLocked()
		}
		return true
	}
	if !s.born {
		return true // connected, not born: go on waiting
	}
	s.log.Warn("sparkplug: primary host offline: NDEATH, disconnecting, keeping data until it is back", "host", s.cfg.PrimaryHostID)
	s.deathLocked(ctx)
	s.notifyLocked()
	return false
}

// deathLocked publishes the NDEATH of the connection (QoS 1, as its Will)
// and disconnects cleanly (spec 5.5).
func (s *Sink) deathLocked(ctx context.Context) {
	c := s.c
	if c == nil {
		return
	}
	pctx := ctx
	if ctx.Err() != nil {
		// Said or not, the DISCONNECT that follows discards the Will:
		// give the NDEATH a short moment of its own.
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 500*time.Millisecond)
		defer cancel()
	}
	if err := c.publish(pctx, s.topicNDEATH, 1, deathPayload(s.bdSeq, time.Now())); err != nil {
		s.log.Warn("sparkplug: NDEATH not published", "err", err)
	}
	c.close(ctx)
	s.c, s.born = nil, false
}

// Close publishes the NDEATH, disconnects and ends the edge node's
// goroutines, within ctx. Every later call returns an error wrapping
// [bridge.ErrClosed].
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("sparkplug: %w", bridge.ErrClosed)
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	default:
		select {
		case <-done:
		case <-ctx.Done():
			// The goroutines end by themselves (a connection attempt within
			// its timeout); the connection is closed now.
			err = fmt.Errorf("sparkplug: close: %w", ctx.Err())
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deathLocked(ctx)
	s.notifyLocked()
	return err
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// backoff is the wait before connection attempt n > 0: 100ms doubling up
// to maxDelay, less up to 25% of jitter.
func backoff(n int, maxDelay time.Duration) time.Duration {
	d := maxDelay
	if n < 30 {
		d = min(100*time.Millisecond<<(n-1), maxDelay)
	}
	return d - time.Duration(rand.Int64N(int64(d)/4+1))
}
