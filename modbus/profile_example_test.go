package modbus_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
)

func ExampleLoadProfile() {
	const doc = `name: boiler
points:
  - {name: flow_temp, table: input, address: 10, type: int16, scale: 0.1, unit: "°C"}
  - {name: burner_on, table: input, address: 12, type: bool, bit: 0}
  - {name: setpoint, table: holding, address: 0, type: float32, unit: "°C", interval: 10s}
`
	p, err := modbus.LoadProfile(strings.NewReader(doc), "boiler.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, pt := range p.Points {
		fmt.Println(pt.Name, pt.Table, pt.Address, pt.Type, pt.Registers(), pt.Interval)
	}

	// Mistakes are reported all at once, with the line of each.
	_, err = modbus.LoadProfile(strings.NewReader(`points:
  - {name: a, table: coil, address: 0, type: float32}
  - {name: b, table: holding, address: 0, type: string}
  - {name: c, table: input, address: 0, type: uint16, scael: 2}
`), "bad.yaml")
	fmt.Println(err)

	_, err = modbus.LoadProfile(strings.NewReader(`points:
  - {name: a, table: coil, address: 0, type: float32}
  - {name: b, table: holding, address: 0, type: string}
`), "bad.yaml")
	fmt.Println(err)
	// Output:
	// flow_temp input 10 int16 1 0s
	// burner_on input 12 bool 1 0s
	// setpoint holding 0 float32 2 10s
	// modbus: bad.yaml:4: field scael not found in type modbus.Point
	// modbus: bad.yaml:2: point 0 "a": type: a coil table holds single bits: type must be bool, not float32
	// modbus: bad.yaml:3: point 1 "b": length: a string needs its length in registers
}

func ExamplePoint_Decode() {
	// Carlo Gavazzi meters send INT32 values least significant word first,
	// in tenths of a volt.
	v := modbus.Point{Name: "voltage", Table: modbus.Input, Type: modbus.Int32,
		WordOrder: modbus.LowFirst, Scale: 0.1, Unit: "V"}
	val, err := v.Decode([]uint16{2304, 0})
	fmt.Println(val, err)

	// Without scale or offset, 64-bit integers stay exact.
	e := modbus.Point{Name: "energy_wh", Table: modbus.Holding, Type: modbus.Uint64}
	val, _ = e.Decode([]uint16{0x0020, 0x0000, 0x0000, 0x0001})
	fmt.Println(val, val.Kind())
	// Output:
	// 230.4 <nil>
	// 9007199254740993 uint
}

func ExamplePoint_Encode() {
	sp := modbus.Point{Name: "setpoint", Table: modbus.Holding, Type: modbus.Int16, Scale: 0.1}
	regs, err := sp.Encode(bridge.Float(21.5))
	fmt.Println(regs, err)
	_, err = sp.Encode(bridge.Float(5000))
	fmt.Println(err)
	// Output:
	// [215] <nil>
	// modbus: point "setpoint": 5000 does not fit int16 with scale 0.1 and offset 0: modbus: value out of range
}

func ExampleBuiltinProfile() {
	fmt.Println(modbus.BuiltinProfiles())
	p, err := modbus.BuiltinProfile("eastron-sdm630")
	if err != nil {
		fmt.Println(err)
		return
	}
	// Plan a cycle of the whole meter on a 9600 baud RS-485 line.
	plan := modbus.NewPlanner(p.Limits, modbus.RTUCost(9600, 8, 0, 1)).Plan(p.Points)
	for _, r := range plan.Requests {
		fmt.Println(r.Table, r.Address, r.Quantity, len(r.Points))
	}
	fmt.Println(plan.Cost.Round(time.Microsecond))
	// Output:
	// [carlo-gavazzi-em24 eastron-sdm630]
	// input 0 80 34
	// input 84 4 2
	// input 200 6 3
	// input 224 2 1
	// input 342 4 2
	// 304.167ms
}
