package mqtt

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// scriptedClient is the sink's client with the network replaced: it keeps
// what it is asked to publish and fails the retained (metadata) messages
// while failMeta is set.
type scriptedClient struct {
	mu       sync.Mutex
	failMeta error
	got      []item
}

func (c *scriptedClient) connect(context.Context) error { return nil }
func (c *scriptedClient) close(context.Context) error   { return nil }
func (c *scriptedClient) generation() uint64            { return 1 }
func (c *scriptedClient) publishBatch(_ context.Context, items []item, fail func(int, error)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, it := range items {
		if it.retain && c.failMeta != nil {
			fail(i, c.failMeta)
			continue
		}
		it.payload = slices.Clone(it.payload)
		c.got = append(c.got, it)
	}
}

func (c *scriptedClient) take() []item {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := c.got
	c.got = nil
	return got
}

func newBatchSink(t *testing.T) (*Sink, *scriptedClient) {
	t.Helper()
	s, err := New(Config{URL: "tcp://127.0.0.1:1883", Layout: LayoutBatch, MetadataTopic: "m2m/{source}/meta"})
	require.NoError(t, err)
	cli := &scriptedClient{}
	s.cli = cli
	return s, cli
}

// TestMetadataFailureKeepsPermanent checks that a failed metadata publish
// does not turn a sample's permanent failure (its topic too long) into a
// retriable one, which the Bridge would retry for ever.
func TestMetadataFailureKeepsPermanent(t *testing.T) {
	s, cli := newBatchSink(t)
	cli.failMeta = errors.New("broker refused")
	now := time.Now()
	long := strings.Repeat("s", maxTopicLen)
	batch := []bridge.Sample{
		{Source: "meter1", Point: "v", Unit: "V", Value: bridge.Float(1), Time: now, Seq: 1},
		{Source: long, Point: "v", Unit: "V", Value: bridge.Float(2), Time: now, Seq: 2},
		{Source: long, Point: "a", Unit: "A", Value: bridge.Float(3), Time: now, Seq: 3},
		{Source: "meter2", Point: "v", Unit: "V", Value: bridge.Float(4), Time: now, Seq: 4},
	}
	err := s.Write(context.Background(), batch)
	var be *bridge.BatchError
	require.ErrorAs(t, err, &be)
	require.Equal(t, []int{0, 1, 2, 3}, be.Indexes())
	for _, i := range []int{1, 2} {
		assert.True(t, bridge.IsPermanent(be.Failed[i]), "sample %d: %v", i, be.Failed[i])
		assert.ErrorContains(t, be.Failed[i], "more than MQTT allows")
	}
	for _, i := range []int{0, 3} {
		assert.False(t, bridge.IsPermanent(be.Failed[i]), "sample %d: %v", i, be.Failed[i])
		assert.ErrorContains(t, be.Failed[i], "broker refused")
	}
	assert.Empty(t, cli.take(), "no batch message goes out without its metadata")
}

// TestMetadataBound checks the bound on the points the metadata tracks: it
// is on the sum over all sources; a point beyond it is counted and its
// message carries the units itself; and no source's metadata is ever
// republished empty (a retained {"units":{}} would erase it).
func TestMetadataBound(t *testing.T) {
	s, cli := newBatchSink(t)
	now := time.Now()
	n := bridge.MaxReportPoints
	batch := make([]bridge.Sample, n)
	for i := range batch {
		batch[i] = bridge.Sample{Source: "dev" + strconv.Itoa(i), Point: "v", Unit: "V", Value: bridge.Float(1), Time: now, Seq: uint64(i + 1)}
	}
	require.NoError(t, s.Write(context.Background(), batch))
	got := cli.take()
	meta := 0
	for _, it := range got {
		if it.retain {
			meta++
		}
	}
	require.Equal(t, n, meta, "one metadata message per source")
	assert.Zero(t, s.Stats().UntrackedPoints)

	// One point more, of a new source: it is not tracked, its message
	// carries its unit, and nothing else is published.
	late := []bridge.Sample{
		{Source: "late", Point: "a", Unit: "A", Value: bridge.Float(2), Time: now, Seq: 1},
		{Source: "late", Point: "v", Unit: "kV", Value: bridge.Float(3), Time: now, Seq: 2},
	}
	require.NoError(t, s.Write(context.Background(), late))
	got = cli.take()
	require.Len(t, got, 1, "the batch message alone: %v", topics(got))
	assert.False(t, got[0].retain)
	assert.Equal(t, "m2m/late", got[0].topic)
	smps, err := bridge.DecodeBatchJSON(got[0].payload)
	require.NoError(t, err)
	require.Len(t, smps, 2)
	assert.Equal(t, "A", smps[0].Unit)
	assert.Equal(t, "kV", smps[1].Unit)
	assert.Equal(t, uint64(2), s.Stats().UntrackedPoints)

	// A tracked source whose unit changes is still published, with its
	// unit, never empty.
	require.NoError(t, s.Write(context.Background(), []bridge.Sample{{Source: "dev7", Point: "v", Unit: "mV", Value: bridge.Float(1), Time: now, Seq: 9}}))
	got = cli.take()
	require.Len(t, got, 2, "metadata and batch message: %v", topics(got))
	assert.Equal(t, "m2m/dev7/meta", got[0].topic)
	src, units, err := bridge.DecodeMetaJSON(got[0].payload)
	require.NoError(t, err)
	assert.Equal(t, "dev7", src)
	assert.Equal(t, map[string]string{"v": "mV"}, units)
}

func topics(items []item) []string {
	var out []string
	for _, it := range items {
		if len(out) == 5 {
			return append(out, "...")
		}
		out = append(out, it.topic)
	}
	return out
}

// TestMetadataNeverEmpty checks that when a Write brings more points than
// the metadata tracks, the sources already noted keep their units: no
// retained {"units":{}} goes out to erase a source's metadata.
func TestMetadataNeverEmpty(t *testing.T) {
	s, cli := newBatchSink(t)
	now := time.Now()
	n := bridge.MaxReportPoints + 1
	batch := make([]bridge.Sample, n)
	for i := range batch {
		batch[i] = bridge.Sample{Source: "dev" + strconv.Itoa(i), Point: "v", Unit: "V", Value: bridge.Float(1), Time: now, Seq: uint64(i + 1)}
	}
	require.NoError(t, s.Write(context.Background(), batch))
	meta, inline := 0, 0
	for _, it := range cli.take() {
		if !it.retain {
			smps, err := bridge.DecodeBatchJSON(it.payload)
			require.NoError(t, err)
			if smps[0].Unit != "" {
				inline++
			}
			continue
		}
		meta++
		_, units, err := bridge.DecodeMetaJSON(it.payload)
		require.NoError(t, err)
		if !assert.Equal(t, map[string]string{"v": "V"}, units, "%s", it.topic) {
			return
		}
	}
	assert.Equal(t, n-1, meta, "a metadata message per tracked source")
	assert.Equal(t, 1, inline, "the untracked source's message carries its unit")
	assert.Equal(t, uint64(1), s.Stats().UntrackedPoints)
}
