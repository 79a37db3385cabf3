package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/redact"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/sunspec"
)

// sunspecDevice builds a Modbus device with a sunspec block: its points
// come from discovery when it runs (sunspec.Device), so it takes no
// profile or points. The block is decoded into sunspec.Config and checked
// by its Validate; the modbus block's settings by modbus.
func (g *assembly) sunspecDevice(d *decoder, p string, dc deviceConfig, dir string, log *slog.Logger) (modbus.DeviceConfig, bool) {
	mb := dc.Modbus
	nerr := len(d.errs)
	if dc.Profile != "" {
		d.errAt(join(p, "profile"), "a sunspec device takes its points from discovery: give no profile (to pin them, write one with gateway -discover and drop the sunspec block)")
	}
	if len(dc.Points) > 0 {
		d.errAt(join(p, "points"), "a sunspec device takes its points from discovery: give no points")
	}
	if len(dc.Nodes) > 0 {
		d.errAt(join(p, "nodes"), "nodes are for opcua devices")
	}
	conn := mb.ClientConfig
	conn.TLSCertFile, conn.TLSKeyFile, conn.TLSCAFile = relPath(dir, conn.TLSCertFile), relPath(dir, conn.TLSKeyFile), relPath(dir, conn.TLSCAFile)
	conn.Logger = log.With("link", redact.URL(conn.URL))
	unit := uint8(1)
	if mb.Unit != nil {
		unit = *mb.Unit
	}
	var limits modbus.Limits
	if mb.Limits != nil {
		limits = *mb.Limits
	}
	cfg := modbus.DeviceConfig{Name: dc.Name, Conn: conn, Unit: unit, Interval: dc.Interval, Limits: limits,
		MaxBusyRetries: mb.MaxBusyRetries, BusyRetryDelay: mb.BusyRetryDelay, Logger: log}
	ss, err := sunspec.NewDevice(cfg, *dc.Sunspec)
	for _, fe := range bridge.FieldErrors(err) {
		path := fe.Path
		switch {
		case path == "sunspec" || strings.HasPrefix(path, "sunspec.") || strings.HasPrefix(path, "sunspec["):
			d.errAt(bridge.JoinPath(p, path), "%s", fieldMsg(fe))
		case strings.HasPrefix(path, "points"):
			// The stand-in point sunspec.NewDevice checks the link
			// with: nothing the file says.
		default:
			d.errAt(modbusDevicePath(p, path, mb.Limits != nil), "%s", fieldMsg(fe))
		}
	}
	if err != nil && len(d.errs) == nerr {
		d.errAt(join(p, "sunspec"), "%s", err)
	}
	if len(d.errs) > nerr {
		return modbus.DeviceConfig{}, false
	}
	dev := &device{name: dc.Name, kind: "sunspec", interval: dc.Interval, unit: unit, link: redact.URL(conn.URL),
		inboxOpts: dc.Inbox, report: dc.Report, ss: ss,
		desc: fmt.Sprintf("sunspec (base %s) modbus %s unit %d", baseText(dc.Sunspec.Base), redact.URL(conn.URL), unit)}
	if dev.interval == 0 {
		dev.interval = time.Second
	}
	g.devices = append(g.devices, dev)
	return cfg, true
}

// sunspecBuses makes a Bus for each serial line (or RTU/ASCII gateway)
// that plain Modbus devices share with SunSpec devices, and puts the plain
// devices' configurations on it; sunspecLines puts the SunSpec devices on
// it. (modbus.NewDevices makes the buses of lines only plain devices
// share.)
func (g *assembly) sunspecBuses(mbCfgs, ssCfgs []modbus.DeviceConfig) {
	key := func(url string) (string, bool) {
		ep, err := modbus.ParseURL(url)
		if err != nil || !ep.SerialFramed() {
			return "", false
		}
		return ep.Scheme + "://" + ep.Address, true
	}
	withSunSpec := map[string]bool{}
	for _, c := range ssCfgs {
		if k, ok := key(c.Conn.URL); ok {
			withSunSpec[k] = true
		}
	}
	made := map[string]*modbus.Bus{}
	for i := range mbCfgs {
		k, ok := key(mbCfgs[i].Conn.URL)
		if !ok || !withSunSpec[k] || mbCfgs[i].Bus != nil {
			continue
		}
		b := made[k]
		if b == nil {
			nb, err := modbus.NewBus(mbCfgs[i].Conn)
			if err != nil {
				continue // NewDevices reports the settings' problem
			}
			b = nb
			made[k] = b
			g.buses = append(g.buses, b)
		}
		mbCfgs[i].Bus = b
	}
}

// sunspecLines puts SunSpec devices on a serial line (or behind an RTU or
// ASCII gateway) on the Bus of the other devices of that line, or, when
// only SunSpec devices share it, on a Bus of their own (checkSharedLines
// has checked that they agree on the line's settings).
func (g *assembly) sunspecLines(d *decoder) {
	if len(d.errs) > 0 {
		return
	}
	key := func(ep modbus.Endpoint) string { return ep.Scheme + "://" + ep.Address }
	buses := map[string]*modbus.Bus{}
	for _, b := range g.buses {
		buses[key(b.Client().Endpoint())] = b
	}
	count := map[string]int{}
	eps := map[*device]modbus.Endpoint{}
	for _, dev := range g.devices {
		if dev.ss == nil {
			continue
		}
		if ep, err := modbus.ParseURL(dev.ss.Conn().URL); err == nil && ep.SerialFramed() {
			eps[dev] = ep
			count[key(ep)]++
		}
	}
	for _, dev := range g.devices {
		ep, ok := eps[dev]
		if !ok {
			continue
		}
		b := buses[key(ep)]
		if b == nil && count[key(ep)] > 1 {
			nb, err := modbus.NewBus(dev.ss.Conn())
			if err != nil {
				d.errAt("devices", "device %s: %v", dev.name, err) // checked before: not expected
				continue
			}
			b = nb
			buses[key(ep)] = b
			g.buses = append(g.buses, b)
		}
		if b != nil {
			dev.ss.UseBus(b)
		}
	}
}

func baseText(b sunspec.Base) string {
	t, _ := b.MarshalText()
	return string(t)
}

// runSunSpec runs a SunSpec device; with once, until its first cycle was
// delivered (discovery included).
func runSunSpec(ctx context.Context, ss *sunspec.Device, em bridge.Emitter, once bool) error {
	if !once {
		return ss.Run(ctx, em)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var emitErr error
	err := ss.Run(ctx, bridge.EmitterFunc(func(ctx context.Context, batch []bridge.Sample) error {
		emitErr = em.Emit(ctx, batch)
		cancel()
		return emitErr
	}))
	if emitErr != nil {
		return emitErr
	}
	return err
}

// Discover connects to the SunSpec device named device (a Modbus device
// with a sunspec block), discovers its model chain and writes to w the
// chain (model, name, address, length), what was skipped and why, and its
// points (name, address, type, unit, scale factor). It returns the points
// as a modbus profile named after the device, which [WriteProfile] writes
// as a profile file: a device that names it (profile: FILE, without the
// sunspec block) reads the same points without discovery.
func (c *Config) Discover(ctx context.Context, device string, w io.Writer) (*modbus.Profile, error) {
	a, err := assemble(c.name, c.data, discardLogger, io.Discard)
	if err != nil {
		return nil, err
	}
	defer a.close()
	var names []string
	for _, dev := range a.devices {
		if dev.ss != nil {
			names = append(names, dev.name)
		}
		if dev.name != device {
			continue
		}
		if dev.ss == nil {
			return nil, fmt.Errorf("gateway: device %q has no sunspec block: nothing to discover", device)
		}
		chain, err := dev.ss.Discover(ctx)
		if err != nil {
			return nil, fmt.Errorf("gateway: device %q: %w", device, err)
		}
		fmt.Fprint(w, chain.String())
		fmt.Fprintf(w, "%d points:\n", len(chain.Points))
		for _, pi := range chain.Points {
			p := pi.Point
			extra := ""
			if p.ScaleFactor != "" {
				extra = " × 10^" + p.ScaleFactor
			}
			if pi.Def.Writable {
				extra += " (rw)"
			}
			fmt.Fprintf(w, "  %-40s %-6d %-10s %-8s %s%s\n", p.Name, p.Address, pi.Def.Type, p.Unit, pi.Def.Label, extra)
		}
		return chain.Profile(device), nil
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("gateway: no device %q, and no device with a sunspec block in %s", device, c.name)
	}
	return nil, fmt.Errorf("gateway: no device %q (devices with a sunspec block: %s)", device, strings.Join(names, ", "))
}

// WriteProfile writes p as a profile file (the YAML of modbus.LoadProfile).
func WriteProfile(w io.Writer, p *modbus.Profile) error {
	if p == nil {
		return errors.New("gateway: no profile")
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(p); err != nil {
		return fmt.Errorf("gateway: writing profile %s: %w", p.Name, err)
	}
	return enc.Close()
}

// WriteProfileFile writes p as a profile file at path, atomically (a
// temporary file renamed into place), so a half-written profile is never
// loaded.
func WriteProfileFile(path string, p *modbus.Profile) error {
	var b bytes.Buffer
	if err := WriteProfile(&b, p); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("gateway: writing profile: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("gateway: writing profile: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("gateway: writing profile: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("gateway: writing profile: %w", err)
	}
	return nil
}
