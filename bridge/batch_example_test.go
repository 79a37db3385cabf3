package bridge_test

import (
	"fmt"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// A sink in the batch layout cuts its batch into messages with NextBatch
// (here: two poll cycles of one meter) and encodes each with
// AppendBatchJSON, the units left out because a metadata message
// (AppendMetaJSON) carries them; a consumer decodes the messages and joins
// the units by point.
func ExampleAppendBatchJSON() {
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	batch := []bridge.Sample{
		{Source: "meter1", Point: "voltage_l1", Value: bridge.Float(230.5), Unit: "V", Time: t0, Seq: 7},
		{Source: "meter1", Point: "frequency", Value: bridge.Float(50.01), Unit: "Hz", Time: t0, Seq: 8},
		{Source: "meter1", Point: "voltage_l1", Value: bridge.Float(231.5), Unit: "V", Time: t0.Add(time.Second), Seq: 9},
		bridge.BadSample("meter1", "frequency", t0.Add(time.Second), fmt.Errorf("timeout")),
	}
	batch[3].Seq = 10
	fmt.Printf("%s\n", bridge.AppendMetaJSON(nil, "meter1", map[string]string{"voltage_l1": "V", "frequency": "Hz"}))
	for len(batch) > 0 {
		n := bridge.NextBatch(batch, 0)
		fmt.Printf("%s\n", bridge.AppendBatchJSON(nil, batch[:n], false))
		batch = batch[n:]
	}
	// Output:
	// {"source":"meter1","units":{"frequency":"Hz","voltage_l1":"V"}}
	// {"source":"meter1","time":"2026-11-21T10:00:00.000000000Z","seq":[7,8],"points":[{"point":"voltage_l1","value":230.5},{"point":"frequency","value":50.01}]}
	// {"source":"meter1","time":"2026-11-21T10:00:01.000000000Z","seq":[9,10],"points":[{"point":"voltage_l1","value":231.5},{"point":"frequency","quality":"bad","error":"timeout"}]}
}
