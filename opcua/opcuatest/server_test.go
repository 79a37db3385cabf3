package opcuatest_test

import (
	"context"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/opcua/opcuatest"
)

func connect(t *testing.T, ctx context.Context, url string) *opcua.Client {
	t.Helper()
	c, err := opcua.NewClient(url, opcua.AutoReconnect(false), opcua.RequestTimeout(3*time.Second))
	require.NoError(t, err)
	require.NoError(t, c.Connect(ctx))
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c.Close(cctx)
	})
	return c
}

func read(t *testing.T, ctx context.Context, c *opcua.Client, ids ...string) []*ua.DataValue {
	t.Helper()
	req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnBoth}
	for _, s := range ids {
		req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: ua.MustParseNodeID(s), AttributeID: ua.AttributeIDValue})
	}
	res, err := c.Read(ctx, req)
	require.NoError(t, err)
	require.Len(t, res.Results, len(ids))
	return res.Results
}

func TestServerServesMovingValues(t *testing.T) {
	srv, err := opcuatest.New(opcuatest.Options{Interval: 20 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := connect(t, ctx, srv.URL())

	assert.Contains(t, c.Namespaces(), opcuatest.NamespaceURI)
	first := read(t, ctx, c, opcuatest.NodeID(opcuatest.Counter))[0]
	require.Equal(t, ua.StatusOK, first.Status)
	require.False(t, first.SourceTimestamp.IsZero(), "SourceTimestamp is set")
	require.Eventually(t, func() bool {
		dv := read(t, ctx, c, opcuatest.NodeID(opcuatest.Counter))[0]
		return dv.Value.Uint() > first.Value.Uint()
	}, 5*time.Second, 10*time.Millisecond)

	res := read(t, ctx, c, opcuatest.NodeID(opcuatest.Fault), opcuatest.NodeID(opcuatest.Stale),
		"i=11705", opcuatest.NodeID(opcuatest.Temperature)+".EngineeringUnits")
	assert.Equal(t, ua.StatusBadSensorFailure, res[0].Status)
	assert.Equal(t, ua.StatusUncertainLastUsableValue, res[1].Status)
	assert.Equal(t, uint32(opcuatest.DefaultMaxNodesPerRead), res[2].Value.Value())
	eu, ok := res[3].Value.ExtensionObject().Value.(*ua.EUInformation)
	require.True(t, ok, "EngineeringUnits is an EUInformation, got %T", res[3].Value.Value())
	assert.Equal(t, opcuatest.TemperatureUnit, eu.DisplayName.Text)

	// The operation limit is enforced.
	ids := make([]*ua.ReadValueID, opcuatest.DefaultMaxNodesPerRead+1)
	for i := range ids {
		ids[i] = &ua.ReadValueID{NodeID: ua.MustParseNodeID(opcuatest.NodeID(opcuatest.Ramp)), AttributeID: ua.AttributeIDValue}
	}
	_, err = c.Read(ctx, &ua.ReadRequest{NodesToRead: ids})
	require.ErrorIs(t, err, ua.StatusBadTooManyOperations)
	assert.GreaterOrEqual(t, srv.Reads(), uint64(4))
}

func TestServerSubscriptionAndHeartbeat(t *testing.T) {
	srv, err := opcuatest.New(opcuatest.Options{Interval: -1})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := connect(t, ctx, srv.URL())

	ch := make(chan *opcua.PublishNotificationData, 16)
	sub, err := c.Subscribe(ctx, &opcua.SubscriptionParameters{Interval: 20 * time.Millisecond}, ch)
	require.NoError(t, err)
	_, err = sub.Monitor(ctx, ua.TimestampsToReturnBoth,
		opcua.NewMonitoredItemCreateRequestWithDefaults(ua.MustParseNodeID(opcuatest.NodeID(opcuatest.Counter)), ua.AttributeIDValue, 1),
		opcua.NewMonitoredItemCreateRequestWithDefaults(ua.NewNumericNodeID(0, id.Server_ServerStatus_CurrentTime), ua.AttributeIDValue, 2))
	require.NoError(t, err)

	seen := map[uint32]int{}
	var lastCounter uint64
	deadline := time.After(10 * time.Second)
	for seen[1] < 3 || seen[2] < 2 {
		srv.Tick()
		select {
		case n := <-ch:
			require.NoError(t, n.Error)
			dcn, ok := n.Value.(*ua.DataChangeNotification)
			require.True(t, ok)
			for _, it := range dcn.MonitoredItems {
				seen[it.ClientHandle]++
				if it.ClientHandle == 1 {
					require.False(t, it.Value.SourceTimestamp.IsZero())
					lastCounter = it.Value.Value.Uint()
				}
			}
		case <-deadline:
			t.Fatalf("notifications seen: %v", seen)
		}
	}
	assert.Positive(t, lastCounter)
}

func TestServerFaults(t *testing.T) {
	srv, err := opcuatest.New(opcuatest.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c := connect(t, ctx, srv.URL())
	require.Eventually(t, func() bool { return srv.Connections() == 1 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, 1, srv.DropConnections())
	_, err = c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: ua.MustParseNodeID(opcuatest.NodeID(opcuatest.Ramp)), AttributeID: ua.AttributeIDValue}}})
	require.Error(t, err, "a dropped connection fails")

	// A restart keeps the address.
	url := srv.URL()
	require.NoError(t, srv.Stop(ctx))
	_, err = opcua.NewClient(url)
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	c2 := connect(t, ctx, url)
	read(t, ctx, c2, opcuatest.NodeID(opcuatest.Ramp))
	require.NoError(t, srv.Restart(ctx))
	assert.Equal(t, uint64(3), srv.Starts())
	c3 := connect(t, ctx, url)
	read(t, ctx, c3, opcuatest.NodeID(opcuatest.Ramp))

	// Close is bounded even with a client connected.
	start := time.Now()
	require.NoError(t, srv.Close())
	assert.Less(t, time.Since(start), 3*time.Second)
}

func TestServerDeleteUnknownMonitoredItem(t *testing.T) {
	srv, err := opcuatest.New(opcuatest.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := connect(t, ctx, srv.URL())
	sub, err := c.Subscribe(ctx, &opcua.SubscriptionParameters{Interval: 50 * time.Millisecond}, make(chan *opcua.PublishNotificationData, 16))
	require.NoError(t, err)
	res, err := sub.Monitor(ctx, ua.TimestampsToReturnBoth,
		opcua.NewMonitoredItemCreateRequestWithDefaults(ua.MustParseNodeID(opcuatest.NodeID(opcuatest.Counter)), ua.AttributeIDValue, 1))
	require.NoError(t, err)
	del, err := sub.Unmonitor(ctx, res.Results[0].MonitoredItemID, 999999)
	require.NoError(t, err)
	assert.Equal(t, []ua.StatusCode{ua.StatusOK, ua.StatusBadMonitoredItemIDInvalid}, del.Results)
	assert.Equal(t, uint64(1), srv.CreateMonitoredItemsCalls())
}

func TestServerInjectedStatusAndDelay(t *testing.T) {
	srv, err := opcuatest.New(opcuatest.Options{Interval: -1})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := connect(t, ctx, srv.URL())

	require.NoError(t, srv.SetStatus(opcuatest.Ramp, ua.StatusBadOutOfService))
	srv.Tick()
	dv := read(t, ctx, c, opcuatest.NodeID(opcuatest.Ramp))[0]
	assert.Equal(t, ua.StatusBadOutOfService, dv.Status)
	require.NoError(t, srv.SetStatus(opcuatest.Ramp, ua.StatusOK))
	dv = read(t, ctx, c, opcuatest.NodeID(opcuatest.Ramp))[0]
	assert.Equal(t, ua.StatusOK, dv.Status)
	require.Error(t, srv.SetStatus("Nope", ua.StatusOK))

	srv.Delay(150 * time.Millisecond)
	start := time.Now()
	read(t, ctx, c, opcuatest.NodeID(opcuatest.Ramp))
	assert.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "request and response each held 150ms")
	srv.Delay(0)
}
