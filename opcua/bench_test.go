package opcua_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/nodeopcua"
	"github.com/m2mbridge/m2mbridge/opcua"
	"github.com/m2mbridge/m2mbridge/opcua/opcuatest"
)

// countingEmitter counts what it is given without keeping it.
type countingEmitter struct {
	samples, batches, bad atomic.Int64
	minBatch              int
	full                  atomic.Int64 // batches of at least minBatch samples
}

func (c *countingEmitter) Emit(_ context.Context, b []bridge.Sample) error {
	c.batches.Add(1)
	c.samples.Add(int64(len(b)))
	if len(b) >= c.minBatch {
		c.full.Add(1)
	}
	for i := range b {
		if b[i].Quality != bridge.Good {
			c.bad.Add(1)
		}
	}
	return nil
}

func waitCount(b *testing.B, what string, v *atomic.Int64, want int64, timeout time.Duration) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for v.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("%s: %d of %d within %s", what, v.Load(), want, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// benchSubscribe subscribes to n nodes of url changing every 100ms and
// measures b.N delivered samples. allocs/op is per sample and, with an
// in-process server, includes the server's own allocations; the
// "client-allocs/sample" metric is the process's allocations per sample
// too, reported separately so that it can be compared with the out-of-process
// (node-opcua) run, where it is the client's alone.
func benchSubscribe(b *testing.B, url string, ids func(int) string, n int) {
	nodes := make([]opcua.Node, n)
	for i := range nodes {
		nodes[i] = opcua.Node{Name: fmt.Sprintf("n%d", i), Node: ids(i)}
	}
	src, err := opcua.New(opcua.Config{Name: "bench", Endpoint: url, Interval: 100 * time.Millisecond, Watchdog: 10 * time.Second, Nodes: nodes})
	if err != nil {
		b.Fatal(err)
	}
	em := &countingEmitter{minBatch: n}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, em) }()
	defer func() {
		cancel()
		<-done
	}()
	waitCount(b, "warm-up samples", &em.samples, int64(3*n), 60*time.Second)

	// Start at a publish boundary and wait for whole publishes, so that the
	// rate is not skewed by where in a 100ms cycle the timer starts.
	batches := em.batches.Load()
	for em.batches.Load() == batches {
		time.Sleep(time.Millisecond)
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := em.samples.Load()
	want := (int64(b.N) + int64(n) - 1) / int64(n) * int64(n)
	b.ReportAllocs()
	b.ResetTimer()
	waitCount(b, "samples", &em.samples, start+want, time.Duration(b.N/1000+60)*time.Second)
	b.StopTimer()
	runtime.ReadMemStats(&m1)
	got := em.samples.Load() - start
	b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(got), "process-allocs/sample")
	if bad := em.bad.Load(); bad > 0 {
		b.Fatalf("%d Bad samples", bad)
	}
}

// BenchmarkSubscribe1000Nodes: 1,000 nodes changing every 100ms on the
// in-process server, so 10,000 samples/s are offered.
func BenchmarkSubscribe1000Nodes(b *testing.B) {
	srv, err := opcuatest.New(opcuatest.Options{Interval: 100 * time.Millisecond, Extra: 1000})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	benchSubscribe(b, srv.URL(), func(i int) string { return opcuatest.NodeID(opcuatest.ExtraName(i)) }, 1000)
}

// BenchmarkSubscribe1000NodesNodeOPCUA is the same against node-opcua (an
// out-of-process server: the allocations are the client's alone). It skips
// when node-opcua is not installed.
func BenchmarkSubscribe1000NodesNodeOPCUA(b *testing.B) {
	srv := nodeopcua.Start(b, "EXTRA=1000", "TICK_MS=100")
	benchSubscribe(b, srv.URL(), func(i int) string { return nodeopcua.NodeID(nodeopcua.ExtraName(i)) }, 1000)
}

// BenchmarkPoll5000Nodes polls 5,000 nodes in chunks of the server's
// MaxNodesPerRead (100): one op is one poll cycle, so ns/op is the cycle
// time; reads/cycle counts the Read requests.
func BenchmarkPoll5000Nodes(b *testing.B) {
	const n = 5000
	srv, err := opcuatest.New(opcuatest.Options{Interval: 100 * time.Millisecond, Extra: n})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	nodes := make([]opcua.Node, n)
	for i := range nodes {
		nodes[i] = opcua.Node{Name: opcuatest.ExtraName(i), Node: opcuatest.NodeID(opcuatest.ExtraName(i))}
	}
	src, err := opcua.New(opcua.Config{Name: "bench", Endpoint: srv.URL(), Mode: opcua.Poll, Interval: time.Millisecond, Nodes: nodes})
	if err != nil {
		b.Fatal(err)
	}
	em := &countingEmitter{minBatch: n}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, em) }()
	defer func() {
		cancel()
		<-done
	}()
	waitCount(b, "warm-up cycles", &em.full, 2, 60*time.Second)
	start, reads0 := em.full.Load(), srv.Reads()
	b.ReportAllocs()
	b.ResetTimer()
	waitCount(b, "cycles", &em.full, start+int64(b.N), time.Duration(b.N)*10*time.Second+30*time.Second)
	b.StopTimer()
	cycles := em.full.Load() - start
	reads := srv.Reads() - reads0
	b.ReportMetric(float64(reads)/float64(cycles), "reads/cycle")
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(cycles), "ms/cycle")
	b.ReportMetric(float64(cycles*n)/b.Elapsed().Seconds(), "samples/s")
	if bad := em.bad.Load(); bad > 0 {
		b.Fatalf("%d Bad samples", bad)
	}
}
