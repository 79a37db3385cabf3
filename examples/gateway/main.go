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
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/m2mbridge/m2mbridge/gateway"
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

	cfg, err := gateway.Load(o.config)
	if err != nil {
		errs := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		}
		for _, e := range errs {
			fmt.Fprintln(stderr, e)
		}
		what := "errors"
		if len(errs) == 1 {
			what = "error"
		}
		fmt.Fprintf(stderr, "gateway: %d %s in %s; nothing started\n", len(errs), what, o.config)
		return 1
	}
	if o.check {
		fmt.Fprint(stdout, cfg.Check())
		return 0
	}

	// The metrics address first: a port in use is an error before a spool
	// is opened or anything dialled.
	var ln net.Listener
	if o.metrics != "" {
		if ln, err = net.Listen("tcp", o.metrics); err != nil {
			log.Error("cannot serve metrics", "addr", o.metrics, "err", err)
			return 1
		}
		defer ln.Close()
	}
	g, err := cfg.Build(gateway.BuildOptions{Logger: log, Stdout: stdout, Once: o.once, OnceTimeout: o.onceTimeout})
	if err != nil {
		if se := (*gateway.SpoolError)(nil); errors.As(err, &se) {
			log.Error("cannot open spool", "sink", se.Sink, "err", se.Err)
		} else {
			log.Error("cannot start", "err", err)
		}
		return 1
	}
	if ln != nil {
		srv := &http.Server{Handler: g.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			srv.Shutdown(sctx)
			cancel()
		}()
		log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics", "health", "http://"+ln.Addr().String()+"/healthz")
	}
	code := 0
	if err := g.Run(ctx); err != nil {
		code = 1
	}
	if o.once {
		for _, s := range g.Samples() {
			fmt.Fprintf(stderr, "gateway: %s: %d samples: %d good, %d uncertain, %d bad\n", s.Device, s.Total(), s.Good, s.Uncertain, s.Bad)
		}
	}
	log.Info("gateway stopped", "exit", code)
	return code
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
