package gateway

import (
	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/opcua"
)

// pointConfig is an inline point of a Modbus device in the file: a
// modbus.Point with, optionally, its own report by exception.
type pointConfig struct {
	modbus.Point `yaml:",inline"`
	// Report is the point's report by exception (bridge.Report), merged
	// over the device's report block (bridge.Report.Merge).
	Report *bridge.Report `yaml:"report"`
}

// nodeConfig is a node of an OPC UA device in the file: an opcua.Node
// with, optionally, its own report by exception. The key is report, not
// deadband, which an opcua.Node has already: that one is the server's
// filter of a subscription (OPC UA Part 4, 7.22.2).
type nodeConfig struct {
	opcua.Node `yaml:",inline"`
	Report     *bridge.Report `yaml:"report"`
}

func modbusPoints(pcs []pointConfig) []modbus.Point {
	if pcs == nil {
		return nil
	}
	out := make([]modbus.Point, len(pcs))
	for i := range pcs {
		out[i] = pcs[i].Point
	}
	return out
}

func opcuaNodes(ncs []nodeConfig) []opcua.Node {
	if ncs == nil {
		return nil
	}
	out := make([]opcua.Node, len(ncs))
	for i := range ncs {
		out[i] = ncs[i].Node
	}
	return out
}

// pointReports checks the report blocks of the device's points and nodes,
// each merged over the device's (bridge.Report.Merge) and checked by
// bridge.Report.Validate at the point's line, and returns them by point
// name (bridge.SourceOptions.PointReport), nil when there are none. A
// point's report is not checked when the device's is wrong: that error
// says enough.
func (d *decoder) pointReports(p string, dc deviceConfig) map[string]bridge.Report {
	var def bridge.Report
	if dc.Report != nil {
		def = *dc.Report
		if def.Validate() != nil {
			return nil
		}
	}
	var out map[string]bridge.Report
	add := func(path, name string, r *bridge.Report) {
		if r == nil {
			return
		}
		for _, fe := range bridge.FieldErrors(def.Merge(*r).Validate()) {
			d.errAt(bridge.JoinPath(join(path, "report"), fe.Path), "%s", fieldMsg(fe))
		}
		if out == nil {
			out = make(map[string]bridge.Report)
		}
		out[name] = *r
	}
	for i, pc := range dc.Points {
		add(index(join(p, "points"), i), pc.Name, pc.Report)
	}
	for i, nc := range dc.Nodes {
		add(index(join(p, "nodes"), i), nc.Name, nc.Report)
	}
	return out
}
