package opcua

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/opcua/opcuatest"
)

// TestBackoffResetsAfterAGoodSession restarts the server four times. Each
// session between the outages delivers data but lasts far less than
// ReconnectMax, so the first delay of every outage must be ReconnectMin
// again (±20% jitter), not the doubled delay of the outage before.
func TestBackoffResetsAfterAGoodSession(t *testing.T) {
	srv, err := opcuatest.New(opcuatest.Options{Interval: 10 * time.Millisecond})
	require.NoError(t, err)
	defer srv.Close()
	const minDelay = 20 * time.Millisecond
	for _, mode := range []Mode{Poll, Subscribe} {
		t.Run(string(mode), func(t *testing.T) {
			src, err := New(Config{
				Name: "plc", Endpoint: srv.URL(), Mode: mode, Interval: 20 * time.Millisecond,
				ReconnectMin: minDelay, ReconnectMax: 10 * time.Second,
				Nodes: []Node{{Name: "counter", Node: opcuatest.NodeID(opcuatest.Counter)}},
			})
			require.NoError(t, err)
			var mu sync.Mutex
			var delays []time.Duration
			src.onSleep = func(d time.Duration) {
				mu.Lock()
				delays = append(delays, d)
				mu.Unlock()
			}
			var goods int64
			var gmu sync.Mutex
			out := bridge.EmitterFunc(func(_ context.Context, b []bridge.Sample) error {
				gmu.Lock()
				defer gmu.Unlock()
				for _, s := range b {
					if s.Quality == bridge.Good {
						goods++
					}
				}
				return nil
			})
			countGood := func() int64 { gmu.Lock(); defer gmu.Unlock(); return goods }
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- src.Run(ctx, out) }()
			defer func() { cancel(); require.NoError(t, <-done) }()

			var firsts []time.Duration
			for range 4 {
				n := countGood()
				require.Eventually(t, func() bool { return countGood() > n+2 }, 10*time.Second, 5*time.Millisecond, "data before the restart")
				mu.Lock()
				mark := len(delays)
				mu.Unlock()
				require.NoError(t, srv.Stop(context.Background()))
				// Let the outage last a few attempts, so the backoff grows.
				require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(delays) >= mark+4 }, 20*time.Second, 5*time.Millisecond)
				require.NoError(t, srv.Start(context.Background()))
				mu.Lock()
				firsts = append(firsts, delays[mark])
				mu.Unlock()
			}
			t.Logf("first delay of each outage: %v; all: %v", firsts, delays)
			for i, d := range firsts {
				assert.LessOrEqual(t, d, minDelay+minDelay/5, "outage %d started with a delay of %s", i+1, d)
			}
		})
	}
}
