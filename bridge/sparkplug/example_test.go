package sparkplug_test

import (
	"context"
	"fmt"
	"log"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/sparkplug"
)

// An edge node is a sink of a bridge: the bridge hands itself to it when
// it is added (its sources' health, its Write for DCMD). Spooling its
// queue keeps what the broker or the primary host missed, which is
// replayed as historical data.
func ExampleNew() {
	spb, err := sparkplug.New(sparkplug.Config{
		URL:           "tcp://127.0.0.1:1883",
		GroupID:       "plant1",
		EdgeNodeID:    "gw1",
		StateDir:      "./state",
		PrimaryHostID: "scada",
		Commands:      true,
	})
	if err != nil {
		log.Fatal(err)
	}
	b := bridge.New(bridge.Options{})
	if err := b.AddSink("sparkplug", spb, bridge.SinkOptions{}); err != nil {
		log.Fatal(err)
	}
	// b.AddSource("meter1", device) ... then:
	_ = b.Run(context.Background())
}

// New reports every mistake of the configuration at once.
func ExampleNew_errors() {
	_, err := sparkplug.New(sparkplug.Config{URL: "tcp://127.0.0.1:1883", GroupID: "plant/1"})
	fmt.Println(err)
	// Output:
	// sparkplug: group_id: "plant/1" holds a reserved character (+ / #) (Sparkplug IDs are topic elements (spec 4.1))
	// sparkplug: edge_node_id: missing (e.g. gw1)
	// sparkplug: state_dir: missing (e.g. ./state) (the bdSeq of the last connection is kept there, so that a restart does not reuse it)
}

func ExampleDeviceID() {
	for _, source := range []string{"meter1", "line/1", "pump#2"} {
		id, _ := sparkplug.DeviceID(source)
		fmt.Println(id)
	}
	// Output:
	// meter1
	// line_1
	// pump_2
}
