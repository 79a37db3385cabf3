package modbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// DeviceConfig configures a polled [Device]. It loads from YAML with the
// keys of its tags; [DeviceConfig.Validate] gives every setting's range and
// the paths its errors carry.
type DeviceConfig struct {
	// Name is the device's name, the Source of its samples. Required.
	Name string `yaml:"name"`
	// Conn says how to reach the device (URL, serial settings, timeout,
	// TLS). Ignored when Bus is set.
	Conn ClientConfig `yaml:"modbus"`
	// Bus, when set, is a link shared with other devices (a serial line, an
	// RTU-over-TCP gateway): its requests are serialised with theirs.
	Bus *Bus `yaml:"-"`
	// Unit is the unit (slave) id, used as given: 0 is a valid unit on
	// Modbus TCP, UDP and TLS; on RTU links (rtu, rtuovertcp, rtuoverudp)
	// it is the broadcast address and refused, as are 248-255.
	Unit uint8 `yaml:"unit"`
	// Interval is the poll period of points that have no interval of their
	// own: 10ms to 24h; default 1s.
	Interval time.Duration `yaml:"interval,omitempty"`
	// Profile, when set, gives the points and the request limits; Points
	// are added after the profile's.
	Profile *Profile `yaml:"-"`
	Points  []Point  `yaml:"points,omitempty"`
	// Limits apply when there is no Profile.
	Limits Limits `yaml:"limits,omitempty"`
	// Cost overrides the planner's cost model, which is otherwise derived
	// from the transport ([TCPCost] at 1 ms round trip and 1.25 MB/s, or
	// [RTUCost] from the serial settings).
	Cost *CostModel `yaml:"-"`
	// MaxBusyRetries is how many times a request answered Server Device
	// Busy (exception 6) or Acknowledge (5) is retried within a cycle before
	// its points are reported Bad: -1 (none) to 10. Default (0) 3.
	MaxBusyRetries int `yaml:"max_busy_retries,omitempty"`
	// BusyRetryDelay is the pause before the first such retry, doubled for
	// each next one: 1ms to 10s. Default 20ms.
	BusyRetryDelay time.Duration `yaml:"busy_retry_delay,omitempty"`
	// ReportNotImplemented makes a point whose device answers its
	// not-implemented value ([Point.NotImplemented]) yield a Bad sample
	// with reason "not implemented" each cycle; by default it yields no
	// sample. Either way it never yields a number.
	ReportNotImplemented bool `yaml:"report_not_implemented,omitempty"`
	// Logger receives the device's diagnostics (learned holes, emit
	// failures). Nil discards them.
	Logger *slog.Logger `yaml:"-"`
}

// Device polls one Modbus device and is a [bridge.Source] of its points.
//
// # Polling, buses and writes
//
// Points are grouped by interval (their own, or the device's). Each cycle
// reads the points that are due, in the requests a [Planner] finds cheapest
// for the transport, decodes them and hands one batch of samples to the
// bridge. A sample's Time is when the response arrived. A read that fails
// yields Bad samples for its points — never silence — with the exception or
// transport error as Reason and the exception code as Code. Requests answered
// Server Device Busy are retried a few times; a lost connection is re-made
// with backoff by the [Client]. Each Device runs in its own goroutine with its
// own connection, so a device that fails or times out does not delay others.
//
// When a request that spans unmapped filler registers is answered Illegal
// Data Address, the device reads its points one by one: if they all answer,
// the filler was a hole and is forbidden to the planner for good; a point
// that itself answers Illegal Data Address yields Bad samples with that
// reason and is read on its own from then on, so the others keep being read
// together. When a request without filler is refused but its points all
// answer (a block boundary, or a request size limit the profile does not
// declare), the planner learns a boundary near its middle
// ([Planner.Split]) and splits further if a part is refused again.
//
// Devices on one serial line or behind one RTU-over-TCP/UDP gateway must
// share a [Bus] (see [NewDevices], which does it for devices with the same
// URL): its requests are serialised in arrival order with the 3.5-character
// silence between frames, and a unit that stops answering is backed off
// exponentially (up to ClientConfig.MaxBackoff) so that its timeouts do not
// starve the units that answer. [Bus.Stats] reports the line's utilisation and
// each unit's latency.
//
// [Device.Write] (a bridge.Writer) and [Device.WritePoint] write holding
// registers and coils, only to points marked Writable and only values that
// pass the point's rules ([Point.CheckWrite]); they read the point back. A
// bool held in one bit of a holding register is written by read-modify-write
// of the register with the link held across both requests, so no poll or
// other request of this process comes between; another master writing the
// same register meanwhile is not guarded against (Modbus has no lock).
// Writes of one Device are serialised, go through the same link as the polls
// and may be called at any time, also while Run polls.
type Device struct {
	name     string
	unit     uint8
	interval time.Duration
	points   []Point
	client   *Client
	ownConn  bool
	planner  *Planner
	busyMax  int
	busyWait time.Duration
	log      *slog.Logger

	groups   []group // by interval
	byName   map[string]int
	sf       []int // per point, the index of its scale factor point or -1; nil when none has one
	reportNI bool  // a not-implemented value yields a Bad sample

	writeSem chan struct{} // serialises writes; a channel so waiting honours ctx
	running  atomic.Bool
	closed   atomic.Bool

	// Run's state.
	mu         sync.Mutex // guards plans, solo, gen against Plan() callers
	plans      map[uint64]*cyclePlan
	solo       []bool // points read on their own (unreadable in a group)
	gen        int
	batch      []bridge.Sample
	pending    []pendingDecode   // replies of this cycle not decoded yet (see decodeLater)
	reason     map[string]string // interned error reasons
	linkClosed bool              // a read found the link closed (Close, or the Bus closed)
	answered   bool              // the device answered a request this cycle (data or exception)
	lastErr    error             // the last transport failure this cycle

	stats deviceCounters

	healthMu sync.Mutex
	health   bridge.Health
}

type group struct {
	interval time.Duration
	points   []int
	next     time.Time
}

// ErrUnplanned is the reason of the Bad samples of a point no request may
// read: its registers, with its scale factor's, lie in a forbidden range
// (configured or learned) or span more than one request. Validation
// refuses such points; a point the device's answers make unreadable is
// reported, never left silent.
var ErrUnplanned = errors.New("modbus: no request may read the point (with its scale factor) under the device's limits and the holes learned")

// cyclePlan is the plan for one combination of due groups: the requests
// with global point indexes.
type cyclePlan struct {
	gen      int
	requests []Request // Points are indexes into Device.points
	solo     []int
	plan     Plan
}

type deviceCounters struct {
	cycles, requests, samples, bad, overruns, holes, splits atomic.Uint64
}

// DeviceStats are a Device's counters since it was made.
type DeviceStats struct {
	Cycles   uint64 // poll cycles run
	Requests uint64 // read requests sent (retries and probes included)
	Samples  uint64 // samples emitted
	Bad      uint64 // of which Bad
	Overruns uint64 // cycles that started later than one interval after they were due
	Holes    uint64 // holes learned from Illegal Data Address answers
	// Splits counts boundaries learned where the device refused a request
	// without holes that it answered in parts (see [Planner.Split]).
	Splits uint64
}

// NewDevice checks cfg — the connection settings, the points (all problems
// at once, each naming the point and field) — and returns a Device. It does
// no I/O: the connection is made when Run starts polling.
func NewDevice(cfg DeviceConfig) (*Device, error) {
	if _, errs := cfg.validate(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	d := &Device{name: cfg.Name, unit: cfg.Unit, interval: cfg.Interval, log: cfg.Logger,
		busyMax: cfg.MaxBusyRetries, busyWait: cfg.BusyRetryDelay}
	if d.busyMax == 0 {
		d.busyMax = 3
	}
	if d.busyWait <= 0 {
		d.busyWait = 20 * time.Millisecond
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.health = bridge.Health{Since: time.Now(), Reason: "not started"}
	limits := cfg.Limits
	if cfg.Profile != nil {
		limits = cfg.Profile.Limits
		d.points = append(d.points, cfg.Profile.Clone().Points...)
	}
	for _, p := range cfg.Points {
		p.clonePointers()
		d.points = append(d.points, p)
	}
	if cfg.Bus != nil {
		d.client = cfg.Bus.c
	} else {
		c, err := NewClient(cfg.Conn)
		if err != nil {
			return nil, bridge.PrefixFields("modbus", err)
		}
		d.client, d.ownConn = c, true
	}
	cost := d.costModel()
	if cfg.Cost != nil {
		cost = *cfg.Cost
	}
	d.planner = NewPlanner(limits, cost)
	d.byName = make(map[string]int, len(d.points))
	byInterval := map[time.Duration]int{}
	for i, p := range d.points {
		d.byName[p.Name] = i
		iv := p.Interval
		if iv == 0 {
			iv = d.interval
		}
		g, ok := byInterval[iv]
		if !ok {
			g = len(d.groups)
			byInterval[iv] = g
			d.groups = append(d.groups, group{interval: iv})
		}
		d.groups[g].points = append(d.groups[g].points, i)
	}
	if len(d.groups) > 64 {
		return nil, configErrorf("interval", "device %q has %d distinct point intervals; at most 64", cfg.Name, len(d.groups))
	}
	d.solo = make([]bool, len(d.points))
	d.sf = resolveScaleFactors(d.points)
	d.reportNI = cfg.ReportNotImplemented
	d.writeSem = make(chan struct{}, 1)
	d.plans = make(map[uint64]*cyclePlan)
	d.reason = make(map[string]string)
	return d, nil
}

func (d *Device) costModel() CostModel { return EndpointCost(d.client.ep) }

// Name returns the device's name (its samples' Source).
func (d *Device) Name() string { return d.name }

// Points returns a copy of the device's points.
func (d *Device) Points() []Point { return slices.Clone(d.points) }

// Client returns the link the device uses (shared when it is on a Bus).
func (d *Device) Client() *Client { return d.client }

// Plan returns the plan for reading every point of the device now, with the
// holes learned so far; print it to see how the device is read. Its point
// indexes are those of [Device.Points]; points read on their own after
// answering Illegal Data Address are not in it. The Plan is the caller's
// own copy.
func (d *Device) Plan() Plan {
	d.mu.Lock()
	defer d.mu.Unlock()
	var all uint64
	for g := range d.groups {
		all |= 1 << g
	}
	p := d.planLocked(all).plan
	p.Requests = slices.Clone(p.Requests)
	for k := range p.Requests {
		p.Requests[k].Points = slices.Clone(p.Requests[k].Points)
	}
	p.Unplanned = slices.Clone(p.Unplanned)
	return p
}

// Stats returns the device's counters.
func (d *Device) Stats() DeviceStats {
	return DeviceStats{
		Cycles: d.stats.cycles.Load(), Requests: d.stats.requests.Load(), Samples: d.stats.samples.Load(),
		Bad: d.stats.bad.Load(), Overruns: d.stats.overruns.Load(), Holes: d.stats.holes.Load(),
		Splits: d.stats.splits.Load(),
	}
}

// planLocked returns the plan for the groups in mask, from the cache when
// nothing was learned since it was made.
func (d *Device) planLocked(mask uint64) *cyclePlan {
	if cp := d.plans[mask]; cp != nil && cp.gen == d.gen {
		return cp
	}
	cp := &cyclePlan{gen: d.gen}
	var idx []int
	var pts []Point // the due points; dropped once planned (plans are rare)
	for g := range d.groups {
		if mask&(1<<g) == 0 {
			continue
		}
		for _, i := range d.groups[g].points {
			// A point whose scale factor is read on its own is read on its
			// own too, with its factor (d.span): planned without it, it
			// could not be read at all.
			if d.solo[i] || (d.sf != nil && d.sf[i] >= 0 && d.solo[d.sf[i]]) {
				cp.solo = append(cp.solo, i)
				continue
			}
			idx = append(idx, i)
			pts = append(pts, d.points[i])
		}
	}
	plan := d.planner.Plan(pts)
	// The cached plan speaks of the device's points (global indexes), so
	// that it holds no reference to pts.
	cp.requests = make([]Request, len(plan.Requests))
	for k, r := range plan.Requests {
		gr := Request{Table: r.Table, Address: r.Address, Quantity: r.Quantity, Points: make([]int, len(r.Points))}
		for n, j := range r.Points {
			gr.Points[n] = idx[j]
		}
		cp.requests[k] = gr
	}
	cp.plan = Plan{Requests: cp.requests, Cost: plan.Cost, points: d.points, model: plan.model}
	for _, j := range plan.Unplanned {
		cp.plan.Unplanned = append(cp.plan.Unplanned, idx[j])
	}
	// Unplanned points (in a forbidden range, or too far from their scale
	// factor) are never read: each cycle reports them Bad (ErrUnplanned).
	slices.Sort(cp.solo)
	d.plans[mask] = cp
	return cp
}

// Run polls the device until ctx ends, handing each cycle's samples to out
// in one batch, then returns nil. It returns early only when out reports
// that the bridge is closed, or with [ErrClosed] when the device (or its
// Bus) was closed. Run may be called once at a time.
func (d *Device) Run(ctx context.Context, out bridge.Emitter) error {
	if d.closed.Load() {
		return ErrClosed
	}
	if d.running.Swap(true) {
		return fmt.Errorf("modbus: device %q: Run called while running", d.name)
	}
	defer d.running.Store(false)
	d.linkClosed = false
	d.setHealth(false, "connecting", true)
	if d.ownConn {
		defer d.client.disconnect()
	}
	now := time.Now()
	for g := range d.groups {
		d.groups[g].next = now
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if ctx.Err() != nil {
			return nil
		}
		now = time.Now()
		var mask uint64
		next := now.Add(time.Hour)
		for g := range d.groups {
			gr := &d.groups[g]
			if !gr.next.After(now) {
				mask |= 1 << g
			} else if gr.next.Before(next) {
				next = gr.next
			}
		}
		if mask == 0 {
			timer.Reset(next.Sub(now))
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
			continue
		}
		d.cycle(ctx, mask)
		if len(d.batch) > 0 {
			if err := out.Emit(ctx, d.batch); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if errors.Is(err, bridge.ErrClosed) {
					return err
				}
				d.log.Warn("modbus: emit failed", "device", d.name, "err", err)
			}
		}
		clear(d.batch) // drop references to strings until the next cycle
		d.batch = d.batch[:0]
		if d.linkClosed {
			return ErrClosed
		}
		done := time.Now()
		for g := range d.groups {
			if mask&(1<<g) == 0 {
				continue
			}
			gr := &d.groups[g]
			gr.next = gr.next.Add(gr.interval)
			if gr.next.Before(done) {
				// Overrun: skip the missed cycles rather than burst.
				d.stats.overruns.Add(1)
				gr.next = done.Add(gr.interval)
			}
		}
	}
}

// PollOnce reads every point of the device once, in the planned requests,
// and hands the samples to out in one batch. It is for one-shot reads and
// benchmarks; it must not be called while Run runs.
func (d *Device) PollOnce(ctx context.Context, out bridge.Emitter) error {
	if d.closed.Load() {
		return ErrClosed
	}
	if d.running.Swap(true) {
		return fmt.Errorf("modbus: device %q: PollOnce called while running", d.name)
	}
	defer d.running.Store(false)
	d.linkClosed = false
	var all uint64
	for g := range d.groups {
		all |= 1 << g
	}
	d.cycle(ctx, all)
	var err error
	if len(d.batch) > 0 {
		err = out.Emit(ctx, d.batch)
	}
	clear(d.batch)
	d.batch = d.batch[:0]
	if err == nil && d.linkClosed {
		err = ErrClosed
	}
	return err
}

// cycle reads the points of the groups in mask into d.batch.
func (d *Device) cycle(ctx context.Context, mask uint64) {
	d.stats.cycles.Add(1)
	d.answered, d.lastErr = false, nil
	defer func() {
		d.flushDecodes()
		switch {
		case ctx.Err() != nil || d.linkClosed:
		case d.answered:
			d.setHealth(true, "", false)
		case d.lastErr != nil:
			d.setHealth(false, d.lastErr.Error(), false)
		}
	}()
	d.mu.Lock()
	cp := d.planLocked(mask)
	d.mu.Unlock()
	relearn := false
	for k := range cp.requests {
		r := &cp.requests[k]
		if ctx.Err() != nil || d.linkClosed {
			return
		}
		if d.readRequest(ctx, r) {
			relearn = true
		}
	}
	if len(cp.plan.Unplanned) > 0 {
		d.bad(cp.plan.Unplanned, ErrUnplanned, time.Now())
	}
	for _, i := range cp.solo {
		if ctx.Err() != nil || d.linkClosed {
			return
		}
		p := &d.points[i]
		first, last := d.span(i) // with its scale factor
		if p.Table.IsBits() {
			first, last = int(p.Address), int(p.Address)
		}
		d.readRequest(ctx, &Request{Table: p.Table, Address: uint16(first), Quantity: uint16(last - first + 1), Points: []int{i}})
	}
	if relearn {
		d.mu.Lock()
		d.gen++
		d.mu.Unlock()
	}
}

// readRequest reads one request and appends its samples. It reports
// whether it learned something that changes the plans.
func (d *Device) readRequest(ctx context.Context, r *Request) (learned bool) {
	regs, bits, err := d.read(ctx, r.Table, r.Address, r.Quantity)
	t := time.Now()
	if err == nil {
		d.decodeLater(r, regs, bits, t)
		return false
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return false // shutting down: no samples for a read that never happened
	}
	if errors.Is(err, ErrClosed) {
		d.linkClosed = true // Run returns ErrClosed: no Bad samples for a closed link
		return false
	}
	if errors.Is(err, ErrIllegalDataAddress) && (len(r.Points) > 1 || d.hasFiller(r)) {
		return d.learn(ctx, r)
	}
	if errors.Is(err, ErrIllegalDataAddress) && !d.solo[r.Points[0]] {
		d.mu.Lock()
		d.solo[r.Points[0]] = true
		d.mu.Unlock()
		learned = true
	}
	d.bad(r.Points, err, t)
	return learned
}

// read reads registers or bits, retrying Busy and Acknowledge answers.
func (d *Device) read(ctx context.Context, t Table, addr, qty uint16) (regs []uint16, bits []bool, err error) {
	wait := d.busyWait
	for attempt := 0; ; attempt++ {
		d.stats.requests.Add(1)
		if t.IsBits() {
			bits, err = d.client.ReadBits(ctx, d.unit, t, addr, qty)
		} else {
			regs, err = d.client.ReadRegisters(ctx, d.unit, t, addr, qty)
		}
		if _, exc := ExceptionCodeOf(err); err == nil || (exc && !errors.Is(err, ErrGatewayTargetDeviceFailedToRespond) && !errors.Is(err, ErrGatewayPathUnavailable) && !errors.Is(err, ErrBackoff)) {
			d.answered = true // the device itself answered (a gateway's "no answer" is not the device's)
		} else if ctx.Err() == nil {
			d.lastErr = err
		}
		if err == nil || attempt >= d.busyMax || !(errors.Is(err, ErrServerDeviceBusy) || errors.Is(err, ErrAcknowledge)) {
			return regs, bits, err
		}
		if sleepUntil(ctx, time.Now().Add(wait)) != nil {
			return nil, nil, err
		}
		wait *= 2
	}
}

// hasFiller reports whether r reads addresses no point of it covers.
func (d *Device) hasFiller(r *Request) bool {
	covered := 0
	end := int(r.Address)
	for _, i := range r.Points {
		first, last := d.span(i)
		if d.points[i].Table.IsBits() {
			first, last = int(d.points[i].Address), int(d.points[i].Address)
		}
		if first > end {
			return true
		}
		if last+1 > end {
			covered += last + 1 - max(first, end)
			end = last + 1
		}
	}
	return covered < int(r.Quantity)
}

// learn handles an Illegal Data Address answer to a request of several
// points or with filler: it reads the points one run at a time; when all
// answer, the filler is forbidden; points that do not answer are read on
// their own from now on.
func (d *Device) learn(ctx context.Context, r *Request) bool {
	type run struct {
		first, last int
		points      []int
	}
	var runs []run
	for _, i := range r.Points {
		// A point is read with its scale factor, never apart from it.
		first, last := d.span(i)
		if d.points[i].Table.IsBits() {
			first, last = int(d.points[i].Address), int(d.points[i].Address)
		}
		if n := len(runs); n > 0 && first <= runs[n-1].last {
			runs[n-1].first = min(runs[n-1].first, first)
			runs[n-1].last = max(runs[n-1].last, last)
			runs[n-1].points = append(runs[n-1].points, i)
			// A scale factor below the run may reach into the one before.
			for n := len(runs); n > 1 && runs[n-1].first <= runs[n-2].last; n-- {
				runs[n-2].first = min(runs[n-2].first, runs[n-1].first)
				runs[n-2].last = max(runs[n-2].last, runs[n-1].last)
				runs[n-2].points = append(runs[n-2].points, runs[n-1].points...)
				runs = runs[:n-1]
			}
			continue
		}
		runs = append(runs, run{first, last, []int{i}})
	}
	allOK := true
	for _, rn := range runs {
		sub := Request{Table: r.Table, Address: uint16(rn.first), Quantity: uint16(rn.last - rn.first + 1), Points: rn.points}
		regs, bits, err := d.read(ctx, sub.Table, sub.Address, sub.Quantity)
		t := time.Now()
		if err == nil {
			d.decodeLater(&sub, regs, bits, t)
			continue
		}
		if ctx.Err() != nil {
			return false
		}
		if errors.Is(err, ErrClosed) {
			d.linkClosed = true
			return false
		}
		if errors.Is(err, ErrIllegalDataAddress) {
			allOK = false
			d.mu.Lock()
			for _, i := range rn.points {
				d.solo[i] = true
			}
			d.mu.Unlock()
			if d.sf != nil && len(rn.points) > 1 {
				// The run may be one only because a scale factor joined
				// its points: read each alone (with its factor) now.
				for _, i := range rn.points {
					p := &d.points[i]
					first, last := d.span(i)
					if p.Table.IsBits() {
						first, last = int(p.Address), int(p.Address)
					}
					d.readRequest(ctx, &Request{Table: p.Table, Address: uint16(first), Quantity: uint16(last - first + 1), Points: []int{i}})
				}
				continue
			}
		} else {
			allOK = false // cannot tell; try again next cycle
		}
		d.bad(rn.points, err, t)
	}
	if allOK {
		holes := 0
		prev := int(r.Address)
		for _, rn := range runs {
			if rn.first > prev {
				d.planner.Forbid(r.Table, uint16(prev), uint16(rn.first-1))
				d.stats.holes.Add(1)
				holes++
				d.log.Info("modbus: learned hole", "device", d.name, "table", r.Table, "first", prev, "last", rn.first-1)
			}
			prev = rn.last + 1
		}
		if end := int(r.Address) + int(r.Quantity); prev < end {
			d.planner.Forbid(r.Table, uint16(prev), uint16(end-1))
			d.stats.holes.Add(1)
			holes++
		}
		if holes == 0 && len(runs) > 1 {
			// No gap to blame: the device refused the span itself (a
			// block boundary, or a request size limit it does not
			// declare). Split it between runs, near the middle; a part
			// that still fails is split again when it does, so the plan
			// converges in a few cycles instead of failing every one.
			mid := int(r.Address) + int(r.Quantity)/2
			at := runs[1].first
			for _, rn := range runs[2:] {
				if abs(rn.first-mid) < abs(at-mid) {
					at = rn.first
				}
			}
			d.planner.Split(r.Table, uint16(at))
			d.stats.splits.Add(1)
			d.log.Info("modbus: learned boundary", "device", d.name, "table", r.Table, "between", at-1, "and", at)
		}
	}
	return true
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// pendingDecode is a reply read in this cycle and not decoded yet.
type pendingDecode struct {
	r    *Request
	regs []uint16
	bits []bool
	t    time.Time
}

// decodeLater keeps a reply to decode at the end of the cycle (or before
// the next Bad sample, so that the batch keeps the order of the reads):
// a cycle's requests go out back to back, so that its values are read as
// close together in time as the link allows, and a device or gateway that
// answers them is kept busy rather than left idle between them.
func (d *Device) decodeLater(r *Request, regs []uint16, bits []bool, t time.Time) {
	d.pending = append(d.pending, pendingDecode{r, regs, bits, t})
}

// flushDecodes decodes the replies decodeLater kept, in order.
func (d *Device) flushDecodes() {
	pend := d.pending
	d.pending = d.pending[:0] // decode's own Bad samples need no flush
	for i := range pend {
		d.decode(pend[i].r, pend[i].regs, pend[i].bits, pend[i].t)
	}
	clear(pend)
}

// decode appends the Good (or, when a value does not decode, Bad) samples
// of r's points.
func (d *Device) decode(r *Request, regs []uint16, bits []bool, t time.Time) {
	good := 0
	for _, i := range r.Points {
		p := &d.points[i]
		off := int(p.Address) - int(r.Address)
		var v bridge.Value
		var err error
		if p.Table.IsBits() {
			if off < len(bits) {
				v = p.DecodeBit(bits[off])
			} else {
				err = fmt.Errorf("%w: short response", ErrProtocol)
			}
		} else {
			var skip bool
			if v, skip, err = d.decodePoint(i, r.Address, regs); skip {
				continue // not implemented: no sample
			}
		}
		if err != nil {
			d.bad([]int{i}, err, t)
			continue
		}
		d.batch = append(d.batch, bridge.Sample{Source: d.name, Point: p.Name, Value: v, Unit: p.Unit, Time: t})
		good++
	}
	d.stats.samples.Add(uint64(good))
}

// bad appends Bad samples for points, with err as the reason.
func (d *Device) bad(points []int, err error, t time.Time) {
	d.flushDecodes()
	msg := err.Error()
	reason, ok := d.reason[msg]
	if !ok {
		if len(d.reason) > 1000 {
			clear(d.reason)
		}
		d.reason[msg] = msg
		reason = msg
	}
	var code uint32
	if c, ok := ExceptionCodeOf(err); ok {
		code = uint32(c)
	}
	for _, i := range points {
		p := &d.points[i]
		d.batch = append(d.batch, bridge.Sample{Source: d.name, Point: p.Name, Unit: p.Unit, Time: t,
			Quality: bridge.Bad, Reason: reason, Code: code})
		d.stats.samples.Add(1)
		d.stats.bad.Add(1)
	}
}

// Health reports whether the device answers, from what the last poll cycle
// saw: Up once a cycle got any answer from the device (data, or an
// exception, which the device sent), down with the last failure as Reason
// (a timeout, a refused connection, a backoff, a gateway's "target device
// failed to respond") when a whole cycle got none. Before Run it is down
// with Reason "not started", and "connecting" until the first cycle ends.
// Since is when Up last changed. It implements [bridge.HealthReporter]
// and is safe to call concurrently with Run.
func (d *Device) Health() bridge.Health {
	d.healthMu.Lock()
	defer d.healthMu.Unlock()
	return d.health
}

func (d *Device) setHealth(up bool, reason string, reset bool) {
	d.healthMu.Lock()
	defer d.healthMu.Unlock()
	if up != d.health.Up || reset {
		d.health.Since = time.Now()
	}
	d.health.Up, d.health.Reason = up, reason
}

var _ bridge.HealthReporter = (*Device)(nil)

// Link returns the key of the link the device uses: its URL's scheme and
// address, with any secret hidden. Devices on one [Bus] (one serial line,
// one RTU gateway) return the same key; see [LinkStats].
func (d *Device) Link() string { return redactedURL(d.client.ep.Scheme + "://" + d.client.ep.Address) }

// LinkStats returns the [Stats] of every distinct link of devs, once per
// link, keyed by [Device.Link]. Two devices on one shared line have one
// entry, so the line's requests, errors, timeouts, discarded replies and
// utilisation are counted once (per-unit figures are in Stats.Units);
// [DeviceStats] are each device's own. Metrics should label link figures
// by this key, and device figures by device name.
func LinkStats(devs ...*Device) map[string]Stats {
	out := make(map[string]Stats)
	seen := make(map[*Client]bool)
	for _, d := range devs {
		if seen[d.client] {
			continue
		}
		seen[d.client] = true
		k := d.Link()
		if _, dup := out[k]; dup {
			// Two links to one address without a shared Bus (two Clients):
			// keep them apart.
			for n := 2; ; n++ {
				if _, dup := out[fmt.Sprintf("%s#%d", k, n)]; !dup {
					k = fmt.Sprintf("%s#%d", k, n)
					break
				}
			}
		}
		out[k] = d.client.Stats()
	}
	return out
}

// Close releases the device's own connection (not a shared Bus); Run
// should have returned. Later calls of Run, PollOnce, Write and WritePoint return
// [ErrClosed]. Close is idempotent.
func (d *Device) Close() error {
	d.closed.Store(true)
	if d.ownConn {
		return d.client.Close()
	}
	return nil
}
