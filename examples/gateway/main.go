// Command gateway runs the devices and sinks of a YAML configuration file
// through the m2mbridge pipeline: Modbus devices (TCP, RTU on RS-485, RTU
// over TCP, UDP, TLS) and OPC UA servers into stdout, files, MQTT, NATS,
// Kafka, InfluxDB and HTTP, with per-sink queues, a durable spool, Prometheus
// metrics and a health endpoint.
//
//	gateway -config gateway.yaml            # run until SIGINT or SIGTERM
//	gateway -config gateway.yaml -check     # validate, print read plans and node lists
//	gateway -config gateway.yaml -once      # poll every device once, deliver, exit
//	gateway -config gateway.yaml -metrics 127.0.0.1:9100   # /metrics, /healthz, the status page /status
//	gateway -config gateway.yaml -discover inverter1 [-profile-out inverter1.yaml]   # a SunSpec device's models and points
//	gateway -version
//
// The configuration is checked strictly before anything starts: every
// problem is reported at once, each with the file, the line and the key
// path ("gateway.yaml:14: devices[0].points[2].type: unknown type
// "flaot32" ..."). Relative paths in the file (profile files, the file
// sink, the spool, certificates, secret files) are relative to the file's
// directory. Secrets are read from <key>_env or <key>_file and never
// printed. See README.md for the keys and a walk-through.
//
// A second SIGINT or SIGTERM during the shutdown ends the process at once.
//
// Exit status: 0 on a clean run or check; 1 when the configuration is
// invalid, a spool or the metrics address cannot be used, samples held in
// memory were lost at shutdown, or (with -once) a device gave no good
// reading or a sink delivered nothing; 2 on a usage error; 3 when a second
// signal cut the shutdown short.
//
// Everything the binary does is in package
// github.com/m2mbridge/m2mbridge/gateway, for programs that embed the
// gateway.
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
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/m2mbridge/m2mbridge/gateway"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal starts the graceful shutdown; the next one
		// ends the process at once, for when draining takes too long.
		<-sigs
		cancel()
		s := <-sigs
		fmt.Fprintf(os.Stderr, "gateway: %v again: exiting now, without draining the sinks\n", s)
		os.Exit(exitForced)
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel()
	os.Exit(code)
}

// Exit codes.
const (
	exitFailed = 1 // invalid configuration, a spool or the metrics address unusable, samples lost, or with -once nothing read or delivered
	exitUsage  = 2 // a usage error
	exitForced = 3 // a second signal cut the shutdown short
)

// options are the command-line flags.
type options struct {
	config      string
	check       bool
	once        bool
	onceTimeout time.Duration
	metrics     string
	logFormat   string
	logLevel    string
	version     bool
	discover    string
	profileOut  string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.config, "config", "gateway.yaml", "the configuration `file`")
	fs.BoolVar(&o.check, "check", false, "check the configuration, print each device's read plan or node list, and exit")
	fs.BoolVar(&o.once, "once", false, "poll every device once, deliver the samples to the sinks, and exit")
	fs.DurationVar(&o.onceTimeout, "once-timeout", 30*time.Second, "with -once, how long an OPC UA device may take to deliver every node")
	fs.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics on /metrics, health on /healthz and the status page on /status at this `address` (host:port; 127.0.0.1:9100 keeps them on this machine, :9100 serves every network without authentication)")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.StringVar(&o.discover, "discover", "", "connect to the SunSpec `device` (a device with a sunspec block), print its model chain and points, and exit")
	fs.StringVar(&o.profileOut, "profile-out", "", "with -discover, also write the points as a profile `file` to pin them")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gateway: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	if o.version {
		fmt.Fprintln(stdout, version())
		return 0
	}
	if o.check && o.once {
		fmt.Fprintln(stderr, "gateway: -check and -once exclude each other")
		return exitUsage
	}
	if o.discover != "" && (o.check || o.once) || o.profileOut != "" && o.discover == "" {
		fmt.Fprintln(stderr, "gateway: -discover excludes -check and -once; -profile-out needs -discover")
		return exitUsage
	}
	if o.metrics != "" {
		if err := checkListenAddr(o.metrics); err != nil {
			fmt.Fprintf(stderr, "gateway: -metrics %q: %v\n", o.metrics, err)
			return exitUsage
		}
	}
	log, err := newLogger(stderr, o.logFormat, o.logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "gateway:", err)
		return exitUsage
	}

	cfg, err := gateway.Load(o.config)
	if err != nil {
		errs := leaves(err)
		for _, e := range errs {
			fmt.Fprintln(stderr, e)
		}
		what := "errors"
		if len(errs) == 1 {
			what = "error"
		}
		fmt.Fprintf(stderr, "gateway: %d %s in %s; nothing started\n", len(errs), what, o.config)
		return exitFailed
	}
	if o.check {
		fmt.Fprint(stdout, cfg.Check())
		return 0
	}
	if o.discover != "" {
		prof, err := cfg.Discover(ctx, o.discover, stdout)
		if err == nil && o.profileOut != "" {
			if err = gateway.WriteProfileFile(o.profileOut, prof); err == nil {
				fmt.Fprintf(stderr, "gateway: wrote profile %s (%d points)\n", o.profileOut, len(prof.Points))
			}
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailed
		}
		return 0
	}

	// The metrics address first: a port in use is an error before a spool
	// is opened or anything dialled.
	var ln net.Listener
	if o.metrics != "" {
		if ln, err = net.Listen("tcp", o.metrics); err != nil {
			log.Error("cannot serve metrics", "addr", o.metrics, "err", err)
			return exitFailed
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
		return exitFailed
	}
	if ln != nil {
		srv := &http.Server{Handler: g.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			srv.Shutdown(sctx)
			cancel()
		}()
		log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics", "health", "http://"+ln.Addr().String()+"/healthz",
			"status", "http://"+ln.Addr().String()+"/status")
	}
	code := 0
	err = g.Run(ctx)
	if err != nil {
		code = exitFailed
	}
	if o.once {
		for _, s := range g.Samples() {
			fmt.Fprintf(stderr, "gateway: %s: %d %s: %d good, %d uncertain, %d bad\n", s.Device, s.Total(), plural(s.Total(), "sample"), s.Good, s.Uncertain, s.Bad)
		}
		for _, e := range leaves(err) {
			fmt.Fprintln(stderr, e)
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

// leaves returns the errors joined in err, or err alone.
func leaves(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func plural(n uint64, s string) string {
	if n == 1 {
		return s
	}
	return s + "s"
}

// checkListenAddr checks an address to listen on: host:port, where the
// host may be empty (every interface) and the port a number.
func checkListenAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port, such as 127.0.0.1:9100 or :9100 (every interface)")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return fmt.Errorf("port %q: want a number from 0 to 65535", port)
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		return fmt.Errorf("host %q: want an IP address or a host name", host)
	}
	return nil
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				return false
			}
		}
	}
	return true
}

// version returns the module's version as the build recorded it: a
// release tag for "go install ...@v1.2.3", (devel) with the commit for a
// build from a checkout.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "gateway (unknown version)"
	}
	v := "gateway " + bi.Main.Path + " " + bi.Main.Version
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v += " commit " + s.Value
		case "vcs.modified":
			if s.Value == "true" {
				v += " (modified)"
			}
		}
	}
	return v + " " + bi.GoVersion
}
