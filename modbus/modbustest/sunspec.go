package modbustest

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"strconv"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/sunspec"
)

// SunSpecModel is one model of a simulated SunSpec device.
type SunSpecModel struct {
	// ID is the model id; it must be in the tables of package sunspec.
	ID uint16
	// Values are raw register values (before scale factors) by point
	// name relative to the model: "W", "W_SF", "module[1].DCA",
	// "curve[0].V1". A Go integer, float or string, or a bridge.Value;
	// nil, or a point left out, reads the point's not-implemented value.
	// The count point of a repeating group (N, NCrv, NPt ...) sets its
	// number of repeats.
	Values map[string]any
	// Repeats is the number of repeats of the group that fills the model's
	// length (the modules of model 160 have a count point; those of models
	// with count 0 use this).
	Repeats int
}

// SunSpecDevice describes a simulated SunSpec device: where its map starts
// and its models, in chain order.
type SunSpecDevice struct {
	// Base is the address of the "SunS" marker (40000, 0, 50000, or one
	// off them).
	Base   uint16
	Models []SunSpecModel
	// NoEndLength ends the chain with the end model's id (0xFFFF) but
	// without its length register, as some devices do.
	NoEndLength bool
	// NoEnd ends the map after the last model, without an end model.
	NoEnd bool
	// UnknownAt inserts an unknown model (id UnknownID, UnknownLength
	// registers of zeros) before the model of this index (1-based, 0 for
	// none).
	UnknownAt     int
	UnknownID     uint16
	UnknownLength uint16
}

// SunSpecServer serves a SunSpec device built from the SunSpec model
// tables: the marker, each model's header and points, the end model. Its
// values stay as set ([SunSpecServer.SetRaw], [SunSpecServer.SetScaled],
// or a client's write); nothing moves on its own. It embeds the [Server],
// so the request log, hooks and faults are those of any test server.
type SunSpecServer struct {
	*Server
	points map[string]modbus.Point // by full name, raw (no scale factor)
	infos  []sunspec.PointInfo
	models []sunspec.ModelInstance
}

// NewSunSpecServer builds dev from the model tables and serves it like
// [NewServer] (opts apply as there).
func NewSunSpecServer(dev SunSpecDevice, opts ...Option) (*SunSpecServer, error) {
	regs := []uint16{sunspec.Marker[0], sunspec.Marker[1]}
	addr := int(dev.Base) + 2
	var infos []sunspec.PointInfo
	var models []sunspec.ModelInstance
	seen := map[uint16]int{}
	for k, m := range dev.Models {
		if dev.UnknownAt == k+1 {
			regs = append(regs, dev.UnknownID, dev.UnknownLength)
			regs = append(regs, make([]uint16, dev.UnknownLength)...)
			models = append(models, sunspec.ModelInstance{ID: dev.UnknownID, Address: uint16(addr), Length: dev.UnknownLength})
			addr += 2 + int(dev.UnknownLength)
		}
		def := sunspec.Lookup(m.ID)
		if def == nil {
			return nil, fmt.Errorf("modbustest: SunSpec model %d is not in the tables", m.ID)
		}
		seen[m.ID]++
		name := def.Name()
		if seen[m.ID] > 1 {
			name += "_" + strconv.Itoa(seen[m.ID])
		}
		counts := map[string]int{}
		for key, v := range m.Values {
			if val, ok := bridge.ValueOf(v); ok && v != nil {
				if u, ok := val.Uint(); ok {
					counts[key] = int(u)
				}
			}
		}
		length, err := sunspec.Length(m.ID, counts, m.Repeats)
		if err != nil {
			return nil, fmt.Errorf("modbustest: %w", err)
		}
		if addr+2+int(length) > 0x10000 {
			return nil, fmt.Errorf("modbustest: SunSpec model %d at %d runs past 65535", m.ID, addr)
		}
		block := make([]uint16, int(length)+2)
		block[0], block[1] = m.ID, length
		// Two passes: the first finds the count points, whose values the
		// second lays the repeating groups out with.
		var pts []sunspec.PointInfo
		for pass := 0; pass < 2; pass++ {
			pts, _, err = sunspec.Layout(m.ID, name, uint16(addr), length, block, modbus.Holding)
			if err != nil {
				return nil, fmt.Errorf("modbustest: %w", err)
			}
			for _, pi := range pts {
				p := rawPoint(pi.Point)
				key := pi.Point.Name[len(name)+1:]
				v, ok := m.Values[key]
				off := int(p.Address) - addr
				var words []uint16
				if ok && v != nil {
					val, err := toValue(v)
					if err != nil {
						return nil, fmt.Errorf("modbustest: SunSpec model %d point %s: %w", m.ID, key, err)
					}
					if words, err = p.Encode(val); err != nil {
						return nil, fmt.Errorf("modbustest: SunSpec model %d point %s: %w", m.ID, key, err)
					}
				} else {
					words = notImplemented(pi.Point)
				}
				copy(block[off:], words)
			}
		}
		// Pads read 0x8000 (SunSpec pad value); the rest is the points'.
		fillPads(def, block)
		infos = append(infos, pts...)
		regs = append(regs, block...)
		models = append(models, sunspec.ModelInstance{ID: m.ID, Name: name, Label: def.Label(), Address: uint16(addr), Length: length, Known: true})
		addr += len(block)
	}
	switch {
	case dev.NoEnd:
	case dev.NoEndLength:
		regs = append(regs, sunspec.EndID)
	default:
		regs = append(regs, sunspec.EndID, 0)
	}
	if int(dev.Base)+len(regs) > 0x10000 {
		return nil, fmt.Errorf("modbustest: the SunSpec map runs past 65535")
	}
	prof := &modbus.Profile{Name: "sunspec"}
	for k := range regs {
		prof.Points = append(prof.Points, modbus.Point{Name: "r" + strconv.Itoa(int(dev.Base)+k),
			Table: modbus.Holding, Address: dev.Base + uint16(k), Type: modbus.Uint16})
	}
	srv, err := newServer(prof, opts)
	if err != nil {
		return nil, err
	}
	s := &SunSpecServer{points: map[string]modbus.Point{}, infos: infos, models: models}
	for _, pi := range infos {
		s.points[pi.Point.Name] = rawPoint(pi.Point)
	}
	srv.mu.Lock()
	tb := srv.tables[modbus.Holding]
	copy(tb.regs, regs)
	for i := range srv.fixed {
		srv.fixed[i] = true // nothing moves
	}
	srv.mu.Unlock()
	if err := listen(srv); err != nil {
		return nil, err
	}
	s.Server = srv
	return s, nil
}

// rawPoint is p as registers hold it: no scale factor, scale or
// not-implemented value.
func rawPoint(p modbus.Point) modbus.Point {
	p.ScaleFactor, p.Scale, p.NotImplemented = "", 0, ""
	return p
}

// notImplemented returns the registers of p's not-implemented value.
func notImplemented(p modbus.Point) []uint16 {
	n := int(p.Registers())
	out := make([]uint16, n)
	switch p.NotImplemented {
	case modbus.NotImplementedMin:
		out[0] = 0x8000
	case modbus.NotImplementedMax:
		for k := range out {
			out[k] = 0xFFFF
		}
	case modbus.NotImplementedNaN:
		out[0] = 0x7FC0
		if p.Type == modbus.Float64 {
			out[0] = 0x7FF8
		}
	case modbus.NotImplementedEUI48:
		for k := 1; k < n; k++ {
			out[k] = 0xFFFF
		}
	}
	return out
}

// fillPads writes 0x8000 into the pad registers of the model's fixed
// group (repeated groups' pads are rare and stay 0).
func fillPads(def *sunspec.Model, block []uint16) {
	off := 0
	for _, p := range def.Group.Points {
		if p.Type == sunspec.Pad && off < len(block) {
			block[off] = 0x8000
		}
		off += int(p.Size)
	}
}

// Models returns the chain the server serves (the end model not
// included), with the instances' names and addresses.
func (s *SunSpecServer) Models() []sunspec.ModelInstance {
	return append([]sunspec.ModelInstance(nil), s.models...)
}

// Points returns the points the server serves, as discovery names them.
func (s *SunSpecServer) Points() []sunspec.PointInfo {
	return append([]sunspec.PointInfo(nil), s.infos...)
}

// SetRaw sets raw register values by full point name ("inverter.W",
// "mppt.module[0].DCA"), all in one step: no request is answered with some
// of them set and others not. nil sets the point's not-implemented value.
func (s *SunSpecServer) SetRaw(values map[string]any) error {
	type write struct {
		addr  uint16
		words []uint16
	}
	var ws []write
	for name, v := range values {
		p, ok := s.points[name]
		if !ok {
			return fmt.Errorf("modbustest: SetRaw: no SunSpec point %q", name)
		}
		if v == nil {
			for _, pi := range s.infos {
				if pi.Point.Name == name {
					ws = append(ws, write{p.Address, notImplemented(pi.Point)})
				}
			}
			continue
		}
		val, err := toValue(v)
		if err != nil {
			return fmt.Errorf("modbustest: SetRaw %q: %w", name, err)
		}
		words, err := p.Encode(val)
		if err != nil {
			return fmt.Errorf("modbustest: SetRaw %q: %w", name, err)
		}
		ws = append(ws, write{p.Address, words})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tb := s.tables[modbus.Holding]
	for _, w := range ws {
		copy(tb.regs[int(w.addr)-tb.first:], w.words)
	}
	return nil
}

// SetScaled sets a point to value under scale factor exponent sf, raw =
// value / 10^sf rounded, together with its factor point sfPoint, in one
// step.
func (s *SunSpecServer) SetScaled(point string, value float64, sfPoint string, sf int) error {
	raw := math.Round(value / math.Pow10(sf))
	return s.SetRaw(map[string]any{point: raw, sfPoint: sf})
}

// Raw returns the raw value of a point as the server would answer it now.
func (s *SunSpecServer) Raw(name string) (bridge.Value, error) {
	p, ok := s.points[name]
	if !ok {
		return bridge.Value{}, fmt.Errorf("modbustest: Raw: no SunSpec point %q", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tb := s.tables[modbus.Holding]
	off := int(p.Address) - tb.first
	return p.Decode(tb.regs[off : off+int(p.Registers())])
}

// listen starts serving s as NewServer does (TCP, or UDP with WithUDP).
func listen(s *Server) error {
	if s.addr == "" {
		s.addr = "127.0.0.1:0"
	}
	var err error
	if s.udp {
		if s.pc, err = net.ListenPacket("udp", s.addr); err != nil {
			return fmt.Errorf("modbustest: %w", err)
		}
		s.wg.Add(1)
		go s.serveUDP()
		return nil
	}
	if s.ln, err = net.Listen("tcp", s.addr); err != nil {
		return fmt.Errorf("modbustest: %w", err)
	}
	s.wg.Add(1)
	go s.accept()
	return nil
}

// SunSpecInverter returns a three-phase inverter with n MPPT modules at
// base: the common model (1), the three-phase inverter (103), the MPPT
// extension (160) and immediate controls (123), with plausible raw values
// and scale factors, some points not implemented (VA, VAr, PF, DCA of
// model 103, and what is not listed).
func SunSpecInverter(base uint16, n int) SunSpecDevice {
	mppt := map[string]any{"DCA_SF": -2, "DCV_SF": -1, "DCW_SF": 0, "DCWH_SF": 0, "N": n, "TmsPer": 0, "Evt": 0}
	for i := 0; i < n; i++ {
		p := "module[" + strconv.Itoa(i) + "]."
		mppt[p+"ID"] = i + 1
		mppt[p+"IDStr"] = "MPPT " + strconv.Itoa(i+1)
		mppt[p+"DCA"] = 850 + i
		mppt[p+"DCV"] = 3801 + i
		mppt[p+"DCW"] = 3230 + i
		mppt[p+"DCWH"] = 123456 + i
		mppt[p+"DCSt"] = 4
		mppt[p+"DCEvt"] = 0
	}
	return SunSpecDevice{Base: base, Models: []SunSpecModel{
		{ID: 1, Values: map[string]any{"Mn": "m2mbridge", "Md": "SIM-INV", "SN": "SN0001", "Vr": "1.0", "DA": 1}},
		{ID: 103, Values: map[string]any{
			"A": 1234, "AphA": 411, "AphB": 412, "AphC": 411, "A_SF": -2,
			"PPVphAB": 4001, "PPVphBC": 4002, "PPVphCA": 4003, "PhVphA": 2301, "PhVphB": 2302, "PhVphC": 2303, "V_SF": -1,
			"W": 8500, "W_SF": 0, "Hz": 5002, "Hz_SF": -2, "WH": 1234567, "WH_SF": 0,
			"St": 4, "Evt1": 0, "TmpCab": 451, "Tmp_SF": -1,
		}},
		{ID: 160, Values: mppt, Repeats: n},
		{ID: 123, Values: map[string]any{"Conn": 1, "WMaxLimPct": 1000, "WMaxLimPct_SF": -1, "WMaxLim_Ena": 0,
			"OutPFSet": 950, "OutPFSet_SF": -3, "VArPct_SF": 0}},
	}}
}

// SunSpecFixture reads a device in the JSON of pysunspec2's device files
// ({"models": [{"ID": 1, "L": 66, "Mn": "...", "curve": [{...}]}]}: raw
// point values by name, groups as objects or lists of them, null for a
// point not implemented) into a SunSpecDevice at base. Repeating groups
// take their number of repeats from their count point or, for a group that
// fills the model's length, from the length of its list; the end model is
// left to the server. A value the current model definitions do not have
// (a fixture made with an older revision) is ignored.
func SunSpecFixture(data []byte, base uint16) (SunSpecDevice, error) {
	var fx struct {
		Models []map[string]any `json:"models"`
	}
	if err := json.Unmarshal(data, &fx); err != nil {
		return SunSpecDevice{}, fmt.Errorf("modbustest: SunSpec fixture: %w", err)
	}
	dev := SunSpecDevice{Base: base}
	for k, m := range fx.Models {
		idf, ok := m["ID"].(float64)
		if !ok || idf < 1 || idf > sunspec.EndID || idf != math.Trunc(idf) {
			return SunSpecDevice{}, fmt.Errorf("modbustest: SunSpec fixture: models[%d]: no model ID", k)
		}
		id := uint16(idf)
		if id == sunspec.EndID {
			continue
		}
		vals := map[string]any{}
		repeats := 0
		var walk func(path string, v any)
		walk = func(path string, v any) {
			switch x := v.(type) {
			case map[string]any:
				for key, e := range x {
					walk(path+"."+key, e)
				}
			case []any:
				for i, e := range x {
					walk(path+"["+strconv.Itoa(i)+"]", e)
				}
			case float64:
				if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
					vals[path] = int64(x)
				} else {
					vals[path] = x
				}
			default:
				vals[path] = x // a string, or nil
			}
		}
		for key, v := range m {
			if key == "ID" || key == "L" {
				continue
			}
			if l, ok := v.([]any); ok {
				repeats = max(repeats, len(l))
			}
			walk(key, v)
		}
		dev.Models = append(dev.Models, SunSpecModel{ID: id, Values: vals, Repeats: repeats})
	}
	return dev, nil
}
