package mqtt_test

import (
	"context"
	"fmt"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/mqtt"
)

// A sink is made from plain settings; New checks them and does not dial.
func ExampleNew() {
	sink, err := mqtt.New(mqtt.Config{
		URL:         "tcp://127.0.0.1:1883",
		Topic:       "plant1/{source}/{point}",
		QoS:         1,
		StatusTopic: "plant1/status/gateway",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sink.Close(context.Background())
	fmt.Println(sink.Topic("meter1", "voltage_l1"))
	// Output: plant1/meter1/voltage_l1
}

// Characters MQTT reserves are replaced in source and point names.
func ExampleSink_Topic() {
	sink, _ := mqtt.New(mqtt.Config{URL: "tcp://127.0.0.1:1883"})
	fmt.Println(sink.Topic("line/1", "flow+total#"))

	// A '$' may not begin a topic: those are the broker's.
	sink, _ = mqtt.New(mqtt.Config{URL: "tcp://127.0.0.1:1883", Topic: "{source}/{point}"})
	fmt.Println(sink.Topic("$SYS", "x"))
	// Output:
	// m2m/line_1/flow_total_
	// _SYS/x
}

// Every bad setting is reported at once, at construction.
func ExampleNew_badConfig() {
	_, err := mqtt.New(mqtt.Config{
		URL:   "http://broker:1883",
		Topic: "m2m/{device}/{point}",
		QoS:   3,
	})
	fmt.Println(err)
	// Output:
	// mqtt: url: "http://broker:1883": unknown scheme "http": want tcp, mqtt, ssl, tls, mqtts, ws or wss
	// mqtt: topic: topic template "m2m/{device}/{point}": unknown placeholder {device} at offset 4 (known: {source}, {point})
	// mqtt: qos: 3 is not 0, 1 or 2
}

// Validate reports every problem as a *bridge.FieldError whose path is the
// setting's YAML key, so that a loader can point at the line.
func ExampleConfig_Validate() {
	err := mqtt.Config{URL: "mqqt://broker", Version: 4, CertFile: "client.pem"}.Validate()
	for _, fe := range bridge.FieldErrors(err) {
		fmt.Printf("%s | %s\n", fe.Path, fe.Msg)
		if fe.Hint != "" {
			fmt.Println("  hint:", fe.Hint)
		}
	}
	// Output:
	// url | "mqqt://broker": unknown scheme "mqqt": want tcp, mqtt, ssl, tls, mqtts, ws or wss
	//   hint: did you mean "mqtt"?
	// version | unknown version "4": want 3 (MQTT 3.1.1) or 5 (MQTT 5)
	//   hint: write 3: MQTT 3.1.1 is protocol level 4
	// key_file | required with cert_file
	//   hint: give cert_file and key_file together, or neither
}

// Publishing a batch; Write returns a *bridge.BatchError naming the samples
// that failed.
func ExampleSink_Write() {
	sink, err := mqtt.New(mqtt.Config{URL: "tcp://127.0.0.1:1883", QoS: 1})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	defer sink.Close(ctx)
	if err := sink.Connect(ctx); err != nil {
		fmt.Println("no broker:", err)
		return
	}
	err = sink.Write(ctx, []bridge.Sample{
		{Source: "meter1", Point: "voltage_l1", Value: bridge.Float(230.5), Unit: "V", Time: time.Now()},
	})
	fmt.Println(err)
}
