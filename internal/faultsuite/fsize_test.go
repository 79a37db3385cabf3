//go:build linux

package faultsuite

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSpoolOnAFullDisk: with sinks [http (overflow: spool), reference] and
// the spool's files limited in size (RLIMIT_FSIZE, what `ulimit -f 64`
// does: writes fail with EFBIG, as on a full disk), the reference sink after
// the failing one still gets every sample, the failing sink is down and
// unhealthy with the OS error, its samples are kept in memory meanwhile, and
// once its endpoint answers every sample arrives (issue 10, defect 1).
//
// The limit applies to a whole process, so the scenario runs in a child
// process: this test re-runs itself with M2MB_FAULT_CHILD set.
func TestSpoolOnAFullDisk(t *testing.T) {
	if os.Getenv("M2MB_FAULT_CHILD") == t.Name() {
		spoolOnAFullDisk(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "M2MB_FAULT_CHILD="+t.Name())
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	require.NoError(t, err, "the scenario failed in the child process")
	require.Contains(t, string(out), "--- PASS: "+t.Name(), "the child ran the scenario")
}

func spoolOnAFullDisk(t *testing.T) {
	// 64 KiB for any file this process writes.
	lim := syscall.Rlimit{Cur: 64 << 10, Max: 64 << 10}
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim))

	label, ref := reference(t)
	ep := newEndpoint(t)
	ep.set(http.StatusServiceUnavailable, "")
	srv := meter(t)
	dir := t.TempDir()
	g, stop := start(t, fmt.Sprintf(`
%ssinks:
  - http: {url: %s}
    overflow: spool
    retry: {initial: 20ms, max: 200ms}
  - reference: {label: %s}
spool: {dir: %s}
health: {max_failing: 100ms}
shutdown: {drain_timeout: 10s}
`, meterYAML(srv.URL(), "10ms", 3, ""), ep.URL, label, filepath.Join(dir, "spool")))
	stopScrape := make(chan struct{})
	wg := scrape(t, g, stopScrape)

	waitFor(t, "the spool to fail", 30*time.Second, func() bool { return sinkStats(t, g, "http").SpoolFailed > 0 })
	before := ref.len()
	waitFor(t, "the reference sink to go on receiving", 10*time.Second, func() bool { return ref.len() >= before+600 })
	st := sinkStats(t, g, "http")
	assert.False(t, st.Up, "a sink whose spool cannot store is down: %+v", st)
	assert.Contains(t, st.SpoolError, "file too large", "the OS error is named")
	assert.Positive(t, st.Spooled, "the spool stored what fitted")
	waitFor(t, "the gateway to report the sink unhealthy", 10*time.Second, func() bool {
		return strings.Contains(strings.Join(g.Unhealthy(), "\n"), "sink http")
	})

	ep.set(http.StatusOK, "")
	produced := ref.len()
	took := waitFor(t, "every sample to arrive once the endpoint answers", 30*time.Second, func() bool {
		return len(ep.got.missing(ref, nil)) == 0 && ep.got.len() >= produced
	})
	t.Logf("%d samples, %d spooled, %d kept in memory while the spool could not store; all delivered %v after the endpoint came back", produced, st.Spooled, st.SpoolFailed, took)
	close(stopScrape)
	wg.Wait()
	require.NoError(t, stop())
	assert.Empty(t, ep.got.missing(ref, nil))
	assert.Empty(t, ep.got.wrong)
	st = sinkStats(t, g, "http")
	assert.Zero(t, st.Dropped, "nothing dropped: the memory fallback held it all")
	addsUp(t, st)
}
