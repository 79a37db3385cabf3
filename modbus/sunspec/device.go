package sunspec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
)

// Base is where a device's SunSpec map starts: a register address, or
// auto (the zero value) to probe [Bases].
type Base struct {
	Addr uint16
	Set  bool // false: auto
}

// UnmarshalText reads "auto" or an address 0-65535.
func (b *Base) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	if s == "" || strings.EqualFold(s, "auto") {
		*b = Base{}
		return nil
	}
	n, err := strconv.ParseUint(s, 0, 16)
	if err != nil {
		return fmt.Errorf("%q is neither auto nor an address 0-65535", s)
	}
	*b = Base{Addr: uint16(n), Set: true}
	return nil
}

// MarshalText writes "auto" or the address.
func (b Base) MarshalText() ([]byte, error) {
	if !b.Set {
		return []byte("auto"), nil
	}
	return []byte(strconv.Itoa(int(b.Addr))), nil
}

// Config is a Modbus device's sunspec block:
//
//	sunspec: {base: auto, models: [1, 103, 160], writable: [controls.WMaxLimPct], not_implemented: omit}
type Config struct {
	// Base is auto (probe 40000, 0, 50000 and one either side) or the
	// address of the "SunS" marker.
	Base Base `yaml:"base"`
	// Models, when given, are the model ids read; all found otherwise. The
	// common model (1) is always read.
	Models []uint16 `yaml:"models"`
	// Writable lists the points ("<model>.<point>") that accept writes;
	// every other point refuses them (deny by default). Each must be
	// read-write (access RW) in its model.
	Writable []string `yaml:"writable"`
	// NotImplemented is what a point answering its not-implemented value
	// yields: omit (default: no sample) or bad (a Bad sample "not
	// implemented").
	NotImplemented string `yaml:"not_implemented"`
	// Labels, true by default, emits beside each enum and bitfield point a
	// string point <name>.label with its symbol(s).
	Labels *bool `yaml:"labels"`
}

// Validate checks the block and returns every problem as a
// *bridge.FieldError with its path ("models[1]", "not_implemented").
func (c Config) Validate() error {
	var errs []error
	for k, id := range c.Models {
		if id == 0 || id == EndID {
			errs = append(errs, &bridge.FieldError{Path: fmt.Sprintf("models[%d]", k), Msg: fmt.Sprintf("%d is not a model id (1-65534)", id)})
		} else if Lookup(id) == nil {
			errs = append(errs, &bridge.FieldError{Path: fmt.Sprintf("models[%d]", k), Msg: fmt.Sprintf("model %d is not in the SunSpec model tables", id)})
		}
	}
	switch c.NotImplemented {
	case "", "omit", "bad":
	default:
		errs = append(errs, &bridge.FieldError{Path: "not_implemented", Msg: fmt.Sprintf("%q (want omit or bad)", c.NotImplemented)})
	}
	for k, name := range c.Writable {
		model, point, ok := strings.Cut(name, ".")
		if !ok || model == "" || point == "" {
			errs = append(errs, &bridge.FieldError{Path: fmt.Sprintf("writable[%d]", k), Msg: fmt.Sprintf("%q is not <model>.<point>", name)})
			continue
		}
		if def := pointDef(model, point); def != nil && !def.Writable {
			errs = append(errs, &bridge.FieldError{Path: fmt.Sprintf("writable[%d]", k), Msg: fmt.Sprintf("%s is read-only in its SunSpec model", name)})
		}
	}
	return errors.Join(errs...)
}

// pointDef finds the definition of a point by model name (an instance's
// _2 suffix allowed) and point path (group indexes allowed), or nil.
func pointDef(model, point string) *Point {
	if i := strings.LastIndex(model, "_"); i > 0 {
		if _, err := strconv.Atoi(model[i+1:]); err == nil && byName(model) == nil {
			model = model[:i]
		}
	}
	m := byName(model)
	if m == nil {
		return nil
	}
	g := &m.Group
	parts := strings.Split(point, ".")
	for k, part := range parts {
		if i := strings.IndexByte(part, '['); i > 0 {
			part = part[:i]
		}
		if k == len(parts)-1 {
			for n := range g.Points {
				if g.Points[n].Name == part {
					return &g.Points[n]
				}
			}
			return nil
		}
		var next *Group
		for n := range g.Groups {
			if g.Groups[n].Name == part {
				next = &g.Groups[n]
			}
		}
		if next == nil {
			return nil
		}
		g = next
	}
	return nil
}

var modelsByName = sync.OnceValue(func() map[string]*Model {
	m := make(map[string]*Model, len(modelTable))
	for _, def := range modelTable {
		m[def.Name()] = def
	}
	return m
})

func byName(name string) *Model { return modelsByName()[name] }

// maxSkippedLogged bounds the lines a discovery logs about what it left
// out.
const maxSkippedLogged = 20

// Device is a SunSpec device polled as a [bridge.Source]: Run discovers
// its model chain, polls the points with a [modbus.Device] (scale factors
// read with their points, not-implemented values never as numbers), and
// discovers again when the common model's serial number changes (another
// device) or, after a read answered Illegal Data Address, a re-read of the
// chain's headers shows another map (a firmware that changed it). Discovery is cached per Device. Writes go to
// [Config.Writable] points only, through modbus.Device.Write (a scaled
// point under the factor read with the link held).
//
// Enum and bitfield points carry the raw integer as their value; beside
// each, unless Labels is false, the string point <name>.label carries its
// symbol (an enum) or the symbols of the bits set joined with "|" (a
// bitfield), a number where the model names none.
type Device struct {
	cfg modbus.DeviceConfig
	sc  Config
	log *slog.Logger

	mu     sync.RWMutex
	dev    *modbus.Device // the current one, after discovery
	chain  *Chain
	defs   map[string]*Point // by full point name: enums and bitfields, for labels
	health bridge.Health
	closed bool
	stop   context.CancelFunc // ends the running Run; nil when none runs
}

// NewDevice checks cfg (its points and profile must be empty: discovery
// gives them) and sc, and returns a Device. It does no I/O.
func NewDevice(cfg modbus.DeviceConfig, sc Config) (*Device, error) {
	var errs []error
	if err := sc.Validate(); err != nil {
		errs = append(errs, bridge.PrefixFields("sunspec", err))
	}
	if cfg.Profile != nil || len(cfg.Points) > 0 {
		errs = append(errs, &bridge.FieldError{Path: "sunspec", Msg: "a SunSpec device takes its points from discovery: give no profile or points"})
	}
	// The connection settings are checked by modbus with a stand-in point.
	probe := cfg
	probe.Points = []modbus.Point{{Name: "probe", Table: modbus.Holding, Type: modbus.Uint16}}
	if err := probe.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Device{cfg: cfg, sc: sc, log: log, health: bridge.Health{Since: time.Now(), Reason: "not started"}}, nil
}

// Name returns the device's name.
func (d *Device) Name() string { return d.cfg.Name }

// Conn returns the device's connection settings.
func (d *Device) Conn() modbus.ClientConfig { return d.cfg.Conn }

// UseBus puts the device on a link shared with other devices (a serial
// line, an RTU gateway): discovery and polls take their turn on it. It is
// for the time before Run; the Bus is not closed by the Device.
func (d *Device) UseBus(b *modbus.Bus) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cfg.Bus = b
}

// Chain returns the chain found by the last discovery, or nil.
func (d *Device) Chain() *Chain {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.chain
}

// Modbus returns the modbus.Device polling the current chain, or nil
// before discovery.
func (d *Device) Modbus() *modbus.Device {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.dev
}

// Options returns the discovery options of the configuration.
func (c Config) Options() Options {
	o := Options{Models: c.Models}
	if c.Base.Set {
		b := c.Base.Addr
		o.Base = &b
	}
	return o
}

// Discover connects with the device's settings and discovers its chain
// (for a field tool: it does not start polling).
func (d *Device) Discover(ctx context.Context) (*Chain, error) {
	d.mu.RLock()
	client, bus := d.cfg.Conn, d.cfg.Bus
	d.mu.RUnlock()
	var c *modbus.Client
	if bus != nil {
		c = bus.Client()
	} else {
		var err error
		if c, err = modbus.NewClient(client); err != nil {
			return nil, err
		}
		defer c.Close()
	}
	o := d.sc.Options()
	o.Limits = d.cfg.Limits
	return Discover(ctx, c, d.cfg.Unit, o)
}

// build makes the modbus.Device for chain.
func (d *Device) build(chain *Chain) (*modbus.Device, map[string]*Point, error) {
	d.mu.RLock()
	cfg := d.cfg
	d.mu.RUnlock()
	cfg.Profile = chain.Profile("sunspec")
	cfg.Profile.Limits = d.cfg.Limits
	cfg.ReportNotImplemented = d.sc.NotImplemented == "bad"
	defs := map[string]*Point{}
	writable := map[string]bool{}
	for _, w := range d.sc.Writable {
		writable[w] = true
	}
	for k := range cfg.Profile.Points {
		p := &cfg.Profile.Points[k]
		def := chain.Points[k].Def
		if writable[p.Name] {
			if !def.Writable {
				return nil, nil, fmt.Errorf("sunspec: device %q: %s is read-only in its model", d.cfg.Name, p.Name)
			}
			p.Writable = true
			delete(writable, p.Name)
		}
		if (d.sc.Labels == nil || *d.sc.Labels) && (def.Type.IsEnum() || def.Type.IsBitfield()) {
			defs[p.Name] = def
		}
	}
	for name := range writable {
		d.log.Warn("sunspec: a writable point is not on the device", "device", d.cfg.Name, "point", name)
	}
	dev, err := modbus.NewDevice(cfg)
	return dev, defs, err
}

// errRediscover ends a poll run so that discovery runs again.
var errRediscover = errors.New("sunspec: rediscover")

// maxRecheck bounds the time between two checks of the chain's headers
// while a point keeps answering Illegal Data Address, and between two
// rediscoveries of a chain that keeps changing.
const maxRecheck = time.Minute

// minGap is the shortest time between two discoveries of a Device, and
// between two checks of its chain's headers: the poll interval, at least a
// second.
func (d *Device) minGap() time.Duration {
	iv := d.cfg.Interval
	if iv <= 0 {
		iv = time.Second
	}
	return max(iv, time.Second)
}

// Run discovers the device and polls it until ctx ends; a failed
// discovery is retried with backoff (1s doubling to 1m), the device
// reported down meanwhile. A chain that changed is discovered again no
// sooner than the poll interval (at least 1s) after the last discovery,
// the wait doubling (to 1m) while it keeps changing within a minute.
func (d *Device) Run(ctx context.Context, out bridge.Emitter) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return modbus.ErrClosed
	}
	d.stop = cancel
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.stop = nil
		d.mu.Unlock()
	}()
	backoff := time.Second
	gap := d.minGap()
	for ctx.Err() == nil {
		chain, err := d.Discover(ctx)
		if err == nil {
			var dev *modbus.Device
			var defs map[string]*Point
			if dev, defs, err = d.build(chain); err == nil {
				d.mu.Lock()
				if d.closed {
					// Closed during discovery: the new device is nobody's.
					d.mu.Unlock()
					dev.Close()
					return nil
				}
				d.dev, d.chain, d.defs = dev, chain, defs
				d.mu.Unlock()
				d.log.Info("sunspec: discovered", "device", d.cfg.Name, "base", chain.Base, "models", len(chain.Models), "points", len(chain.Points))
				// What is left out is said, not silent: an unknown model, a
				// point too far from its scale factor to be read with it.
				for i, sk := range chain.Skipped {
					if i == maxSkippedLogged {
						d.log.Warn("sunspec: more left out (gateway -discover lists all)", "device", d.cfg.Name, "more", len(chain.Skipped)-i)
						break
					}
					d.log.Warn("sunspec: left out", "device", d.cfg.Name, "what", sk)
				}
				started := time.Now()
				err = d.poll(ctx, dev, chain, out)
				dev.Close()
				if d.isClosed() {
					return nil
				}
				if errors.Is(err, errRediscover) {
					backoff = time.Second
					if time.Since(started) > maxRecheck {
						gap = d.minGap() // a change after a long quiet poll: no penalty
					}
					if !sleepCtx(ctx, time.Until(started.Add(gap))) {
						return nil
					}
					gap = min(2*gap, maxRecheck)
					continue
				}
				return err
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		d.setDown(err.Error())
		d.log.Warn("sunspec: discovery failed", "device", d.cfg.Name, "err", err, "retry_in", backoff)
		if !sleepCtx(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, time.Minute)
	}
	return nil
}

// sleepCtx waits for d (nothing when d <= 0) and reports whether ctx is
// still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
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

// poll runs dev until ctx ends or the chain changed: the common model's
// serial number differs from the chain's, or — checked when a point
// answers Illegal Data Address, at most once per poll interval (at least
// 1s) doubling to 1m while nothing changed — the marker or a model header
// no longer reads as discovered. A point the device refuses while the
// chain stands is not a changed chain: modbus.Device reads it on its own
// and reports it Bad, keeping what it learned.
func (d *Device) poll(ctx context.Context, dev *modbus.Device, chain *Chain, out bridge.Emitter) error {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var again bool
	serial := "common.SN"
	var labels []bridge.Sample
	checkGap := d.minGap()
	var nextCheck time.Time
	emit := bridge.EmitterFunc(func(ectx context.Context, batch []bridge.Sample) error {
		labels = labels[:0]
		refused := false
		for _, s := range batch {
			switch {
			case s.Quality == bridge.Bad && s.Code == uint32(modbus.IllegalDataAddress):
				refused = true
			case s.Point == serial && s.Quality == bridge.Good && chain.Serial != "" && s.Value.Str() != chain.Serial:
				d.log.Info("sunspec: the serial number changed; discovering again", "device", d.cfg.Name, "was", chain.Serial, "now", s.Value.Str())
				again = true
			}
			if def := d.defs[s.Point]; def != nil {
				if raw, ok := s.Value.Uint(); ok && s.Quality == bridge.Good {
					labels = append(labels, bridge.Sample{Source: s.Source, Point: s.Point + ".label", Value: bridge.String(def.label(raw)), Time: s.Time})
				} else if s.Quality == bridge.Bad {
					// The label is as Bad as its value, never the last Good
					// symbol left standing.
					labels = append(labels, bridge.Sample{Source: s.Source, Point: s.Point + ".label", Time: s.Time,
						Quality: bridge.Bad, Reason: s.Reason, Code: s.Code})
				}
			}
		}
		if refused && !again && !time.Now().Before(nextCheck) {
			changed, why, err := chainChanged(ectx, dev.Client(), chain)
			nextCheck = time.Now().Add(checkGap)
			switch {
			case err != nil:
				d.log.Warn("sunspec: could not check the chain", "device", d.cfg.Name, "err", err)
			case changed:
				d.log.Info("sunspec: the chain changed; discovering again", "device", d.cfg.Name, "why", why)
				again = true
			default:
				checkGap = min(2*checkGap, maxRecheck)
			}
		}
		if again {
			cancel()
		}
		if len(labels) > 0 {
			batch = append(batch, labels...)
		}
		return out.Emit(ectx, batch)
	})
	err := dev.Run(pctx, emit)
	if again && ctx.Err() == nil {
		return errRediscover
	}
	return err
}

func (d *Device) setDown(reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.health.Up || d.health.Reason != reason {
		d.health.Since = time.Now()
	}
	d.health.Up, d.health.Reason = false, "sunspec discovery: "+reason
}

// Health reports the polling device's health, or down with the discovery
// failure before one succeeded.
func (d *Device) Health() bridge.Health {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.dev != nil {
		return d.dev.Health()
	}
	return d.health
}

// errNotDiscovered answers a write before discovery.
var errNotDiscovered = errors.New("sunspec: the device is not discovered yet")

// CheckWrite applies the write rules of the current chain's point.
func (d *Device) CheckWrite(name string, v bridge.Value) error {
	dev := d.Modbus()
	if dev == nil {
		return fmt.Errorf("%w: %s", errNotDiscovered, name)
	}
	return dev.CheckWrite(name, v)
}

// Write writes a [Config.Writable] point through the current
// modbus.Device (see modbus.Device.Write; a scaled point is written under
// the factor read with the link held).
func (d *Device) Write(ctx context.Context, name string, v bridge.Value) (bridge.Sample, error) {
	dev := d.Modbus()
	if dev == nil {
		return bridge.Sample{}, fmt.Errorf("%w: %s", errNotDiscovered, name)
	}
	return dev.Write(ctx, name, v)
}

// Close stops Run (which returns nil; a Run after Close returns
// modbus.ErrClosed) and closes the current modbus.Device; a discovery in
// progress is abandoned and the device it would have built closed.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.stop != nil {
		d.stop()
	}
	if d.dev != nil {
		return d.dev.Close()
	}
	return nil
}

func (d *Device) isClosed() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.closed
}

// WritablePoints returns the names of the chain's points its model lets
// be written (access RW), sorted: the candidates for Config.Writable.
func (c *Chain) WritablePoints() []string {
	var out []string
	for _, p := range c.Points {
		if p.Def.Writable {
			out = append(out, p.Point.Name)
		}
	}
	slices.Sort(out)
	return out
}

var (
	_ bridge.Source         = (*Device)(nil)
	_ bridge.Writer         = (*Device)(nil)
	_ bridge.WriteChecker   = (*Device)(nil)
	_ bridge.HealthReporter = (*Device)(nil)
)
