package gateway

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

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

// takeReports takes the report blocks out of the points of a profile
// file's document, so that the rest decodes as a modbus.Profile, and
// decodes each as a bridge.Report checked by its Validate. It returns them
// by the point's index. (modbus.Point has no report key: report by
// exception is the bridge's, and the profile a register map.)
func (d *decoder) takeReports(doc *yaml.Node) map[int]bridge.Report {
	if doc.Kind != yaml.MappingNode {
		return nil
	}
	var out map[int]bridge.Report
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value != "points" {
			continue
		}
		seq := resolve(doc.Content[i+1])
		if seq == nil || seq.Kind != yaml.SequenceNode {
			return nil
		}
		for j, item := range seq.Content {
			pt := resolve(item)
			if pt == nil || pt.Kind != yaml.MappingNode {
				continue
			}
			for k := 0; k+1 < len(pt.Content); k += 2 {
				if pt.Content[k].Value != "report" {
					continue
				}
				path := join(index("points", j), "report")
				d.lines[path] = pt.Content[k].Line
				var r bridge.Report
				d.decode(pt.Content[k+1], path, reflect.ValueOf(&r).Elem())
				// Checked alone here, at the profile file's lines, as if
				// the device had a rule of its own (a profile's point may
				// set only a heartbeat or a range over the device's
				// rule); merged with the device's by checkProfileReports.
				d.fieldErrors(path, bridge.Report{DeadbandPercent: 1}.Merge(r).Validate())
				if out == nil {
					out = make(map[int]bridge.Report)
				}
				out[j] = r
				pt.Content = slices.Delete(pt.Content, k, k+2)
				break
			}
		}
	}
	return out
}

// profileReports gives the report blocks taken from a profile's points
// the points' names.
func (d *decoder) profileReports(prof *modbus.Profile, byIndex map[int]bridge.Report) map[string]bridge.Report {
	if len(byIndex) == 0 {
		return nil
	}
	out := make(map[string]bridge.Report, len(byIndex))
	for i, r := range byIndex {
		if i < len(prof.Points) {
			out[prof.Points[i].Name] = r
		}
	}
	return out
}

// checkProfileReports checks the report blocks of a profile file's points
// merged over the device's report block, at the device's profile key.
func (d *decoder) checkProfileReports(path, profName string, def *bridge.Report, reports map[string]bridge.Report) {
	var dr bridge.Report
	if def != nil {
		dr = *def
		if dr.Validate() != nil {
			return // said at the device's report
		}
	}
	names := slices.Sorted(maps.Keys(reports))
	for _, name := range names {
		for _, fe := range bridge.FieldErrors(dr.Merge(reports[name]).Validate()) {
			d.errAt(path, "point %q of profile %s: report.%s: %s", name, profName, fe.Path, fieldMsg(fe))
		}
	}
}

// mergeReports returns the point reports of a device: its profile's, and
// its inline points' and nodes' over them.
func mergeReports(profile, inline map[string]bridge.Report) map[string]bridge.Report {
	if len(profile) == 0 {
		return inline
	}
	out := maps.Clone(profile)
	maps.Copy(out, inline)
	return out
}

// reportLine describes the device's report by exception for -check: "report
// by exception: deadband_percent 0.5, heartbeat 5m0s; 2 points with their
// own", or "" without.
func (dev DeviceReport) reportLine() string {
	if dev.Report == nil && len(dev.PointReport) == 0 {
		return ""
	}
	desc := "none for the device"
	if dev.Report != nil {
		desc = describeReport(*dev.Report)
	}
	line := "report by exception: " + desc
	if n := len(dev.PointReport); n > 0 {
		line += fmt.Sprintf("; %d %s", n, plural2(n, "point with its own", "points with their own"))
	}
	return line
}

func describeReport(r bridge.Report) string {
	var parts []string
	switch {
	case r.OnChange:
		parts = append(parts, "on_change")
	case r.Deadband != 0:
		parts = append(parts, fmt.Sprintf("deadband %v", r.Deadband))
	case r.DeadbandPercent != 0:
		p := fmt.Sprintf("deadband_percent %v", r.DeadbandPercent)
		if r.Range != 0 {
			p += fmt.Sprintf(" of range %v", r.Range)
		}
		parts = append(parts, p)
	default:
		parts = append(parts, "every sample")
	}
	if r.Heartbeat != 0 {
		parts = append(parts, fmt.Sprintf("heartbeat %v", r.Heartbeat))
	}
	return strings.Join(parts, ", ")
}
