package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/m2mbridge/m2mbridge/bridge/mqtt"
	"github.com/m2mbridge/m2mbridge/bridge/sparkplug"
	"github.com/m2mbridge/m2mbridge/modbus"
)

// handler serves /metrics (Prometheus text format), /healthz and the
// status page.
func (rt *Gateway) handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(rt),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		bad := rt.unhealthy(time.Now())
		if len(bad) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "unhealthy")
			fmt.Fprintln(w, strings.Join(bad, "\n"))
			return
		}
		fmt.Fprintln(w, "ok")
	})
	rt.status.register(mux) // /status, /status.json, /status/events (status_http.go)
	return mux
}

// collector is a prometheus.Collector that reads the bridge's, the
// devices' and the spools' counters at each scrape, so the pipeline keeps
// no metric state of its own and package bridge needs no Prometheus code.
type collector struct {
	rt    *Gateway
	descs map[string]*prometheus.Desc
}

type metricDef struct {
	name, help string
	labels     []string
}

var metricDefs = []metricDef{
	{"source_emitted_total", "Samples a device emitted into the bridge.", []string{"device"}},
	{"source_forwarded_total", "Samples of the device offered to the sinks' queues.", []string{"device"}},
	{"source_dropped_total", "Samples of the device dropped by its inbox (OPC UA) when full.", []string{"device"}},
	{"source_suppressed_total", "Samples of the device that report by exception held back (unchanged within the deadband).", []string{"device"}},
	{"source_left_total", "Samples left in the device's inbox at the drain deadline (lost).", []string{"device"}},
	{"source_queued", "Samples waiting in the device's inbox now.", []string{"device"}},
	{"source_running", "1 while the device's poller runs.", []string{"device"}},
	{"device_online", "1 while the device answers, by its own report (a Modbus exception is an answer; an OPC UA session is up).", []string{"device"}},
	{"device_failing_seconds", "How long the device has not been answering, 0 when online.", []string{"device"}},
	{"device_samples_total", "Samples the device produced, by quality.", []string{"device", "quality"}},

	{"sink_accepted_total", "Samples taken into the sink's queue or spool.", []string{"sink"}},
	{"sink_refused_total", "Samples offered to the sink but not taken (shutdown, or a blocked emitter's context ended).", []string{"sink"}},
	{"sink_replayed_total", "Samples found in the sink's spool at start, from an earlier run.", []string{"sink"}},
	{"sink_dead_lettered_total", "Rejected samples kept in the dead-letter file.", []string{"sink"}},
	{"sink_aborted_total", "Samples whose write the drain deadline cut off (the sink may have delivered them).", []string{"sink"}},
	{"sink_left_total", "Samples undelivered at the drain deadline (in memory: lost; in a spool: kept).", []string{"sink"}},
	{"sink_in_flight", "Samples being written now.", []string{"sink"}},
	{"sink_spool_failed_total", "Samples the sink's spool could not store, kept in memory instead.", []string{"sink"}},
	{"sink_spool_ok", "0 while the sink's spool cannot store (a full disk, a size limit).", []string{"sink"}},
	{"spool_lost_total", "Samples the sink's spool found lost to damage (a deleted or corrupted segment).", []string{"sink"}},
	{"sink_delivered_total", "Samples the sink acknowledged.", []string{"sink"}},
	{"sink_retried_total", "Sample write attempts that failed and were retried.", []string{"sink"}},
	{"sink_rejected_total", "Samples the sink refused with a permanent error.", []string{"sink"}},
	{"sink_failed_total", "Samples given up after the retry limit.", []string{"sink"}},
	{"sink_dropped_total", "Samples dropped by the overflow policy or a full spool.", []string{"sink"}},
	{"sink_spooled_total", "Samples appended to the sink's spool.", []string{"sink"}},
	{"sink_queued", "Samples waiting for the sink now, in memory or in its spool.", []string{"sink"}},
	{"sink_errors_total", "Failed Write or Connect calls of the sink.", []string{"sink"}},
	{"sink_up", "1 when the sink's last Write or Connect succeeded.", []string{"sink"}},
	{"spool_bytes", "Bytes of the sink's spool files on disk.", []string{"sink"}},
	{"spool_samples", "Samples held in the sink's spool, not yet delivered.", []string{"sink"}},

	{"modbus_cycles_total", "Poll cycles run.", []string{"device"}},
	{"modbus_requests_total", "Read requests the device's poller sent.", []string{"device"}},
	{"modbus_bad_samples_total", "Bad samples the poller produced.", []string{"device"}},
	{"modbus_overruns_total", "Poll cycles that started later than one interval after they were due.", []string{"device"}},
	{"modbus_holes_learned_total", "Unmapped address ranges learned from Illegal Data Address answers.", []string{"device"}},
	{"modbus_poll_latency_seconds", "Latency of the device's last answered request.", []string{"device"}},
	{"modbus_poll_latency_mean_seconds", "Mean latency of the device's answered requests.", []string{"device"}},
	{"modbus_poll_latency_max_seconds", "Longest latency of the device's answered requests.", []string{"device"}},
	{"modbus_link_requests_total", "Requests sent on a link (a TCP connection, or a serial line shared by its devices), counted once per link.", []string{"link"}},
	{"modbus_link_errors_total", "Requests on the link that failed (exceptions included).", []string{"link"}},
	{"modbus_link_timeouts_total", "Requests on the link that got no answer in time.", []string{"link"}},
	{"modbus_link_discarded_total", "Replies on a serial-line link (RTU or ASCII framing) that did not answer the request in progress (late, another unit, bad CRC or LRC, malformed), thrown away undecoded.", []string{"link"}},
	{"modbus_link_connects_total", "Connections the link opened.", []string{"link"}},
	{"modbus_link_utilisation_ratio", "Share of time the link (bus) spent on requests.", []string{"link"}},

	{"writes_total", "Writes of a point asked for through a command (Bridge.Write), by outcome: accepted (written and read back), refused (a rule; nothing sent), failed (at the device).", []string{"device", "point", "outcome"}},

	{"mqtt_untracked_points_total", "With layout batch and a metadata topic: points not taken into the metadata (past its cap of 100,000), whose batch messages carry their units themselves.", []string{"sink"}},

	{"sparkplug_connected", "1 while the edge node is connected to the broker.", []string{"sink"}},
	{"sparkplug_born", "1 while the edge node's NBIRTH stands on the current connection.", []string{"sink"}},
	{"sparkplug_bdseq", "The bdSeq of the current (or last) connection.", []string{"sink"}},
	{"sparkplug_connects_total", "MQTT connections made.", []string{"sink"}},
	{"sparkplug_births_total", "Birth messages published, by type (NBIRTH, DBIRTH).", []string{"sink", "type"}},
	{"sparkplug_device_deaths_total", "DDEATH messages published.", []string{"sink"}},
	{"sparkplug_data_messages_total", "DDATA messages published.", []string{"sink"}},
	{"sparkplug_data_bytes_total", "Bytes of those DDATA messages on the wire (MQTT 3.1.1 PUBLISH at QoS 0).", []string{"sink"}},
	{"sparkplug_unchanged_total", "Samples not sent because the host has their value (DDATA carries changes).", []string{"sink"}},
	{"sparkplug_absorbed_total", "Bad samples of a dead device, said by its DDEATH.", []string{"sink"}},
	{"sparkplug_historical_total", "Samples sent with is_historical.", []string{"sink"}},
	{"sparkplug_commands_total", "DCMD metrics, by outcome: handed to the bridge's Write, refused, or dropped with the command queue full.", []string{"sink", "outcome"}},
	{"sparkplug_events_dropped_total", "NCMD messages dropped with the event queue full.", []string{"sink"}},

	{"opcua_connected", "1 while a session with the server is up.", []string{"device"}},
	{"opcua_connects_total", "Sessions established.", []string{"device"}},
	{"opcua_connect_failures_total", "Connection attempts that failed.", []string{"device"}},
	{"opcua_reconnects_total", "Established sessions that were lost and rebuilt.", []string{"device"}},
	{"opcua_watchdog_trips_total", "Connections rebuilt because a subscription went silent.", []string{"device"}},
	{"opcua_reads_total", "Read requests the poller sent.", []string{"device"}},
	{"opcua_notifications_total", "Data change notifications received.", []string{"device"}},
}

func newCollector(rt *Gateway) *collector {
	c := &collector{rt: rt, descs: make(map[string]*prometheus.Desc, len(metricDefs))}
	for _, m := range metricDefs {
		c.descs[m.name] = prometheus.NewDesc("m2mbridge_"+m.name, m.help, m.labels, nil)
	}
	return c
}

// Describe sends the descriptions of every metric.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect reads the counters now and sends them.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, v, labels...)
	}
	gauge := func(name string, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, v, labels...)
	}
	b01 := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	st := c.rt.bridge.Stats()
	for _, s := range st.Sources {
		counter("source_emitted_total", float64(s.Emitted), s.Name)
		counter("source_forwarded_total", float64(s.Forwarded), s.Name)
		counter("source_dropped_total", float64(s.Dropped), s.Name)
		counter("source_suppressed_total", float64(s.Suppressed), s.Name)
		counter("source_left_total", float64(s.Left), s.Name)
		gauge("source_queued", float64(s.Queued), s.Name)
		gauge("source_running", b01(s.Running), s.Name)
	}
	var mbs []*modbus.Device
	now := time.Now()
	for _, s := range c.rt.states {
		name := s.dev.name
		since, _ := s.failing(c.rt.started)
		gauge("device_online", b01(since.IsZero()), name)
		failing := 0.0
		if !since.IsZero() {
			failing = now.Sub(since).Seconds()
		}
		gauge("device_failing_seconds", failing, name)
		counter("device_samples_total", float64(s.good.Load()), name, "good")
		counter("device_samples_total", float64(s.uncertain.Load()), name, "uncertain")
		counter("device_samples_total", float64(s.bad.Load()), name, "bad")
		mb := s.dev.mb
		if mb == nil && s.dev.ss != nil {
			mb = s.dev.ss.Modbus() // the poller of the chain discovered last; nil before
		}
		switch {
		case mb != nil:
			ds := mb.Stats()
			counter("modbus_cycles_total", float64(ds.Cycles), name)
			counter("modbus_requests_total", float64(ds.Requests), name)
			counter("modbus_bad_samples_total", float64(ds.Bad), name)
			counter("modbus_overruns_total", float64(ds.Overruns), name)
			counter("modbus_holes_learned_total", float64(ds.Holes), name)
			ls := mb.Client().Stats()
			us := ls.Units[s.dev.unit]
			gauge("modbus_poll_latency_seconds", us.LastLatency.Seconds(), name)
			gauge("modbus_poll_latency_mean_seconds", us.MeanLatency.Seconds(), name)
			gauge("modbus_poll_latency_max_seconds", us.MaxLatency.Seconds(), name)
			mbs = append(mbs, mb)
		case s.dev.ua != nil:
			us := s.dev.ua.Stats()
			gauge("opcua_connected", b01(us.Connected), name)
			counter("opcua_connects_total", float64(us.Connects), name)
			counter("opcua_connect_failures_total", float64(us.ConnectFailures), name)
			counter("opcua_reconnects_total", float64(us.Reconnects), name)
			counter("opcua_watchdog_trips_total", float64(us.WatchdogTrips), name)
			counter("opcua_reads_total", float64(us.Reads), name)
			counter("opcua_notifications_total", float64(us.Notifications), name)
		}
	}
	for _, e := range c.rt.a.sinks {
		switch sk := e.sink.(type) {
		case *mqtt.Sink:
			counter("mqtt_untracked_points_total", float64(sk.Stats().UntrackedPoints), e.name)
		case *sparkplug.Sink:
			ps := sk.Stats()
			gauge("sparkplug_connected", b01(ps.Connected), e.name)
			gauge("sparkplug_born", b01(ps.Born), e.name)
			gauge("sparkplug_bdseq", float64(ps.BdSeq), e.name)
			counter("sparkplug_connects_total", float64(ps.Connects), e.name)
			counter("sparkplug_births_total", float64(ps.NodeBirths), e.name, "NBIRTH")
			counter("sparkplug_births_total", float64(ps.DeviceBirths), e.name, "DBIRTH")
			counter("sparkplug_device_deaths_total", float64(ps.DeviceDeaths), e.name)
			counter("sparkplug_data_messages_total", float64(ps.DataMessages), e.name)
			counter("sparkplug_data_bytes_total", float64(ps.DataBytes), e.name)
			counter("sparkplug_unchanged_total", float64(ps.Unchanged), e.name)
			counter("sparkplug_absorbed_total", float64(ps.Absorbed), e.name)
			counter("sparkplug_historical_total", float64(ps.Historical), e.name)
			counter("sparkplug_commands_total", float64(ps.Commands), e.name, "handed")
			counter("sparkplug_commands_total", float64(ps.CommandsRefused), e.name, "refused")
			counter("sparkplug_commands_total", float64(ps.CommandsDropped), e.name, "dropped")
			counter("sparkplug_events_dropped_total", float64(ps.EventsDropped), e.name)
		}
	}
	// A link shared by several devices (one RS-485 line, one RTU gateway)
	// is counted once, under its own label.
	for link, ls := range modbus.LinkStats(mbs...) {
		counter("modbus_link_requests_total", float64(ls.Requests), link)
		counter("modbus_link_errors_total", float64(ls.Errors), link)
		counter("modbus_link_timeouts_total", float64(ls.Timeouts), link)
		counter("modbus_link_discarded_total", float64(ls.Discarded), link)
		counter("modbus_link_connects_total", float64(ls.Connects), link)
		gauge("modbus_link_utilisation_ratio", ls.Utilisation, link)
	}
	for _, w := range st.Writes {
		counter("writes_total", float64(w.Accepted), w.Source, w.Point, "accepted")
		counter("writes_total", float64(w.Refused), w.Source, w.Point, "refused")
		counter("writes_total", float64(w.Failed), w.Source, w.Point, "failed")
	}
	for _, s := range st.Sinks {
		counter("sink_accepted_total", float64(s.Accepted), s.Name)
		counter("sink_refused_total", float64(s.Refused), s.Name)
		counter("sink_replayed_total", float64(s.Replayed), s.Name)
		counter("sink_dead_lettered_total", float64(s.DeadLettered), s.Name)
		counter("sink_aborted_total", float64(s.Aborted), s.Name)
		counter("sink_left_total", float64(s.Left), s.Name)
		gauge("sink_in_flight", float64(s.InFlight), s.Name)
		counter("sink_spool_failed_total", float64(s.SpoolFailed), s.Name)
		if c.rt.spools[s.Name] != nil {
			gauge("sink_spool_ok", b01(s.SpoolError == ""), s.Name)
			counter("spool_lost_total", float64(s.SpoolLost), s.Name)
		}
		counter("sink_delivered_total", float64(s.Delivered), s.Name)
		counter("sink_retried_total", float64(s.Retried), s.Name)
		counter("sink_rejected_total", float64(s.Rejected), s.Name)
		counter("sink_failed_total", float64(s.Failed), s.Name)
		counter("sink_dropped_total", float64(s.Dropped), s.Name)
		counter("sink_spooled_total", float64(s.Spooled), s.Name)
		gauge("sink_queued", float64(s.Queued), s.Name)
		counter("sink_errors_total", float64(s.Errors), s.Name)
		gauge("sink_up", b01(s.Up), s.Name)
		if sp := c.rt.spools[s.Name]; sp != nil {
			gauge("spool_bytes", float64(sp.Bytes()), s.Name)
			gauge("spool_samples", float64(sp.Len()), s.Name)
		}
	}
}
