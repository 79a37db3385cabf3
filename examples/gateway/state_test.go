package main

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// TestDeviceStateChanges: the log has one line per change of a device's
// state — offline when the meter stops answering, online when it is back —
// and an exception on one point does not count as the device failing.
func TestDeviceStateChanges(t *testing.T) {
	prof := &modbus.Profile{Name: "two", Points: []modbus.Point{
		{Name: "v", Table: modbus.Input, Address: 0, Type: modbus.Float32, Unit: "V"},
		{Name: "broken", Table: modbus.Holding, Address: 10, Type: modbus.Uint16},
	}}
	// The broken point always answers Illegal Data Value: the meter
	// answers, so it stays online.
	hook := modbustest.ExceptAt(modbus.Holding, 10, modbus.IllegalDataValue)
	srv, err := modbustest.NewServer(prof, modbustest.WithHook(hook))
	require.NoError(t, err)
	addr := srv.Addr()
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`
devices:
  - name: meter1
    interval: 50ms
    modbus: {url: %s, timeout: 200ms, max_backoff: 200ms}
    points:
      - {name: v, table: input, address: 0, type: float32, unit: V}
      - {name: broken, table: holding, address: 10, type: uint16}
sinks:
  - file: {path: samples.jsonl}
`, srv.URL()))
	p := start(t, dir, nil)
	count := func(s string) int { return strings.Count(p.log(), s) }
	require.Eventually(t, func() bool { return count(`msg="device online"`) == 1 }, 30*time.Second, 20*time.Millisecond)

	srv.Close()
	require.Eventually(t, func() bool { return count(`msg="device offline"`) == 1 }, 30*time.Second, 20*time.Millisecond)

	srv2, err := modbustest.NewServer(prof, modbustest.WithAddress(addr), modbustest.WithHook(hook))
	require.NoError(t, err)
	t.Cleanup(func() { srv2.Close() })
	require.Eventually(t, func() bool { return count(`msg="device online"`) == 2 }, 30*time.Second, 20*time.Millisecond)

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, p.wait(t, 30*time.Second))
	assert.Equal(t, 2, count(`msg="device online"`))
	assert.Equal(t, 1, count(`msg="device offline"`))
}
