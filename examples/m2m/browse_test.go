package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/gateway"
	"github.com/m2mbridge/m2mbridge/internal/nodeopcua"
	"github.com/m2mbridge/m2mbridge/opcua/opcuatest"
)

func TestBrowse(t *testing.T) {
	srv, err := opcuatest.New(opcuatest.Options{Interval: 50 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })

	code, out, errOut := m2m(t, "browse", srv.URL(), "-root", opcuatest.FolderNodeID, "-depth", "2")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "m2m: browsing "+srv.URL()+" from ns=1;i=85, 2 levels deep")
	assert.Contains(t, errOut, "m2m: 12 variables")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	assert.Regexp(t, `^NODE\s+TYPE\s+UNIT\s+ACCESS\s+ID$`, lines[0])
	row := func(name string) string {
		for _, l := range lines {
			if f := strings.Fields(l); len(f) > 0 && f[0] == name {
				return l
			}
		}
		return ""
	}
	assert.Regexp(t, `^Temperature\s+Double\s+°C\s+r\s+nsu=urn:m2mbridge:opcuatest;s=Temperature$`, row("Temperature"))
	assert.Regexp(t, `^Setpoint\s+Double\s+rw\s+nsu=urn:m2mbridge:opcuatest;s=Setpoint$`, row("Setpoint"))
	assert.Regexp(t, `^Vector\s+Double\[\]\s+r\s`, row("Vector"))
	assert.Regexp(t, `^Counter\s+UInt32\s+r\s`, row("Counter"))

	// From the Objects folder (the default root): the simulator's folder
	// is an object one level down, its variables indented below it.
	code, out, errOut = m2m(t, "browse", srv.URL(), "-depth", "2")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `(?m)^urn:m2mbridge:opcuatest/\s+nsu=urn:m2mbridge:opcuatest;i=85$`, out)
	assert.Regexp(t, `(?m)^  Temperature\s+Double\s+°C\s+r\s`, out)

	// JSON lines.
	code, out, errOut = m2m(t, "browse", srv.URL(), "-root", opcuatest.FolderNodeID, "-json")
	require.Equal(t, 0, code, errOut)
	var got []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		got = append(got, m)
	}
	require.Len(t, got, 12)
	var temp map[string]any
	for _, m := range got {
		if m["browse_name"] == "Temperature" {
			temp = m
		}
	}
	require.NotNil(t, temp)
	assert.Equal(t, map[string]any{"path": "Temperature", "browse_name": "Temperature", "display_name": "Temperature",
		"node": "nsu=urn:m2mbridge:opcuatest;s=Temperature", "class": "variable", "depth": 1.0, "data_type": "Double",
		"value_rank": -1.0, "unit": "°C", "access": "r"}, temp)
}

// TestBrowseConfig: browse -config writes a whole gateway file, which the
// gateway loads and checks, and which reads the server.
func TestBrowseConfig(t *testing.T) {
	srv, err := opcuatest.New(opcuatest.Options{Interval: 50 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	path := filepath.Join(t.TempDir(), "gateway.yaml")

	code, _, errOut := m2m(t, "browse", srv.URL(), "-config", path, "-name", "sim", "-mode", "poll", "-interval", "200ms")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "m2m: wrote "+path+`: device "sim" with 11 nodes and a stdout sink; check it with: gateway -check `+path)
	assert.Contains(t, errOut, "m2m: not in "+path+": urn:m2mbridge:opcuatest.Vector (nsu=urn:m2mbridge:opcuatest;s=Vector): Double[]: arrays are not read as samples")
	assert.Contains(t, errOut, "Server (i=2253) and the 16 variables under it: the server's own status and diagnostics")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	text := string(data)
	assert.Contains(t, text, "    nodes:\n")
	assert.Contains(t, text, `{name: 'urn:m2mbridge:opcuatest.Temperature', node: "nsu=urn:m2mbridge:opcuatest;s=Temperature", unit: °C}`)
	assert.Contains(t, text, "# Left out:\n")

	cfg, err := gateway.Load(path)
	require.NoError(t, err, text)
	rep := cfg.Check()
	require.Len(t, rep.Devices, 1)
	d := rep.Devices[0]
	assert.Equal(t, "sim", d.Name)
	assert.Equal(t, "opcua", d.Kind)
	assert.Equal(t, 200*time.Millisecond, d.Interval)
	assert.Len(t, d.Nodes, 11)
	require.Len(t, rep.Sinks, 1)

	// Run once: every node gives a sample.
	samples := runOnce(t, cfg)
	byPoint := map[string]bridge.Sample{}
	for _, s := range samples {
		byPoint[s.Point] = s
	}
	temp := byPoint["urn:m2mbridge:opcuatest.Temperature"]
	assert.Equal(t, bridge.Good, temp.Quality)
	assert.Equal(t, "°C", temp.Unit)
	assert.Equal(t, bridge.Bad, byPoint["urn:m2mbridge:opcuatest.Fault"].Quality)
	assert.Len(t, byPoint, 11)

	// -config of a root with nothing readable: an error, no file.
	code, _, errOut = m2m(t, "browse", srv.URL(), "-root", "i=2253", "-depth", "1", "-config", filepath.Join(t.TempDir(), "x.yaml"))
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, errOut, "no variable to put in a gateway file")
}

// runOnce builds cfg and runs it once, returning the samples of its stdout
// sink.
func runOnce(t *testing.T, cfg *gateway.Config) []bridge.Sample {
	t.Helper()
	var out bytes.Buffer
	g, err := cfg.Build(gateway.BuildOptions{Once: true, Stdout: &out, OnceTimeout: 20 * time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, g.Run(ctx))
	return decodeLines(t, out.String())
}

func TestBrowseErrors(t *testing.T) {
	srv, err := opcuatest.New(opcuatest.Options{Interval: 50 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	for _, tt := range []struct {
		name string
		code int
		args []string
		want string
	}{
		{"no URL", 2, []string{"browse"}, "browse wants one endpoint URL"},
		{"bad depth", 2, []string{"browse", srv.URL(), "-depth", "0"}, "-depth 0: want 1 to 20"},
		{"bad policy", 2, []string{"browse", srv.URL(), "-security-policy", "Basic999"}, "security_policy"},
		{"bad root", 2, []string{"browse", srv.URL(), "-root", "ns=x;s=1"}, "ns=x;s=1"},
		{"unknown root", 1, []string{"browse", srv.URL(), "-root", "ns=1;s=Nope"}, "root ns=1;s=Nope: BadNodeIDUnknown"},
		{"bad endpoint", 2, []string{"browse", "http://x"}, "endpoint"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := m2m(t, tt.args...)
			assert.Equal(t, tt.code, code, errOut)
			assert.Contains(t, errOut, tt.want)
		})
	}
	addr := srv.URL()
	srv.Close()
	code, _, errOut := m2m(t, "browse", addr, "-timeout", "500ms")
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, errOut, "m2m: opcua: browse:")

	code, _, errOut = m2m(t, "browse", "-h")
	assert.Equal(t, 0, code)
	assert.Contains(t, errOut, "usage: m2m browse opc.tcp://")
	assert.Contains(t, errOut, "-password-env")
	assert.Contains(t, errOut, "Exit status: 0 ok, 1 the server failed")
}

// TestBrowseNodeOPCUA: browse node-opcua, a server nobody here wrote, with
// a user and a password from the environment; -config's file, run by the
// gateway, reads real values (M2MB_INTEROP=1).
func TestBrowseNodeOPCUA(t *testing.T) {
	srv := nodeopcua.Start(t)
	t.Setenv("M2M_TEST_OPC_PASS", nodeopcua.Password)
	code, out, errOut := m2m(t, "browse", srv.URL(), "-depth", "2", "-username", nodeopcua.User, "-password-env", "M2M_TEST_OPC_PASS")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `(?m)^  Temperature\s+Double\s+°C\s+rw\s+nsu=`+nodeopcua.Namespace+`;s=Temperature$`, out)
	assert.Regexp(t, `(?m)^  Setpoint\s+Double\s+rw\s`, out)
	assert.Regexp(t, `(?m)^  Locked\s+Double\s+r\s`, out)
	assert.Regexp(t, `(?m)^  Mode\s+Int32\s+rw\s`, out)

	path := filepath.Join(t.TempDir(), "gateway.yaml")
	code, _, errOut = m2m(t, "browse", srv.URL(), "-depth", "2", "-config", path, "-name", "plc",
		"-username", nodeopcua.User, "-password-env", "M2M_TEST_OPC_PASS")
	require.Equal(t, 0, code, errOut)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(data), "password_env: M2M_TEST_OPC_PASS")
	assert.NotContains(t, string(data), nodeopcua.Password)
	cfg, err := gateway.Load(path)
	require.NoError(t, err, string(data))
	samples := runOnce(t, cfg)
	found := map[string]bridge.Sample{}
	for _, s := range samples {
		found[s.Point[strings.LastIndex(s.Point, ".")+1:]] = s
	}
	require.Contains(t, found, "Temperature", "samples: %v", samples)
	assert.Equal(t, bridge.Good, found["Temperature"].Quality)
	assert.Equal(t, "°C", found["Temperature"].Unit)
	assert.Equal(t, bridge.Good, found["Counter"].Quality)
	assert.Equal(t, bridge.Bad, found["Fault"].Quality)
}
