package gateway

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// configErrors returns the *ConfigError leaves of err as "line: path: msg".
func configErrors(t *testing.T, err error) []string {
	t.Helper()
	require.Error(t, err)
	var out []string
	for _, e := range flatten(err) {
		var ce *ConfigError
		require.True(t, errors.As(e, &ce), "%T %v", e, e)
		out = append(out, ce.Error())
	}
	return out
}

// TestParseEveryMistakeOfADevice: a decoding error in a device (a bare
// number for a duration, an unknown key) hides none of its other mistakes.
func TestParseEveryMistakeOfADevice(t *testing.T) {
	_, err := Parse("gw.yaml", []byte(`
devices:
  - name: meter1
    interval: 5
    modbus: {url: tcp://127.0.0.1:502}
    points:
      - {name: v1, table: input, address: 0, type: float32}
      - {name: v2, table: input, address: 1, type: float32}
      - {name: v3, table: input, address: 9, type: flaot32}
sinks:
  - stdout: {}
`))
	got := configErrors(t, err)
	assert.Equal(t, []string{
		"gw.yaml:4: devices[0].interval: 5 has no unit: write a duration such as 5ms or 5s",
		`gw.yaml:8: devices[0].points[1].address: input registers 1-2 overlap devices[0].points[0] ("v1") (0-1)`,
		`gw.yaml:9: devices[0].points[2].type: unknown type "flaot32" (want bool, int16, uint16, int32, uint32, int64, uint64, float32, float64 or string)`,
	}, got)
}

// TestParseSyntaxLines: a YAML syntax error names the line it is on.
func TestParseSyntaxLines(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"tab", "devices:\n  - name: a\n\tinterval: 1s\nsinks: []\n", "f.yaml:3: YAML syntax: a tab in the indentation: indent with spaces"},
		{"unclosed", "devices:\n  - name: a\n    modbus: {url: x\n    profile: p\n", "f.yaml:3: YAML syntax: this { is not closed (did not find expected ',' or '}')"},
		{"empty", "", "f.yaml: the file is empty: want devices and sinks"},
		{"comments", "# to do\n", "f.yaml: the file is empty: want devices and sinks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tc.data))
			assert.Equal(t, []string{tc.want}, configErrors(t, err))
		})
	}
}

// TestParseProfileErrors: a profile file is decoded as strictly as the
// configuration, with suggestions, and all its mistakes are reported.
func TestParseProfileErrors(t *testing.T) {
	_, err := Parse("../examples/gateway/testdata/check/profile-typo.yaml", mustRead(t, "../examples/gateway/testdata/check/profile-typo.yaml"))
	got := configErrors(t, err)
	require.Len(t, got, 4)
	assert.Contains(t, got[1], `profiles/typo-meter.yaml:4: point 0 "a": adress: unknown key; did you mean "address"?`)
	assert.Contains(t, got[2], `profiles/typo-meter.yaml:5: point 1 "b": type: unknown type "int33"`)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := readRegular(path, maxFileSize)
	require.NoError(t, err)
	return b
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
