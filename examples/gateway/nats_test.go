package main

import (
	"fmt"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// TestRunNATS runs the gateway into nats-server (core NATS) on a unique
// subject and checks that every point arrives.
func TestRunNATS(t *testing.T) {
	needPeer(t, "127.0.0.1:4222", "nats-server")
	srv, prof := sdm630(t)
	nc, err := natsgo.Connect("nats://127.0.0.1:4222")
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	prefix := fmt.Sprintf("m2mbgwtest%d", time.Now().UnixNano())
	var mu sync.Mutex
	got := map[string]bridge.Sample{}
	sub, err := nc.Subscribe(prefix+".>", func(m *natsgo.Msg) {
		s, err := bridge.DecodeJSON(m.Data)
		if err != nil {
			t.Errorf("payload %q: %v", m.Data, err)
			return
		}
		mu.Lock()
		got[m.Subject] = s
		mu.Unlock()
	})
	require.NoError(t, err)
	t.Cleanup(func() { sub.Unsubscribe() })
	require.NoError(t, nc.Flush())

	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`
devices:
  - name: meter1
    modbus: {url: %s}
    profile: eastron-sdm630
sinks:
  - nats: {url: "nats://127.0.0.1:4222", subject: "%s.{source}.{point}"}
`, srv.URL(), prefix))
	code, _, stderr := runGateway(t, dir, nil, "-once")
	require.Equal(t, 0, code, stderr)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == len(prof.Points)
	}, 20*time.Second, 20*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for _, pt := range prof.Points {
		s, ok := got[prefix+".meter1."+pt.Name]
		if assert.True(t, ok, pt.Name) {
			assert.Equal(t, bridge.Good, s.Quality)
			assert.Equal(t, pt.Unit, s.Unit)
		}
	}
}
