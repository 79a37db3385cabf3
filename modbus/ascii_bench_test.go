package modbus_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// BenchmarkASCIICycleCost plans a poll cycle of the Eastron SDM630 profile
// at 9600 baud under the RTU (8E1) and ASCII (7E1) cost models and reports
// what the cycle costs on the wire under each (ms), their ratio and the
// requests of each plan; ns/op is the planner's time for one plan.
func BenchmarkASCIICycleCost(b *testing.B) {
	p, err := modbus.BuiltinProfile("eastron-sdm630")
	require.NoError(b, err)
	for _, tt := range []struct {
		name string
		url  string
	}{
		{"rtu-9600-8E1", "rtu:///dev/ttyUSB0?speed=9600"},
		{"ascii-9600-7E1", "ascii:///dev/ttyUSB0?speed=9600"},
	} {
		b.Run(tt.name, func(b *testing.B) {
			ep, err := modbus.ParseURL(tt.url)
			require.NoError(b, err)
			pl := modbus.NewPlanner(p.Limits, modbus.EndpointCost(ep))
			var plan modbus.Plan
			b.ReportAllocs()
			for b.Loop() {
				plan = pl.Plan(p.Points)
			}
			b.ReportMetric(float64(plan.Cost)/float64(time.Millisecond), "cycle-ms")
			b.ReportMetric(float64(len(plan.Requests)), "requests")
			b.ReportMetric(float64(plan.Registers()), "registers")
		})
	}
}

// BenchmarkASCIIExchange reads 10 holding registers over loopback from
// modbustest as an RTU-over-TCP and as an ASCII-over-TCP gateway: the CPU
// and allocations of each framing per request (the line itself is not
// simulated).
func BenchmarkASCIIExchange(b *testing.B) {
	p := &modbus.Profile{Name: "regs", Points: []modbus.Point{
		{Name: "r", Table: modbus.Holding, Address: 0, Type: modbus.String, Length: 10},
	}}
	for _, tt := range []struct {
		name string
		f    modbustest.Framing
	}{{"rtu", modbustest.RTU}, {"ascii", modbustest.ASCII}} {
		b.Run(tt.name, func(b *testing.B) {
			s, err := modbustest.NewServer(p, modbustest.WithFraming(tt.f), modbustest.WithLogSize(1))
			require.NoError(b, err)
			defer s.Close()
			c, err := modbus.NewClient(modbus.ClientConfig{URL: s.URL()})
			require.NoError(b, err)
			defer c.Close()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.ReadRegisters(ctx, 1, modbus.Holding, 0, 10); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(c.Stats().Discarded), "discarded")
		})
	}
}
