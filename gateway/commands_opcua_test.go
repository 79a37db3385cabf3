package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gopcua "github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
	natsgo "github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/nodeopcua"
	"github.com/m2mbridge/m2mbridge/internal/testproxy"
)

// opcuaCmdRec is a sink kind that keeps every sample, for the OPC UA
// command test; each gateway it runs has its own device name.
var (
	opcuaCmdRecOnce sync.Once
	opcuaCmdRecMu   sync.Mutex
	opcuaCmdRec     []bridge.Sample
	opcuaCmdRuns    atomic.Int32 // under -count=n each run writes other values
)

func opcuaCmdSamples(source string) []bridge.Sample {
	opcuaCmdRecMu.Lock()
	defer opcuaCmdRecMu.Unlock()
	var ss []bridge.Sample
	for _, s := range opcuaCmdRec {
		if s.Source == source {
			ss = append(ss, s)
		}
	}
	return ss
}

// TestCommandsOPCUAOverNATS is the node-opcua case, through the
// gateway as a user configures it: NATS requests write a Double and an
// Int32 node of node-opcua, in both source modes. The reply carries the
// value read back and the samples carry it; a fraction for the Int32 is
// refused naming the rule, with nothing sent; a node configured writable
// here but read-only on the server is answered ok:false with the server's
// status.
func TestCommandsOPCUAOverNATS(t *testing.T) {
	addr := testproxy.PeerAddr(t, "M2MB_NATS_ADDR", "127.0.0.1:4222", "NATS server")
	srv := nodeopcua.Start(t)
	opcuaCmdRecOnce.Do(func() {
		RegisterSink("opcuacmdrec", SinkKind{Build: func(any, SinkEnv) (bridge.Sink, error) {
			return bridge.SinkFunc(func(_ context.Context, b []bridge.Sample) error {
				opcuaCmdRecMu.Lock()
				opcuaCmdRec = append(opcuaCmdRec, b...)
				opcuaCmdRecMu.Unlock()
				return nil
			}), nil
		}})
	})
	nc, err := natsgo.Connect("nats://" + addr)
	require.NoError(t, err)
	defer nc.Close()

	for _, tc := range []struct {
		mode     string
		setpoint float64 // distinct per mode and run: the samples show this run's write
		mode32   int32
	}{
		{"subscribe", 42.5, 7},
		{"poll", -12.25, -123456},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			b := make([]byte, 6)
			_, _ = rand.Read(b)
			prefix := "m2mcmd" + hex.EncodeToString(b)
			run := opcuaCmdRuns.Add(1)
			dev := fmt.Sprintf("ua_%s_%d", tc.mode, run) // the recorder is shared
			tc.setpoint += float64(run % 40)
			tc.mode32 += run
			cfg, err := Parse("gw.yaml", []byte(fmt.Sprintf(`
devices:
  - name: %s
    interval: 100ms
    opcua: {endpoint: %q, mode: %s}
    nodes:
      - {name: setpoint, node: %q, writable: true, min: -100, max: 100}
      - {name: mode, node: %q, writable: true}
      - {name: locked, node: %q, writable: true}
      - {name: counter, node: %q}
sinks:
  - opcuacmdrec: {}
commands:
  - nats: {url: "nats://%s", subject: "%s.{source}.{point}"}
`, dev, srv.URL(), tc.mode,
				nodeopcua.NodeID(nodeopcua.Setpoint), nodeopcua.NodeID(nodeopcua.Mode),
				nodeopcua.NodeID(nodeopcua.Locked), nodeopcua.NodeID(nodeopcua.Counter),
				addr, prefix)))
			require.NoError(t, err)
			g, err := cfg.Build(BuildOptions{})
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- g.Run(ctx) }()
			defer func() { cancel(); <-done }()

			// The device is up once its samples flow: writes need the session.
			require.Eventually(t, func() bool {
				for _, s := range opcuaCmdSamples(dev) {
					if s.Point == "counter" && s.Quality == bridge.Good {
						return true
					}
				}
				return false
			}, 60*time.Second, 10*time.Millisecond, "samples from node-opcua")

			send := func(point, payload string) map[string]any {
				t.Helper()
				// The command source subscribes once it is connected: ask
				// again while nobody answers, never after an answer could
				// have been lost (that could write twice).
				deadline := time.Now().Add(20 * time.Second)
				for {
					m, err := nc.Request(prefix+"."+dev+"."+point, []byte(payload), 15*time.Second)
					if errors.Is(err, natsgo.ErrNoResponders) && time.Now().Before(deadline) {
						time.Sleep(20 * time.Millisecond) // nothing to wait on: the subscription is not ours
						continue
					}
					require.NoError(t, err, "%s: %s", point, payload)
					var r map[string]any
					require.NoError(t, json.Unmarshal(m.Data, &r), "%s", m.Data)
					return r
				}
			}

			r := send("setpoint", fmt.Sprintf(`{"value": %v, "id": "d1"}`, tc.setpoint))
			assert.Equal(t, "d1", r["id"])
			assert.Equal(t, true, r["ok"], "%v", r)
			assert.Equal(t, tc.setpoint, r["value"], "read back from the server")
			assert.Equal(t, true, r["matched"])
			assert.NotEmpty(t, r["time"])

			// A fraction for the Int32 is refused before anything is sent:
			// the node keeps its value (a truncation would have written 9).
			// A refusal does not count against the rate limit, so the
			// write below may follow at once.
			before := readInt32(t, srv.URL(), nodeopcua.Mode)
			r = send("mode", `{"value": 9.5, "id": "i1"}`)
			assert.Equal(t, "i1", r["id"])
			assert.Equal(t, false, r["ok"], "%v", r)
			assert.Contains(t, r["error"], "9.5 is not an integer, the node is Int32")
			assert.Equal(t, before, readInt32(t, srv.URL(), nodeopcua.Mode), "nothing sent")

			// Int32: the read-back is an integer, and so is its JSON.
			r = send("mode", fmt.Sprintf(`{"value": %d, "id": "i2"}`, tc.mode32))
			assert.Equal(t, "i2", r["id"])
			assert.Equal(t, true, r["ok"], "%v", r)
			assert.Equal(t, float64(tc.mode32), r["value"])
			assert.Equal(t, true, r["matched"])
			assert.Equal(t, tc.mode32, readInt32(t, srv.URL(), nodeopcua.Mode), "the server holds it")

			// Writable here, read-only on the server: the server refuses,
			// and the reply names its status.
			r = send("locked", `{"value": 6, "id": "l1"}`)
			assert.Equal(t, "l1", r["id"])
			assert.Equal(t, false, r["ok"], "%v", r)
			t.Logf("read-only node: %v", r["error"])
			assert.Regexp(t, `BadNotWritable|BadUserAccessDenied`, r["error"])

			// Not writable in the configuration: refused by the gateway.
			r = send("counter", `{"value": 1, "id": "c1"}`)
			assert.Equal(t, false, r["ok"], "%v", r)
			assert.Contains(t, r["error"], "not writable")

			// The samples carry the new values: the read-back sample at once,
			// then the subscription's notification or the next poll.
			require.Eventually(t, func() bool {
				n := map[string]int{}
				for _, s := range opcuaCmdSamples(dev) {
					switch {
					case s.Quality != bridge.Good:
					case s.Point == "setpoint" && s.Value.Float() == tc.setpoint:
						n["setpoint"]++
					case s.Point == "mode" && s.Value.Kind() == bridge.KindInt && s.Value.Float() == float64(tc.mode32):
						n["mode"]++
					}
				}
				return n["setpoint"] >= 2 && n["mode"] >= 2
			}, 10*time.Second, 10*time.Millisecond, "the samples carry the new values")
			for _, s := range opcuaCmdSamples(dev) {
				if s.Point == "locked" {
					assert.Equal(t, 5.0, s.Value.Float(), "the read-only node kept its value")
				}
			}

			got := map[string]bridge.WriteStats{}
			for _, w := range g.Bridge().Stats().Writes {
				if w.Source == dev {
					got[w.Point] = w
				}
			}
			assert.Equal(t, map[string]bridge.WriteStats{
				"setpoint": {Source: dev, Point: "setpoint", Accepted: 1},
				"mode":     {Source: dev, Point: "mode", Accepted: 1, Refused: 1},
				"locked":   {Source: dev, Point: "locked", Failed: 1},
				"counter":  {Source: dev, Point: "counter", Refused: 1},
			}, got)
		})
	}
}

// readInt32 reads the Int32 variable name of node-opcua with a client of
// its own, not the gateway's: what the server holds.
func readInt32(t *testing.T, endpoint, name string) int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := gopcua.NewClient(endpoint)
	require.NoError(t, err)
	require.NoError(t, c.Connect(ctx))
	defer c.Close(ctx)
	ns, err := c.FindNamespace(ctx, nodeopcua.Namespace)
	require.NoError(t, err)
	id := ua.NewStringNodeID(ns, name)
	res, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: id, AttributeID: ua.AttributeIDValue}}})
	require.NoError(t, err)
	require.Len(t, res.Results, 1)
	require.Equal(t, ua.StatusOK, res.Results[0].Status)
	v, ok := res.Results[0].Value.Value().(int32)
	require.True(t, ok, "%T", res.Results[0].Value.Value())
	return v
}
