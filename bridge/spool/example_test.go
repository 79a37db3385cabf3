package spool_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/spool"
)

// A sink's writer replays the spool oldest first and acknowledges only what
// the sink delivered; after a restart it resumes where it stopped.
func Example() {
	dir, err := os.MkdirTemp("", "spool-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := spool.Open(dir, spool.Options{MaxBytes: 64 << 20, Full: spool.Block, Sync: spool.SyncEvery})
	if err != nil {
		log.Fatal(err)
	}
	t := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	seq := s.SeqStart()
	var batch []bridge.Sample
	for i := range 5 {
		batch = append(batch, bridge.Sample{
			Source: "meter1", Point: "energy", Unit: "kWh",
			Value: bridge.Float(1000 + float64(i)/10), Time: t.Add(time.Duration(i) * time.Second),
			Seq: seq + uint64(i),
		})
	}
	if err := s.Append(context.Background(), batch); err != nil {
		log.Fatal(err)
	}

	// The sink delivers the first three, then the process stops.
	buf := make([]bridge.Sample, 3)
	n, _ := s.Peek(buf)
	for _, smp := range buf[:n] {
		fmt.Println("delivered", smp.Point, smp.Value, smp.Unit, smp.Time.Format(time.TimeOnly), smp.Seq-seq)
	}
	_ = s.Ack(n)
	_ = s.Close()

	// After a restart the rest is still there.
	s, err = spool.Open(dir, spool.Options{MaxBytes: 64 << 20, Full: spool.Block})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	fmt.Println("held after restart:", s.Len())
	buf = make([]bridge.Sample, 10)
	n, _ = s.Peek(buf)
	for _, smp := range buf[:n] {
		fmt.Println("delivered", smp.Point, smp.Value, smp.Unit, smp.Time.Format(time.TimeOnly), smp.Seq-seq)
	}
	_ = s.Ack(n)
	fmt.Println("held:", s.Len(), "dropped:", s.Dropped())
	// Output:
	// delivered energy 1000 kWh 10:00:00 0
	// delivered energy 1000.1 kWh 10:00:01 1
	// delivered energy 1000.2 kWh 10:00:02 2
	// held after restart: 2
	// delivered energy 1000.3 kWh 10:00:03 3
	// delivered energy 1000.4 kWh 10:00:04 4
	// held: 0 dropped: 0
}
