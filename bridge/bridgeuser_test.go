package bridge_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// userSink records the bridge it was handed, and checks that the bridge
// can be called from UseBridge (no lock of the bridge is held).
type userSink struct {
	bridge.SinkFunc
	b     *bridge.Bridge
	name  string
	calls int
	sinks int
}

func (u *userSink) UseBridge(b *bridge.Bridge, name string) {
	u.b, u.name = b, name
	u.calls++
	u.sinks = len(b.Stats().Sinks)
}

func TestBridgeUser(t *testing.T) {
	b := bridge.New(bridge.Options{})
	u := &userSink{SinkFunc: func(context.Context, []bridge.Sample) error { return nil }}
	require.NoError(t, b.AddSink("first", bridge.SinkFunc(func(context.Context, []bridge.Sample) error { return nil }), bridge.SinkOptions{}))
	require.NoError(t, b.AddSink("edge", u, bridge.SinkOptions{}))
	require.Same(t, b, u.b)
	require.Equal(t, "edge", u.name)
	require.Equal(t, 1, u.calls)
	require.Equal(t, 2, u.sinks, "UseBridge is called once the sink is added")

	// Source finds a source by its name.
	src := bridge.SourceFunc(func(context.Context, bridge.Emitter) error { return nil })
	require.NoError(t, b.AddSource("meter1", src))
	require.NotNil(t, b.Source("meter1"))
	require.Nil(t, b.Source("meter2"))

	// A sink that is refused is not handed the bridge.
	v := &userSink{SinkFunc: u.SinkFunc}
	require.Error(t, b.AddSink("edge", v, bridge.SinkOptions{}))
	require.Zero(t, v.calls)
}
