package main

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestProfile: a vendor map (BOM, ';', quoted fields, decimal commas,
// Modicon numbers, vendor type names) becomes a profile the modbus package
// loads, which reads a device that serves it.
func TestProfile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "em7.yaml")
	code, stdout, errOut := m2m(t, "profile", "-in", "testdata/em7-map.csv", "-out", out, "-modicon", "-name", "em7")
	require.Equal(t, 0, code, errOut)
	assert.Empty(t, stdout)
	assert.Contains(t, errOut, `m2m: wrote `+out+`: profile "em7", 5 points`)
	p, err := modbus.LoadProfileFile(out)
	require.NoError(t, err)
	assert.Equal(t, "em7", p.Name)
	assert.Equal(t, []modbus.Point{
		{Name: "voltage_l1_n", Table: modbus.Input, Address: 0, Type: modbus.Int32, Unit: "V", Scale: 0.1},
		{Name: "current_l1", Table: modbus.Input, Address: 2, Type: modbus.Int32, Unit: "A", Scale: 0.001},
		{Name: "active_power", Table: modbus.Input, Address: 4, Type: modbus.Float32, Unit: "W"},
		{Name: "frequency", Table: modbus.Input, Address: 6, Type: modbus.Uint16, Unit: "Hz", Scale: 0.01},
		{Name: "setpoint", Table: modbus.Holding, Address: 100, Type: modbus.Uint16},
	}, p.Points)
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Contains(t, string(data), "# Made by m2m profile from em7-map.csv (5 points)")

	// The profile works: a device serving it is read at its points.
	srv, err := modbustest.NewServer(p)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	require.NoError(t, srv.Set("voltage_l1_n", 231.4))
	code, stdout, errOut = m2m(t, "read", srv.URL(), "-modicon", "30001", "-type", "int32", "-scale", "0.1")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, stdout, "231.4")

	// Without -out: the YAML on stdout; without -modicon: the warning.
	code, stdout, errOut = m2m(t, "profile", "-in", "testdata/em7-map.csv")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, stdout, "name: em7-map\n")
	assert.Contains(t, stdout, "{name: voltage_l1_n, table: holding, address: 30001, type: int32, scale: 0.1, unit: V}")
	assert.Contains(t, errOut, "m2m: warning: testdata/em7-map.csv:2: address 30001 looks like a Modicon number: if the map uses them, give -modicon")
}

// TestProfileErrors: a bad map gets every error at once, by CSV line
// (golden file), exit 1, and no file.
func TestProfileErrors(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bad.yaml")
	code, stdout, errOut := m2m(t, "profile", "-in", "testdata/em7-bad.csv", "-out", out)
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout)
	golden := filepath.Join("testdata", "em7-bad.golden")
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(errOut), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.Equal(t, string(want), errOut)
	assert.Contains(t, errOut, `testdata/em7-bad.csv:2: type "flaot32": did you mean float32?`)
	assert.NoFileExists(t, out)

	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no -in", []string{"profile"}, "-in is required"},
		{"argument", []string{"profile", "-in", "x.csv", "map.csv"}, "profile takes no arguments"},
		{"missing file", []string{"profile", "-in", "testdata/nope.csv"}, "nope.csv"},
		{"bad sep", []string{"profile", "-in", "testdata/em7-map.csv", "-sep", "|"}, `-sep "|": want , ; or tab`},
		{"bad table", []string{"profile", "-in", "testdata/em7-map.csv", "-table", "holdings"}, "-table"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := m2m(t, tt.args...)
			assert.Equal(t, 2, code, errOut)
			assert.Contains(t, errOut, tt.want)
		})
	}
	code, _, errOut = m2m(t, "profile", "-h")
	assert.Equal(t, 0, code)
	assert.Contains(t, errOut, "usage: m2m profile -in map.csv")
	assert.Contains(t, errOut, "Exit status: 0 the profile was written, 1 the CSV has errors")
}
