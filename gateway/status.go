package gateway

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/redact"
	"github.com/m2mbridge/m2mbridge/modbus"
)

// MaxStatusPoints bounds the latest values the status page keeps per
// device. The values of points past it (a device that names more points
// than that, as no configured device does) are not kept; their samples are
// counted in [DeviceStatus].ValuesNotShown.
const MaxStatusPoints = 2048

// maxValueText bounds the string values the status page keeps, in bytes;
// a longer value is cut at a character boundary and ends with "…".
const maxValueText = 1024

// StatusVersion is the version of the /status.json document. Fields may be
// added without a change of version; a field whose meaning changes, or
// that goes away, changes it.
const StatusVersion = 1

// Status is a snapshot of a gateway as the status page shows it and
// /status.json serves it: its devices with their latest values and read
// plans, and its sinks. Nothing in it is secret: transports and targets are
// described without passwords, and error texts have the passwords and query
// values of any URL in them masked. Times are RFC 3339 in JSON; a time that
// is not known is left out.
type Status struct {
	Version int       `json:"version"` // StatusVersion
	Time    time.Time `json:"time"`    // when the snapshot was taken
	Started time.Time `json:"started"` // when the gateway was built
	Config  string    `json:"config"`  // the configuration file's name
	// Healthy is what /healthz answers: no device or sink has been failing
	// for longer than health.max_failing and no device stopped. Unhealthy
	// says, one line each, which ones are.
	Healthy   bool     `json:"healthy"`
	Unhealthy []string `json:"unhealthy"`
	// RateSeconds is the interval the rates (samples_per_second,
	// delivered_per_second, dropped_per_second) are taken over: since the
	// oldest snapshot of the last ten seconds that is at least two seconds
	// old, else since the last snapshot before, else since the start.
	RateSeconds float64        `json:"rate_seconds"`
	Devices     []DeviceStatus `json:"devices"`
	Sinks       []SinkStatus   `json:"sinks"`
}

// DeviceStatus is one device on the status page.
type DeviceStatus struct {
	Name      string  `json:"name"`
	Kind      string  `json:"kind"`      // "modbus", "sunspec" or "opcua"
	Transport string  `json:"transport"` // "modbus tcp://10.0.0.7:502 unit 1", without secrets
	Interval  float64 `json:"interval_seconds"`
	// State is the device's own report on itself (bridge.Health):
	// "up" (it answered its last request; a Modbus exception is an
	// answer, an OPC UA session is up), "down" (it did not: Error says
	// why), "starting" (no answer either way yet) or "stopped" (its poller
	// ended with Error).
	State string    `json:"state"`
	Since time.Time `json:"since,omitzero"` // when State last changed
	Error string    `json:"error,omitempty"`
	// LastCycle is when the device last handed samples to the bridge (a
	// Modbus poll cycle, an OPC UA notification or read);
	// LastCycleAge how many seconds before Time that was.
	LastCycle    time.Time `json:"last_cycle,omitzero"`
	LastCycleAge float64   `json:"last_cycle_age_seconds,omitempty"`
	// Samples counts the samples the device produced, by quality, and
	// SamplesPerSecond their rate over RateSeconds.
	Samples          QualityCounts `json:"samples"`
	SamplesPerSecond float64       `json:"samples_per_second"`
	// Suppressed counts the samples report by exception held back;
	// Dropped those its inbox dropped when full.
	Suppressed uint64 `json:"suppressed"`
	Dropped    uint64 `json:"dropped"`
	// Points are the latest values, one per point, in the order of the
	// configuration (points not configured, last, by name): the reading
	// as the device gave it, before report by exception.
	Points []PointStatus `json:"points"`
	// ValuesNotShown counts the samples of points past MaxStatusPoints.
	ValuesNotShown uint64 `json:"values_not_shown,omitempty"`

	Modbus *ModbusStatus `json:"modbus,omitempty"`
	OPCUA  *OPCUAStatus  `json:"opcua,omitempty"`
}

// QualityCounts counts samples by quality.
type QualityCounts struct {
	Good      uint64 `json:"good"`
	Uncertain uint64 `json:"uncertain"`
	Bad       uint64 `json:"bad"`
}

// PointStatus is the latest value of one point.
type PointStatus struct {
	Name string `json:"name"`
	// Value is the reading as a JSON number, boolean or string (a float
	// that is not finite as the string "NaN", "+Inf" or "-Inf"); absent
	// when the sample has none (a Bad sample). Text is the same for people
	// (numbers exact, a long string cut at 1 KiB with "…") and Kind its
	// type: "float", "int", "uint", "bool", "string" or "none".
	Value   any       `json:"value,omitempty"`
	Text    string    `json:"text"`
	Kind    string    `json:"kind"`
	Unit    string    `json:"unit,omitempty"`
	Quality string    `json:"quality"`         // "good", "uncertain" or "bad"
	Error   string    `json:"error,omitempty"` // why it is not good
	Code    uint32    `json:"code,omitempty"`  // the OPC UA StatusCode or the Modbus exception code
	Time    time.Time `json:"time"`            // when it was measured
	Age     float64   `json:"age_seconds"`     // how many seconds before Status.Time
}

// ModbusStatus is what a Modbus device adds: its link's latencies, its
// counters and its read plan.
type ModbusStatus struct {
	Unit uint8 `json:"unit"`
	// Latency of the device's last answered request, their mean and the
	// longest, in seconds.
	Latency     float64    `json:"poll_latency_seconds"`
	LatencyMean float64    `json:"poll_latency_mean_seconds"`
	LatencyMax  float64    `json:"poll_latency_max_seconds"`
	Cycles      uint64     `json:"cycles"`
	Requests    uint64     `json:"requests"`
	Overruns    uint64     `json:"overruns"`
	Holes       uint64     `json:"holes_learned"`
	Plan        PlanStatus `json:"plan"`
}

// PlanStatus is a Modbus device's read plan now (with the holes learned so
// far): the requests of a cycle where every point is due, as gateway
// -check prints it.
type PlanStatus struct {
	Cost      float64         `json:"cost_seconds"` // estimated time of the requests
	Requests  []RequestStatus `json:"requests"`
	Unplanned []string        `json:"unplanned,omitempty"` // points no request may read
}

// RequestStatus is one request of a read plan.
type RequestStatus struct {
	Table    string   `json:"table"` // holding, input, coil or discrete
	Address  uint16   `json:"address"`
	Quantity uint16   `json:"quantity"`
	Points   []string `json:"points"`
}

// OPCUAStatus is what an OPC UA device adds: its session and its nodes.
type OPCUAStatus struct {
	Mode          string       `json:"mode"` // subscribe or poll
	Connected     bool         `json:"connected"`
	Connects      uint64       `json:"connects"`
	Reconnects    uint64       `json:"reconnects"`
	Reads         uint64       `json:"reads"`
	Notifications uint64       `json:"notifications"`
	Nodes         []NodeStatus `json:"nodes"`
}

// NodeStatus is one configured OPC UA node.
type NodeStatus struct {
	Name string `json:"name"`
	Node string `json:"node"`
	Unit string `json:"unit,omitempty"`
}

// SinkStatus is one sink on the status page.
type SinkStatus struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Target string `json:"target"` // "mqtt tcp://broker:1883 topic ...", without secrets
	// State is "up" (its last write or connect succeeded), "down" (it
	// failed, or its spool cannot store: Error says why) or "starting"
	// (nothing written yet).
	State string    `json:"state"`
	Since time.Time `json:"since,omitzero"` // when it went down
	Error string    `json:"error,omitempty"`
	// Queued samples wait for the sink now, in memory or in its spool, of
	// at most QueueSize in memory; InFlight are being written.
	Queued    int64  `json:"queued"`
	InFlight  int64  `json:"in_flight"`
	QueueSize int    `json:"queue_size"`
	Overflow  string `json:"overflow"` // block, drop_oldest or spool
	// Spool is the sink's spool, with overflow: spool.
	Spool     *SpoolStatus `json:"spool,omitempty"`
	Accepted  uint64       `json:"accepted"`
	Delivered uint64       `json:"delivered"`
	// Dropped counts the samples lost to the overflow policy, a full
	// spool, or spool damage; Rejected and Failed those refused for good
	// and given up after the retry limit.
	Dropped            uint64  `json:"dropped"`
	Rejected           uint64  `json:"rejected"`
	Failed             uint64  `json:"failed"`
	Retried            uint64  `json:"retried"`
	DeliveredPerSecond float64 `json:"delivered_per_second"`
	DroppedPerSecond   float64 `json:"dropped_per_second"`
}

// SpoolStatus is the depth of a sink's spool.
type SpoolStatus struct {
	Samples uint64 `json:"samples"`
	Bytes   int64  `json:"bytes"`
	Error   string `json:"error,omitempty"` // why it cannot store now
}

// Status returns a snapshot of the gateway: what /status.json serves and
// the status page shows.
func (g *Gateway) Status() Status { return g.status.snapshot(time.Now()) }

// statusState is the status page's state: the latest values of each device
// (fed by a tap on each device's samples) and a short history of counters
// for the rates.
type statusState struct {
	g       *Gateway
	devices []*latestValues // by device, in g.states' order

	mu      sync.Mutex
	history []rateMark // oldest first, at most rateMarks, 1s apart at least

	done     chan struct{} // closed when Run ends: the event streams end
	doneOnce sync.Once
	streams  chan struct{} // a token per event stream, bounding them
}

// maxStreams bounds the event streams served at once (each is a goroutine
// and a snapshot a second).
const maxStreams = 16

// Rates are taken over at most rateWindow and at least rateMinSpan (but
// for the first seconds of a run), from snapshots at least rateStep apart.
const (
	rateWindow  = 10 * time.Second
	rateMinSpan = 2 * time.Second
	rateStep    = time.Second
	rateMarks   = int(rateWindow/rateStep) + 2
)

// rateMark is the counters at one time.
type rateMark struct {
	at        time.Time
	samples   []uint64 // per device
	delivered []uint64 // per sink
	dropped   []uint64 // per sink
}

func newStatusState(g *Gateway) *statusState {
	return &statusState{g: g, done: make(chan struct{}), streams: make(chan struct{}, maxStreams)}
}

// tap returns src with its samples shown on the status page: each batch is
// noted in the device's latest values before it goes on.
func (st *statusState) tap(src bridge.Source) bridge.Source {
	lv := &latestValues{points: make(map[string]*latestValue)}
	st.devices = append(st.devices, lv)
	return bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
		return src.Run(ctx, bridge.EmitterFunc(func(ctx context.Context, batch []bridge.Sample) error {
			lv.observe(batch)
			return out.Emit(ctx, batch)
		}))
	})
}

// stop ends the event streams: the gateway stopped.
func (st *statusState) stop() { st.doneOnce.Do(func() { close(st.done) }) }

// latestValues holds the latest sample of each point of one device, for
// at most MaxStatusPoints points.
type latestValues struct {
	mu     sync.Mutex
	points map[string]*latestValue
	// byPos remembers, by position in the last batches, which point was
	// there: a poller emits its points in the same order every cycle, so
	// the look-up by name is mostly a comparison of a string with itself.
	byPos  []*latestValue
	hidden uint64    // samples of points past MaxStatusPoints
	last   time.Time // when the last batch arrived
}

type latestValue struct {
	s  bridge.Sample
	at time.Time // when it arrived
}

// observe notes the samples of one batch. It is on the devices' path to
// the sinks: one lock per batch and a copy per sample; no allocation but
// for a point seen the first time (BenchmarkStatusTap).
func (v *latestValues) observe(batch []bridge.Sample) {
	if len(batch) == 0 {
		return
	}
	now := time.Now()
	v.mu.Lock()
	v.last = now
	for i := range batch {
		s := &batch[i]
		var p *latestValue
		if i < len(v.byPos) && v.byPos[i] != nil && v.byPos[i].s.Point == s.Point {
			p = v.byPos[i]
		} else {
			p = v.points[s.Point]
			if p == nil {
				if len(v.points) >= MaxStatusPoints {
					v.hidden++
					continue
				}
				p = new(latestValue)
				v.points[s.Point] = p
			}
			if i < MaxStatusPoints {
				if i >= len(v.byPos) {
					v.byPos = append(v.byPos, make([]*latestValue, i+1-len(v.byPos))...)
				}
				v.byPos[i] = p
			}
		}
		p.s, p.at = *s, now
		if s.Value.Kind() == bridge.KindString && len(s.Value.Str()) > maxValueText {
			// Keep a bounded copy, not the whole string (a rare, long
			// OPC UA string: this allocates).
			p.s.Value = bridge.String(strings.Clone(cut(s.Value.Str(), maxValueText)))
		}
	}
	v.mu.Unlock()
}

// values returns the latest values and when the last batch came.
func (v *latestValues) values() ([]latestValue, time.Time, uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]latestValue, 0, len(v.points))
	for _, p := range v.points {
		out = append(out, *p)
	}
	return out, v.last, v.hidden
}

// snapshot takes the status now.
func (st *statusState) snapshot(now time.Time) Status {
	g := st.g
	bs := g.bridge.Stats()
	out := Status{
		Version: StatusVersion, Time: now, Started: g.started, Config: g.a.path,
		Unhealthy: []string{}, Devices: []DeviceStatus{}, Sinks: []SinkStatus{},
	}
	for _, line := range g.unhealthy(now) {
		out.Unhealthy = append(out.Unhealthy, scrub(line))
	}
	out.Healthy = len(out.Unhealthy) == 0
	srcs := make(map[string]bridge.SourceStats, len(bs.Sources))
	for _, s := range bs.Sources {
		srcs[s.Name] = s
	}

	mark := rateMark{at: now}
	for i, s := range g.states {
		d := st.device(s, srcs[s.dev.name], now)
		if i < len(st.devices) {
			vals, last, hidden := st.devices[i].values()
			d.LastCycle, d.ValuesNotShown = last, hidden
			if !last.IsZero() {
				d.LastCycleAge = seconds(now.Sub(last))
			}
			d.Points = pointStatuses(s.dev, vals, now)
		}
		mark.samples = append(mark.samples, d.Samples.Good+d.Samples.Uncertain+d.Samples.Bad)
		out.Devices = append(out.Devices, d)
	}
	for _, s := range bs.Sinks {
		out.Sinks = append(out.Sinks, st.sink(s))
		mark.delivered = append(mark.delivered, s.Delivered)
		mark.dropped = append(mark.dropped, s.Dropped)
	}

	base := st.rateBase(mark)
	dt := now.Sub(base.at)
	out.RateSeconds = seconds(dt)
	rate := func(cur uint64, prev []uint64, i int) float64 {
		var p uint64
		if i < len(prev) {
			p = prev[i]
		}
		if dt <= 0 || cur < p {
			return 0
		}
		return float64(cur-p) / dt.Seconds()
	}
	for i := range out.Devices {
		out.Devices[i].SamplesPerSecond = rate(mark.samples[i], base.samples, i)
	}
	for i := range out.Sinks {
		out.Sinks[i].DeliveredPerSecond = rate(mark.delivered[i], base.delivered, i)
		out.Sinks[i].DroppedPerSecond = rate(mark.dropped[i], base.dropped, i)
	}
	return out
}

// rateBase keeps m in the history when the newest mark is older than
// rateStep, and returns the mark the rates are taken from: the oldest one
// of the last rateWindow that is at least rateMinSpan old; else the newest
// one older than that (a client that polls seldom gets the rates since its
// last poll); else the start, with every counter zero.
func (st *statusState) rateBase(m rateMark) rateMark {
	st.mu.Lock()
	defer st.mu.Unlock()
	// Keep one mark older than the window at most: the base when there is
	// none within it.
	for len(st.history) > 1 && m.at.Sub(st.history[1].at) > rateWindow {
		st.history = st.history[1:]
	}
	base := rateMark{at: st.g.started}
	for _, h := range st.history {
		if age := m.at.Sub(h.at); age >= rateMinSpan {
			base = h
			if age <= rateWindow {
				break // the oldest within the window
			}
		}
	}
	if n := len(st.history); n == 0 || m.at.Sub(st.history[n-1].at) >= rateStep {
		if n == rateMarks {
			st.history = slices.Delete(st.history, 0, 1)
		}
		st.history = append(st.history, m)
	}
	return base
}

// device describes one device, without its values.
func (st *statusState) device(s *sourceState, ss bridge.SourceStats, now time.Time) DeviceStatus {
	dev := s.dev
	h := s.health()
	d := DeviceStatus{
		Name: dev.name, Kind: dev.kind, Transport: scrub(dev.desc), Interval: seconds(dev.interval),
		Since:      h.Since,
		Samples:    QualityCounts{Good: s.good.Load(), Uncertain: s.uncertain.Load(), Bad: s.bad.Load()},
		Suppressed: ss.Suppressed, Dropped: ss.Dropped,
		Points: []PointStatus{},
	}
	switch {
	case !ss.Running && ss.Err != "":
		d.State, d.Error = "stopped", ss.Err
	case h.Up:
		d.State = "up"
	case h.Reason == "not started" || h.Reason == "connecting":
		d.State = "starting"
	default:
		d.State, d.Error = "down", h.Reason
	}
	d.Error = scrub(d.Error)
	mb := dev.mb
	if mb == nil && dev.ss != nil {
		mb = dev.ss.Modbus() // the poller of the chain discovered last; nil before
	}
	switch {
	case mb != nil:
		ds := mb.Stats()
		us := mb.Client().Stats().Units[dev.unit]
		d.Modbus = &ModbusStatus{
			Unit: dev.unit, Latency: seconds(us.LastLatency), LatencyMean: seconds(us.MeanLatency), LatencyMax: seconds(us.MaxLatency),
			Cycles: ds.Cycles, Requests: ds.Requests, Overruns: ds.Overruns, Holes: ds.Holes,
			Plan: planStatus(mb.Plan(), mb.Points()),
		}
	case dev.ua != nil:
		us := dev.ua.Stats()
		o := &OPCUAStatus{Mode: string(dev.mode), Connected: us.Connected, Connects: us.Connects, Reconnects: us.Reconnects,
			Reads: us.Reads, Notifications: us.Notifications, Nodes: make([]NodeStatus, 0, len(dev.nodes))}
		for _, n := range dev.nodes {
			o.Nodes = append(o.Nodes, NodeStatus{Name: n.Name, Node: n.Node, Unit: n.Unit})
		}
		d.OPCUA = o
	}
	return d
}

// planStatus describes a read plan with the names of its points.
func planStatus(p modbus.Plan, points []modbus.Point) PlanStatus {
	name := func(i int) string {
		if i >= 0 && i < len(points) {
			return points[i].Name
		}
		return "#" + strconv.Itoa(i)
	}
	ps := PlanStatus{Cost: seconds(p.Cost), Requests: make([]RequestStatus, 0, len(p.Requests))}
	for _, r := range p.Requests {
		rs := RequestStatus{Table: string(r.Table), Address: r.Address, Quantity: r.Quantity, Points: make([]string, 0, len(r.Points))}
		for _, i := range r.Points {
			rs.Points = append(rs.Points, name(i))
		}
		ps.Requests = append(ps.Requests, rs)
	}
	for _, i := range p.Unplanned {
		ps.Unplanned = append(ps.Unplanned, name(i))
	}
	return ps
}

// pointStatuses orders the latest values as the configuration lists the
// points, the others after them by name.
func pointStatuses(dev *device, vals []latestValue, now time.Time) []PointStatus {
	order := map[string]int{}
	mb := dev.mb
	if mb == nil && dev.ss != nil {
		mb = dev.ss.Modbus()
	}
	if mb != nil {
		for i, p := range mb.Points() {
			order[p.Name] = i
		}
	}
	for i, n := range dev.nodes {
		order[n.Name] = i
	}
	slices.SortFunc(vals, func(a, b latestValue) int {
		ia, oka := order[a.s.Point]
		ib, okb := order[b.s.Point]
		switch {
		case oka && okb:
			return cmp.Compare(ia, ib)
		case oka:
			return -1
		case okb:
			return 1
		}
		return strings.Compare(a.s.Point, b.s.Point)
	})
	out := make([]PointStatus, 0, len(vals))
	for _, v := range vals {
		s := v.s
		t := s.Time
		if t.IsZero() {
			t = v.at
		}
		p := PointStatus{
			Name: s.Point, Kind: s.Value.Kind().String(), Unit: s.Unit, Quality: s.Quality.String(),
			Error: scrub(s.Reason), Code: s.Code, Time: t, Age: max(0, seconds(now.Sub(t))),
		}
		p.Value, p.Text = jsonValue(s.Value)
		out = append(out, p)
	}
	return out
}

// jsonValue returns v as a value encoding/json writes as the sample's JSON
// would, and as text for people.
func jsonValue(v bridge.Value) (any, string) {
	switch v.Kind() {
	case bridge.KindFloat:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			s := strconv.FormatFloat(f, 'g', -1, 64)
			return s, s
		}
		return f, v.String()
	case bridge.KindInt:
		i, _ := v.Int()
		return i, v.String()
	case bridge.KindUint:
		u, _ := v.Uint()
		return u, v.String()
	case bridge.KindBool:
		b, _ := v.Bool()
		return b, v.String()
	case bridge.KindString:
		return v.Str(), v.Str() // cut to maxValueText when it was noted
	}
	return nil, ""
}

// cut returns s cut to at most n bytes at a character boundary, with "…"
// when it was cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// sink describes one sink.
func (st *statusState) sink(s bridge.SinkStats) SinkStatus {
	out := SinkStatus{
		Name: s.Name, Queued: s.Queued, InFlight: s.InFlight,
		Accepted: s.Accepted, Delivered: s.Delivered, Dropped: s.Dropped, Rejected: s.Rejected, Failed: s.Failed, Retried: s.Retried,
	}
	for _, e := range st.g.a.sinks {
		if e.name == s.Name {
			out.Kind, out.Target = e.kind, scrub(e.desc)
			out.QueueSize, out.Overflow = e.opts.QueueSize, e.opts.Overflow.String()
			if out.QueueSize == 0 {
				out.QueueSize = 10_000 // bridge's default
			}
		}
	}
	switch {
	case !s.Up:
		out.State, out.Since, out.Error = "down", s.DownSince, scrub(s.LastError)
		if s.SpoolError != "" {
			out.Error = scrub("its spool cannot store: " + s.SpoolError)
		}
	case s.Connected:
		out.State = "up"
	default:
		out.State = "starting"
	}
	if sp := st.g.spools[s.Name]; sp != nil {
		out.Spool = &SpoolStatus{Samples: uint64(sp.Len()), Bytes: sp.Bytes(), Error: scrub(s.SpoolError)}
	}
	return out
}

// scrub masks, in a text meant for the page (an error, a description), the
// password and the query values of every URL or user:password@host in it
// (internal/redact), word by word so that the rest stays readable.
func scrub(s string) string {
	if !strings.ContainsAny(s, "@?") {
		return s
	}
	var b strings.Builder
	start := -1
	flush := func(end int) {
		if start >= 0 {
			b.WriteString(scrubWord(s[start:end]))
			start = -1
		}
	}
	for i, r := range s {
		// Characters a URL's user information cannot hold (url.Parse
		// refuses them there) end a word; a comma, a parenthesis or
		// an apostrophe can, so they do not.
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '"' || r == '<' || r == '>' {
			flush(i)
			b.WriteRune(r)
			continue
		}
		if start < 0 {
			start = i
		}
	}
	flush(len(s))
	return b.String()
}

// scrubWord masks the secrets of one word: redact.URL from where a URL's
// scheme starts (so that "(tcp://u:pw@h)" or "#tcp://..." is read as a
// URL), then, when a ':' still comes before the last '@' unmasked, all
// from that ':' to the '@': hiding too much is safe.
func scrubWord(w string) string {
	if !strings.ContainsAny(w, "@?") {
		return w
	}
	pre, u := "", w
	if i := strings.Index(w, "://"); i > 0 {
		j := i
		for j > 0 && isSchemeChar(w[j-1]) {
			j--
		}
		pre, u = w[:j], w[j:]
	}
	if strings.ContainsAny(pre, "@?") {
		pre = redact.URL(pre)
	}
	r := pre + redact.URL(u)
	if at := strings.LastIndexByte(r, '@'); at > 0 && !strings.HasSuffix(r[:at], redact.Mask) {
		from := 0
		if i := strings.Index(r[:at], "://"); i >= 0 {
			from = i + 3
		}
		if c := strings.IndexByte(r[from:at], ':'); c >= 0 {
			r = r[:from+c+1] + redact.Mask + r[at:]
		}
	}
	return r
}

// isSchemeChar reports whether c may be in a URL's scheme (RFC 3986,
// section 3.1).
func isSchemeChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'
}

// seconds returns d in seconds.
func seconds(d time.Duration) float64 { return d.Seconds() }
