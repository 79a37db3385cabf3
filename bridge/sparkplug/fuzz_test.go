package sparkplug

import (
	"encoding/json"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/m2mbridge/m2mbridge/bridge/sparkplug/internal/sppb"
)

// FuzzParseState: any STATE payload is parsed or refused, never a panic;
// what is accepted was JSON and round-trips.
func FuzzParseState(f *testing.F) {
	for _, s := range []string{`{"online":true,"timestamp":1700000000000}`, `{"online":false,"timestamp":0}`, `ONLINE`, `{}`, `{"online":true,"timestamp":1e300}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseState(b)
		if err != nil {
			return
		}
		if !json.Valid(b) || st.timestamp < 0 {
			t.Fatalf("%q parsed as %+v", b, st)
		}
		again, err := parseState(fmt.Appendf(nil, `{"online":%t,"timestamp":%d}`, st.online, st.timestamp))
		if err != nil || again != st {
			t.Fatalf("%q parsed as %+v, which parses back as %+v, %v", b, st, again, err)
		}
	})
}

// FuzzCommandValue: the metrics of any DCMD payload give a value of the
// datatype asked for, or an error; never a panic.
func FuzzCommandValue(f *testing.F) {
	seed := func(pm *sppb.Payload_Metric) {
		b, err := proto.Marshal(&sppb.Payload{Metrics: []*sppb.Payload_Metric{pm}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(&sppb.Payload_Metric{Name: proto.String("a"), Datatype: proto.Uint32(9), Value: &sppb.Payload_Metric_FloatValue{FloatValue: 1.5}})
	seed(&sppb.Payload_Metric{Alias: proto.Uint64(3), Value: &sppb.Payload_Metric_IntValue{IntValue: 0xFFFFFFFF}})
	seed(&sppb.Payload_Metric{Name: proto.String("s"), IsNull: proto.Bool(true)})
	f.Add([]byte{0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p sppb.Payload
		if proto.Unmarshal(b, &p) != nil {
			return
		}
		for _, pm := range p.GetMetrics() {
			for dt := sppb.DataType(0); dt <= sppb.DataType_Text; dt++ {
				v, err := commandValue(pm, dt)
				if err == nil && v.IsNone() {
					t.Fatalf("datatype %s: no value and no error for %v", dt, pm)
				}
			}
		}
	})
}
