package opcua

import (
	"strconv"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
)

// BenchmarkDataChange measures the adapter's own cost of turning a
// notification of 1,000 items into samples (the upstream decoding is not
// included): the allocations per sample should be near zero, one batch
// per notification.
func BenchmarkDataChange(b *testing.B) {
	const n = 1000
	cfg := Config{Name: "plc", Endpoint: "opc.tcp://127.0.0.1:4840"}
	for i := 0; i < n; i++ {
		cfg.Nodes = append(cfg.Nodes, Node{Name: "x" + strconv.Itoa(i), Node: "ns=1;i=" + strconv.Itoa(i+1), Unit: "V"})
	}
	src, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	sess := &session{nodes: make([]liveNode, n)}
	for i := range sess.nodes {
		sess.nodes[i].unit = "V"
	}
	now := time.Now()
	dcn := &ua.DataChangeNotification{}
	for i := 0; i < n; i++ {
		dcn.MonitoredItems = append(dcn.MonitoredItems, &ua.MonitoredItemNotification{
			ClientHandle: uint32(i),
			Value: &ua.DataValue{
				EncodingMask:    ua.DataValueValue | ua.DataValueSourceTimestamp,
				Value:           ua.MustVariant(float64(i)),
				SourceTimestamp: now,
			},
		})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if got := src.dataChange(sess, dcn, now); len(got) != n {
			b.Fatalf("%d samples", len(got))
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(testing.AllocsPerRun(10, func() { src.dataChange(sess, dcn, now) })/n, "allocs/sample")
}
