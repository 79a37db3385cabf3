package main

import (
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// TestMetricsAddressChecked: -check (and a run) refuses a -metrics address
// that net.Listen would refuse at run time, before reading the file.
func TestMetricsAddressChecked(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"9100", `-metrics "9100": want host:port, such as 127.0.0.1:9100 or :9100 (every interface)`},
		{"127.0.0.1:99999", `-metrics "127.0.0.1:99999": port "99999": want a number from 0 to 65535`},
		{"127.0.0.1:metrics", `-metrics "127.0.0.1:metrics": port "metrics": want a number from 0 to 65535`},
		{"bad host:9100", `-metrics "bad host:9100": host "bad host": want an IP address or a host name`},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			code, stdout, stderr := runGateway(t, t.TempDir(), nil, "-check", "-metrics", tc.addr)
			assert.Equal(t, 2, code)
			assert.Empty(t, stdout)
			assert.Equal(t, "gateway: "+tc.want+"\n", stderr)
		})
	}
}

// TestOnceNothingDelivered: a commissioning run whose sink delivered
// nothing (the endpoint down, every sample kept in the spool) fails and
// says which sink.
func TestOnceNothingDelivered(t *testing.T) {
	srv, _ := sdm630(t)
	coll := &collectorServer{down: true}
	hs := httptest.NewServer(coll)
	t.Cleanup(hs.Close)
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`
devices:
  - name: meter1
    modbus: {url: %s}
    profile: eastron-sdm630
sinks:
  - http: {url: "%s", timeout: 2s}
    name: ingest
    overflow: spool
    retry: {initial: 10ms, max: 50ms}
  - file: {path: samples.jsonl}
spool: {dir: spool}
shutdown: {drain_timeout: 300ms}
`, srv.URL(), hs.URL))
	code, _, stderr := runGateway(t, dir, nil, "-once")
	assert.Equal(t, 1, code)
	assert.Regexp(t, `gateway: a sink delivered nothing: sink ingest: \d+ samples kept in its spool; last error: `, stderr)
	assert.NotContains(t, stderr, "sink file", "the file sink delivered")
}

// TestSecondSignalExits: a second SIGTERM during a shutdown that waits
// on a sink ends the process at once.
func TestSecondSignalExits(t *testing.T) {
	srv, _ := sdm630(t)
	coll := &collectorServer{down: true}
	hs := httptest.NewServer(coll)
	t.Cleanup(hs.Close)
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`
devices:
  - name: meter1
    interval: 50ms
    modbus: {url: %s}
    profile: eastron-sdm630
sinks:
  - http: {url: "%s", timeout: 2s}
    retry: {initial: 10ms, max: 50ms}
shutdown: {drain_timeout: 10m, close_timeout: 10m}
`, srv.URL(), hs.URL))
	p := start(t, dir, nil)
	require.Eventually(t, func() bool {
		refused, _ := coll.stats()
		return refused >= 1
	}, 30*time.Second, 20*time.Millisecond)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool { return strings.Contains(p.log(), "shutting down") }, 30*time.Second, 20*time.Millisecond)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, 3, p.wait(t, 10*time.Second))
	assert.Contains(t, p.log(), "gateway: terminated again: exiting now, without draining the sinks")
}

// TestVersion: -version prints the module and its version.
func TestVersion(t *testing.T) {
	code, stdout, stderr := runGateway(t, t.TempDir(), nil, "-version")
	require.Equal(t, 0, code, stderr)
	assert.Regexp(t, regexp.MustCompile(`^gateway github\.com/m2mbridge/m2mbridge \S+.* go1\.\S+\n$`), stdout)
}

// TestUnitAsWritten: unit: 0 is unit 0 on Modbus TCP (issue 10, defect 6:
// it used to become unit 1), and a device without a unit is unit 1. The
// simulator answers only the one unit, so a wrong unit gives no reading
// and -once fails.
func TestUnitAsWritten(t *testing.T) {
	for _, tc := range []struct {
		name, key string
		unit      uint8
	}{
		{"unit 0", "unit: 0, ", 0},
		{"no unit", "", 1},
		{"unit 7", "unit: 7, ", 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := sdm630(t, modbustest.WithUnits(tc.unit))
			dir := t.TempDir()
			writeConfig(t, dir, fmt.Sprintf(`
devices:
  - name: meter1
    modbus: {%surl: %s, timeout: 300ms}
    profile: eastron-sdm630
sinks:
  - file: {path: samples.jsonl}
`, tc.key, srv.URL()))
			code, stdout, stderr := runGateway(t, dir, nil, "-check")
			require.Equal(t, 0, code, stderr)
			assert.Contains(t, stdout, fmt.Sprintf("device meter1: modbus %s unit %d,", srv.URL(), tc.unit))

			code, _, stderr = runGateway(t, dir, nil, "-once")
			require.Equal(t, 0, code, stderr)
			samples := readSamples(t, filepath.Join(dir, "samples.jsonl"))
			require.NotEmpty(t, samples)
			for _, s := range samples {
				require.Equal(t, bridge.Good, s.Quality, "%s: %s", s.Point, s.Reason)
			}
		})
	}
}
