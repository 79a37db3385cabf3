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
	// nats: url: "http://127.0.0.1:4222": unknown scheme "http": want nats, tls, ws or wss
	// nats: subject: subject template "m2m.{device}.{point}": unknown placeholder {device} at offset 4 (known: {source}, {point})
	// nats: stream: needs jetstream: true (set jetstream: true, or remove stream)
}

// Validate reports every problem as a *bridge.FieldError whose path is the
// setting's YAML key, so that a loader can point at the line.
func ExampleConfig_Validate() {
	err := nats.Config{URL: "nast://127.0.0.1:4222", Username: "bridge", AckTimeout: time.Hour}.Validate()
	for _, fe := range bridge.FieldErrors(err) {
		fmt.Printf("%s | %s\n", fe.Path, fe.Msg)
		if fe.Hint != "" {
			fmt.Println("  hint:", fe.Hint)
		}
	}
	// Output:
	// url | "nast://127.0.0.1:4222": unknown scheme "nast": want nats, tls, ws or wss
	//   hint: did you mean "nats"?
	// ack_timeout | 1h0m0s is outside 100ms to 10m0s
	// password | empty, but username is set
	//   hint: password_env or password_file must name a variable or file that holds the password; one that is set but empty gives an empty password
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
