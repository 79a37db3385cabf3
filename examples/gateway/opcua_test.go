package main

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/opcua/opcuatest"
)

// TestOPCUA runs the gateway against the in-process OPC UA simulator, in
// subscribe and in poll mode, with -once into a file: a reading of every
// node, the unit from the server's EngineeringUnits, a Bad node as a Bad
// sample.
func TestOPCUA(t *testing.T) {
	srv, err := opcuatest.New(opcuatest.Options{Interval: 50 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	for _, mode := range []string{"subscribe", "poll"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			writeConfig(t, dir, fmt.Sprintf(`
devices:
  - name: plc1
    interval: 100ms
    opcua: {endpoint: "%s", mode: %s}
    nodes:
      - {name: counter, node: "%s"}
      - {name: temperature, node: "%s"}
      - {name: sine, node: "%s", unit: "mV"}
      - {name: fault, node: "%s"}
sinks:
  - file: {path: samples.jsonl}
`, srv.URL(), mode, opcuatest.NodeID(opcuatest.Counter), opcuatest.NodeID(opcuatest.Temperature),
				opcuatest.NodeID(opcuatest.Sine), opcuatest.NodeID(opcuatest.Fault)))
			code, _, stderr := runGateway(t, dir, nil, "-once")
			require.Equal(t, 0, code, stderr)
			samples := readSamples(t, filepath.Join(dir, "samples.jsonl"))
			byPoint := map[string]bridge.Sample{}
			for _, s := range samples {
				assert.Equal(t, "plc1", s.Source)
				if _, seen := byPoint[s.Point]; !seen {
					byPoint[s.Point] = s
				}
			}
			require.Len(t, byPoint, 4, "%v", samples)
			assert.Equal(t, bridge.Good, byPoint["counter"].Quality)
			_, isInt := byPoint["counter"].Value.Uint()
			assert.True(t, isInt, "counter %v", byPoint["counter"].Value)
			assert.Equal(t, opcuatest.TemperatureUnit, byPoint["temperature"].Unit)
			assert.Equal(t, "mV", byPoint["sine"].Unit)
			assert.Equal(t, bridge.Bad, byPoint["fault"].Quality)
			assert.Equal(t, "BadSensorFailure", byPoint["fault"].Reason)
		})
	}
}
