package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/gateway"
)

// TestStatusPage: the binary serves the status page beside /metrics (-metrics
// address, logged), with the meter's values; an open event stream does not
// hold up the shutdown: it gets an "end" event and the gateway exits 0.
func TestStatusPage(t *testing.T) {
	srv, prof := sdm630(t)
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`
devices:
  - name: meter1
    interval: 100ms
    modbus: {url: %s}
    profile: eastron-sdm630
sinks:
  - file: {path: samples.jsonl}
`, srv.URL()))
	p := start(t, dir, nil, "-metrics", "127.0.0.1:0")
	base := p.metricsBase(t)
	assert.Contains(t, p.log(), "status="+base+"/status")

	var st gateway.Status
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/status.json")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		st = gateway.Status{}
		return json.NewDecoder(resp.Body).Decode(&st) == nil && len(st.Devices) == 1 &&
			st.Devices[0].State == "up" && len(st.Devices[0].Points) == len(prof.Points)
	}, 30*time.Second, 50*time.Millisecond)
	assert.Equal(t, "gateway.yaml", st.Config)
	assert.Equal(t, "file", st.Sinks[0].Name)

	resp, err := http.Get(base + "/status")
	require.NoError(t, err)
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(page), `<tr data-point="voltage_l1">`)
	assert.Contains(t, string(page), `read plan: `)

	// An open event stream, then SIGINT.
	resp, err = http.Get(base + "/status/events")
	require.NoError(t, err)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "retry: 2000\n", line)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	rest, err := io.ReadAll(br)
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(string(rest), "event: end\ndata: {}\n\n"), "%q", rest)
	assert.Equal(t, 0, p.wait(t, 30*time.Second))
}
