package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// TestSunSpecDiscoverAndOnce runs the binary against a simulated SunSpec
// inverter: -discover prints the chain and points and pins them in a
// profile file; -once with sunspec: {base: auto} reads it with no point
// written by hand; the pinned profile reads the same values.
func TestSunSpecDiscoverAndOnce(t *testing.T) {
	srv, err := modbustest.NewSunSpecServer(modbustest.SunSpecInverter(40000, 2))
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`
devices:
  - name: inverter1
    modbus: {url: %s}
    sunspec: {base: auto}
sinks:
  - file: {path: samples.jsonl}
`, srv.URL()))

	code, out, stderr := runGateway(t, dir, nil, "-config", cfg, "-discover", "inverter1", "-profile-out", filepath.Join(dir, "inverter1.yaml"))
	require.Equal(t, 0, code, stderr)
	for _, want := range []string{"SunSpec base 40000", "1      common                 40002    66", "103    inverter_three_phase   40070    50",
		"160    mppt", "123    controls", "inverter_three_phase.W ", "mppt.module[1].DCA"} {
		assert.Contains(t, out, want)
	}
	assert.Contains(t, stderr, "wrote profile")
	prof, err := modbus.LoadProfileFile(filepath.Join(dir, "inverter1.yaml"))
	require.NoError(t, err)
	require.Greater(t, len(prof.Points), 50)

	code, _, stderr = runGateway(t, dir, nil, "-config", cfg, "-once")
	require.Equal(t, 0, code, stderr)
	samples := readSamples(t, filepath.Join(dir, "samples.jsonl"))
	got := map[string]bridge.Sample{}
	for _, s := range samples {
		got[s.Point] = s
	}
	assert.Equal(t, 230.1, got["inverter_three_phase.PhVphA"].Value.Float())
	assert.Equal(t, 8.5, got["mppt.module[0].DCA"].Value.Float())
	assert.Equal(t, "MPPT", got["inverter_three_phase.St.label"].Value.Str())
	_, ok := got["inverter_three_phase.VA"]
	assert.False(t, ok, "not implemented: no sample")

	// The pinned profile, without discovery.
	require.NoError(t, os.Remove(filepath.Join(dir, "samples.jsonl")))
	pinned := writeConfig(t, dir, fmt.Sprintf(`
devices:
  - name: inverter1
    modbus: {url: %s}
    profile: inverter1.yaml
sinks:
  - file: {path: samples.jsonl}
`, srv.URL()))
	code, _, stderr = runGateway(t, dir, nil, "-config", pinned, "-once")
	require.Equal(t, 0, code, stderr)
	again := map[string]bridge.Sample{}
	for _, s := range readSamples(t, filepath.Join(dir, "samples.jsonl")) {
		again[s.Point] = s
	}
	for name, s := range got {
		if filepath.Ext(name) == ".label" {
			continue // labels come with sunspec, not with a plain profile
		}
		assert.Equal(t, s.Value, again[name].Value, name)
	}

	code, _, stderr = runGateway(t, dir, nil, "-config", cfg, "-discover", "nope")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, `no device "nope"`)
	code, _, stderr = runGateway(t, dir, nil, "-config", cfg, "-profile-out", "x.yaml")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "-profile-out needs -discover")
}
