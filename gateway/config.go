package gateway

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/spool"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/sunspec"
)

// fileConfig is the gateway's YAML file (DESIGN.md, "The gateway
// configuration"). Its values are the library's own configuration types,
// which decode their enums and sizes and validate themselves; the gateway
// adds what concerns the file as a whole. Sinks and the opcua block are
// kept as nodes and decoded by hand, because their keys depend on the sink
// kind and on the device.
type fileConfig struct {
	Devices []deviceConfig `yaml:"devices"`
	Sinks   []yaml.Node    `yaml:"sinks"`
	// Commands are the sources of write commands (commands.go).
	Commands []yaml.Node    `yaml:"commands"`
	Spool    *spool.Options `yaml:"spool"`
	Health   healthConfig   `yaml:"health"`
	Writes   writesConfig   `yaml:"writes"`
	Shutdown shutdownConfig `yaml:"shutdown"`
}

type deviceConfig struct {
	Name     string        `yaml:"name"`
	Interval time.Duration `yaml:"interval"`
	Modbus   *modbusBlock  `yaml:"modbus"`
	OPCUA    *yaml.Node    `yaml:"opcua"`
	Profile  string        `yaml:"profile"`
	Points   []pointConfig `yaml:"points"` // modbus.Point, with report (report.go)
	Nodes    []nodeConfig  `yaml:"nodes"`  // opcua.Node, with report
	// Sunspec, on a Modbus device, discovers its SunSpec model chain and
	// reads its points (sunspec.Config, checked by its Validate; sunspec.go).
	Sunspec *sunspec.Config `yaml:"sunspec"`
	// Inbox, when set, gives the device a bounded inbox of its own in the
	// bridge (bridge.SourceOptions, checked by its Validate): queue_size
	// samples, overflow block or drop_oldest. Without it a Modbus device
	// has none (its poller waits for the sinks) and an OPC UA device one of
	// opcuaInbox samples per node, drop_oldest.
	Inbox *bridge.SourceOptions `yaml:"inbox"`
	// Report is report by exception for every point of the device
	// (bridge.Report: deadband, deadband_percent, range, on_change,
	// heartbeat), checked by its Validate.
	Report *bridge.Report `yaml:"report"`
}

// modbusBlock is a device's modbus block: the link's settings
// (modbus.ClientConfig) and, as the file has always had them there, the
// device's unit, limits and busy retries, which modbus.DeviceConfig holds
// beside its connection (see modbusDevicePath).
type modbusBlock struct {
	modbus.ClientConfig `yaml:",inline"`
	// Unit is given to modbus.DeviceConfig as written: 0 is unit 0 on
	// Modbus TCP, and refused on RTU links. Without the key the unit is
	// 1, as it has always been: unit 0 through a TCP-to-RTU gateway
	// would be a broadcast on its serial line.
	Unit           *uint8         `yaml:"unit"`
	Limits         *modbus.Limits `yaml:"limits"`
	MaxBusyRetries int            `yaml:"max_busy_retries"`
	BusyRetryDelay time.Duration  `yaml:"busy_retry_delay"`
}

// sinkItem holds the keys every sink item takes beside its kind key: its
// name and how the bridge feeds it.
type sinkItem struct {
	Name               string `yaml:"name"`
	bridge.SinkOptions `yaml:",inline"`
}

type fileSinkConfig struct {
	Path string `yaml:"path"`
}

type healthConfig struct {
	// MaxFailing is how long a device or sink may fail before /healthz
	// answers 503. Default 1m; 10ms to 24h.
	MaxFailing time.Duration `yaml:"max_failing"`
}

// Validate checks the health settings' ranges.
func (h healthConfig) Validate() error {
	return checkDuration("max_failing", h.MaxFailing, 10*time.Millisecond, 24*time.Hour)
}

// writesConfig bounds the writes that commands ask for (bridge.Options).
type writesConfig struct {
	// MinInterval is the least time between two writes of one point that
	// reach the device. Default 100ms; 1ms to 1h.
	MinInterval time.Duration `yaml:"min_interval"`
	// Timeout bounds a write from its arrival to its read-back, when the
	// command source sets none. Default 5s; 100ms to 10m.
	Timeout time.Duration `yaml:"timeout"`
}

// Validate checks the write settings' ranges.
func (w writesConfig) Validate() error {
	return errors.Join(
		checkDuration("min_interval", w.MinInterval, time.Millisecond, time.Hour),
		checkDuration("timeout", w.Timeout, 100*time.Millisecond, 10*time.Minute))
}

type shutdownConfig struct {
	// DrainTimeout is the time the sinks get to deliver what is queued
	// after a stop (bridge.Options.DrainTimeout). Default 10s; 10ms to 1h.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// CloseTimeout bounds each sink's Close. Default 5s; 10ms to 10m.
	CloseTimeout time.Duration `yaml:"close_timeout"`
}

// Validate checks the shutdown settings' ranges.
func (s shutdownConfig) Validate() error {
	return errors.Join(
		checkDuration("drain_timeout", s.DrainTimeout, 10*time.Millisecond, time.Hour),
		checkDuration("close_timeout", s.CloseTimeout, 10*time.Millisecond, 10*time.Minute))
}

// checkDuration returns a field error at path when d is set (not 0, the
// default) and outside lo to hi.
func checkDuration(path string, d, lo, hi time.Duration) error {
	if d != 0 && (d < lo || d > hi) {
		return bridge.FieldErrorf(path, "%v is out of range: want %v to %v (or leave it out for the default)", d, lo, hi)
	}
	return nil
}

// decodeFile decodes the configuration data of the file name strictly. It
// returns the decoder, which holds the errors found and the line of every
// key path, and no configuration when the data is not YAML at all.
func decodeFile(name string, data []byte) (*fileConfig, *decoder) {
	d := newDecoder(name)
	var cfg fileConfig
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		d.yamlSyntax(err, data)
		return nil, d
	}
	doc := resolve(&root)
	if doc == nil || isNull(doc) || (doc.Kind == 0 && len(doc.Content) == 0) {
		d.errorf(0, "", "the file is empty: want devices and sinks")
		return nil, d
	}
	d.decode(doc, "", reflect.ValueOf(&cfg).Elem())
	return &cfg, d
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlScannerErrors are the problems yaml.v3 finds while reading tokens;
// the others it finds while parsing their structure.
var yamlScannerErrors = []string{
	"found character that cannot start any token",
	"found a tab character",
	"mapping values are not allowed",
	"could not find expected ':'",
	"found unexpected end of stream",
	"found unknown escape character",
	"found unexpected document indicator",
	"block sequence entries are not allowed",
	"did not find expected comment or line break",
	"did not find expected whitespace or line break",
	"did not find expected alphabetic or numeric character",
	"found invalid Unicode character",
	"control characters are not allowed",
	"invalid leading UTF-8 octet",
	"incomplete UTF-8 octet sequence",
	"invalid trailing UTF-8 octet",
	"found unexpected end of stream",
}

// yamlSyntax reports a YAML syntax error with its line. yaml.v3 gives the
// 0-based line of where the construct began for a parsing problem (one
// line early), and for a tab the line of the enclosing mapping: the line is
// corrected here, and a tab is reported on its own line.
func (d *decoder) yamlSyntax(err error, data []byte) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	m := yamlLineRE.FindStringSubmatch(err.Error())
	if m == nil {
		d.errorf(0, "", "YAML syntax: %s", msg)
		return
	}
	line, _ := strconv.Atoi(m[1])
	msg = m[2]
	scanner := false
	for _, s := range yamlScannerErrors {
		if strings.Contains(msg, s) {
			scanner = true
		}
	}
	if !scanner {
		line++
	}
	if strings.Contains(msg, "tab character") || strings.Contains(msg, "cannot start any token") {
		lines := strings.Split(string(data), "\n")
		for i := max(line-1, 0); i < len(lines); i++ {
			indent := lines[i][:len(lines[i])-len(strings.TrimLeft(lines[i], " \t"))]
			if strings.Contains(indent, "\t") {
				d.errorf(i+1, "", "YAML syntax: a tab in the indentation: indent with spaces")
				return
			}
		}
	}
	switch {
	case strings.Contains(msg, "expected ',' or '}'"):
		msg = "this { is not closed (" + msg + ")"
	case strings.Contains(msg, "expected ',' or ']'"):
		msg = "this [ is not closed (" + msg + ")"
	}
	d.errorf(line, "", "YAML syntax: %s", msg)
}

// relPath resolves a path given in the configuration file against the
// file's directory; absolute paths and "" are kept.
func relPath(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// splitNode splits a mapping node into the pairs whose keys are in keep and
// the others, as two new mapping nodes.
func splitNode(n *yaml.Node, keep func(key string) bool) (in, out *yaml.Node) {
	in = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	out = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	for i := 0; i+1 < len(n.Content); i += 2 {
		dst := out
		if keep(n.Content[i].Value) {
			dst = in
		}
		dst.Content = append(dst.Content, n.Content[i], n.Content[i+1])
	}
	return in, out
}

// secrets takes the secret keys of a sink block out of n and resolves them
// from the environment or from files. It returns the values by key
// ("password") and the node without those keys. A secret written in the
// file itself is an error: configuration files get copied, printed and
// committed.
func (d *decoder) secrets(n *yaml.Node, path, dir string, keys []string) (map[string]string, *yaml.Node) {
	isSecret := func(k string) bool {
		for _, s := range keys {
			if k == s || k == s+"_env" || k == s+"_file" {
				return true
			}
		}
		return false
	}
	sec, rest := splitNode(n, isSecret)
	vals := make(map[string]string)
	given := make(map[string]string)
	for i := 0; i+1 < len(sec.Content); i += 2 {
		k, v := sec.Content[i], resolve(sec.Content[i+1])
		kp := join(path, k.Value)
		d.lines[kp] = v.Line
		base, how := k.Value, ""
		if b, ok := strings.CutSuffix(k.Value, "_env"); ok {
			base, how = b, "env"
		} else if b, ok := strings.CutSuffix(k.Value, "_file"); ok {
			base, how = b, "file"
		}
		if how == "" {
			d.errorf(k.Line, kp, "secrets are not written in the configuration: name an environment variable with %s_env or a file with %s_file", base, base)
			continue
		}
		if prev, dup := given[base]; dup {
			d.errorf(k.Line, kp, "give one of %s_env and %s_file (%s is set too)", base, base, prev)
			continue
		}
		given[base] = k.Value
		if v.Kind != yaml.ScalarNode || isNull(v) || v.Value == "" {
			d.errorf(v.Line, kp, "want the name of %s, not %s", map[string]string{"env": "an environment variable", "file": "a file"}[how], kindName(v))
			continue
		}
		switch how {
		case "env":
			s, ok := os.LookupEnv(v.Value)
			if !ok {
				d.errorf(v.Line, kp, "environment variable %s is not set", v.Value)
				continue
			}
			if s == "" {
				// An empty secret fails at the first connection, as a
				// rejected login; say so now.
				d.errorf(v.Line, kp, "environment variable %s is set but empty", v.Value)
				continue
			}
			vals[base] = s
		case "file":
			b, err := readRegular(relPath(dir, v.Value), 64<<10)
			if err != nil {
				// The error names the file, never its content.
				d.errorf(v.Line, kp, "%v", err)
				continue
			}
			sv := strings.TrimRight(string(b), "\r\n")
			if sv == "" {
				d.errorf(v.Line, kp, "%s is empty", relPath(dir, v.Value))
				continue
			}
			vals[base] = sv
		}
	}
	return vals, rest
}

// readRegular reads a regular file of at most limit bytes: a secret or a
// profile named in the configuration must not be a device or a pipe that
// never ends.
func readRegular(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return os.ReadFile(path)
}
