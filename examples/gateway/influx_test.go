package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var influxListenRE = regexp.MustCompile(`msg="Listening on HTTP".* addr=(\S+)`)

// startInfluxd runs Debian's influxd (1.x) with its data in a temporary
// directory on a port the OS chooses and returns its base URL; it skips
// when influxd is not installed (fails under M2MB_INTEROP=1).
func startInfluxd(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("influxd")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/influxd"); serr == nil {
			bin, err = "/usr/bin/influxd", nil
		}
	}
	if err != nil {
		if os.Getenv("M2MB_INTEROP") == "1" {
			t.Fatalf("influxd is not installed: %v", err)
		}
		t.Skip("influxd is not installed (Debian package influxdb)")
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:0"
[meta]
  dir = %[1]q
[data]
  dir = %[2]q
  wal-dir = %[3]q
  query-log-enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
[http]
  bind-address = "127.0.0.1:0"
  log-enabled = false
`, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"))
	path := filepath.Join(dir, "influxd.conf")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	cmd := exec.Command(bin, "-config", path)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	cmd.Stdout = cmd.Stderr
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	addrc := make(chan string, 1)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := influxListenRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a
	case <-done:
		t.Fatal("influxd exited before listening")
	case <-time.After(30 * time.Second):
		t.Fatal("influxd did not listen within 30s")
	}
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/ping")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusNoContent
	}, 30*time.Second, 20*time.Millisecond)
	return base
}

// influxQuery runs an InfluxQL statement and returns the rows of its first
// series.
func influxQuery(t *testing.T, base, db, q string) [][]any {
	t.Helper()
	resp, err := http.PostForm(base+"/query", url.Values{"q": {q}, "db": {db}})
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var r struct {
		Results []struct {
			Series []struct {
				Values [][]any `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	require.NoError(t, json.Unmarshal(body, &r), string(body))
	if len(r.Results) == 0 || len(r.Results[0].Series) == 0 {
		return nil
	}
	return r.Results[0].Series[0].Values
}

// TestRunInflux runs the gateway into InfluxDB 1.x: one point per sample
// in the measurement named after the device.
func TestRunInflux(t *testing.T) {
	base := startInfluxd(t)
	influxQuery(t, base, "", "CREATE DATABASE m2m")
	srv, prof := sdm630(t)
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`
devices:
  - name: meter1
    modbus: {url: %s}
    profile: eastron-sdm630
sinks:
  - influx: {url: "%s", database: m2m}
`, srv.URL(), base))
	code, _, stderr := runGateway(t, dir, nil, "-once")
	require.Equal(t, 0, code, stderr)
	rows := influxQuery(t, base, "m2m", `SELECT count("value") FROM "meter1"`)
	require.Len(t, rows, 1)
	assert.Equal(t, float64(len(prof.Points)), rows[0][1])
}
