package gateway

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/spool"
	"github.com/m2mbridge/m2mbridge/modbus"
)

// TestDecodeScalars checks the strict scalar rules on a small struct.
func TestDecodeScalars(t *testing.T) {
	type inner struct {
		Overflow bridge.Overflow `yaml:"overflow"`
	}
	type cfg struct {
		Spool  spool.Options `yaml:"spool"`
		Health healthConfig
		Retry  bridge.Retry `yaml:"retry"`
		Limits struct {
			Max uint16 `yaml:"max"`
		} `yaml:"limits"`
		On    bool `yaml:"on"`
		inner `yaml:",inline"`
		Table modbus.Table `yaml:"table"`
	}
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"ok", "spool: {dir: x, max_bytes: 1GiB, sync_interval: 0}\nretry: {multiplier: 2, jitter: 0.5}\non: true\noverflow: drop_oldest\ntable: holding_registers\n", ""},
		{"negative uint", "limits: {max: -1}\n", "f.yaml:1: limits.max: -1 is out of range 0 to 65535"},
		{"float for int", "retry: {max_attempts: 1.5}\n", `f.yaml:1: retry.max_attempts: want an integer, not "1.5"`},
		{"string for bool", "on: yes please\n", `f.yaml:1: on: want true or false, not "yes please"`},
		{"bad duration", "retry: {initial: soon}\n", `f.yaml:1: retry.initial: "soon" is not a duration (write 500ms, 10s, 1m30s)`},
		{"list for map", "retry: [1]\n", "f.yaml:1: retry: want a mapping, not a list"},
		{"duplicate key", "on: true\non: false\n", "f.yaml:2: on: duplicate key"},
		{"null size", "spool: {max_bytes: ~}\n", "f.yaml:1: spool.max_bytes: want a size such as 1GiB, not nothing"},
		{"bad size", "spool: {segment_bytes: 1 gigabyte}\n", `f.yaml:1: spool.segment_bytes: "1 gigabyte" is not a size (write 1GiB, 512MiB, 100MB or a number of bytes)`},
		{"text enum", "spool: {full: wait}\n", `f.yaml:1: spool.full: unknown full policy "wait" (want drop_oldest or block)`},
		{"inline", "overflow: dropp\n", `f.yaml:1: overflow: unknown overflow policy "dropp": want block, drop_oldest or spool`},
		{"enum list", "table: [holding]\n", `f.yaml:1: table: want a string, not a list`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDecoder("f.yaml")
			var root yamlRoot
			require.NoError(t, root.parse(tc.yaml))
			var c cfg
			d.decode(root.node(), "", reflectValue(&c))
			if tc.want == "" {
				assert.NoError(t, d.err())
				assert.Equal(t, int64(1<<30), c.Spool.MaxBytes, "max_bytes: 1GiB")
				assert.Equal(t, bridge.OverflowDropOldest, c.Overflow)
				assert.Equal(t, modbus.Holding, c.Table, "an alias, decoded by the type")
				return
			}
			assert.EqualError(t, d.err(), tc.want)
		})
	}
}

// FuzzLoad feeds arbitrary files to the configuration loader: it must
// report errors, never panic, and hold nothing open when it fails.
func FuzzLoad(f *testing.F) {
	for _, glob := range []string{"../examples/gateway/testdata/check/*.yaml", "../examples/gateway/testdata/examples/*.yaml"} {
		files, err := filepath.Glob(glob)
		require.NoError(f, err)
		for _, file := range files {
			b, err := os.ReadFile(file)
			require.NoError(f, err)
			f.Add(b)
		}
	}
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("devices: [{<<: [*x]}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "gateway.yaml")
		require.NoError(t, os.WriteFile(path, data, 0o644))
		c, err := Load(path)
		if err != nil {
			assert.Nil(t, c)
			for _, e := range flatten(err) {
				assert.NotEmpty(t, e.Error())
			}
			return
		}
		assert.NotEmpty(t, c.Check().String())
	})
}

type yamlRoot struct{ n yaml.Node }

func (r *yamlRoot) parse(s string) error { return yaml.Unmarshal([]byte(s), &r.n) }
func (r *yamlRoot) node() *yaml.Node     { return &r.n }

func reflectValue(v any) reflect.Value { return reflect.ValueOf(v).Elem() }
