package sparkplug

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// syncBuffer is a bytes.Buffer safe for the logger's concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestStateNeverDropped checks that with the event queue full, NCMD
// messages beyond it are dropped, counted and logged once, while the
// primary host's STATE is kept (the latest replacing an older one), so
// that the edge node is born when it says online.
func TestStateNeverDropped(t *testing.T) {
	addr := brokerAddr(t)
	cfg := testConfig(t, addr)
	cfg.PrimaryHostID = "scada-" + uniq() // no retained STATE on the broker
	var logs syncBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	s := newSink(t, cfg)

	// The session goroutine is not started: nothing drains the queue.
	const extra = 5
	for range eventQueue + extra {
		s.onMessage(message{topic: s.topicNCMD, payload: []byte("not a payload")})
	}
	assert.Equal(t, uint64(extra), s.Stats().EventsDropped)
	assert.Equal(t, 1, strings.Count(logs.String(), "message dropped"), "logged once, not per message:\n%s", logs.String())

	ts := time.Now().UnixMilli()
	s.onMessage(message{topic: s.topicState, payload: statePayload(false, ts)})
	s.onMessage(message{topic: s.topicState, payload: statePayload(true, ts+1)})
	assert.Equal(t, uint64(extra), s.Stats().EventsDropped, "a STATE is not dropped")

	require.NoError(t, s.Connect(testCtx(t, 20*time.Second)), "born: the online STATE was kept")
	assert.True(t, s.Stats().Born)
}

// TestNoDeviceBeyondMaxMetrics checks that once the edge node tracks
// MaxMetrics metrics, a sample of a new source is refused permanently
// without adding a device: the devices stay bounded as the metrics are.
func TestNoDeviceBeyondMaxMetrics(t *testing.T) {
	addr := brokerAddr(t)
	ctx := testCtx(t, 30*time.Second)
	s := newSink(t, testConfig(t, addr))
	require.NoError(t, s.Connect(ctx))
	require.NoError(t, s.Write(ctx, []bridge.Sample{sample("d1", "p", bridge.Float(1))}))

	s.mu.Lock()
	s.nMetrics = MaxMetrics // as if 100,000 metrics had come
	s.mu.Unlock()
	var batch []bridge.Sample
	for i := range 50 {
		batch = append(batch, sample(fmt.Sprintf("made-up-%d", i), "p", bridge.Float(1)))
	}
	err := s.Write(ctx, batch)
	var be *bridge.BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, len(batch))
	for i, e := range be.Failed {
		require.True(t, bridge.IsPermanent(e), "%d: %v", i, e)
		require.ErrorContains(t, e, "MaxMetrics")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	assert.Len(t, s.devices, 1)
	assert.Len(t, s.byID, 1)
	assert.Len(t, s.devOrder, 1)
}
