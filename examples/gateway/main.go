// Command gateway runs the devices and sinks of a YAML configuration file
// through the m2mbridge pipeline: Modbus devices (TCP, RTU on RS-485, RTU
// over TCP, UDP, TLS) and OPC UA servers into stdout, files, MQTT, NATS,
// Kafka, InfluxDB and HTTP, with per-sink queues, a durable spool, Prometheus
// metrics and a health endpoint.
//
//	gateway -config gateway.yaml            # run until SIGINT or SIGTERM
//	gateway -config gateway.yaml -check     # validate, print read plans and node lists
//	gateway -config gateway.yaml -once      # poll every device once, deliver, exit
//	gateway -config gateway.yaml -metrics 127.0.0.1:9100
//
// The configuration is checked strictly before anything starts: every
// problem is reported at once, each with the file, the line and the key
// path ("gateway.yaml:14: devices[0].points[2].type: unknown type
// "flaot32" ..."). Relative paths in the file (profile files, the file
// sink, the spool, certificates, secret files) are relative to the file's
// directory. Secrets are read from <key>_env or <key>_file and never
// printed. See README.md for the keys and a walk-through.
//
// Exit status: 0 on a clean run or check; 1 when the configuration is
// invalid, a spool cannot be opened, samples held in memory were lost at
// shutdown, or (with -once) a device gave no good reading; 2 on a usage
// error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, the next one kills the process at once
		// (the default), for when the graceful shutdown takes too long.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the command-line flags.
type options struct {
	config      string
	check       bool
	once        bool
	onceTimeout time.Duration
	metrics     string
	logFormat   string
	logLevel    string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.config, "config", "gateway.yaml", "the configuration `file`")
	fs.BoolVar(&o.check, "check", false, "check the configuration, print each device's read plan or node list, and exit")
	fs.BoolVar(&o.once, "once", false, "poll every device once, deliver the samples to the sinks, and exit")
	fs.DurationVar(&o.onceTimeout, "once-timeout", 30*time.Second, "with -once, how long an OPC UA device may take to deliver every node")
	fs.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics on /metrics and health on /healthz at this `address` (host:port)")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gateway: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if o.check && o.once {
		fmt.Fprintln(stderr, "gateway: -check and -once exclude each other")
		return 2
	}
	log, err := newLogger(stderr, o.logFormat, o.logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "gateway:", err)
		return 2
	}

	g, err := load(o.config, log)
	if err != nil {
		n := 0
		for _, e := range flatten(err) {
			fmt.Fprintln(stderr, e)
			n++
		}
		what := "errors"
		if n == 1 {
			what = "error"
		}
		fmt.Fprintf(stderr, "gateway: %d %s in %s; nothing started\n", n, what, o.config)
		return 1
	}
	if o.check {
		g.printCheck(stdout)
		g.closeDevices()
		return 0
	}
	return g.run(ctx, o, log, stderr)
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: want debug, info, warn or error", level)
	}
	ho := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	}
	return nil, fmt.Errorf("-log-format %q: want text or json", format)
}
