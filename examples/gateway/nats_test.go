package main

import (
	"fmt"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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

// TestRunJetStream runs the gateway into a JetStream stream it creates and
// checks that the stream holds one message per point.
func TestRunJetStream(t *testing.T) {
	needPeer(t, "127.0.0.1:4222", "nats-server")
	srv, prof := sdm630(t)
	nc, err := natsgo.Connect("nats://127.0.0.1:4222")
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	id := time.Now().UnixNano()
	stream := fmt.Sprintf("M2MBGWTEST%d", id)
	prefix := fmt.Sprintf("m2mbgwjs%d", id)
	t.Cleanup(func() {
		ctx := ctxT(t, 10*time.Second)
		js.DeleteStream(ctx, stream)
	})
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`
devices:
  - name: meter1
    modbus: {url: %s}
    profile: eastron-sdm630
sinks:
  - nats: {url: "nats://127.0.0.1:4222", subject: "%s.{source}.{point}", jetstream: true, stream: %s, create_stream: true}
`, srv.URL(), prefix, stream))
	code, _, stderr := runGateway(t, dir, nil, "-once")
	require.Equal(t, 0, code, stderr)
	ctx := ctxT(t, 10*time.Second)
	s, err := js.Stream(ctx, stream)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(len(prof.Points)), info.State.Msgs)
	msg, err := s.GetLastMsgForSubject(ctx, prefix+".meter1.voltage_l1")
	require.NoError(t, err)
	smp, err := bridge.DecodeJSON(msg.Data)
	require.NoError(t, err)
	assert.Equal(t, "V", smp.Unit)
	assert.Equal(t, bridge.Good, smp.Quality)
}
