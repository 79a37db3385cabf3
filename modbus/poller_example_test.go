package modbus_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// ExampleDevice polls a simulated meter once and prints its samples.
func ExampleDevice() {
	profile := &modbus.Profile{Name: "meter", Points: []modbus.Point{
		{Name: "voltage", Table: modbus.Input, Address: 0, Type: modbus.Float32, Unit: "V"},
		{Name: "energy", Table: modbus.Input, Address: 2, Type: modbus.Uint32, Scale: 0.1, Unit: "kWh"},
		{Name: "relay", Table: modbus.Coil, Address: 0, Type: modbus.Bool, Writable: true},
	}}
	sim, _ := modbustest.NewServer(profile)
	defer sim.Close()
	_ = sim.Set("voltage", 230.5)
	_ = sim.Set("energy", 1234.5)
	_ = sim.Set("relay", true)

	meter, err := modbus.NewDevice(modbus.DeviceConfig{
		Name:     "meter1",
		Conn:     modbus.ClientConfig{URL: sim.URL(), Timeout: time.Second},
		Profile:  profile,
		Interval: time.Second,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer meter.Close()
	fmt.Println(len(meter.Plan().Requests), "requests per cycle") // print the Plan to see them

	// Run(ctx, emitter) polls until ctx ends; PollOnce reads once.
	var lines []string
	_ = meter.PollOnce(context.Background(), bridge.EmitterFunc(func(_ context.Context, batch []bridge.Sample) error {
		for _, s := range batch {
			lines = append(lines, fmt.Sprintf("%s %s = %s (%s)", s.Source, s.Point,
				strings.TrimSpace(s.Value.String()+" "+s.Unit), s.Quality))
		}
		return nil
	}))
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}

	// Writes take their turn on the same connection, only to points marked
	// writable, and answer with the value read back.
	s, err := meter.Write(context.Background(), "relay", bridge.Bool(false))
	fmt.Println(s.Point, s.Value, err)
	_, err = meter.Write(context.Background(), "voltage", bridge.Float(1))
	fmt.Println(err)
	// Output:
	// 2 requests per cycle
	// meter1 energy = 1234.5 kWh (good)
	// meter1 relay = true (good)
	// meter1 voltage = 230.5 V (good)
	// relay false <nil>
	// voltage: the input table is read-only in Modbus
}

// ExampleParseURL shows the serial defaults of the Modbus serial line
// specification: even parity and one stop bit, or two stop bits without
// parity; 7 data bits for ASCII, whose frames need no silence between them.
func ExampleParseURL() {
	for _, u := range []string{"rtu:///dev/ttyUSB0", "rtu:///dev/ttyUSB0?speed=9600&parity=none", "tcp://10.0.0.5",
		"ascii:///dev/ttyUSB1?speed=9600"} {
		ep, err := modbus.ParseURL(u)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(ep.Scheme, ep.Address, ep.Speed, ep.Parity, ep.DataBits, ep.StopBits, ep.FrameSilence())
	}
	_, err := modbus.ParseURL("serial:///dev/ttyS0")
	fmt.Println(err)
	// Output:
	// rtu /dev/ttyUSB0 19200 even 8 1 2.005206ms
	// rtu /dev/ttyUSB0 9600 none 8 2 4.010415ms
	// tcp 10.0.0.5:502 19200 even 8 1 2.005206ms
	// ascii /dev/ttyUSB1 9600 even 7 1 0s
	// modbus: url: "serial:///dev/ttyS0": unknown scheme "serial" (want tcp, tcp+tls, udp, rtu, rtuovertcp, rtuoverudp, ascii or asciiovertcp)
}

// ExampleNewDevices puts two meters behind one RTU-over-TCP gateway on a
// shared Bus: their requests take turns on the line.
func ExampleNewDevices() {
	profile := &modbus.Profile{Name: "meter", Points: []modbus.Point{
		{Name: "voltage", Table: modbus.Input, Address: 0, Type: modbus.Float32, Unit: "V"},
	}}
	gateway, _ := modbustest.NewServer(profile, modbustest.WithFraming(modbustest.RTU), modbustest.WithUnits(1, 2))
	defer gateway.Close()
	_ = gateway.Set("voltage", 231.0)

	conn := modbus.ClientConfig{URL: gateway.URL(), Speed: 9600} // rtuovertcp://...; the line behind runs at 9600 baud
	devices, buses, err := modbus.NewDevices(
		modbus.DeviceConfig{Name: "meter1", Unit: 1, Conn: conn, Profile: profile},
		modbus.DeviceConfig{Name: "meter2", Unit: 2, Conn: conn, Profile: profile},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer buses[0].Close()
	for _, d := range devices {
		_ = d.PollOnce(context.Background(), bridge.EmitterFunc(func(_ context.Context, batch []bridge.Sample) error {
			for _, s := range batch {
				fmt.Println(s.Source, s.Point, s.Value, s.Unit)
			}
			return nil
		}))
	}
	st := buses[0].Stats()
	fmt.Println(len(buses), "bus,", st.Requests, "requests,", len(st.Units), "units")
	// Output:
	// meter1 voltage 231 V
	// meter2 voltage 231 V
	// 1 bus, 2 requests, 2 units
}
