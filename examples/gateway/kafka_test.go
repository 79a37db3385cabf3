package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// TestRunKafka runs the gateway into Kafka: franz-go's kfake cluster,
// which speaks the Kafka wire protocol, in the test process; the records
// are read back with a consumer.
func TestRunKafka(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	require.NoError(t, err)
	t.Cleanup(cluster.Close)
	addr := cluster.ListenAddrs()[0]
	srv, prof := sdm630(t)
	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`
devices:
  - name: meter1
    modbus: {url: %s}
    profile: eastron-sdm630
sinks:
  - kafka: {brokers: ["%s"], topic: "m2m.gateway", auto_create_topics: true}
`, srv.URL(), addr))
	code, _, stderr := runGateway(t, dir, nil, "-once")
	require.Equal(t, 0, code, stderr)

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("m2m.gateway"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	got := map[string]bridge.Sample{}
	ctx := ctxT(t, 30*time.Second)
	for len(got) < len(prof.Points) && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		for _, r := range fs.Records() {
			s, err := bridge.DecodeJSON(r.Value)
			require.NoError(t, err)
			assert.Equal(t, s.Source+"/"+s.Point, string(r.Key))
			got[s.Point] = s
		}
	}
	require.Len(t, got, len(prof.Points))
	for _, pt := range prof.Points {
		assert.Equal(t, bridge.Good, got[pt.Name].Quality, pt.Name)
	}
}
