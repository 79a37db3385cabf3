package gateway

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want byteSize
		err  bool
	}{
		{"1GiB", 1 << 30, false},
		{"1gib", 1 << 30, false},
		{"512MiB", 512 << 20, false},
		{"100MB", 100e6, false},
		{"64k", 64 << 10, false},
		{"1.5GiB", 3 << 29, false},
		{"4096", 4096, false},
		{"10 B", 10, false},
		{"1 gigabyte", 0, true},
		{"-1GiB", 0, true},
		{"GiB", 0, true},
		{"99999999999TiB", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseByteSize(tc.in)
			if tc.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestRedactURL(t *testing.T) {
	assert.Equal(t, "nats://gw:redacted@127.0.0.1:4222", redactURL("nats://gw:s3cret@127.0.0.1:4222"))
	assert.Equal(t, "tcp://gw@broker:1883", redactURL("tcp://gw@broker:1883"))
	assert.Equal(t, "rtu:///dev/ttyUSB0", redactURL("rtu:///dev/ttyUSB0"))
	assert.Equal(t, "not a url %", redactURL("not a url %"))
}

// TestDecodeScalars checks the strict scalar rules on a small struct.
func TestDecodeScalars(t *testing.T) {
	type cfg struct {
		Interval spoolConfig `yaml:"spool"`
		Health   healthConfig
		Retry    retryConfig `yaml:"retry"`
		Limits   struct {
			Max uint16 `yaml:"max"`
		} `yaml:"limits"`
		On bool `yaml:"on"`
	}
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"ok", "spool: {dir: x, max_bytes: 1GiB, sync_interval: 0}\nretry: {multiplier: 2, jitter: 0.5}\non: true\n", ""},
		{"negative uint", "limits: {max: -1}\n", "f.yaml:1: limits.max: -1 is out of range 0 to 65535"},
		{"float for int", "retry: {max_attempts: 1.5}\n", `f.yaml:1: retry.max_attempts: want an integer, not "1.5"`},
		{"string for bool", "on: yes please\n", `f.yaml:1: on: want true or false, not "yes please"`},
		{"bad duration", "retry: {initial: soon}\n", `f.yaml:1: retry.initial: "soon" is not a duration (write 500ms, 10s, 1m30s)`},
		{"list for map", "retry: [1]\n", "f.yaml:1: retry: want a mapping, not a list"},
		{"duplicate key", "on: true\non: false\n", "f.yaml:2: on: duplicate key"},
		{"null size", "spool: {max_bytes: ~}\n", "f.yaml:1: spool.max_bytes: want a size such as 1GiB, not nothing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDecoder("f.yaml")
			var root yamlRoot
			require.NoError(t, root.parse(tc.yaml))
			var c cfg
			d.decode(root.node(), "", reflectValue(&c))
			if tc.want == "" {
				assert.NoError(t, d.err())
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
