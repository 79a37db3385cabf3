package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// printCheck prints what -check reports for a valid configuration: per
// Modbus device its read plan, per OPC UA device its nodes, and the sinks.
// Nothing in it is secret: URLs are printed without passwords and secrets
// are never part of a description.
func (g *gateway) printCheck(w io.Writer) {
	fmt.Fprintf(w, "%s: ok: %d %s, %d %s\n", g.path, len(g.devices), plural(len(g.devices), "device"), len(g.sinks), plural(len(g.sinks), "sink"))
	for _, dev := range g.devices {
		fmt.Fprintln(w)
		switch dev.kind {
		case "modbus":
			pts := dev.mb.Points()
			fmt.Fprintf(w, "device %s: %s, every %v, %d %s\n", dev.name, dev.desc, dev.interval, len(pts), plural(len(pts), "point"))
			own := 0
			for _, p := range pts {
				if p.Interval != 0 && p.Interval != dev.interval {
					own++
				}
			}
			if own > 0 {
				fmt.Fprintf(w, "  (%d %s its own interval; the plan below reads every point, as a cycle where all are due)\n", own, plural2(own, "point has", "points have"))
			}
			for _, line := range strings.Split(dev.mb.Plan().String(), "\n") {
				fmt.Fprintf(w, "  %s\n", line)
			}
		case "opcua":
			fmt.Fprintf(w, "device %s: %s, every %v, %d %s\n", dev.name, dev.desc, dev.interval, len(dev.nodes), plural(len(dev.nodes), "node"))
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			for _, n := range dev.nodes {
				unit := n.Unit
				if unit == "" {
					unit = "(unit from the server)"
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\n", n.Name, n.Node, unit)
			}
			tw.Flush()
		}
	}
	g.printLinks(w)
	fmt.Fprintln(w)
	for _, s := range g.sinks {
		fmt.Fprintf(w, "sink %s: %s; %s\n", s.name, s.desc, describeOptions(s.opts))
	}
	if g.spool != nil {
		var names []string
		for _, s := range g.sinks {
			if s.opts.Overflow == bridge.OverflowSpool {
				names = append(names, filepath.Join(g.spoolDir, s.name))
			}
		}
		if len(names) == 0 {
			fmt.Fprintf(w, "spool: %s, unused (no sink has overflow: spool)\n", g.spoolDir)
		} else {
			fmt.Fprintf(w, "spool: %s\n", strings.Join(names, ", "))
		}
	}
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

// printLinks prints, per Modbus link (one URL: a TCP connection or a serial
// line), how busy the planned cycles keep it: the sum over its devices of
// cycle cost / interval. Over 100% the devices cannot be polled as often as
// configured; cycles will start late (counted as overruns).
func (g *gateway) printLinks(w io.Writer) {
	type link struct {
		devices int
		load    float64
	}
	links := map[string]*link{}
	var order []string
	for _, dev := range g.devices {
		if dev.mb == nil {
			continue
		}
		l := links[dev.link]
		if l == nil {
			l = &link{}
			links[dev.link] = l
			order = append(order, dev.link)
		}
		l.devices++
		l.load += float64(dev.mb.Plan().Cost) / float64(dev.interval)
	}
	if len(order) == 0 {
		return
	}
	fmt.Fprintln(w)
	for _, u := range order {
		l := links[u]
		fmt.Fprintf(w, "link %s: %d %s, estimated %.1f%% busy", u, l.devices, plural(l.devices, "device"), 100*l.load)
		if l.load > 1 {
			fmt.Fprint(w, " (warning: more than the link can carry; poll less often or fewer points)")
		}
		fmt.Fprintln(w)
	}
}
