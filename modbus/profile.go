package modbus

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// LoadProfile reads a profile from YAML and validates it. name says where the
// YAML came from (a file name) and prefixes every error with the line of the
// offending field: "meter.yaml:12: point 3 "voltage_l1": bit: 16 outside
// 0-15". Decoding is strict: unknown keys and values of the wrong type are
// errors, all reported at once. When the YAML has no name key, the profile is
// named after name, without directory or extension.
//
// The YAML keys are those of [Profile], [Limits], [AddressRange] and [Point]:
//
//	name: my-meter
//	limits: {max_registers: 64, forbidden: [{table: holding, first: 100, last: 199}]}
//	points:
//	  - {name: voltage_l1, table: input, address: 0, type: float32, unit: V}
//	  - {name: energy, table: holding, address: 52, type: int32, word_order: low_first, scale: 0.1, unit: kWh, interval: 1m}
//
// A point's interval is a Go duration string: "500ms", "10s", "1m30s".
func LoadProfile(r io.Reader, name string) (*Profile, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("modbus: reading profile %s: %w", name, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlErr(name, err)
	}
	if len(root.Content) == 0 {
		return nil, fmt.Errorf("modbus: profile %s: empty document", name)
	}
	var p Profile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return nil, yamlErr(name, err)
	}
	if p.Name == "" {
		p.Name = strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))
	}
	if err := p.Validate(); err != nil {
		return nil, locate(err, name, root.Content[0])
	}
	return &p, nil
}

// LoadProfileFile reads and validates the YAML profile in the file at path;
// see [LoadProfile].
func LoadProfileFile(path string) (*Profile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("modbus: %w", err)
	}
	defer f.Close()
	return LoadProfile(f, path)
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlErr turns yaml.v3's errors ("yaml: line 5: ...", and a TypeError's list
// of "line 5: ...") into "modbus: name:5: ..." errors.
func yamlErr(name string, err error) error {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	errs := make([]error, 0, len(msgs))
	for _, m := range msgs {
		if s := yamlLine.FindStringSubmatch(m); s != nil {
			errs = append(errs, fmt.Errorf("modbus: %s:%s: %s", name, s[1], s[2]))
		} else {
			errs = append(errs, fmt.Errorf("modbus: %s: %s", name, strings.TrimPrefix(m, "yaml: ")))
		}
	}
	return errors.Join(errs...)
}

// locate fills in File and Line of the FieldErrors in err from the YAML
// document doc.
func locate(err error, file string, doc *yaml.Node) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var fe *FieldError
		if errors.As(e, &fe) {
			fe.File = file
			fe.Line = lineOf(doc, fe)
		}
	}
	return errors.Join(errs...)
}

// lineOf finds the line of fe's field in doc: the value of the key, or the
// closest enclosing node when the key is absent.
func lineOf(doc *yaml.Node, fe *FieldError) int {
	n := doc
	var parts []string
	if fe.Index >= 0 {
		parts = []string{"points", "[" + strconv.Itoa(fe.Index) + "]", fe.Field}
	} else {
		for _, p := range strings.Split(fe.Field, ".") {
			if i := strings.IndexByte(p, '['); i > 0 {
				parts = append(parts, p[:i], p[i:])
			} else {
				parts = append(parts, p)
			}
		}
	}
	line := n.Line
	for _, part := range parts {
		var next *yaml.Node
		switch {
		case strings.HasPrefix(part, "["):
			i, _ := strconv.Atoi(strings.Trim(part, "[]"))
			if n.Kind == yaml.SequenceNode && i < len(n.Content) {
				next = n.Content[i]
			}
		case n.Kind == yaml.MappingNode:
			for k := 0; k+1 < len(n.Content); k += 2 {
				if n.Content[k].Value == part {
					next = n.Content[k+1]
				}
			}
		}
		if next == nil {
			break
		}
		n, line = next, next.Line
	}
	return line
}

// The built-in profiles, one YAML file each, named after the file.
//
//go:embed profiles/*.yaml
var builtinFS embed.FS

var builtins = sync.OnceValues(func() (map[string]*Profile, error) {
	m := make(map[string]*Profile)
	files, err := fs.Glob(builtinFS, "profiles/*.yaml")
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, f := range files {
		data, err := builtinFS.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p, err := LoadProfile(bytes.NewReader(data), f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m[strings.TrimSuffix(path.Base(f), ".yaml")] = p
	}
	return m, errors.Join(errs...)
})

// BuiltinProfile returns a fresh copy of the built-in profile called name
// (see [BuiltinProfiles]), for example "eastron-sdm630". The caller may
// change the copy.
func BuiltinProfile(name string) (*Profile, error) {
	m, err := builtins()
	if err != nil {
		return nil, fmt.Errorf("modbus: built-in profiles: %w", err)
	}
	p, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("modbus: no built-in profile %q (have %s)", name, strings.Join(BuiltinProfiles(), ", "))
	}
	return p.Clone(), nil
}

// BuiltinProfiles returns the names of the built-in profiles, sorted.
func BuiltinProfiles() []string {
	files, _ := fs.Glob(builtinFS, "profiles/*.yaml")
	names := make([]string, 0, len(files))
	for _, f := range files {
		names = append(names, strings.TrimSuffix(path.Base(f), ".yaml"))
	}
	slices.Sort(names)
	return names
}
