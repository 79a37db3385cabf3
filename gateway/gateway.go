package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/spool"
)

// maxFileSize bounds a configuration file.
const maxFileSize = 16 << 20

// Config is a configuration file that decoded and checked without error.
// It holds no resources: [Config.Check] describes what it configures and
// [Config.Build] makes a [Gateway] from it, as often as needed.
type Config struct {
	name   string
	data   []byte
	report *Report
}

// Load reads the configuration file at path and checks it: see [Parse].
func Load(path string) (*Config, error) {
	data, err := readRegular(path, maxFileSize)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse decodes and checks the configuration data of the file name
// (DESIGN.md, "The gateway configuration"). Relative paths in it (profile
// files, the file sink, the spool, certificates, secret files) are relative
// to name's directory; secrets are read from the environment or from files
// now, and again by Build.
//
// On error it returns every problem of the file at once, joined: each is a
// *[ConfigError] with the file, the line and the key path. Parse dials
// nothing and creates no file.
func Parse(name string, data []byte) (*Config, error) {
	a, err := assemble(name, data, discardLogger, io.Discard)
	if err != nil {
		return nil, err
	}
	defer a.close()
	return &Config{name: name, data: data, report: a.report()}, nil
}

// Name returns the file name the configuration was loaded from.
func (c *Config) Name() string { return c.name }

// Check returns what the configuration sets up: each Modbus device's read
// plan, each OPC UA device's nodes, the load of each Modbus link, the sinks
// and the spool. Its String method gives the text of "gateway -check".
func (c *Config) Check() *Report { return c.report }

// BuildOptions are the run-time choices that are not in the configuration
// file.
type BuildOptions struct {
	// Logger receives the gateway's log. Nil discards it.
	Logger *slog.Logger
	// Stdout is where the stdout sink writes. Nil means os.Stdout.
	Stdout io.Writer
	// Once polls every device once (an OPC UA device: until each node gave
	// a reading or OnceTimeout passed), delivers the samples and ends Run.
	Once bool
	// OnceTimeout bounds how long an OPC UA device may take, with Once, to
	// deliver every node. Zero means 30s.
	OnceTimeout time.Duration
}

// Build makes the gateway: its devices and sinks, the spools of the sinks
// with overflow: spool (opened now, so that a spool in use by another
// process is an error before anything is dialled) and the bridge that runs
// them. Nothing is dialled until Run. Call Run, or Close when the gateway
// will not run.
func (c *Config) Build(o BuildOptions) (*Gateway, error) {
	log := o.Logger
	if log == nil {
		log = discardLogger
	}
	stdout := o.Stdout
	if stdout == nil {
		stdout = os.Stdout
	}
	a, err := assemble(c.name, c.data, log, stdout)
	if err != nil {
		// The environment or a secret file changed since Parse.
		return nil, err
	}
	g := &Gateway{a: a, log: log, once: o.Once, onceTimeout: o.OnceTimeout, spools: map[string]*spool.Spool{}, started: time.Now()}
	if g.onceTimeout == 0 {
		g.onceTimeout = 30 * time.Second
	}
	g.status = newStatusState(g)
	var seqStart uint64
	for _, s := range a.sinks {
		if s.opts.Overflow != bridge.OverflowSpool {
			continue
		}
		opt := a.spoolOpt
		opt.Logger = log.With("sink", s.name)
		sp, err := spool.Open(filepath.Join(a.spoolDir, s.name), opt)
		if err != nil {
			g.abort()
			return nil, &SpoolError{Sink: s.name, Err: err}
		}
		if n := sp.Len(); n > 0 {
			log.Info("spool holds samples from before; delivering them first", "sink", s.name, "samples", n)
		}
		g.spools[s.name] = sp
		s.opts.Spool = sp
		seqStart = max(seqStart, sp.SeqStart())
	}
	// With a spool section, every sink keeps what it rejects for good (a
	// sample the server says is invalid) in a dead-letter file beside its
	// spool: <spool.dir>/<sink>/deadletter.jsonl. A rejection never just
	// deletes data.
	if a.spoolDir != "" {
		for _, s := range a.sinks {
			dir := filepath.Join(a.spoolDir, s.name)
			dl, err := openDeadLetter(dir, log.With("sink", s.name))
			if err != nil {
				g.abort()
				return nil, &SpoolError{Sink: s.name, Err: err}
			}
			g.deadLetters = append(g.deadLetters, dl)
			s.opts.DeadLetter = dl
		}
	}
	g.drain = a.shutdown.DrainTimeout
	if g.drain == 0 {
		g.drain = 10 * time.Second
	}
	g.bridge = bridge.New(bridge.Options{Logger: log, DrainTimeout: g.drain, CloseTimeout: a.shutdown.CloseTimeout, SeqStart: seqStart,
		WriteInterval: a.writes.MinInterval, WriteTimeout: a.writes.Timeout})
	for _, s := range a.sinks {
		if err := g.bridge.AddSink(s.name, s.sink, s.opts); err != nil {
			// The options were checked with the configuration; this is
			// a bug, not a user error.
			g.abort()
			return nil, fmt.Errorf("gateway: sink %s: %w", s.name, err)
		}
	}
	for _, dev := range a.devices {
		st := &sourceState{dev: dev, log: log}
		g.states = append(g.states, st)
		src := g.status.tap(st.source(g.once, g.onceTimeout)) // the latest values for the status page
		if err := g.bridge.AddSourceWith(dev.name, deviceSource{src, st}, dev.inbox()); err != nil {
			g.abort()
			return nil, fmt.Errorf("gateway: device %s: %w", dev.name, err)
		}
	}
	return g, nil
}

// SpoolError is returned by Build when a sink's spool cannot be opened (in
// use by another gateway, not writable, damaged beyond use).
type SpoolError struct {
	Sink string
	Err  error
}

func (e *SpoolError) Error() string { return "gateway: spool of sink " + e.Sink + ": " + e.Err.Error() }
func (e *SpoolError) Unwrap() error { return e.Err }

// Gateway is a built configuration: a [bridge.Bridge] with the devices as
// its sources and the configured sinks, with spools, a Prometheus
// collector and a health check. Its methods are safe for concurrent use;
// Run is called once.
type Gateway struct {
	a           *assembly
	log         *slog.Logger
	once        bool
	onceTimeout time.Duration
	drain       time.Duration
	bridge      *bridge.Bridge
	states      []*sourceState
	spools      map[string]*spool.Spool
	deadLetters []*spool.DeadLetter // closed by the bridge after a run, by abort before one
	started     time.Time
	status      *statusState // the status page (status.go)

	mu  sync.Mutex
	ran bool
}

// ErrRan is returned by Run when it is called a second time, and by Close
// after Run.
var ErrRan = errors.New("gateway: already run")

// Bridge returns the bridge that runs the devices and sinks, for its
// Stats.
func (g *Gateway) Bridge() *bridge.Bridge { return g.bridge }

// Handler returns an http.Handler that serves Prometheus metrics on
// /metrics (the gateway's collector, Go and process metrics), the
// health check on /healthz: 200 "ok", or 503 with the devices and sinks
// failing for longer than health.max_failing, and the status page on
// /status, /status.json and /status/events (see "Status page" in the
// package documentation). Everything it serves is read-only.
func (g *Gateway) Handler() http.Handler { return g.handler() }

// Collector returns a Prometheus collector of the gateway's metrics
// (m2mbridge_*), read from the bridge, the devices and the spools at each
// scrape, for a program that serves its own registry.
func (g *Gateway) Collector() prometheus.Collector { return newCollector(g) }

// Unhealthy returns, one line each, the devices and sinks that have been
// failing for longer than health.max_failing, and the devices that
// stopped; nil when all is well.
func (g *Gateway) Unhealthy() []string { return g.unhealthy(time.Now()) }

// DeviceSamples counts the samples of one device by quality.
type DeviceSamples struct {
	Device               string
	Good, Uncertain, Bad uint64
}

// Total is the number of samples.
func (d DeviceSamples) Total() uint64 { return d.Good + d.Uncertain + d.Bad }

// Samples returns, per device in the order of the configuration, the
// samples it produced so far by quality.
func (g *Gateway) Samples() []DeviceSamples {
	out := make([]DeviceSamples, len(g.states))
	for i, s := range g.states {
		out[i] = DeviceSamples{Device: s.dev.name, Good: s.good.Load(), Uncertain: s.uncertain.Load(), Bad: s.bad.Load()}
	}
	return out
}

// Errors Run returns (wrapped, joined) besides the bridge's own.
var (
	// ErrLost: samples held in memory (not in a spool) were not delivered
	// when the drain deadline passed.
	ErrLost = errors.New("gateway: samples held in memory were lost")
	// ErrNoReading: with Once, a device gave no good or uncertain sample.
	ErrNoReading = errors.New("gateway: a device gave no reading")
	// ErrNothingDelivered: with Once, a sink delivered none of the samples
	// (its broker down, say): a commissioning run has failed even when
	// the samples are kept in a spool.
	ErrNothingDelivered = errors.New("gateway: a sink delivered nothing")
)

// Run runs the gateway until ctx ends (with BuildOptions.Once: until every
// device was polled once), then stops the devices, drains the sinks within
// shutdown.drain_timeout and logs per sink what it delivered and what it
// left. It returns nil after a clean run; else the bridge's error, ErrLost
// when samples held in memory were lost, or with Once ErrNothingDelivered
// naming each sink that delivered nothing and ErrNoReading naming each
// device that gave no reading. Samples kept in a spool are not lost:
// they are delivered after the next start.
func (g *Gateway) Run(ctx context.Context) error {
	g.mu.Lock()
	if g.ran {
		g.mu.Unlock()
		return ErrRan
	}
	g.ran = true
	g.mu.Unlock()
	defer g.a.closeDevices()
	defer g.status.stop() // ends the status page's event streams

	names := make([]string, 0, len(g.a.sinks))
	for _, s := range g.a.sinks {
		names = append(names, s.name)
	}
	mode := "running"
	if g.once {
		mode = "polling once"
	}
	g.log.Info("gateway "+mode, "config", g.a.path, "devices", len(g.a.devices), "sinks", strings.Join(names, ","))
	stopLog := context.AfterFunc(ctx, func() {
		g.log.Info("shutting down: signal received; stopping the devices and draining the sinks", "drain_timeout", g.drain)
	})
	cmdCtx, stopCommands := context.WithCancel(ctx)
	waitCommands := g.runCommands(cmdCtx)
	err := g.bridge.Run(ctx)
	stopCommands() // with Once, Run ends before ctx does
	waitCommands()
	stopLog()
	var errs []error
	if err != nil && !errors.Is(err, bridge.ErrDrainIncomplete) {
		errs = append(errs, err)
	}

	// What was left: per sink, delivered, and queued in a spool (kept for
	// the next start) or left in memory (lost).
	st := g.bridge.Stats()
	for _, s := range st.Sinks {
		attrs := []any{"sink", s.Name, "accepted", s.Accepted, "delivered", s.Delivered}
		if s.Replayed > 0 {
			attrs = append(attrs, "replayed", s.Replayed)
		}
		if s.Dropped+s.Rejected+s.Failed > 0 {
			attrs = append(attrs, "dropped", s.Dropped, "rejected", s.Rejected, "failed", s.Failed)
		}
		if _, spooled := g.spools[s.Name]; spooled {
			// Samples whose write the deadline cut off are still in the
			// spool too: it keeps what the sink did not acknowledge.
			attrs = append(attrs, "kept_in_spool", kept(s))
		} else if s.Aborted > 0 {
			// The sink may have received them.
			attrs = append(attrs, "aborted", s.Aborted)
		}
		if _, spooled := g.spools[s.Name]; !spooled && s.Left > 0 {
			attrs = append(attrs, "lost_in_memory", s.Left)
			errs = append(errs, fmt.Errorf("%w: sink %s: %d %s", ErrLost, s.Name, s.Left, plural(int(s.Left), "sample")))
		}
		g.log.Info("sink stopped", attrs...)
	}
	if g.once {
		for _, s := range st.Sinks {
			if s.Delivered > 0 {
				continue
			}
			what := "nothing to deliver"
			switch _, spooled := g.spools[s.Name]; {
			case s.Accepted == 0:
			case spooled:
				what = fmt.Sprintf("%d %s kept in its spool", kept(s), plural(int(kept(s)), "sample"))
			default:
				what = fmt.Sprintf("%d of %d %s lost", s.Left, s.Accepted, plural(int(s.Accepted), "sample"))
			}
			if s.LastError != "" {
				what += "; last error: " + s.LastError
			}
			errs = append(errs, fmt.Errorf("%w: sink %s: %s", ErrNothingDelivered, s.Name, what))
		}
		for _, s := range g.Samples() {
			if s.Good+s.Uncertain == 0 {
				errs = append(errs, fmt.Errorf("%w: %s", ErrNoReading, s.Device))
			}
		}
	}
	return errors.Join(errs...)
}

// kept returns what a spooled sink leaves in its spool at the end of a run.
func kept(s bridge.SinkStats) uint64 {
	return s.Left + s.Aborted + uint64(max(s.Queued, 0)) + uint64(max(s.InFlight, 0))
}

// Close releases a gateway that will not run: its devices, sinks and
// spools. After Run it returns ErrRan: Run released them.
func (g *Gateway) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ran {
		return ErrRan
	}
	g.ran = true
	g.status.stop()
	g.abort()
	return nil
}

// abort closes what Build made, before the bridge owns it.
func (g *Gateway) abort() {
	for _, sp := range g.spools {
		sp.Close()
	}
	for _, dl := range g.deadLetters {
		dl.Close()
	}
	g.a.close()
}

var discardLogger = slog.New(slog.DiscardHandler)

// openDeadLetter opens the dead-letter file of the sink whose spool
// directory is dir, creating the directory when needed.
func openDeadLetter(dir string, log *slog.Logger) (*spool.DeadLetter, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("dead letter: %w", err)
	}
	return spool.OpenDeadLetter(spool.DeadLetterPath(dir), spool.DeadLetterOptions{Logger: log})
}
