package gateway

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/spool"
	"github.com/m2mbridge/m2mbridge/internal/cfgcheck"
	"github.com/m2mbridge/m2mbridge/internal/redact"
)

// ConfigError is one problem of a configuration: the file, the line of
// the offending value and its key path ("devices[0].points[2].type").
// Parse and Load return every problem of a file, joined.
type ConfigError struct {
	File string
	Line int    // 0 when the problem concerns no one line
	Path string // "" for the file as a whole
	Msg  string
}

// Error returns "file:line: path: msg".
func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// decoder turns YAML nodes into Go values strictly: unknown keys, duplicate
// keys and values of the wrong type are errors naming the line and the key
// path, and decoding goes on after an error so that every problem of a file
// is reported at once. It remembers the line of every path it decoded, so
// that later checks (point validation, sink constructors) can point at the
// line of the field they complain about.
//
// yaml.v3's own decoder stops at the first type error of a kind and cannot
// say which key path a line belongs to; this one walks the node tree itself.
type decoder struct {
	steps int
	file  string
	errs  []*ConfigError
	warns []*ConfigError // problems that do not stop the configuration
	lines map[string]int
	// hidden are string values of the file that hold a secret in URL
	// form, each with its redaction (noteURL).
	hidden [][2]string

	// checking is set once the file is decoded: the errors that follow
	// come from checks of the decoded values. A check does not repeat a
	// decoding error: its errors at or under the path of one (covered)
	// are dropped, so that "interval: 5" is reported once; and the checks
	// of the key that an unknown key probably meant ("adress": address)
	// are dropped too, as they would see a value the file did not give.
	// Every other check runs.
	checking bool
	scopes   []string
}

// maxSteps bounds the values one file may decode to.
const maxSteps = 1_000_000

func newDecoder(file string) *decoder {
	return &decoder{file: file, lines: make(map[string]int)}
}

func (d *decoder) errorf(line int, path, format string, args ...any) {
	if d.checking && d.covered(path) {
		return
	}
	if !d.checking {
		d.scopes = append(d.scopes, path)
	}
	d.errs = append(d.errs, &ConfigError{File: d.file, Line: line, Path: path, Msg: d.redact(fmt.Sprintf(format, args...))})
}

// noteURL remembers a string value of the file that holds a secret in URL
// form (a password in its user information, a query value), so that no
// message quotes it: the libraries' messages print URLs redacted, and this
// makes sure of it for any message the gateway prints.
func (d *decoder) noteURL(s string) {
	if r := redact.URL(s); r != s && !slices.ContainsFunc(d.hidden, func(h [2]string) bool { return h[0] == s }) {
		d.hidden = append(d.hidden, [2]string{s, r})
		// Longest first, so that a value holding another is replaced
		// whole.
		slices.SortStableFunc(d.hidden, func(a, b [2]string) int { return len(b[0]) - len(a[0]) })
	}
}

// redact replaces in msg every value noted by noteURL by its redacted form.
func (d *decoder) redact(msg string) string {
	for _, h := range d.hidden {
		msg = strings.ReplaceAll(msg, h[0], h[1])
	}
	return msg
}

// errAt reports a problem at the line recorded for path, or at the closest
// recorded ancestor of path.
func (d *decoder) errAt(path, format string, args ...any) {
	d.errorf(d.lineOf(path), path, format, args...)
}

// lineOf returns the line recorded for path or its nearest ancestor.
func (d *decoder) lineOf(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := d.lines[p]; ok {
			return l
		}
	}
	return 0
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// covered reports whether path is at or under the scope of a decoding
// error.
func (d *decoder) covered(path string) bool {
	for _, s := range d.scopes {
		if under(path, s) {
			return true
		}
	}
	return false
}

// under reports whether path is p or a path below it.
func under(path, p string) bool {
	return path == p || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[")
}

// fieldErrors reports the *bridge.FieldError leaves of err, returned by a
// Validate method of a value at path, each at the line of its own key
// path. Other errors in err are reported at path.
func (d *decoder) fieldErrors(path string, err error) {
	for _, fe := range bridge.FieldErrors(err) {
		d.errAt(bridge.JoinPath(path, fe.Path), "%s", fieldMsg(fe))
	}
}

// warnAt records a warning (a deprecated setting: accepted, ignored) at the
// line recorded for path.
func (d *decoder) warnAt(path, format string, args ...any) {
	d.warns = append(d.warns, &ConfigError{File: d.file, Line: d.lineOf(path), Path: path, Msg: d.redact(fmt.Sprintf(format, args...))})
}

// hasErrUnder reports whether an error was reported at path or below it.
func (d *decoder) hasErrUnder(path string) bool {
	for _, e := range d.errs {
		if under(e.Path, path) {
			return true
		}
	}
	return false
}

// err returns every error reported so far, joined, or nil.
func (d *decoder) err() error {
	slices.SortStableFunc(d.errs, func(a, b *ConfigError) int { return a.Line - b.Line })
	errs := make([]error, len(d.errs))
	for i, e := range d.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

var (
	durationType    = reflect.TypeFor[time.Duration]()
	yamlNodeType    = reflect.TypeFor[yaml.Node]()
	byteSizeType    = reflect.TypeFor[spool.ByteSize]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// isSizeField reports whether the field at index path fi of struct type t
// is one of sizeFields.
func isSizeField(t reflect.Type, fi []int) bool {
	for _, j := range fi[:len(fi)-1] {
		t = t.Field(j).Type
	}
	f := t.Field(fi[len(fi)-1])
	return f.Type.Kind() == reflect.Int64 && f.Type != byteSizeType && sizeFields[t][f.Name]
}

// sizeFields are int64 fields of library types that hold a number of bytes
// and are written in files as a [spool.ByteSize] ("1GiB"): the decoder reads
// them as one. A field whose type is spool.ByteSize itself needs no entry.
var sizeFields = map[reflect.Type]map[string]bool{
	reflect.TypeFor[spool.Options](): {"MaxBytes": true, "SegmentBytes": true},
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "something else"
}

// resolve follows aliases, unwraps a document node and expands merge keys
// ("<<: *defaults") of a mapping.
func resolve(n *yaml.Node) *yaml.Node {
	for depth := 0; n != nil && (n.Kind == yaml.AliasNode || n.Kind == yaml.DocumentNode); depth++ {
		if depth > 100 {
			return nil
		}
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		} else if len(n.Content) > 0 {
			n = n.Content[0]
		} else {
			return nil
		}
	}
	if n != nil && n.Kind == yaml.MappingNode {
		n = expandMerge(n, 0)
	}
	return n
}

// expandMerge returns the mapping n with its merge keys replaced by the
// pairs of the mappings they name, as YAML 1.1's merge key type says: keys
// written in n win over merged ones, and of several merged mappings the
// first wins. n itself is not changed.
func expandMerge(n *yaml.Node, depth int) *yaml.Node {
	has := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Tag == "!!merge" {
			has = true
		}
	}
	if !has || depth > 20 {
		return n
	}
	out := *n
	out.Content = nil
	own := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Tag != "!!merge" {
			out.Content = append(out.Content, n.Content[i], n.Content[i+1])
			own[n.Content[i].Value] = true
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Tag != "!!merge" {
			continue
		}
		v := n.Content[i+1]
		for v != nil && v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		var srcs []*yaml.Node
		switch {
		case v == nil:
		case v.Kind == yaml.MappingNode:
			srcs = []*yaml.Node{v}
		case v.Kind == yaml.SequenceNode:
			for _, c := range v.Content {
				for c != nil && c.Kind == yaml.AliasNode {
					c = c.Alias
				}
				if c != nil && c.Kind == yaml.MappingNode {
					srcs = append(srcs, c)
				}
			}
		}
		for _, src := range srcs {
			src = expandMerge(src, depth+1)
			for k := 0; k+1 < len(src.Content); k += 2 {
				if key := src.Content[k].Value; !own[key] {
					own[key] = true
					out.Content = append(out.Content, src.Content[k], src.Content[k+1])
				}
			}
		}
	}
	return &out
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// decode stores node n into v, whose key path is path.
func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	n = resolve(n)
	if n == nil {
		return
	}
	// Aliases can make a small file expand enormously ("billion laughs");
	// no real configuration has this many values.
	if d.steps++; d.steps > maxSteps {
		if d.steps == maxSteps+1 {
			d.errorf(n.Line, path, "the file expands to more than %d values (through aliases?)", maxSteps)
		}
		return
	}
	d.lines[path] = n.Line
	t := v.Type()
	switch t {
	case yamlNodeType:
		v.Set(reflect.ValueOf(*n))
		return
	case durationType:
		dur, ok := d.duration(n, path)
		if ok {
			v.SetInt(int64(dur))
		}
		return
	}
	if t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(textUnmarshaler) {
		// The owner of the type parses it: enums (table, parity,
		// overflow) and sizes.
		d.text(n, path, v.Addr().Interface().(encoding.TextUnmarshaler))
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.decode(n, path, v.Elem())
	case reflect.Struct:
		d.decodeStruct(n, path, v)
	case reflect.Slice:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.errorf(n.Line, path, "want a list, not %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, index(path, i), s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.MappingNode || t.Key().Kind() != reflect.String {
			d.errorf(n.Line, path, "want a mapping, not %s", kindName(n))
			return
		}
		m := reflect.MakeMap(t)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if seen[k.Value] {
				d.errorf(k.Line, join(path, k.Value), "duplicate key")
				continue
			}
			seen[k.Value] = true
			e := reflect.New(t.Elem()).Elem()
			d.decode(n.Content[i+1], join(path, k.Value), e)
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(t.Key()), e)
		}
		v.Set(m)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || isNull(n) {
			d.errorf(n.Line, path, "want a string, not %s", kindName(n))
			return
		}
		d.noteURL(n.Value)
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || err != nil {
			d.errorf(n.Line, path, "want true or false, not %s", kindName(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			d.errorf(n.Line, path, "want an integer, not %s", kindName(n))
			return
		}
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if err != nil || v.OverflowInt(i) {
			lo, hi := -(int64(1) << (t.Bits() - 1)), int64(1)<<(t.Bits()-1)-1
			d.errorf(n.Line, path, "%s is out of range %d to %d", n.Value, lo, hi)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			d.errorf(n.Line, path, "want an integer, not %s", kindName(n))
			return
		}
		u, err := strconv.ParseUint(n.Value, 0, 64)
		if err != nil || v.OverflowUint(u) {
			hi := uint64(math.MaxUint64) >> (64 - t.Bits())
			d.errorf(n.Line, path, "%s is out of range 0 to %d", n.Value, hi)
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&f) != nil {
			d.errorf(n.Line, path, "want a number, not %s", kindName(n))
			return
		}
		v.SetFloat(f)
	default:
		d.errorf(n.Line, path, "cannot be set from YAML")
	}
}

// text decodes a scalar with the type's own UnmarshalText. Its error is
// reported as the type gives it: a *bridge.FieldError's message and hint.
func (d *decoder) text(n *yaml.Node, path string, u encoding.TextUnmarshaler) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		if _, ok := u.(*spool.ByteSize); ok {
			d.errorf(n.Line, path, "want a size such as 1GiB, not %s", kindName(n))
		} else {
			d.errorf(n.Line, path, "want a string, not %s", kindName(n))
		}
		return
	}
	d.noteURL(n.Value)
	err := u.UnmarshalText([]byte(n.Value))
	if err == nil {
		return
	}
	for _, fe := range bridge.FieldErrors(err) {
		d.errorf(n.Line, bridge.JoinPath(path, fe.Path), "%s", fieldMsg(fe))
	}
}

// duration parses a Go duration string ("500ms", "1m30s"). A bare number is
// an error: "interval: 5" would otherwise mean five nanoseconds.
func (d *decoder) duration(n *yaml.Node, path string) (time.Duration, bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.errorf(n.Line, path, "want a duration such as 500ms or 1m, not %s", kindName(n))
		return 0, false
	}
	if n.Tag == "!!int" || n.Tag == "!!float" {
		if n.Value == "0" {
			return 0, true
		}
		d.errorf(n.Line, path, "%s has no unit: write a duration such as %sms or %ss", n.Value, n.Value, n.Value)
		return 0, false
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.errorf(n.Line, path, "%q is not a duration (write 500ms, 10s, 1m30s)", n.Value)
		return 0, false
	}
	return dur, true
}

// fieldsOf maps the YAML keys of a struct type to field index paths (for
// reflect.Value.FieldByIndex). The keys of an embedded struct tagged
// `yaml:",inline"` are keys of the struct, as yaml.v3 has them.
func fieldsOf(t reflect.Type) (map[string][]int, []string) {
	m := make(map[string][]int)
	var keys []string
	var walk func(t reflect.Type, at []int)
	walk = func(t reflect.Type, at []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("yaml")
			name, opts, _ := strings.Cut(tag, ",")
			idx := append(slices.Clone(at), i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct && name == "" && slices.Contains(strings.Split(opts, ","), "inline") {
				walk(f.Type, idx)
				continue
			}
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			if _, dup := m[name]; dup {
				continue // the first field with the key wins
			}
			m[name] = idx
			keys = append(keys, name)
		}
	}
	walk(t, nil)
	slices.Sort(keys)
	return m, keys
}

func (d *decoder) decodeStruct(n *yaml.Node, path string, v reflect.Value) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "want a mapping, not %s", kindName(n))
		return
	}
	fields, keys := fieldsOf(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		kp := join(path, k.Value)
		if path == "" && strings.HasPrefix(k.Value, "x-") {
			// Top-level "x-" keys are the user's, as in Compose files:
			// a place for anchors (x-bus: &bus {...}) that devices merge
			// with "<<: *bus".
			continue
		}
		fi, ok := fields[k.Value]
		if !ok {
			d.errorf(k.Line, kp, "unknown key%s", unknownKeyHelp(k.Value, keys))
			if best := meant(k.Value, keys); best != "" && !d.checking {
				d.scopes = append(d.scopes, join(path, best))
			}
			continue
		}
		if seen[k.Value] {
			d.errorf(k.Line, kp, "duplicate key")
			continue
		}
		seen[k.Value] = true
		fv := v.FieldByIndex(fi)
		if isSizeField(v.Type(), fi) {
			var size spool.ByteSize
			d.decode(n.Content[i+1], kp, reflect.ValueOf(&size).Elem())
			fv.SetInt(int64(size))
			continue
		}
		d.decode(n.Content[i+1], kp, fv)
	}
}

// foreignKeys are keys that people bring from other tools' Modbus
// configurations (Telegraf's inputs.modbus above all), with what to write
// here instead.
var foreignKeys = map[string]string{
	"slave_id":          "the unit (slave) id is unit, in the device's modbus block: modbus: {url: tcp://10.0.0.7:502, unit: 1}",
	"slave":             "the unit (slave) id is unit, in the device's modbus block: modbus: {url: tcp://10.0.0.7:502, unit: 1}",
	"unit_id":           "the unit (slave) id is unit, in the device's modbus block: modbus: {url: tcp://10.0.0.7:502, unit: 1}",
	"controller":        "the device's address is url, in its modbus block: modbus: {url: tcp://10.0.0.7:502} (rtu:///dev/ttyUSB0 for a serial line)",
	"transmission_mode": "the transmission mode is the scheme of url: tcp://host:502, rtuovertcp://host:4001, rtu:///dev/ttyUSB0, udp://host:502",
	"baud_rate":         "the baud rate is speed, in the modbus block: modbus: {url: rtu:///dev/ttyUSB0, speed: 9600}",
	"busy_retries":      "write max_busy_retries in the modbus block",
	"holding_registers": "registers are points, each with its table: points: [{name: voltage, table: holding, address: 0, type: float32}]",
	"input_registers":   "registers are points, each with its table: points: [{name: voltage, table: input, address: 0, type: float32}]",
	"coils":             "coils are points with table: coil: points: [{name: relay, table: coil, address: 0, type: bool}]",
	"discrete_inputs":   "discrete inputs are points with table: discrete: points: [{name: door, table: discrete, address: 0, type: bool}]",
	"fields":            "registers are points: points: [{name: voltage, table: input, address: 0, type: float32}]",
	"data_type":         "the type of a point is type: float32 (bool, int16, uint16, int32, uint32, int64, uint64, float32, float64, string)",
	"register":          "the table of a point is table: holding (holding, input, coil or discrete)",
	"measurement":       "samples are named by the device's name and the point's name",
	"name_override":     "samples are named by the device's name and the point's name",
}

// foreignTargets are, for the keys of foreignKeys that have one, the key
// to write instead in the same block.
var foreignTargets = map[string]string{
	"controller": "url", "baud_rate": "speed", "busy_retries": "max_busy_retries",
	"data_type": "type", "register": "table",
}

// meant returns the key of keys that an unknown key probably meant, or "".
func meant(key string, keys []string) string {
	if t, ok := foreignTargets[strings.ToLower(key)]; ok && slices.Contains(keys, t) {
		return t
	}
	if _, ok := foreignKeys[strings.ToLower(key)]; ok {
		return ""
	}
	return nearest(key, keys)
}

// unknownKeyHelp returns help for an unknown key: what to write instead of
// a key from another tool, else a suggestion from keys.
func unknownKeyHelp(key string, keys []string) string {
	if h, ok := foreignKeys[strings.ToLower(key)]; ok {
		return "; " + h
	}
	return suggest(key, keys)
}

// suggest returns help for an unknown key: the nearest known key when
// there is a close one, else the list of known keys.
func suggest(key string, keys []string) string {
	best := nearest(key, keys)
	if best == "" {
		return " (want " + strings.Join(keys, ", ") + ")"
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// nearest returns the key of keys nearest to key, or "" when none is
// close (cfgcheck.Suggest, the rule every package's hints use).
func nearest(key string, keys []string) string { return cfgcheck.Suggest(key, keys...) }
