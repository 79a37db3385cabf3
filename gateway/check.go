package gateway

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/opcua"
)

// Report is what a configuration sets up, as "gateway -check" prints it
// (String). Nothing in it is secret: URLs are given without passwords and
// secrets are never part of a description.
type Report struct {
	// File is the configuration's file name.
	File    string
	Devices []DeviceReport
	Links   []LinkReport
	Sinks   []SinkReport
	// Commands describe the command sources ("mqtt tcp://... topic ...").
	Commands []string
	// Spool is the spool directory, "" without a spool section.
	Spool string
	// SpoolDirs are the spools of the sinks with overflow: spool.
	SpoolDirs []string
	// Warnings are settings accepted but ignored (deprecated keys), each
	// with its line; Build logs them too.
	Warnings []*ConfigError
}

// DeviceReport describes one device.
type DeviceReport struct {
	Name     string
	Kind     string // "modbus" or "opcua"
	Desc     string // the transport: "modbus tcp://10.0.0.7:502 unit 1"
	Interval time.Duration

	// Modbus: the points, and the plan of a cycle where all are due.
	Points []modbus.Point
	Plan   modbus.Plan
	// OwnInterval counts the points with an interval of their own.
	OwnInterval int

	// OPC UA: the nodes.
	Nodes []opcua.Node

	// Report is the device's report by exception, nil without; PointReport
	// the points' and nodes' own report blocks (see reportLine).
	Report      *bridge.Report
	PointReport map[string]bridge.Report
}

// LinkReport is the estimated load of one Modbus link (one URL: a TCP
// connection or a serial line): the sum over its devices of cycle cost /
// interval. Over 1 the devices cannot be polled as often as configured.
type LinkReport struct {
	URL     string
	Devices int
	Load    float64
}

// SinkReport describes one sink.
type SinkReport struct {
	Name    string
	Kind    string
	Desc    string
	Options bridge.SinkOptions
}

func (g *assembly) report() *Report {
	r := &Report{File: g.path}
	links := map[string]int{}
	for _, dev := range g.devices {
		dr := DeviceReport{Name: dev.name, Kind: dev.kind, Desc: dev.desc, Interval: dev.interval, Report: dev.report, PointReport: dev.pointReport}
		switch dev.kind {
		case "modbus":
			dr.Points = dev.mb.Points()
			dr.Plan = dev.mb.Plan()
			for _, p := range dr.Points {
				if p.Interval != 0 && p.Interval != dev.interval {
					dr.OwnInterval++
				}
			}
			i, ok := links[dev.link]
			if !ok {
				i = len(r.Links)
				links[dev.link] = i
				r.Links = append(r.Links, LinkReport{URL: dev.link})
			}
			r.Links[i].Devices++
			r.Links[i].Load += float64(dr.Plan.Cost) / float64(dev.interval)
		case "opcua":
			dr.Nodes = dev.nodes
		}
		r.Devices = append(r.Devices, dr)
	}
	for _, s := range g.sinks {
		r.Sinks = append(r.Sinks, SinkReport{Name: s.name, Kind: s.kind, Desc: s.desc, Options: s.opts})
	}
	for _, c := range g.commands {
		r.Commands = append(r.Commands, c.desc)
	}
	if g.spool != nil {
		r.Spool = g.spoolDir
		for _, s := range g.sinks {
			if s.opts.Overflow == bridge.OverflowSpool {
				r.SpoolDirs = append(r.SpoolDirs, filepath.Join(g.spoolDir, s.name))
			}
		}
	}
	r.Warnings = g.warnings
	return r
}

// String returns the report as "gateway -check" prints it: per Modbus
// device its read plan, per OPC UA device its nodes, the links, the sinks,
// the spool and the warnings.
func (r *Report) String() string {
	var w strings.Builder
	fmt.Fprintf(&w, "%s: ok: %d %s, %d %s\n", r.File, len(r.Devices), plural(len(r.Devices), "device"), len(r.Sinks), plural(len(r.Sinks), "sink"))
	for _, dev := range r.Devices {
		fmt.Fprintln(&w)
		switch dev.Kind {
		case "modbus":
			fmt.Fprintf(&w, "device %s: %s, every %v, %d %s\n", dev.Name, dev.Desc, dev.Interval, len(dev.Points), plural(len(dev.Points), "point"))
			if dev.OwnInterval > 0 {
				fmt.Fprintf(&w, "  (%d %s its own interval; the plan below reads every point, as a cycle where all are due)\n", dev.OwnInterval, plural2(dev.OwnInterval, "point has", "points have"))
			}
			for _, line := range strings.Split(dev.Plan.String(), "\n") {
				fmt.Fprintf(&w, "  %s\n", line)
			}
		case "sunspec":
			fmt.Fprintf(&w, "device %s: %s, every %v; points from discovery when it runs (gateway -discover %s prints them)\n", dev.Name, dev.Desc, dev.Interval, dev.Name)
		case "opcua":
			fmt.Fprintf(&w, "device %s: %s, every %v, %d %s\n", dev.Name, dev.Desc, dev.Interval, len(dev.Nodes), plural(len(dev.Nodes), "node"))
			tw := tabwriter.NewWriter(&w, 0, 0, 2, ' ', 0)
			for _, n := range dev.Nodes {
				unit := n.Unit
				if unit == "" {
					unit = "(unit from the server)"
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\n", n.Name, n.Node, unit)
			}
			tw.Flush()
		}
		if line := dev.reportLine(); line != "" {
			fmt.Fprintf(&w, "  %s\n", line)
		}
	}
	if len(r.Links) > 0 {
		fmt.Fprintln(&w)
		for _, l := range r.Links {
			fmt.Fprintf(&w, "link %s: %d %s, estimated %.1f%% busy", l.URL, l.Devices, plural(l.Devices, "device"), 100*l.Load)
			if l.Load > 1 {
				fmt.Fprint(&w, " (warning: more than the link can carry; poll less often or fewer points)")
			}
			fmt.Fprintln(&w)
		}
	}
	fmt.Fprintln(&w)
	for _, s := range r.Sinks {
		fmt.Fprintf(&w, "sink %s: %s; %s\n", s.Name, s.Desc, describeOptions(s.Options))
	}
	for _, c := range r.Commands {
		fmt.Fprintf(&w, "commands: %s\n", c)
	}
	if r.Spool != "" {
		if len(r.SpoolDirs) == 0 {
			fmt.Fprintf(&w, "spool: %s, unused (no sink has overflow: spool)\n", r.Spool)
		} else {
			fmt.Fprintf(&w, "spool: %s\n", strings.Join(r.SpoolDirs, ", "))
		}
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintln(&w)
		for _, e := range r.Warnings {
			fmt.Fprintf(&w, "warning: %s\n", e)
		}
	}
	return w.String()
}

func describeOptions(o bridge.SinkOptions) string {
	q, b := o.QueueSize, o.BatchSize
	if q == 0 {
		q = 10000
	}
	if b == 0 {
		b = 500
	}
	s := fmt.Sprintf("queue %d, batch %d, overflow %s", q, min(b, q), o.Overflow)
	if o.Linger > 0 {
		s += fmt.Sprintf(", linger %v", o.Linger)
	}
	return s
}

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	return s + "s"
}

func plural2(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
