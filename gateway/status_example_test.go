package gateway_test

import (
	"context"
	"fmt"
	"io"

	"github.com/m2mbridge/m2mbridge/gateway"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// ExampleGateway_Status reads what the status page shows (and /status.json
// serves): each device's state, latest values and read plan, and each
// sink's counters.
func ExampleGateway_Status() {
	srv, err := modbustest.NewServer(&modbus.Profile{Name: "meter", Points: []modbus.Point{
		{Name: "voltage", Table: modbus.Input, Address: 0, Type: modbus.Float32, Unit: "V"},
		{Name: "current", Table: modbus.Input, Address: 2, Type: modbus.Float32, Unit: "A"},
	}})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	cfg, err := gateway.Parse("example.yaml", []byte(`
devices:
  - name: meter1
    modbus: {url: `+srv.URL()+`}
    points:
      - {name: voltage, table: input, address: 0, type: float32, unit: V}
      - {name: current, table: input, address: 2, type: float32, unit: A}
sinks:
  - stdout: {}
`))
	if err != nil {
		panic(err)
	}
	g, err := cfg.Build(gateway.BuildOptions{Once: true, Stdout: io.Discard})
	if err != nil {
		panic(err)
	}
	if err := g.Run(context.Background()); err != nil {
		panic(err)
	}

	st := g.Status()
	for _, d := range st.Devices {
		fmt.Println(d.Name, d.State)
		for _, p := range d.Points {
			fmt.Println(" ", p.Name, p.Quality, p.Unit)
		}
		for _, r := range d.Modbus.Plan.Requests {
			fmt.Printf("  read %s %d-%d: %v\n", r.Table, r.Address, r.Address+r.Quantity-1, r.Points)
		}
	}
	for _, s := range st.Sinks {
		fmt.Println(s.Name, "delivered", s.Delivered)
	}
	// Output:
	// meter1 up
	//   voltage good V
	//   current good A
	//   read input 0-3: [voltage current]
	// stdout delivered 2
}
