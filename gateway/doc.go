// Package gateway is the configured bridge as a library: it loads a YAML
// configuration of Modbus and OPC UA devices and of sinks (DESIGN.md, "The
// gateway configuration"), checks it strictly, builds the devices, sinks,
// spools, metrics and health check it describes, and runs them through a
// [bridge.Bridge]. The gateway binary (examples/gateway) is flags, signals
// and exit codes over this package; a program that embeds the gateway does
// what it does:
//
//	cfg, err := gateway.Load("gateway.yaml")
//	if err != nil {
//		// Every problem of the file at once, each a *gateway.ConfigError
//		// with the file, the line and the key path.
//		log.Fatal(err)
//	}
//	fmt.Print(cfg.Check()) // read plans, node lists, sinks: what -check prints
//	g, err := cfg.Build(gateway.BuildOptions{Logger: slog.Default()})
//	if err != nil {
//		log.Fatal(err) // a spool in use, say
//	}
//	http.Handle("/", g.Handler()) // /metrics, /healthz and the status page
//	err = g.Run(ctx)             // until ctx ends; drains the sinks
//
// [Parse] does the same from bytes in memory. [Config.Build] dials nothing:
// connections are made by Run, lazily, and re-made after failures.
//
// # SunSpec devices
//
// A Modbus device with a sunspec block (sunspec.Config: base, models,
// writable, not_implemented, labels) has no profile or points: it
// discovers its SunSpec model chain when it runs and reads every point
// found (package modbus/sunspec). [Config.Discover] connects to one and
// returns its points as a profile, which [WriteProfile] or
// [WriteProfileFile] saves to pin them (gateway -discover).
//
// # Sink kinds
//
// Each item of the configuration's sinks list names its kind by its one
// key ("mqtt: {...}"). The built-in kinds are stdout, file, mqtt, nats,
// kafka, influx, http and sparkplug (a Sparkplug B edge node, which the
// bridge hands itself to: it reads the devices' health for DDEATH and
// writes DCMDs through the bridge); a program adds its own with [RegisterSink] and
// configures it from the same file, with the same strict decoding, secrets
// (<key>_env, <key>_file), queue, batch, retry and overflow settings:
//
//	gateway.RegisterSink("console", gateway.SinkKind{
//		Config: func() any { return new(consoleConfig) },
//		Build: func(cfg any, env gateway.SinkEnv) (bridge.Sink, error) {
//			return newConsole(cfg.(*consoleConfig))
//		},
//	})
//
// # Commands
//
// Points and nodes configured writable (writable: true, with optional min,
// max and allowed) can be written from the IoT side. The commands section
// lists the command sources, kinds like the sinks' ([RegisterCommands]; the
// built-in ones are mqtt and nats), which the gateway runs beside the bridge
// and which hand every command to [bridge.Bridge.Write]: the device's own
// rules first, then the rate limit of the writes section, the write, the
// read-back emitted as a sample, and the answer to the requester. Every
// write is counted (m2mbridge_writes_total) and logged with its origin.
//
// # Status page
//
// [Gateway.Handler] also serves a live status page, read-only (GET and HEAD
// only; nothing on it writes to a device or changes a setting):
//
//   - /status: the page. Per device its state ("up", "down" with the
//     error and since when, "starting", "stopped"), poll latency, last
//     cycle, sample rate, its latest values with quality, unit and age,
//     and its read plan (Modbus) or node list (OPC UA); per sink its
//     state, queue, spool depth and delivered and dropped rates; whether
//     the gateway is healthy, as /healthz says. The server renders it
//     whole (html/template, so every device-provided string is escaped),
//     so with JavaScript off it is a complete snapshot; with JavaScript on
//     a small embedded script follows /status/events and redraws it,
//     putting every text in as text. Its files are embedded: no build
//     step, nothing loaded from elsewhere; a Content-Security-Policy
//     keeps it to them.
//   - /status.json: the same as a [Status] (the field names are its JSON
//     tags; [StatusVersion] changes if one changes meaning), for scripts.
//   - /status/events: server-sent events, an event "status" whose data is
//     the JSON of /status.json, at once and then every second (?interval=
//     250ms to 1m), until the client leaves or the gateway stops (an event
//     "end"); at most 16 streams at once.
//
// The latest values come from a tap on each device's samples before report
// by exception, bounded to [MaxStatusPoints] points per device (the samples
// of others are counted, not shown); it costs about 10 ns a sample. Nothing
// secret is shown: transports and targets are described without passwords,
// and URLs in error texts have passwords and query values masked. Serve
// the handler on a loopback address (127.0.0.1:9100) or behind a proxy
// that authenticates: it shows what the devices read.
//
// # Concurrency
//
// Load, Parse, Check and Build may be called from any goroutine; a
// [Gateway]'s methods are safe for concurrent use and its Run is called
// once.
package gateway
