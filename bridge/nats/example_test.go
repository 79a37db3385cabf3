package nats_test

import (
	"context"
	"fmt"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/nats"
)

// A sink is made from plain settings; New checks them and does not dial.
func ExampleNew() {
	sink, err := nats.New(nats.Config{
		URL:          "nats://127.0.0.1:4222",
		Subject:      "plant1.{source}.{point}",
		JetStream:    true,
		Stream:       "PLANT1",
		CreateStream: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sink.Close(context.Background())
	fmt.Println(sink.Subject("meter1", "voltage_l1"))
	fmt.Println(sink.StreamSubject())
	// Output:
	// plant1.meter1.voltage_l1
	// plant1.*.*
}

// Characters NATS forbids in a token are replaced in source and point names.
func ExampleSink_Subject() {
	sink, _ := nats.New(nats.Config{URL: "nats://127.0.0.1:4222"})
	fmt.Println(sink.Subject("line 1.meter*", "flow>total"))
	fmt.Println(sink.Subject("", "x"))
	// Output:
	// m2m.line_1_meter_.flow_total
	// m2m._.x
}

// Every bad setting is reported at once, at construction.
func ExampleNew_badConfig() {
	_, err := nats.New(nats.Config{
		URL:     "http://127.0.0.1:4222",
		Subject: "m2m.{device}.{point}",
		Stream:  "M2M",
	})
	fmt.Println(err)
	// Output:
	// nats: bad config: url "http://127.0.0.1:4222": unknown scheme "http" (want nats, tls, ws or wss)
	// subject: subject template "m2m.{device}.{point}": unknown placeholder {device} at offset 4 (known: {source}, {point})
	// stream "M2M": needs jetstream: true
}

// Publishing a batch to JetStream; Write returns a *bridge.BatchError
// naming the samples that failed.
func ExampleSink_Write() {
	sink, err := nats.New(nats.Config{URL: "nats://127.0.0.1:4222", JetStream: true, Stream: "M2M", CreateStream: true})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	defer sink.Close(ctx)
	if err := sink.Connect(ctx); err != nil {
		fmt.Println("no server:", err)
		return
	}
	err = sink.Write(ctx, []bridge.Sample{
		{Source: "meter1", Point: "voltage_l1", Value: bridge.Float(230.5), Unit: "V", Time: time.Now()},
	})
	fmt.Println(err)
}
