package mqtt

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
	"github.com/m2mbridge/m2mbridge/internal/testproxy"
)

// TestBridgeRetriesThroughOutage runs the sink under a Bridge while the
// broker is cut off: the sink reports errors, the Bridge retries, and every
// sample arrives once the broker is back.
func TestBridgeRetriesThroughOutage(t *testing.T) {
	addr := brokerAddr(t)
	for _, v := range versions {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			ctx := testCtx(t, 90*time.Second)
			prefix := uniq()
			sub := subscribe(t, addr, prefix+"/#", 2)
			px := testproxy.New(t, addr)
			sink, err := New(Config{
				URL: "tcp://" + px.Addr(), Version: v, QoS: 1, Topic: prefix + "/{source}/{point}",
				AckTimeout: time.Second, MaxReconnectInterval: 200 * time.Millisecond, KeepAlive: 2 * time.Second,
			})
			require.NoError(t, err)

			want := bridgetest.Samples("e2e", 600, time.Now().Truncate(time.Microsecond))
			firstDone, resume := make(chan struct{}), make(chan struct{})
			src := bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
				for i, off := 0, 0; off < len(want); i, off = i+1, off+20 {
					if off == 200 {
						close(firstDone)
						select {
						case <-resume:
						case <-ctx.Done():
							return nil
						}
					}
					if err := out.Emit(ctx, want[off:off+20]); err != nil {
						return err
					}
				}
				return nil
			})
			b := bridge.New(bridge.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), DrainTimeout: 60 * time.Second})
			require.NoError(t, b.AddSource("src", src))
			require.NoError(t, b.AddSink("mqtt", sink, bridge.SinkOptions{
				BatchSize: 50, Retry: bridge.Retry{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond},
			}))
			var runErr atomic.Value
			done := make(chan struct{})
			go func() {
				defer close(done)
				if err := b.Run(ctx); err != nil {
					runErr.Store(err)
				}
			}()

			<-firstDone
			sub.wait(t, 200)
			px.Cut()
			close(resume)
			// The sink fails and the Bridge retries...
			require.Eventually(t, func() bool {
				st := b.Stats().Sinks[0]
				return st.Retried > 0 && !st.Up
			}, 30*time.Second, 10*time.Millisecond)
			// ...until the broker is back.
			px.Restore()
			select {
			case <-done:
			case <-ctx.Done():
				t.Fatal("the Bridge did not finish")
			}
			assert.Nil(t, runErr.Load())
			st := b.Stats().Sinks[0]
			assert.EqualValues(t, len(want), st.Delivered)
			assert.Zero(t, st.Failed+st.Dropped+st.Rejected+st.Left)

			// At least once: samples retried after a lost acknowledgement
			// may arrive twice, so wait for every one rather than a count.
			var mismatch atomic.Value
			ok := assert.Eventually(t, func() bool {
				got, err := sub.readback(ctx, 0)
				if err != nil {
					mismatch.Store(err.Error())
					return false
				}
				m := bridgetest.Match(want, got)
				mismatch.Store(m)
				return m == ""
			}, 20*time.Second, 10*time.Millisecond)
			require.True(t, ok, "%v", mismatch.Load())
		})
	}
}
