package kafka_test

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/kafka"
)

func Example() {
	// An in-process fake cluster stands in for Kafka.
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "m2m.meter1"))
	if err != nil {
		panic(err)
	}
	defer cluster.Close()

	sink, err := kafka.New(kafka.Config{
		Brokers:     cluster.ListenAddrs(),
		Topic:       "m2m.{source}",
		Compression: "zstd",
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	err = sink.Write(ctx, []bridge.Sample{{
		Source: "meter1", Point: "voltage_l1", Value: bridge.Float(230.5), Unit: "V",
		Time: time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC),
	}})
	if err != nil {
		panic(err)
	}
	_ = sink.Close(ctx)

	consumer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("m2m.meter1"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		panic(err)
	}
	defer consumer.Close()
	fetches := consumer.PollFetches(ctx)
	fetches.EachRecord(func(r *kgo.Record) {
		fmt.Printf("topic %s\nkey   %s\nvalue %s\n", r.Topic, r.Key, r.Value)
	})
	// Output:
	// topic m2m.meter1
	// key   meter1/voltage_l1
	// value {"source":"meter1","point":"voltage_l1","value":230.5,"unit":"V","quality":"good","time":"2026-11-21T10:00:00.123456789Z"}
}

func ExampleNew_invalid() {
	_, err := kafka.New(kafka.Config{Brokers: []string{"localhost"}, Topic: "m2m.{device}", Compression: "brotli"})
	fmt.Println(err)
	// Output:
	// kafka: brokers[0]: "localhost": address localhost: missing port in address
	// kafka: topic: "m2m.{device}": unknown placeholder {device} (want {source} or {point})
	// kafka: compression: unknown compression "brotli": want none, gzip, snappy, lz4 or zstd
}

func ExampleTopic() {
	topic, _ := kafka.Topic("m2m.{source}.{point}", "plc 1", "temp/°C")
	fmt.Println(topic)
	// Output: m2m.plc_1.temp___C
}
