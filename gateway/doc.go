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
//	http.Handle("/", g.Handler()) // /metrics and /healthz
//	err = g.Run(ctx)             // until ctx ends; drains the sinks
//
// [Parse] does the same from bytes in memory. [Config.Build] dials nothing:
// connections are made by Run, lazily, and re-made after failures.
//
// # Sink kinds
//
// Each item of the configuration's sinks list names its kind by its one
// key ("mqtt: {...}"). The built-in kinds are stdout, file, mqtt, nats,
// kafka, influx and http; a program adds its own with [RegisterSink] and
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
// # Concurrency
//
// Load, Parse, Check and Build may be called from any goroutine; a
// [Gateway]'s methods are safe for concurrent use and its Run is called
// once.
package gateway
