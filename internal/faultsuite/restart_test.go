package faultsuite

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRestartWithABacklog: the gateway stops while its endpoint is down,
// keeping the samples in the spool, and starts again with the endpoint up.
// The second run delivers the backlog and its own samples; its counters
// name the backlog Replayed, so that Delivered never exceeds Accepted +
// Replayed, and they add up at every scrape (issue 10, defect 10); the
// sequence numbers keep growing across the restart.
func TestRestartWithABacklog(t *testing.T) {
	ep := newEndpoint(t)
	ep.set(http.StatusServiceUnavailable, "")
	srv := meter(t)
	spoolDir := filepath.Join(t.TempDir(), "spool")
	config := func(label string) string {
		return fmt.Sprintf(`
%ssinks:
  - reference: {label: %s}
  - http: {url: %s}
    overflow: spool
    retry: {initial: 20ms, max: 100ms}
spool: {dir: %s}
shutdown: {drain_timeout: 300ms}
`, meterYAML(srv.URL(), "10ms", 2, ""), label, ep.URL, spoolDir)
	}

	label1, ref1 := reference(t)
	g1, stop1 := start(t, config(label1))
	waitFor(t, "300 samples in the first run", 20*time.Second, func() bool { return ref1.len() >= 300 })
	_ = stop1() // the endpoint is down: the spool keeps what was not delivered
	st1 := sinkStats(t, g1, "http")
	addsUp(t, st1)
	require.Positive(t, st1.Left, "the first run left its samples in the spool")
	assert.Zero(t, st1.Delivered)

	ep.set(http.StatusOK, "")
	label2, ref2 := referenceNamed(t, "second")
	g2, stop2 := start(t, config(label2))
	st := sinkStats(t, g2, "http")
	assert.Equal(t, st1.Left, st.Replayed, "the backlog of the first run is counted as replayed")
	stopScrape := make(chan struct{})
	wg := scrape(t, g2, stopScrape)
	waitFor(t, "300 samples in the second run", 20*time.Second, func() bool { return ref2.len() >= 300 })
	waitFor(t, "both runs' samples to arrive", 30*time.Second, func() bool {
		return len(ep.got.missing(ref1, nil)) == 0 && len(ep.got.missing(ref2, nil)) == 0
	})
	close(stopScrape)
	wg.Wait()
	require.NoError(t, stop2())

	st = sinkStats(t, g2, "http")
	addsUp(t, st)
	assert.LessOrEqual(t, st.Delivered, st.Accepted+st.Replayed, "delivered never exceeds accepted + replayed")
	assert.Empty(t, ep.got.wrong)
	var max1, min2 uint64
	for k := range ref1.keys() {
		max1 = max(max1, k.seq)
	}
	min2 = ^uint64(0)
	for k := range ref2.keys() {
		min2 = min(min2, k.seq)
	}
	assert.Greater(t, min2, max1, "sequence numbers keep growing across the restart")
}
