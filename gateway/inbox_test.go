package gateway

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/opcua/opcuatest"
)

// TestDeviceInbox: a device's inbox in the bridge is a bridge.SourceOptions,
// decoded and checked by its owner; an OPC UA device has a drop-oldest one
// by default; the old opcua buffer (batches) becomes one, with a warning.
func TestDeviceInbox(t *testing.T) {
	srv, err := opcuatest.New(opcuatest.Options{})
	require.NoError(t, err)
	defer srv.Close()

	_, err = Parse("gw.yaml", []byte(`
devices:
  - name: meter1
    modbus: {url: tcp://127.0.0.1:502}
    points: [{name: v, table: input, address: 0, type: float32}]
    inbox: {queue_size: 2000000, overflow: spool}
sinks:
  - stdout: {}
`))
	got := configErrors(t, err)
	assert.Len(t, got, 2, "%q", got)
	assert.Contains(t, strings.Join(got, "\n"), "gw.yaml:6: devices[0].inbox.queue_size: 2000000 is out of range")
	assert.Contains(t, strings.Join(got, "\n"), "gw.yaml:6: devices[0].inbox.overflow: spool is for sinks")

	cfg, err := Parse("gw.yaml", []byte(`
devices:
  - name: meter1
    modbus: {url: tcp://127.0.0.1:502}
    points: [{name: v, table: input, address: 0, type: float32}]
    inbox: {queue_size: 500, overflow: drop_oldest}
  - name: plc1
    opcua: {endpoint: "`+srv.URL()+`"}
    nodes: [{name: counter, node: "`+opcuatest.NodeID(opcuatest.Counter)+`"}]
  - name: plc2
    opcua: {endpoint: "`+srv.URL()+`", buffer: 8}
    nodes:
      - {name: counter, node: "`+opcuatest.NodeID(opcuatest.Counter)+`"}
      - {name: ramp, node: "`+opcuatest.NodeID(opcuatest.Ramp)+`"}
sinks:
  - stdout: {}
`))
	require.NoError(t, err)
	r := cfg.Check()
	require.Len(t, r.Warnings, 1)
	assert.Contains(t, r.Warnings[0].Error(), "devices[2].opcua.buffer: deprecated")
	assert.Contains(t, r.Warnings[0].Error(), "inbox: {queue_size: 16, overflow: drop_oldest}")

	a, err := assemble("gw.yaml", cfg.data, discardLogger, nil)
	require.NoError(t, err)
	defer a.close()
	want := []bridge.SourceOptions{
		{QueueSize: 500, Overflow: bridge.OverflowDropOldest},
		{QueueSize: 10_000, Overflow: bridge.OverflowDropOldest},
		{QueueSize: 16, Overflow: bridge.OverflowDropOldest},
	}
	for i, dev := range a.devices {
		assert.Equal(t, want[i], dev.inbox(), dev.name)
	}
}
