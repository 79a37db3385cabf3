package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/spool"
	"github.com/m2mbridge/m2mbridge/internal/redact"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/sunspec"
	"github.com/m2mbridge/m2mbridge/opcua"
)

// assembly is a checked configuration made into devices and sinks, made
// but not started (no connection is dialled and no spool opened).
type assembly struct {
	path     string
	log      *slog.Logger
	stdout   io.Writer
	devices  []*device
	buses    []*modbus.Bus
	sinks    []*sinkEntry
	commands []*commandEntry
	spool    *spool.Options // the spool section; nil without one
	spoolDir string
	spoolOpt spool.Options
	health   healthConfig
	shutdown shutdownConfig
	writes   writesConfig
	warnings []*ConfigError // deprecated settings: accepted, ignored
}

// device is one configured source.
type device struct {
	name     string
	kind     string // "modbus" or "opcua"
	interval time.Duration
	desc     string // transport summary for -check and logs, without secrets
	mb       *modbus.Device
	ss       *sunspec.Device // a Modbus device with a sunspec block (sunspec.go)
	link     string          // the Modbus URL, without a password
	unit     uint8
	ua       *opcua.Source
	nodes    []opcua.Node
	mode     opcua.Mode
	// inboxOpts is the device's inbox in the bridge, when the file sets
	// one (see deviceConfig.Inbox).
	inboxOpts *bridge.SourceOptions
	// report is the device's report by exception, when the file sets one.
	report *bridge.Report
	// pointReport holds the points' and nodes' own report blocks, by
	// name (bridge.SourceOptions.PointReport).
	pointReport map[string]bridge.Report
}

// sinkEntry is one configured sink.
type sinkEntry struct {
	name string
	kind string
	desc string // without secrets
	sink bridge.Sink
	opts bridge.SinkOptions
}

// assemble decodes and checks the configuration data of the file name and
// makes its devices and sinks, logging to log. It returns every problem at
// once; on error nothing has been started and nothing needs closing.
func assemble(name string, data []byte, log *slog.Logger, stdout io.Writer) (*assembly, error) {
	cfg, d := decodeFile(name, data)
	if cfg == nil {
		return nil, d.err()
	}
	d.checking = true
	// Decoding errors do not stop here: the parts of the file that decoded
	// cleanly are checked further, so that every problem is reported at
	// once; a part with a decoding error is not checked further, so that
	// one mistake does not show up as several.
	g := &assembly{path: name, log: log, stdout: stdout, health: cfg.Health, shutdown: cfg.Shutdown, writes: cfg.Writes}
	dir := filepath.Dir(name)
	d.checkTop(cfg)
	g.buildSpool(d, cfg.Spool, dir)
	g.buildDevices(d, cfg, dir, log)
	g.buildSinks(d, cfg, dir)
	g.buildCommands(d, cfg, dir)
	if len(d.errs) > 0 {
		g.close()
		return nil, d.err()
	}
	slices.SortStableFunc(d.warns, func(a, b *ConfigError) int { return a.Line - b.Line })
	g.warnings = d.warns
	for _, w := range g.warnings {
		log.Warn("configuration: " + w.Error())
	}
	return g, nil
}

// close closes the devices and sinks of an assembly that will not run.
func (g *assembly) close() {
	g.closeDevices()
	for _, s := range g.sinks {
		if s.sink != nil {
			s.sink.Close(closedCtx())
		}
	}
}

func (d *decoder) checkTop(cfg *fileConfig) {
	if len(cfg.Devices) == 0 {
		d.errAt("devices", "at least one device is required")
	}
	if len(cfg.Sinks) == 0 {
		d.errAt("sinks", "at least one sink is required")
	}
	for _, fe := range bridge.FieldErrors(cfg.Health.Validate()) {
		d.errAt(bridge.JoinPath("health", fe.Path), "%s", fieldMsg(fe))
	}
	for _, fe := range bridge.FieldErrors(cfg.Shutdown.Validate()) {
		d.errAt(bridge.JoinPath("shutdown", fe.Path), "%s", fieldMsg(fe))
	}
	for _, fe := range bridge.FieldErrors(cfg.Writes.Validate()) {
		d.errAt(bridge.JoinPath("writes", fe.Path), "%s", fieldMsg(fe))
	}
}

// buildSpool takes the spool section, checked by spool.Options.Validate.
// Under sync: every a sync_interval is refused there, as spool.Open refuses
// it, rather than copied and then failing at Build.
func (g *assembly) buildSpool(d *decoder, o *spool.Options, dir string) {
	if o == nil {
		return
	}
	g.spool = o
	d.fieldErrors("spool", o.Validate())
	g.spoolDir = relPath(dir, o.Dir)
	g.spoolOpt = *o
	g.spoolOpt.Dir = g.spoolDir
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func (g *assembly) buildDevices(d *decoder, cfg *fileConfig, dir string, log *slog.Logger) {
	names := map[string]int{}
	var mbCfgs []modbus.DeviceConfig
	var ssCfgs []modbus.DeviceConfig // SunSpec devices' links (sunspec.go)
	var ssPaths []string
	var mbDevs []*device
	var mbPaths []string
	var mbLimits []bool // whether the device's modbus block gives limits
	for i, dc := range cfg.Devices {
		p := index("devices", i)
		switch {
		case dc.Name == "":
			// Required: modbus.DeviceConfig.Validate and
			// opcua.Config.Validate say so for their devices,
			// requireName for the others.
		case names[dc.Name] > 0:
			d.errAt(join(p, "name"), "duplicate: devices[%d] is named %q too", names[dc.Name]-1, dc.Name)
		default:
			names[dc.Name] = i + 1
		}
		requireName := func() {
			if dc.Name == "" {
				d.errAt(join(p, "name"), "required: the device's name, the source of its samples")
			}
		}
		if dc.Inbox != nil {
			for _, fe := range bridge.FieldErrors(dc.Inbox.Validate()) {
				d.errAt(bridge.JoinPath(join(p, "inbox"), fe.Path), "%s", fieldMsg(fe))
			}
		}
		if dc.Report != nil {
			for _, fe := range bridge.FieldErrors(dc.Report.Validate()) {
				d.errAt(bridge.JoinPath(join(p, "report"), fe.Path), "%s", fieldMsg(fe))
			}
		}
		pointReport, ndev := d.pointReports(p, dc), len(g.devices)
		switch {
		case dc.Modbus != nil && dc.OPCUA != nil:
			d.errAt(join(p, "opcua"), "a device is either modbus or opcua, not both")
		case dc.Modbus != nil && dc.Sunspec != nil:
			if mc, ok := g.sunspecDevice(d, p, dc, dir, log); ok {
				ssCfgs = append(ssCfgs, mc)
				ssPaths = append(ssPaths, p)
			}
		case dc.Sunspec != nil && dc.OPCUA != nil:
			d.errAt(join(p, "sunspec"), "sunspec is for modbus devices")
		case dc.Modbus != nil:
			if len(dc.Nodes) > 0 {
				d.errAt(join(p, "nodes"), "nodes are for opcua devices; a modbus device has profile and points")
			}
			mc, dev, ok := g.modbusDevice(d, p, dc, dir, log)
			if ok {
				mbCfgs = append(mbCfgs, mc)
				mbDevs = append(mbDevs, dev)
				mbPaths = append(mbPaths, p)
				mbLimits = append(mbLimits, dc.Modbus.Limits != nil)
			}
		case dc.OPCUA != nil:
			// opcua.Config.Validate checks the name and the interval.
			if dc.Profile != "" {
				d.errAt(join(p, "profile"), "a profile is for modbus devices; an opcua device has nodes")
			}
			if len(dc.Points) > 0 {
				d.errAt(join(p, "points"), "points are for modbus devices; an opcua device has nodes")
			}
			g.opcuaDevice(d, p, dc, dir)
		case d.hasErrUnder(join(p, "modbus")) || d.hasErrUnder(join(p, "opcua")):
			// The block did not decode; that error says enough.
		default:
			requireName()
			d.errAt(p, "give the device a modbus or an opcua block")
		}
		if len(g.devices) > ndev {
			g.devices[ndev].pointReport = mergeReports(g.devices[ndev].pointReport, pointReport)
		}
	}
	d.checkSharedLines(append(slices.Clip(mbCfgs), ssCfgs...), append(slices.Clip(mbPaths), ssPaths...))
	// SunSpec devices on a serial line join its Bus, once the other
	// devices' buses exist.
	defer g.sunspecLines(d)
	if len(d.errs) > 0 || len(mbCfgs) == 0 {
		return
	}
	g.sunspecBuses(mbCfgs, ssCfgs) // a line shared with SunSpec devices gets its Bus now
	devs, buses, err := modbus.NewDevices(mbCfgs...)
	if err != nil {
		// Each device was checked alone already; what is left concerns
		// devices together (a shared bus). Paths start with the index
		// of the device's configuration: "[2].modbus.speed".
		for _, fe := range bridge.FieldErrors(err) {
			path := "devices"
			if m := cfgIndexRE.FindStringSubmatch(fe.Path); m != nil {
				if j, err := strconv.Atoi(m[1]); err == nil && j < len(mbPaths) {
					path = modbusDevicePath(mbPaths[j], m[2], mbLimits[j])
				}
			}
			d.errAt(path, "%s", fieldMsg(fe))
		}
		return
	}
	for i, dev := range devs {
		mbDevs[i].mb = dev
	}
	g.buses = append(g.buses, buses...)
}

// serialOf returns the serial settings a client made from cfg would use.
func serialOf(cfg modbus.ClientConfig) (modbus.Endpoint, bool) {
	ep, err := modbus.ParseURL(cfg.URL)
	if err != nil {
		return ep, false
	}
	if cfg.Speed != 0 {
		ep.Speed = cfg.Speed
	}
	if cfg.Parity != "" {
		ep.Parity = cfg.Parity
		if cfg.StopBits == 0 && ep.Parity == modbus.ParityNone {
			ep.StopBits = 2
		} else if cfg.StopBits == 0 {
			ep.StopBits = 1
		}
	}
	if cfg.DataBits != 0 {
		ep.DataBits = cfg.DataBits
	}
	if cfg.StopBits != 0 {
		ep.StopBits = cfg.StopBits
	}
	return ep, true
}

// checkSharedLines reports devices on one RTU or ASCII line (or serial
// gateway) whose framing or serial settings differ: modbus.NewDevices puts
// the devices of one line on one Bus made from the first device's
// settings, so the others' would be silently ignored, and two framings on
// one serial device (rtu:///dev/ttyUSB0 beside ascii:///dev/ttyUSB0) would
// be two links fighting over one port.
func (d *decoder) checkSharedLines(cfgs []modbus.DeviceConfig, paths []string) {
	type first struct {
		ep   modbus.Endpoint
		path string
	}
	lines := map[string]first{}
	for i, c := range cfgs {
		ep, ok := serialOf(c.Conn)
		if !ok || !ep.SerialFramed() {
			continue
		}
		key := lineKey(ep)
		f, seen := lines[key]
		if !seen {
			lines[key] = first{ep, paths[i]}
			continue
		}
		mp := join(paths[i], "modbus")
		if ep.Scheme != f.ep.Scheme {
			d.errAt(join(mp, "url"), "%s framing differs from %s of %s on the same line %s: one line has one framing", ep.Scheme, f.ep.Scheme, f.path, ep.Address)
			continue
		}
		check := func(key string, a, b any) {
			if a != b {
				d.errAt(join(mp, key), "%v differs from %v of %s on the same line %s: devices on one line share its settings", a, b, f.path, redact.URL(c.Conn.URL))
			}
		}
		check("speed", ep.Speed, f.ep.Speed)
		check("parity", ep.Parity, f.ep.Parity)
		check("data_bits", ep.DataBits, f.ep.DataBits)
		check("stop_bits", ep.StopBits, f.ep.StopBits)
	}
}

// lineKey names the link a serial-framed endpoint uses whatever its
// framing: the serial device, or the gateway's address and transport.
func lineKey(ep modbus.Endpoint) string {
	switch ep.Scheme {
	case modbus.SchemeRTU, modbus.SchemeASCII:
		return "serial:" + ep.Address
	case modbus.SchemeRTUOverUDP:
		return "udp:" + ep.Address
	}
	return "tcp:" + ep.Address
}

func (g *assembly) modbusDevice(d *decoder, p string, dc deviceConfig, dir string, log *slog.Logger) (modbus.DeviceConfig, *device, bool) {
	mb := dc.Modbus
	nerr := len(d.errs)
	conn := mb.ClientConfig
	conn.TLSCertFile, conn.TLSKeyFile, conn.TLSCAFile = relPath(dir, conn.TLSCertFile), relPath(dir, conn.TLSKeyFile), relPath(dir, conn.TLSCAFile)
	conn.Logger = log.With("link", redact.URL(conn.URL))

	// Points: the profile's, then the inline ones. Limits in the modbus
	// block replace the profile's.
	var prof *modbus.Profile
	var profReports map[string]bridge.Report // the profile file's points' own report blocks
	if dc.Profile != "" {
		prof, profReports = d.profile(join(p, "profile"), dc.Profile, dir)
	}
	var limits modbus.Limits
	if mb.Limits != nil {
		limits = *mb.Limits
		if prof != nil {
			prof = prof.Clone()
			prof.Limits = limits
		}
	}
	unit := uint8(1)
	if mb.Unit != nil {
		unit = *mb.Unit
	}
	cfg := modbus.DeviceConfig{
		Name: dc.Name, Conn: conn, Unit: unit, Interval: dc.Interval,
		Profile: prof, Points: modbusPoints(dc.Points), Limits: limits,
		MaxBusyRetries: mb.MaxBusyRetries, BusyRetryDelay: mb.BusyRetryDelay,
		Logger: log,
	}
	// The device's settings are checked by their owner; its field errors
	// carry the YAML key paths of a modbus.DeviceConfig.
	var merged []modbus.Point
	nprof := 0
	if prof != nil {
		merged = append(merged, prof.Points...)
		nprof = len(prof.Points)
	}
	merged = append(merged, cfg.Points...)
	for _, fe := range bridge.FieldErrors(cfg.Validate()) {
		if fe.Path == "points" && (dc.Profile != "" || d.hasErrUnder(join(p, "points"))) {
			// No points because the profile or the points did not
			// load: their errors say so.
			continue
		}
		d.deviceFieldError(p, fe, prof, nprof, merged, mb.Limits != nil)
	}
	if prof != nil && len(profReports) > 0 {
		d.checkProfileReports(join(p, "profile"), prof.Name, dc.Report, profReports)
	}
	if len(d.errs) > nerr {
		return modbus.DeviceConfig{}, nil, false
	}
	dev := &device{name: dc.Name, kind: "modbus", interval: dc.Interval, unit: unit, link: redact.URL(conn.URL), inboxOpts: dc.Inbox, report: dc.Report, pointReport: profReports,
		desc: fmt.Sprintf("modbus %s unit %d", redact.URL(conn.URL), unit)}
	if dev.interval == 0 {
		dev.interval = time.Second
	}
	g.devices = append(g.devices, dev)
	return cfg, dev, true
}

// cfgIndexRE splits the path of a field error of modbus.NewDevices into
// the index of the device's configuration and the rest.
var cfgIndexRE = regexp.MustCompile(`^\[(\d+)\]\.?(.*)$`)

// modbusDevicePath maps the path of a field error of the modbus
// DeviceConfig of the device at p to the file's key path: the device's
// unit, limits and busy retries are keys of its modbus block in the file,
// and of the DeviceConfig itself in Go. ownLimits says whether the modbus
// block gives limits (which then replace the profile's).
func modbusDevicePath(p, path string, ownLimits bool) string {
	key, _, _ := strings.Cut(path, ".")
	key, _, _ = strings.Cut(key, "[")
	switch key {
	case "unit", "limits", "max_busy_retries", "busy_retry_delay":
		return bridge.JoinPath(join(p, "modbus"), path)
	case "profile":
		if rest, ok := strings.CutPrefix(path, "profile.limits"); ok && ownLimits {
			return bridge.JoinPath(join(p, "modbus"), "limits"+rest)
		}
		return join(p, "profile")
	}
	return bridge.JoinPath(p, path)
}

// fieldMsg is a field error's message with its hint.
func fieldMsg(fe *bridge.FieldError) string {
	if fe.Hint != "" {
		return fe.Msg + " (" + fe.Hint + ")"
	}
	return fe.Msg
}

// profile returns the built-in profile called name or the profile in the
// file name (relative to the configuration's directory).
func (d *decoder) profile(path, name, dir string) (*modbus.Profile, map[string]bridge.Report) {
	if p, err := modbus.BuiltinProfile(name); err == nil {
		return p, nil
	}
	file := relPath(dir, name)
	st, err := os.Stat(file)
	if err != nil {
		d.errAt(path, "unknown profile %q: not built in (%s) and no such file", name, strings.Join(modbus.BuiltinProfiles(), ", "))
		return nil, nil
	}
	if !st.Mode().IsRegular() || st.Size() > 16<<20 {
		d.errAt(path, "profile %q: %s is not a regular file of at most 16 MiB", name, file)
		return nil, nil
	}
	data, err := readRegular(file, 16<<20)
	if err != nil {
		d.errAt(path, "profile %q: %v", name, err)
		return nil, nil
	}
	prof, reports, pd := decodeProfile(name, data)
	// The profile's own errors name its file and line.
	for _, e := range pd.errs {
		d.errAt(path, "%s", e)
	}
	if len(pd.errs) > 0 {
		return nil, nil
	}
	return prof, reports
}

var profilePointRE = regexp.MustCompile(`^points\[(\d+)\](?:\.(.*))?$`)

// decodeProfile decodes a profile file (modbus.Profile) as strictly as the
// configuration, with the same help, and validates it. It returns the
// decoder holding the errors, each with the profile file's line; a path
// within a point is written as the point ("point 1 "b": type").
func decodeProfile(name string, data []byte) (*modbus.Profile, map[string]bridge.Report, *decoder) {
	pd := newDecoder(name)
	var prof modbus.Profile
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		pd.yamlSyntax(err, data)
		return nil, nil, pd
	}
	doc := resolve(&root)
	if doc == nil || isNull(doc) {
		pd.errorf(0, "", "the profile is empty: want name, limits and points")
		return nil, nil, pd
	}
	byIndex := pd.takeReports(doc) // report is the gateway's key, not modbus.Point's
	pd.decode(doc, "", reflect.ValueOf(&prof).Elem())
	pd.checking = true
	if prof.Name == "" {
		prof.Name = strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))
	}
	if len(prof.Points) == 0 && !pd.hasErrUnder("points") {
		pd.errAt("points", "the profile has no points")
	}
	for _, fe := range bridge.FieldErrors(prof.Validate()) {
		pd.errAt(fe.Path, "%s", fieldMsg(fe))
	}
	for _, e := range pd.errs {
		if m := profilePointRE.FindStringSubmatch(e.Path); m != nil {
			i, _ := strconv.Atoi(m[1])
			pt := ""
			if i < len(prof.Points) {
				pt = prof.Points[i].Name
			}
			e.Path = fmt.Sprintf("point %d %q", i, pt)
			if m[2] != "" {
				e.Path += ": " + m[2]
			}
		}
	}
	pd.err() // sorts by line
	return &prof, pd.profileReports(&prof, byIndex), pd
}

// pointRefRE finds the references of modbus.ValidatePoints' messages to
// other points ("overlap point 3 "v2""), which count the profile's points
// and then the inline ones; deviceFieldError names them as the file does. The
// field that an error concerns is its Path, never taken from the text.
var pointRefRE = regexp.MustCompile(`point (\d+) ("(?:[^"\\]|\\.)*")`)

// deviceFieldError reports a field error of the modbus.DeviceConfig of the
// device at p, whose points are a profile's (the first nprof of merged)
// and the inline ones: at the line of its key in the file, or at the
// profile key for the profile's own points and limits.
func (d *decoder) deviceFieldError(p string, fe *bridge.FieldError, prof *modbus.Profile, nprof int, merged []modbus.Point, ownLimits bool) {
	ref := func(i int) string {
		if i < nprof {
			return fmt.Sprintf("point %q of profile %s", merged[i].Name, prof.Name)
		}
		return fmt.Sprintf("%s (%q)", index(join(p, "points"), i-nprof), merged[i].Name)
	}
	msg := fieldMsg(fe)
	if rest, ok := strings.CutPrefix(msg, "duplicate of point "); ok {
		if j, err := strconv.Atoi(rest); err == nil && j < len(merged) {
			msg = "duplicate name: " + ref(j) + " has it too"
		}
	}
	msg = pointRefRE.ReplaceAllStringFunc(msg, func(s string) string {
		m := pointRefRE.FindStringSubmatch(s)
		j, err := strconv.Atoi(m[1])
		if err != nil || j >= len(merged) {
			return s
		}
		return ref(j)
	})
	path := modbusDevicePath(p, fe.Path, ownLimits)
	if path == join(p, "profile") && prof != nil {
		// A problem of the profile's own points or limits: say which.
		what := strings.TrimPrefix(fe.Path, "profile.")
		if m := profilePointRE.FindStringSubmatch(what); m != nil {
			if i, err := strconv.Atoi(m[1]); err == nil && i < nprof {
				what = ref(i)
				if m[2] != "" {
					what += ": " + m[2]
				}
			}
		}
		msg = what + ": " + msg
	}
	d.errAt(path, "%s", msg)
}

var opcuaDeviceKeys = map[string]string{"name": "name", "interval": "interval", "nodes": "nodes"}

// opcuaPath maps the path of a field error of the opcua.Config of the
// device at p to the file's key path: name, interval and nodes are keys of
// the device, the others of its opcua block.
func opcuaPath(p, path string) string {
	key, _, _ := strings.Cut(path, ".")
	key, _, _ = strings.Cut(key, "[")
	if opcuaDeviceKeys[key] != "" {
		return bridge.JoinPath(p, path)
	}
	return bridge.JoinPath(join(p, "opcua"), path)
}

func (g *assembly) opcuaDevice(d *decoder, p string, dc deviceConfig, dir string) {
	up := join(p, "opcua")
	nerr := len(d.errs)
	block := resolve(dc.OPCUA)
	if block != nil && block.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(block.Content); i += 2 {
			k := block.Content[i].Value
			switch {
			case opcuaDeviceKeys[k] != "":
				d.errorf(block.Content[i].Line, join(up, k), "set %s at the device level (%s)", k, join(p, k))
			case k == "password":
				d.errorf(block.Content[i].Line, join(up, k), "secrets are not written in the configuration: name an environment variable with password_env or a file with password_file")
			}
		}
		block, _ = splitNode(block, func(k string) bool { return opcuaDeviceKeys[k] == "" && k != "password" })
	}
	var cfg opcua.Config
	d.decode(block, up, reflect.ValueOf(&cfg).Elem())
	cfg.Name = dc.Name
	cfg.Interval = dc.Interval
	cfg.Nodes = opcuaNodes(dc.Nodes)
	cfg.PKIDir = relPath(dir, cfg.PKIDir)
	cfg.Certificate = relPath(dir, cfg.Certificate)
	cfg.PrivateKey = relPath(dir, cfg.PrivateKey)
	cfg.TrustDir = relPath(dir, cfg.TrustDir)
	cfg.PasswordFile = relPath(dir, cfg.PasswordFile)
	// The settings are checked by their owner, also after a decoding
	// error, so that every mistake is reported at once (the checks of a
	// value that did not decode are dropped by the decoder).
	for _, fe := range bridge.FieldErrors(cfg.Validate()) {
		d.errAt(opcuaPath(p, fe.Path), "%s", fieldMsg(fe))
	}
	if len(d.errs) > nerr {
		return
	}
	src, err := opcua.New(cfg)
	if err != nil {
		for _, fe := range bridge.FieldErrors(err) {
			d.errAt(opcuaPath(p, fe.Path), "%s", fieldMsg(fe))
		}
		return
	}
	mode := cfg.Mode
	if mode == "" {
		mode = opcua.Subscribe
	}
	interval := dc.Interval
	if interval == 0 {
		interval = opcua.DefaultInterval
	}
	inbox := dc.Inbox
	if cfg.Buffer > 0 {
		// The OPC UA source has no queue of its own any more; its old
		// buffer (batches of one sample per node) becomes the bridge's
		// inbox for it, unless the device sets one.
		q := min(cfg.Buffer*max(len(cfg.Nodes), 1), bridge.MaxQueueSize)
		if inbox == nil {
			inbox = &bridge.SourceOptions{QueueSize: q, Overflow: bridge.OverflowDropOldest}
		}
		d.warnAt(join(up, "buffer"), "deprecated: the bridge owns the queue now; write inbox: {queue_size: %d, overflow: drop_oldest} at the device level", q)
	}
	g.devices = append(g.devices, &device{
		name: dc.Name, kind: "opcua", interval: interval, ua: src, nodes: cfg.Nodes, mode: mode, inboxOpts: inbox, report: dc.Report,
		desc: fmt.Sprintf("opcua %s %s", redact.URL(cfg.Endpoint), mode),
	})
}

func (g *assembly) buildSinks(d *decoder, cfg *fileConfig, dir string) {
	names := map[string]int{}
	kinds := SinkKinds()
	for i := range cfg.Sinks {
		p := index("sinks", i)
		n := resolve(&cfg.Sinks[i])
		if n == nil || n.Kind != yaml.MappingNode {
			d.errAt(p, "want a mapping with one of %s", strings.Join(kinds, ", "))
			continue
		}
		typed, rest := splitNode(n, func(k string) bool { return slices.Contains(kinds, k) })
		if len(typed.Content) == 0 {
			var keys []string
			for k := 0; k < len(rest.Content); k += 2 {
				keys = append(keys, strconv.Quote(rest.Content[k].Value))
			}
			msg := "unknown sink: want one of " + strings.Join(kinds, ", ")
			if len(keys) > 0 {
				msg = "unknown sink " + strings.Join(keys, ", ") + suggest(rest.Content[0].Value, kinds)
			}
			d.errAt(p, "%s", msg)
			continue
		}
		if len(typed.Content) > 2 {
			d.errorf(typed.Content[2].Line, join(p, typed.Content[2].Value), "one sink per item: %s is given too", typed.Content[0].Value)
			continue
		}
		kind := typed.Content[0].Value
		sk, _ := lookupSink(kind)
		var item sinkItem
		nerr := len(d.errs)
		typeKeys, _ := fieldsOf(sk.configType())
		misplaced := func(k string) bool {
			_, isCommon := sinkCommonKeys[k]
			_, isType := typeKeys[k]
			return !isCommon && (isType || sk.isSecret(k))
		}
		for k := 0; k+1 < len(rest.Content); k += 2 {
			if key := rest.Content[k]; misplaced(key.Value) {
				d.errorf(key.Line, join(p, key.Value), "%s is a setting of the %s sink: write it inside its block (%s: {%s: ...})", key.Value, kind, kind, key.Value)
			}
		}
		rest, _ = splitNode(rest, func(k string) bool { return !misplaced(k) })
		d.decode(rest, p, reflect.ValueOf(&item).Elem())
		name := item.Name
		if name == "" {
			name = kind
		}
		switch {
		case !nameRE.MatchString(name):
			d.errAt(join(p, "name"), "%q: a sink name is letters, digits, '.', '_' and '-' (it names the spool directory)", name)
		case names[name] > 0:
			d.errAt(join(p, "name"), "two sinks are named %q (sinks[%d] too): give each a distinct name", name, names[name]-1)
		default:
			names[name] = i + 1
		}
		e := &sinkEntry{name: name, kind: kind}
		e.opts = item.SinkOptions
		// How the bridge feeds the sink is checked by its owner; that a
		// spooled sink needs the spool section is the file's own rule.
		d.fieldErrors(p, e.opts.Validate())
		if e.opts.Overflow == bridge.OverflowSpool && g.spool == nil {
			d.errAt(join(p, "overflow"), "spool needs a top-level spool section (spool: {dir: ./spool})")
		}
		g.makeSink(d, e, sk, join(p, kind), typed.Content[1], dir)
		if len(d.errs) == nerr {
			g.sinks = append(g.sinks, e)
		} else if e.sink != nil {
			e.sink.Close(closedCtx())
		}
	}
}

// makeSink decodes the block of a sink of kind k and makes the sink.
func (g *assembly) makeSink(d *decoder, e *sinkEntry, k SinkKind, p string, block *yaml.Node, dir string) {
	cfg, env, ok := g.decodeKind(d, p, block, dir, e.name, k.Config, k.Secrets, k.Prepare)
	if !ok {
		return
	}
	sink, err := k.Build(cfg, env)
	if err != nil {
		// A constructor that fails returns no sink to close (often a typed
		// nil). Its field errors are placed by their paths, anything else
		// at the sink's block: the field is never guessed from the text.
		d.fieldErrors(p, err)
		return
	}
	e.sink = sink
	e.desc = e.kind
	if k.Describe != nil {
		e.desc = k.Describe(cfg, env)
	}
}

// decodeKind decodes the block of a sink or command source kind at path p
// strictly into the value newConfig returns (none when it is nil), reads its
// secrets, prepares it, and has it checked by its own Validate; deprecated
// keys become warnings. It reports whether the settings are good to build.
func (g *assembly) decodeKind(d *decoder, p string, block *yaml.Node, dir, name string,
	newConfig func() any, secrets []string, prepare func(any, SinkEnv)) (any, SinkEnv, bool) {
	block = resolve(block)
	if isNull(block) {
		line := 0
		if block != nil {
			line = block.Line
		}
		block = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: line}
	}
	if block.Kind != yaml.MappingNode {
		d.errorf(block.Line, p, "want a mapping of settings, not %s", kindName(block))
		return nil, SinkEnv{}, false
	}
	d.lines[p] = block.Line
	sec, block := d.secrets(block, p, dir, secrets)
	nerr := len(d.errs)
	var cfg any
	if newConfig != nil {
		cfg = newConfig()
		d.decode(block, p, reflect.ValueOf(cfg).Elem())
	} else {
		var none struct{}
		d.decode(block, p, reflect.ValueOf(&none).Elem())
	}
	env := SinkEnv{Name: name, Dir: dir, Secrets: sec, Stdout: g.stdout, Logger: g.log}
	if prepare != nil {
		prepare(cfg, env)
	}
	// The settings are checked by the package that defines them, also
	// after a decoding error (whose value's own checks the decoder drops),
	// so that every mistake is reported at once: its field errors carry
	// the YAML key paths within the block.
	if v, ok := cfg.(interface{ Validate() error }); ok {
		d.fieldErrors(p, v.Validate())
	}
	if len(d.errs) > nerr {
		return nil, SinkEnv{}, false
	}
	if dep, ok := cfg.(interface{ Deprecations() []*bridge.FieldError }); ok {
		// Deprecated settings are accepted and ignored: warnings.
		for _, fe := range dep.Deprecations() {
			d.warnAt(bridge.JoinPath(p, fe.Path), "%s", fieldMsg(fe))
		}
	}
	return cfg, env, true
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (g *assembly) closeDevices() {
	for _, dev := range g.devices {
		if dev.mb != nil {
			dev.mb.Close()
		}
		if dev.ss != nil {
			dev.ss.Close()
		}
	}
	for _, b := range g.buses {
		b.Close()
	}
}

// closedCtx is the context for closing sinks that were made but never
// started (a configuration with errors): they hold nothing to flush.
func closedCtx() context.Context { return context.Background() }
