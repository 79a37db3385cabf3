package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/opcua/opcuatest"
)

// TestOPCUASimBinary runs the gateway against the examples/opcua-sim
// binary, logging in with a user name whose password comes from the
// environment. (Security policies other than None cannot be tried here:
// the simulator's upstream server package cannot open a secured channel;
// the opcua package tests them against node-opcua.)
func TestOPCUASimBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "opcua-sim")
	out, err := exec.Command("go", "build", "-o", bin, "../opcua-sim").CombinedOutput()
	require.NoError(t, err, string(out))
	sim := exec.Command(bin, "-listen", "127.0.0.1:0", "-security", "-interval", "50ms")
	stdout, err := sim.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, sim.Start())
	t.Cleanup(func() {
		sim.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { sim.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			sim.Process.Kill()
			<-done
		}
	})
	var endpoint, thumb string
	lines := bufio.NewScanner(stdout)
	for (endpoint == "" || thumb == "") && lines.Scan() {
		l := lines.Text()
		if m := regexp.MustCompile(`opc\.tcp://\S+`).FindString(l); m != "" && endpoint == "" {
			endpoint = m
		}
		if v, ok := strings.CutPrefix(l, "server certificate SHA-256: "); ok {
			thumb = strings.TrimSpace(v)
		}
	}
	require.NotEmpty(t, endpoint, "no endpoint printed")
	require.NotEmpty(t, thumb, "no thumbprint printed")
	go func() {
		for lines.Scan() {
		}
	}()

	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`
devices:
  - name: plc1
    interval: 100ms
    opcua:
      endpoint: "%s"
      mode: subscribe
      username: operator
      password_env: GW_TEST_PLC_PASSWORD
    nodes:
      - {name: counter, node: "%s"}
      - {name: temperature, node: "%s"}
sinks:
  - file: {path: samples.jsonl}
`, endpoint, opcuatest.NodeID(opcuatest.Counter), opcuatest.NodeID(opcuatest.Temperature)))
	env := []string{"GW_TEST_PLC_PASSWORD=plc-secret-5e1f"}
	code, _, stderr := runGateway(t, dir, env, "-once", "-log-level", "debug")
	require.Equal(t, 0, code, stderr)
	assert.NotContains(t, stderr, "plc-secret-5e1f")
	byPoint := map[string]bridge.Sample{}
	for _, s := range readSamples(t, filepath.Join(dir, "samples.jsonl")) {
		byPoint[s.Point] = s
	}
	require.Len(t, byPoint, 2)
	assert.Equal(t, bridge.Good, byPoint["counter"].Quality, byPoint["counter"].Reason)
	assert.Equal(t, opcuatest.TemperatureUnit, byPoint["temperature"].Unit)
}
