package influx_test

import (
	"fmt"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/influx"
)

func ExampleEncoder() {
	e := influx.NewEncoder(influx.Format{PointTag: "point", UnitTag: "unit", Field: "value", ByKind: true})
	at := time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC)
	var buf []byte
	for _, s := range []bridge.Sample{
		{Source: "meter1", Point: "voltage_l1", Value: bridge.Float(230.5), Unit: "V", Time: at},
		{Source: "meter1", Point: "energy", Value: bridge.Int(123456), Unit: "Wh", Time: at},
		{Source: "plc 1", Point: "alarm", Value: bridge.Bool(true), Time: at},
		{Source: "plc 1", Point: "state", Value: bridge.String(`running "auto"`), Time: at},
	} {
		buf, _ = e.Append(buf, &s)
	}
	fmt.Print(string(buf))
	// Output:
	// meter1,point=voltage_l1,unit=V value=230.5 1795255200123456789
	// meter1,point=energy,unit=Wh value_int=123456i 1795255200123456789
	// plc\ 1,point=alarm value_bool=true 1795255200123456789
	// plc\ 1,point=state value_string="running \"auto\"" 1795255200123456789
}

func ExampleNew() {
	_, err := influx.New(influx.Config{URL: "tcp://127.0.0.1:8086", API: "v2", Token: "t"})
	fmt.Println(err)
	// Output:
	// influx: url: "tcp://127.0.0.1:8086": scheme "tcp" is not http or https
	// influx: bucket: required for the v2 API
}
