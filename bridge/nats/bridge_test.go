package nats

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
	"github.com/m2mbridge/m2mbridge/internal/testproxy"
)

// TestBridgeRetriesThroughOutage runs the sink under a Bridge while the
// server is cut off: the sink reports errors, the Bridge retries, and every
// sample is in the stream once the server is back.
func TestBridgeRetriesThroughOutage(t *testing.T) {
	addr := serverAddr(t)
	for _, js := range []bool{true, false} {
		t.Run(fmt.Sprintf("jetstream=%t", js), func(t *testing.T) {
			ctx := testCtx(t, 90*time.Second)
			name := uniq()
			makeStream(t, addr, name, name+".>")
			px := testproxy.New(t, addr)
			sink, err := New(Config{
				URL: "nats://" + px.Addr(), Subject: name + ".{source}.{point}", JetStream: js,
				AckTimeout: time.Second, ReconnectWait: 50 * time.Millisecond,
			})
			require.NoError(t, err)

			want := bridgetest.Samples("e2e", 600, time.Now().Truncate(time.Microsecond))
			firstDone, resume := make(chan struct{}), make(chan struct{})
			src := bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
				for off := 0; off < len(want); off += 20 {
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
			require.NoError(t, b.AddSink("nats", sink, bridge.SinkOptions{
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
			require.Eventually(t, func() bool { return b.Stats().Sinks[0].Delivered >= 200 }, 30*time.Second, 10*time.Millisecond)
			px.Cut()
			close(resume)
			// The sink fails and the Bridge retries...
			require.Eventually(t, func() bool {
				st := b.Stats().Sinks[0]
				return st.Retried > 0 && !st.Up
			}, 30*time.Second, 10*time.Millisecond)
			// ...until the server is back.
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

			// At least once: the stream may hold a sample twice when an
			// acknowledgement was lost, so read all of it.
			var stored uint64
			require.NoError(t, withJS(t, addr, func(ctx context.Context, js jetstream.JetStream) error {
				st, err := js.Stream(ctx, name)
				if err == nil {
					stored = st.CachedInfo().State.Msgs
				}
				return err
			}))
			got, err := readback(addr, name)(ctx, int(stored))
			require.NoError(t, err)
			assert.Empty(t, bridgetest.Match(want, got))
		})
	}
}
