package faultsuite

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/gateway"
	"github.com/m2mbridge/m2mbridge/opcua/opcuatest"
)

// stalledConfig is the settings of the "stalled" sink kind: a sink whose
// writes never return until the bridge gives up on them.
type stalledConfig struct{}

var registerStalled sync.Once

func stalledKind() {
	registerStalled.Do(func() {
		gateway.RegisterSink("stalled", gateway.SinkKind{
			Config: func() any { return new(stalledConfig) },
			Build: func(any, gateway.SinkEnv) (bridge.Sink, error) {
				return bridge.SinkFunc(func(ctx context.Context, _ []bridge.Sample) error {
					<-ctx.Done()
					return ctx.Err()
				}), nil
			},
		})
	})
}

// TestEverySampleIsCounted drives a real Modbus device (modbustest) and a
// real OPC UA subscription (opcuatest, through its inbox in the bridge) into
// a stalled sink and a reference sink, under each overflow policy: while it
// runs and after it stopped, every sink's counters add up, each source's
// do, and every sample a source handed on is accepted or refused by each
// sink (issue 11: the bridge owns every queue and counts every loss).
func TestEverySampleIsCounted(t *testing.T) {
	stalledKind()
	ua, err := opcuatest.New(opcuatest.Options{Interval: 5 * time.Millisecond})
	require.NoError(t, err)
	defer ua.Close()
	srv := meter(t)
	for _, policy := range []string{"block", "drop_oldest", "spool"} {
		t.Run(policy, func(t *testing.T) {
			label, ref := reference(t)
			g, stop := start(t, fmt.Sprintf(`%s
  - name: plc1
    opcua: {endpoint: "%s", mode: subscribe}
    interval: 10ms
    inbox: {queue_size: 200, overflow: drop_oldest}
    nodes:
      - {name: counter, node: "%s"}
      - {name: ramp, node: "%s"}
sinks:
  - stalled: {}
    queue_size: 100
    batch_size: 10
    overflow: %s
  - reference: {label: %s}
spool: {dir: %s}
shutdown: {drain_timeout: 300ms}
`, meterYAML(srv.URL(), "10ms", 3, ""), ua.URL(), opcuatest.NodeID(opcuatest.Counter), opcuatest.NodeID(opcuatest.Ramp),
				policy, label, filepath.Join(t.TempDir(), "spool")))
			stopScrape := make(chan struct{})
			wg := scrape(t, g, stopScrape)
			waitFor(t, "samples from both devices", 20*time.Second, func() bool {
				n := map[string]bool{}
				for k := range ref.keys() {
					n[k.source] = true
				}
				return n["meter1"] && n["plc1"] && (ref.len() >= 200 || policy == "block")
			})
			if policy == "block" {
				waitFor(t, "the stalled sink's queue to fill", 20*time.Second, func() bool { return sinkStats(t, g, "stalled").Queued == 100 })
			} else {
				waitFor(t, "the stalled sink to overflow", 20*time.Second, func() bool {
					st := sinkStats(t, g, "stalled")
					return st.Dropped > 0 || st.Spooled > 150
				})
			}
			close(stopScrape)
			wg.Wait()
			_ = stop() // the stalled sink leaves samples: Run says so
			st := g.Bridge().Stats()
			var forwarded uint64
			for _, s := range st.Sources {
				assert.Equal(t, s.Emitted, s.Forwarded+s.Dropped+s.Left+uint64(s.Queued)+uint64(s.InFlight), "source %s: %+v", s.Name, s)
				require.NotNil(t, s.Health, "source %s reports its health", s.Name)
				forwarded += s.Forwarded
			}
			for _, s := range st.Sinks {
				addsUp(t, s)
				assert.Equal(t, forwarded, s.Accepted+s.Refused, "sink %s: every sample handed on was accepted or refused: %+v", s.Name, s)
			}
			stalled := sinkStats(t, g, "stalled")
			assert.Zero(t, stalled.Delivered)
			switch policy {
			case "block":
				assert.Zero(t, stalled.Dropped, "block drops nothing in the sinks")
			case "drop_oldest":
				assert.Positive(t, stalled.Dropped)
			case "spool":
				assert.Positive(t, stalled.Left, "the spool keeps what the stalled sink did not take")
			}
		})
	}
}
