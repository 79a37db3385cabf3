package sparkplug

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
