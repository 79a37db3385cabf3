package gateway

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/opcua"
)

// fileConfig is the gateway's YAML file (DESIGN.md, "The gateway
// configuration"). Sinks and the opcua block are kept as nodes and decoded
// by hand, because their keys depend on the sink type and on the device.
type fileConfig struct {
	Devices  []deviceConfig `yaml:"devices"`
	Sinks    []yaml.Node    `yaml:"sinks"`
	Spool    *spoolConfig   `yaml:"spool"`
	Health   healthConfig   `yaml:"health"`
	Shutdown shutdownConfig `yaml:"shutdown"`
}

type deviceConfig struct {
	Name     string         `yaml:"name"`
	Interval time.Duration  `yaml:"interval"`
	Modbus   *modbusConfig  `yaml:"modbus"`
	OPCUA    *yaml.Node     `yaml:"opcua"`
	Profile  string         `yaml:"profile"`
	Points   []modbus.Point `yaml:"points"`
	Nodes    []opcua.Node   `yaml:"nodes"`
}

type modbusConfig struct {
	URL            string         `yaml:"url"`
	Unit           uint8          `yaml:"unit"`
	Timeout        time.Duration  `yaml:"timeout"`
	Speed          int            `yaml:"speed"`
	Parity         string         `yaml:"parity"`
	DataBits       int            `yaml:"data_bits"`
	StopBits       int            `yaml:"stop_bits"`
	CertFile       string         `yaml:"cert_file"`
	KeyFile        string         `yaml:"key_file"`
	CAFile         string         `yaml:"ca_file"`
	MinBackoff     time.Duration  `yaml:"min_backoff"`
	MaxBackoff     time.Duration  `yaml:"max_backoff"`
	MaxBusyRetries int            `yaml:"max_busy_retries"`
	Limits         *modbus.Limits `yaml:"limits"`
}

// sinkCommon holds the keys every sink item takes beside its type key.
type sinkCommon struct {
	Name      string        `yaml:"name"`
	QueueSize int           `yaml:"queue_size"`
	BatchSize int           `yaml:"batch_size"`
	Linger    time.Duration `yaml:"linger"`
	Overflow  string        `yaml:"overflow"`
	Retry     retryConfig   `yaml:"retry"`
}

type retryConfig struct {
	Initial     time.Duration `yaml:"initial"`
	Max         time.Duration `yaml:"max"`
	Multiplier  float64       `yaml:"multiplier"`
	Jitter      float64       `yaml:"jitter"`
	MaxAttempts int           `yaml:"max_attempts"`
}

type stdoutConfig struct{}

type fileSinkConfig struct {
	Path string `yaml:"path"`
}

type spoolConfig struct {
	Dir          string        `yaml:"dir"`
	MaxBytes     byteSize      `yaml:"max_bytes"`
	SegmentBytes byteSize      `yaml:"segment_bytes"`
	Full         string        `yaml:"full"`
	Sync         string        `yaml:"sync"`
	SyncInterval time.Duration `yaml:"sync_interval"`
}

type healthConfig struct {
	// MaxFailing is how long a device or sink may fail before /healthz
	// answers 503. Default 1m.
	MaxFailing time.Duration `yaml:"max_failing"`
}

type shutdownConfig struct {
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	CloseTimeout time.Duration `yaml:"close_timeout"`
}

// byteSize is a size in bytes written as an integer or with a unit: "1GiB",
// "512MB", "64k".
type byteSize int64

var byteSizeType = reflect.TypeFor[byteSize]()

var byteSizeRE = regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$`)

var byteUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1e3, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1e6, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1e9, "gib": 1 << 30,
	"t": 1 << 40, "tb": 1e12, "tib": 1 << 40,
}

func parseByteSize(s string) (byteSize, error) {
	m := byteSizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a size (write 1GiB, 512MiB, 100MB or a number of bytes)", s)
	}
	f, err := strconv.ParseFloat(m[1], 64)
	mult, ok := byteUnits[strings.ToLower(m[2])]
	if err != nil || !ok {
		return 0, fmt.Errorf("%q is not a size (write 1GiB, 512MiB, 100MB or a number of bytes)", s)
	}
	v := f * mult
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return byteSize(v), nil
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
			vals[base] = s
		case "file":
			b, err := readRegular(relPath(dir, v.Value), 64<<10)
			if err != nil {
				// The error names the file, never its content.
				d.errorf(v.Line, kp, "%v", err)
				continue
			}
			vals[base] = strings.TrimRight(string(b), "\r\n")
		}
	}
	return vals, rest
}

// locateMsgs reports the errors of a constructor (a sink's New, opcua.New)
// at the line of the key each message begins with ("url: ...",
// "qos 3 ...", "nodes[1] (temp): ..."), or at base when it begins with
// none of the block's keys. prefixes are trimmed from each message first.
func (d *decoder) locateMsgs(err error, base string, block *yaml.Node, prefixes ...string) {
	for _, e := range flatten(err) {
		msg := e.Error()
		for changed := true; changed; {
			changed = false
			for _, p := range prefixes {
				if s, ok := strings.CutPrefix(msg, p); ok {
					msg, changed = s, true
				}
			}
		}
		path := base
		if m := leadKeyRE.FindStringSubmatch(msg); m != nil {
			key, idx := m[1], m[2]
			if _, ok := d.lines[join(parentPath(base), key)+idx]; idx != "" && ok {
				// A list of the enclosing item, such as an OPC UA
				// device's nodes.
				path = join(parentPath(base), key)
			} else if (block != nil && hasKey(block, key)) || (idx == "" && strings.HasPrefix(msg[len(m[0]):], ": ")) {
				// A key of the block, present or missing ("url:
				// missing").
				path = join(base, key)
			}
			if path != base {
				path += idx
				// "url: bad" loses the key the path now names; "qos 3:
				// want 0, 1 or 2" reads better with it.
				if rest := msg[len(m[0]):]; strings.HasPrefix(rest, ":") || idx != "" {
					msg = strings.TrimSpace(strings.TrimPrefix(rest, ":"))
				}
				if idx != "" {
					// "nodes[0] (x): node: required" names a field of
					// the item.
					if f := leadFieldRE.FindStringSubmatch(msg); f != nil {
						path = join(path, f[1])
						msg = msg[len(f[0]):]
					}
				}
			}
		}
		d.errAt(path, "%s", msg)
	}
}

var leadFieldRE = regexp.MustCompile(`^([a-z][a-z0-9_]*): `)

var leadKeyRE = regexp.MustCompile(`^([a-z][a-z0-9_]*)(\[\d+\])?(?: \([^)]*\))?`)

func hasKey(n *yaml.Node, key string) bool {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

// flatten returns the leaves of a tree of joined and wrapped errors,
// keeping the wrapping text of single-wrapped errors.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	if inner, ok := err.(interface{ Unwrap() error }); ok {
		if j, ok := inner.Unwrap().(interface{ Unwrap() []error }); ok {
			// A wrapper around a join ("opcua: source x: invalid config:
			// <join>"): its leaves carry the detail.
			return flatten(j.(error))
		}
	}
	return []error{err}
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
