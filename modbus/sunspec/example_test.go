package sunspec_test

import (
	"context"
	"fmt"
	"log"

	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
	"github.com/m2mbridge/m2mbridge/modbus/sunspec"
)

// ExampleDiscover finds the model chain of a simulated inverter and reads
// one point with its scale factor, as a poller would: in one request.
func ExampleDiscover() {
	srv, err := modbustest.NewSunSpecServer(modbustest.SunSpecInverter(40000, 2))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	c, err := modbus.NewClient(modbus.ClientConfig{URL: srv.URL()})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	chain, err := sunspec.Discover(ctx, c, 1, sunspec.Options{})
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range chain.Models {
		fmt.Printf("model %d %s at %d, length %d\n", m.ID, m.Name, m.Address, m.Length)
	}
	d, err := modbus.NewDevice(modbus.DeviceConfig{Name: "inverter1", Conn: modbus.ClientConfig{URL: srv.URL()}, Unit: 1,
		Profile: chain.Profile("inverter1")})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	for _, r := range d.Plan().Requests {
		fmt.Printf("read %d-%d\n", r.Address, r.Last())
	}
	// Output:
	// model 1 common at 40002, length 66
	// model 103 inverter_three_phase at 40070, length 50
	// model 160 mppt at 40122, length 48
	// model 123 controls at 40172, length 24
	// read 40004-40121
	// read 40124-40197
}
