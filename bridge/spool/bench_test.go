package spool

import (
	"bufio"
	"context"
	"flag"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// backlogFlag sizes BenchmarkReplayRSS. The figure is 1 GiB:
//
//	go test -run '^$' -bench ReplayRSS -benchtime 1x ./bridge/spool -spool.backlog 1073741824
var backlogFlag = flag.Int64("spool.backlog", 64<<20, "bytes of backlog BenchmarkReplayRSS replays")

// benchBatch is a typical batch: 100 readings of a few meters.
func benchBatch(first uint64) []bridge.Sample {
	b := make([]bridge.Sample, 100)
	now := time.Now()
	for i := range b {
		b[i] = bridge.Sample{
			Source: "meter" + strconv.Itoa(i%4), Point: "point_" + strconv.Itoa(i%25), Unit: "kWh",
			Value: bridge.Float(float64(i) * 1.5), Time: now, Seq: first + uint64(i),
		}
	}
	return b
}

// BenchmarkAppend appends batches of 100 samples with an fsync every 100 ms
// (target: at least 500,000 samples/s).
func BenchmarkAppend(b *testing.B) {
	s, err := Open(b.TempDir(), Options{Sync: SyncInterval, Interval: 100 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	batch := benchBatch(1)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range batch {
			batch[j].Seq += uint64(len(batch))
		}
		if err := s.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(s.Bytes())/float64(s.Len()), "bytes/sample")
}

// BenchmarkAppendSyncEvery is the same with an fsync per batch, for
// comparison: it measures the disk's fsync latency more than the spool.
func BenchmarkAppendSyncEvery(b *testing.B) {
	s, err := Open(b.TempDir(), Options{Sync: SyncEvery})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	batch := benchBatch(1)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkReplay reads and acknowledges a backlog in batches of 500, as a
// sink's writer does (target: at least 1,000,000 samples/s).
func BenchmarkReplay(b *testing.B) {
	s, err := Open(b.TempDir(), Options{Sync: SyncInterval})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	fill := func() {
		batch := benchBatch(1)
		for range 2000 { // 200,000 samples
			if err := s.Append(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
	}
	buf := make([]bridge.Sample, 500)
	var samples int
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if s.Len() < int64(len(buf)) {
			b.StopTimer()
			fill()
			b.StartTimer()
		}
		n, err := s.Peek(buf)
		if err != nil || n == 0 {
			b.Fatal(n, err)
		}
		if err := s.Ack(n); err != nil {
			b.Fatal(err)
		}
		samples += n
	}
	b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
}

// procStatus returns VmRSS and VmHWM of this process in bytes (Linux only;
// 0 elsewhere).
func procStatus() (rss, hwm int64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			hwm = n << 10
		}
	}
	return rss, hwm
}

// BenchmarkReplayRSS builds a backlog of -spool.backlog bytes (64 MiB by
// default, 1 GiB for the figure), reopens the spool as after a
// restart, and replays it all, reporting the resident memory: the peak VmRSS
// seen during open and replay, and the process's VmHWM (which includes
// building the backlog and the Go runtime itself).
func BenchmarkReplayRSS(b *testing.B) {
	dir := b.TempDir()
	size := *backlogFlag
	o := Options{MaxBytes: size + size/2 + 64<<20, Sync: SyncInterval}
	ctx := context.Background()
	build := func() int64 {
		s, err := Open(dir, o)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		var seq uint64 = 1
		for s.Bytes() < size {
			if err := s.Append(ctx, benchBatch(seq)); err != nil {
				b.Fatal(err)
			}
			seq += 100
		}
		return s.Len()
	}
	b.ReportAllocs()
	var peak, rss0 int64
	var samples int64
	var openTime time.Duration
	buf := make([]bridge.Sample, 500)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		held := build()
		if i == 0 {
			rss0, _ = procStatus()
		}
		b.StartTimer()
		t0 := time.Now()
		s, err := Open(dir, o)
		if err != nil {
			b.Fatal(err)
		}
		openTime += time.Since(t0)
		if s.Len() != held {
			b.Fatalf("reopened with %d samples, want %d", s.Len(), held)
		}
		for k := 0; ; k++ {
			n, err := s.Peek(buf)
			if err != nil {
				b.Fatal(err)
			}
			if n == 0 {
				break
			}
			samples += int64(n)
			if k%256 == 0 {
				rss, _ := procStatus()
				peak = max(peak, rss)
			}
			if err := s.Ack(n); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	_, hwm := procStatus()
	b.ReportMetric(float64(size)/(1<<20), "backlog-MiB")
	b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(openTime.Milliseconds())/float64(b.N), "open-ms")
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(peak-rss0)/(1<<20), "RSS-growth-MiB")
	b.ReportMetric(float64(hwm)/(1<<20), "VmHWM-MiB")
}
