package gateway

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/httpsink"
	"github.com/m2mbridge/m2mbridge/bridge/influx"
	"github.com/m2mbridge/m2mbridge/bridge/kafka"
	"github.com/m2mbridge/m2mbridge/bridge/mqtt"
	"github.com/m2mbridge/m2mbridge/bridge/nats"
	"github.com/m2mbridge/m2mbridge/internal/redact"
)

// SinkKind is a kind of sink that a configuration can name in its sinks
// list ("mqtt", "file", or one of the program's own). The loader decodes
// the kind's block into the value Config returns, strictly (unknown keys,
// wrong types and misplaced keys are errors with their lines; a field whose
// type implements encoding.TextUnmarshaler parses itself), reads the
// secrets, calls Prepare, then the value's Validate method when it has one
// (its *bridge.FieldError values, with YAML key paths relative to the
// block, are reported at the lines of those keys), and calls Build. A
// value with a Deprecations() []*bridge.FieldError method has those
// reported as warnings (Report.Warnings), not errors.
//
// A configuration item names the kind as its one key; the common keys
// (name, queue_size, batch_size, linger, overflow, retry) sit beside it:
//
//	sinks:
//	  - recorder: {label: test}
//	    queue_size: 100
type SinkKind struct {
	// Config returns a pointer to a new zero value of the kind's settings:
	// a struct whose fields have yaml tags. Nil means the kind has no
	// settings (its block must be empty: "stdout: {}").
	Config func() any

	// Secrets are the kind's settings that are secrets ("password",
	// "token"): they are read from <key>_env (an environment variable) or
	// <key>_file (a file), never written in the configuration, and given
	// to Build in SinkEnv.Secrets.
	Secrets []string

	// Prepare, optional, completes the decoded settings in place with what
	// the file does not hold, before Validate and Build: the secrets
	// (SinkEnv.Secrets) and paths made relative to the configuration's
	// directory (SinkEnv.Path).
	Prepare func(cfg any, env SinkEnv)

	// Build makes the sink from the decoded settings (the value Config
	// returned, filled from the block; nil when Config is nil). It checks
	// and must not dial: connections are made by the sink's Connect or
	// first Write. The loader builds each sink once to check the
	// configuration (and closes it) and again for the gateway, each time
	// from a freshly decoded and prepared value. A *bridge.FieldError it
	// returns is reported at the line of its Path; other errors at the
	// line of the sink's block. On error the sink is ignored.
	Build func(cfg any, env SinkEnv) (bridge.Sink, error)

	// Describe says where the sink writes, for -check and the logs
	// ("mqtt tcp://broker:1883 topic ..."), without secrets. Optional: the
	// kind's name is used when nil.
	Describe func(cfg any, env SinkEnv) string
}

// SinkEnv is what a SinkKind's Build and Describe get besides the settings.
type SinkEnv struct {
	// Name is the sink's name (its name key, or its kind).
	Name string
	// Dir is the directory of the configuration file; relative paths in
	// the settings are relative to it (see Path).
	Dir string
	// Secrets holds the values of the kind's Secrets that the
	// configuration named, by key ("password").
	Secrets map[string]string
	// Stdout is where the stdout sink writes (BuildOptions.Stdout).
	Stdout io.Writer
	// Logger is the gateway's logger.
	Logger *slog.Logger
}

// Path resolves a path given in the configuration against the file's
// directory; absolute paths and "" are returned unchanged.
func (e SinkEnv) Path(p string) string { return relPath(e.Dir, p) }

var sinkRegistry struct {
	sync.RWMutex
	names []string
	kinds map[string]SinkKind
}

// RegisterSink makes a sink kind available to every configuration loaded
// afterwards under the key kind. The built-in kinds (stdout, file, mqtt,
// nats, kafka, influx, http) register themselves; registering a kind again
// replaces it. It panics when kind is not a lower-case word or Build is
// nil. RegisterSink is safe for concurrent use; call it from an init
// function or before Load.
func RegisterSink(kind string, k SinkKind) {
	if !sinkKindRE.MatchString(kind) {
		panic(fmt.Sprintf("gateway: RegisterSink: %q is not a lower-case key", kind))
	}
	if k.Build == nil {
		panic(fmt.Sprintf("gateway: RegisterSink(%q): Build is nil", kind))
	}
	if _, common := sinkCommonKeys[kind]; common {
		panic(fmt.Sprintf("gateway: RegisterSink: %q is a key every sink takes", kind))
	}
	sinkRegistry.Lock()
	defer sinkRegistry.Unlock()
	if sinkRegistry.kinds == nil {
		sinkRegistry.kinds = make(map[string]SinkKind)
	}
	if _, ok := sinkRegistry.kinds[kind]; !ok {
		sinkRegistry.names = append(sinkRegistry.names, kind)
	}
	sinkRegistry.kinds[kind] = k
}

// SinkKinds returns the names of the registered sink kinds, in the order
// they were registered.
func SinkKinds() []string {
	sinkRegistry.RLock()
	defer sinkRegistry.RUnlock()
	return slices.Clone(sinkRegistry.names)
}

func lookupSink(kind string) (SinkKind, bool) {
	sinkRegistry.RLock()
	defer sinkRegistry.RUnlock()
	k, ok := sinkRegistry.kinds[kind]
	return k, ok
}

// configType is the settings type of a kind, for telling its keys from the
// common ones.
func (k SinkKind) configType() reflect.Type {
	if k.Config == nil {
		return reflect.TypeFor[struct{}]()
	}
	return reflect.TypeOf(k.Config()).Elem()
}

func (k SinkKind) isSecret(key string) bool {
	return slices.ContainsFunc(k.Secrets, func(s string) bool { return key == s || key == s+"_env" || key == s+"_file" })
}

var sinkCommonKeys, _ = fieldsOf(reflect.TypeFor[sinkItem]())

var sinkKindRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func init() {
	RegisterSink("stdout", SinkKind{
		Build: func(_ any, env SinkEnv) (bridge.Sink, error) {
			w := env.Stdout
			if w == nil {
				w = os.Stdout
			}
			return bridge.NewJSONLines(w), nil
		},
		Describe: func(any, SinkEnv) string { return "stdout (JSON lines)" },
	})
	RegisterSink("file", SinkKind{
		Config: func() any { return new(fileSinkConfig) },
		Build: func(cfg any, env SinkEnv) (bridge.Sink, error) {
			c := cfg.(*fileSinkConfig)
			if c.Path == "" {
				return nil, &bridge.FieldError{Path: "path", Msg: "required: the file to append JSON lines to"}
			}
			path := env.Path(c.Path)
			// The file is created when the sink first writes; its
			// directory must be there already.
			dir := filepath.Dir(path)
			if st, err := os.Stat(dir); err != nil {
				return nil, bridge.FieldErrorf("path", "directory %s does not exist", dir)
			} else if !st.IsDir() {
				return nil, bridge.FieldErrorf("path", "%s is not a directory", dir)
			}
			return &lazyFile{path: path}, nil
		},
		Describe: func(cfg any, env SinkEnv) string {
			return "file " + env.Path(cfg.(*fileSinkConfig).Path) + " (JSON lines)"
		},
	})
	RegisterSink("mqtt", SinkKind{
		Config:  func() any { return new(mqtt.Config) },
		Secrets: []string{"password"},
		Prepare: func(cfg any, env SinkEnv) {
			c := cfg.(*mqtt.Config)
			c.Password = env.Secrets["password"]
			c.CAFile, c.CertFile, c.KeyFile = env.Path(c.CAFile), env.Path(c.CertFile), env.Path(c.KeyFile)
		},
		Build: func(cfg any, _ SinkEnv) (bridge.Sink, error) { return mqtt.New(*cfg.(*mqtt.Config)) },
		Describe: func(cfg any, _ SinkEnv) string {
			c := cfg.(*mqtt.Config)
			return fmt.Sprintf("mqtt %s topic %q qos %d", redact.URL(c.URL), orDefault(c.Topic, mqtt.DefaultTopic), c.QoS)
		},
	})
	RegisterSink("nats", SinkKind{
		Config:  func() any { return new(nats.Config) },
		Secrets: []string{"password", "token"},
		Prepare: func(cfg any, env SinkEnv) {
			c := cfg.(*nats.Config)
			c.Password, c.Token = env.Secrets["password"], env.Secrets["token"]
			c.CAFile, c.CertFile, c.KeyFile, c.CredsFile = env.Path(c.CAFile), env.Path(c.CertFile), env.Path(c.KeyFile), env.Path(c.CredsFile)
		},
		Build: func(cfg any, _ SinkEnv) (bridge.Sink, error) { return nats.New(*cfg.(*nats.Config)) },
		Describe: func(cfg any, _ SinkEnv) string {
			c := cfg.(*nats.Config)
			js := ""
			if c.JetStream {
				js = " jetstream"
			}
			return fmt.Sprintf("nats %s subject %q%s", redact.URL(c.URL), orDefault(c.Subject, nats.DefaultSubject), js)
		},
	})
	RegisterSink("kafka", SinkKind{
		Config:  func() any { return new(kafka.Config) },
		Secrets: []string{"password"},
		Prepare: func(cfg any, env SinkEnv) {
			c := cfg.(*kafka.Config)
			c.Password = env.Secrets["password"]
			c.CAFile, c.CertFile, c.KeyFile = env.Path(c.CAFile), env.Path(c.CertFile), env.Path(c.KeyFile)
		},
		Build: func(cfg any, _ SinkEnv) (bridge.Sink, error) { return kafka.New(*cfg.(*kafka.Config)) },
		Describe: func(cfg any, _ SinkEnv) string {
			c := cfg.(*kafka.Config)
			brokers := make([]string, len(c.Brokers))
			for i, b := range c.Brokers {
				brokers[i] = redact.URL(b)
			}
			return fmt.Sprintf("kafka %s topic %q", strings.Join(brokers, ","), orDefault(c.Topic, "m2m"))
		},
	})
	RegisterSink("influx", SinkKind{
		Config:  func() any { return new(influx.Config) },
		Secrets: []string{"password", "token"},
		Prepare: func(cfg any, env SinkEnv) {
			c := cfg.(*influx.Config)
			c.Password, c.Token = env.Secrets["password"], env.Secrets["token"]
			c.CAFile, c.CertFile, c.KeyFile = env.Path(c.CAFile), env.Path(c.CertFile), env.Path(c.KeyFile)
		},
		Build: func(cfg any, _ SinkEnv) (bridge.Sink, error) { return influx.New(*cfg.(*influx.Config)) },
		Describe: func(cfg any, _ SinkEnv) string {
			c := cfg.(*influx.Config)
			return fmt.Sprintf("influx %s %s%s", redact.URL(c.URL), c.Database, c.Bucket)
		},
	})
	RegisterSink("http", SinkKind{
		Config:  func() any { return new(httpsink.Config) },
		Secrets: []string{"password", "token"},
		Prepare: func(cfg any, env SinkEnv) {
			c := cfg.(*httpsink.Config)
			c.Password, c.Token = env.Secrets["password"], env.Secrets["token"]
			c.CAFile, c.CertFile, c.KeyFile = env.Path(c.CAFile), env.Path(c.CertFile), env.Path(c.KeyFile)
		},
		Build:    func(cfg any, _ SinkEnv) (bridge.Sink, error) { return httpsink.New(*cfg.(*httpsink.Config)) },
		Describe: func(cfg any, _ SinkEnv) string { return "http " + redact.URL(cfg.(*httpsink.Config).URL) },
	})
}
