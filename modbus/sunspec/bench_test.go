package sunspec_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
	"github.com/m2mbridge/m2mbridge/modbus/sunspec"
)

// rtu9600 is Modbus RTU at 9600 baud, 8 data bits, even parity, 1 stop bit.
var rtu9600 = modbus.RTUCost(9600, 8, 1, 1)

// BenchmarkDiscover discovers a three-model inverter (1, 103, 160 with two
// modules) over loopback TCP, and reports what the same requests would
// take on a 9600 baud RTU line under the cost model.
func BenchmarkDiscover(b *testing.B) {
	dev := modbustest.SunSpecInverter(40000, 2)
	dev.Models = dev.Models[:3]
	srv, err := modbustest.NewSunSpecServer(dev)
	require.NoError(b, err)
	b.Cleanup(func() { srv.Close() })
	c, err := modbus.NewClient(modbus.ClientConfig{URL: srv.URL()})
	require.NoError(b, err)
	b.Cleanup(func() { c.Close() })
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := sunspec.Discover(ctx, c, 1, sunspec.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	srv.ResetRequests()
	_, err = sunspec.Discover(ctx, c, 1, sunspec.Options{})
	require.NoError(b, err)
	var cost time.Duration
	regs := 0
	for _, r := range srv.Requests() {
		cost += rtu9600.Cost(r.Table, r.Quantity)
		regs += int(r.Quantity)
	}
	b.ReportMetric(float64(len(srv.Requests())), "requests/discovery")
	b.ReportMetric(float64(regs), "registers/discovery")
	b.ReportMetric(float64(cost)/float64(time.Millisecond), "rtu9600-ms/discovery")
}

// BenchmarkCycle plans and polls the cycle of the three-model inverter: the
// plan's requests, registers and estimated time on a 9600 baud RTU line
// under the cost model (every point read with its scale factor), and the
// time and allocations of a cycle over loopback TCP.
func BenchmarkCycle(b *testing.B) {
	dev := modbustest.SunSpecInverter(40000, 2)
	dev.Models = dev.Models[:3]
	srv, err := modbustest.NewSunSpecServer(dev)
	require.NoError(b, err)
	b.Cleanup(func() { srv.Close() })
	c, err := modbus.NewClient(modbus.ClientConfig{URL: srv.URL()})
	require.NoError(b, err)
	chain, err := sunspec.Discover(context.Background(), c, 1, sunspec.Options{})
	require.NoError(b, err)
	c.Close()
	cost := rtu9600
	d, err := modbus.NewDevice(modbus.DeviceConfig{Name: "inv", Conn: modbus.ClientConfig{URL: srv.URL()}, Unit: 1,
		Profile: chain.Profile("inverter"), Cost: &cost})
	require.NoError(b, err)
	b.Cleanup(func() { d.Close() })
	plan := d.Plan()
	col := &collector{}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := d.PollOnce(ctx, col); err != nil {
			b.Fatal(err)
		}
		col.mu.Lock()
		col.batches = col.batches[:0]
		col.mu.Unlock()
	}
	b.ReportMetric(float64(len(plan.Requests)), "requests/cycle")
	b.ReportMetric(float64(plan.Registers()), "registers/cycle")
	b.ReportMetric(float64(len(chain.Points)), "points")
	b.ReportMetric(float64(plan.Cost)/float64(time.Millisecond), "rtu9600-ms/cycle")
}
