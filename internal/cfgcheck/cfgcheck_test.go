package cfgcheck_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/cfgcheck"
)

func TestSuggest(t *testing.T) {
	comp := []string{"none", "gzip", "snappy", "lz4", "zstd"}
	for _, tc := range []struct {
		got   string
		names []string
		want  string
	}{
		{"gzp", comp, "gzip"},
		{"GZIP", comp, "gzip"},
		{"snapy", comp, "snappy"},
		{"zst", comp, "zstd"},
		{"brotli", comp, ""},
		{"", comp, ""},
		{"SCRAM-SHA256", []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}, "SCRAM-SHA-256"},
		{"scram_sha_512", []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}, "SCRAM-SHA-512"},
		{"v3", []string{"v1", "v2"}, ""}, // as close to both
		{"2", []string{"v1", "v2"}, "v2"},
		{"bykind", []string{"by_kind", "single"}, "by_kind"},
		{"unsinged", []string{"integer", "unsigned"}, "unsigned"},
		{"nast", []string{"nats", "tls", "ws", "wss"}, "nats"},
		{"mqqt", []string{"tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"}, "mqtt"},
	} {
		assert.Equal(t, tc.want, cfgcheck.Suggest(tc.got, tc.names...), tc.got)
	}
}

func TestEnum(t *testing.T) {
	fe := cfgcheck.Enum("compression", "compression", "gzp", "none", "gzip")
	assert.Equal(t, &bridge.FieldError{Path: "compression", Msg: `unknown compression "gzp": want none or gzip`, Hint: `did you mean "gzip"?`}, fe)
	fe = cfgcheck.Enum("", "api", "v9", "v1", "v2")
	assert.Equal(t, &bridge.FieldError{Msg: `unknown api "v9": want v1 or v2`}, fe)
}

func TestWrap(t *testing.T) {
	assert.NoError(t, cfgcheck.Wrap("mqtt", nil))
	err := cfgcheck.Wrap("mqtt", errors.Join(bridge.FieldErrorf("url", "missing"), bridge.FieldErrorf("qos", "3 is not 0, 1 or 2")))
	assert.EqualError(t, err, "mqtt: url: missing\nmqtt: qos: 3 is not 0, 1 or 2")
	fes := bridge.FieldErrors(err)
	assert.Equal(t, []*bridge.FieldError{{Path: "url", Msg: "missing"}, {Path: "qos", Msg: "3 is not 0, 1 or 2"}}, fes)
	assert.EqualError(t, cfgcheck.Wrap("nats", bridge.FieldErrorf("url", "missing")), "nats: url: missing")
}

func TestSecret(t *testing.T) {
	assert.NoError(t, cfgcheck.Secret("password", "username", "", ""), "no auth")
	assert.NoError(t, cfgcheck.Secret("password", "username", "u", "p"))
	fe := bridge.FieldErrors(cfgcheck.Secret("password", "username", "u", ""))
	assert.Equal(t, "password", fe[0].Path)
	assert.Equal(t, "empty, but username is set", fe[0].Msg)
	assert.Contains(t, fe[0].Hint, "password_env or password_file")
}

func ExampleEnum() {
	fmt.Println(cfgcheck.Enum("compression", "compression", "snapy", "none", "gzip", "snappy", "lz4", "zstd"))
	// Output: compression: unknown compression "snapy": want none, gzip, snappy, lz4 or zstd (did you mean "snappy"?)
}
