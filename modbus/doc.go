// Package modbus reads and writes Modbus devices (energy and flow meters,
// PLCs, drives) and turns their registers into [bridge.Sample] values.
//
// # Points and profiles
//
// A [Point] says where a value lives (table, 0-based protocol address) and how
// its registers become a reading (type, word and byte order, scale and
// offset, bit, string length). A [Profile] is a named register map of a kind
// of device: its points plus the device's request [Limits] (most registers
// and bits per request, address ranges that must never be read). Both are
// plain data: load them from YAML with [LoadProfile] or [LoadProfileFile],
// take a built-in one with [BuiltinProfile], or write them as Go literals;
// [Profile.Validate] reports every problem at once, naming the point and the
// field, and with the line when it came from YAML. Durations in YAML are Go
// duration strings ("500ms", "1m30s"); a bare number is an error.
// [Point.Decode] and [Point.Encode] convert between registers and
// [bridge.Value], exactly for 64-bit integers.
//
// # Read planning
//
// A [Planner] groups the points due in a poll cycle into read requests. It
// respects the device's limits, never reads a forbidden address (not even as
// filler between two points of one request), learns holes at run time
// ([Planner.Forbid]) and minimises the cycle's estimated time under a
// [CostModel]:
//
//	cost(plan)    = Σ over requests of cost(request)
//	cost(request) = PerRequest + Quantity × PerRegister    (holding, input)
//	              = PerRequest + Quantity × PerBit         (coil, discrete)
//
// The plan is optimal under that model (a dynamic program over the points
// sorted by address; see [Planner]). It joins points across registers no
// point reads: many devices answer such reads (the Eastron SDM630 does;
// its profile says so with [Limits.FillsGaps]), and a [Device] whose device
// refuses them learns the holes from the Illegal Data Address answers and
// re-plans.
//
// # Cost model
//
// [TCPCost] models Modbus TCP with a round-trip time rtt and a bandwidth B in
// bytes per second. Every ADU carries the 7-byte MBAP header; a read request
// PDU is 5 bytes (function, address, quantity), the response PDU 2 bytes
// (function, byte count) plus the data:
//
//	PerRequest  = rtt + (7+5 + 7+2) / B
//	PerRegister = 2 / B
//	PerBit      = 1 / (8 B)
//
// [RTUCost] models Modbus RTU on a serial line (Modbus over Serial Line
// V1.02, 2.5.1). A character is 1 start bit + data bits + parity bit (0 or 1)
// + stop bits; at baud b it lasts c = bits/b seconds. A read request frame is
// 8 characters (address, function, start address (2), quantity (2), CRC (2)),
// the response 5 characters (address, function, byte count, CRC (2)) plus
// the data, and each frame is preceded by a silence t3.5 of 3.5 characters
// (fixed at 1.75 ms above 19200 baud, 2.5.1.1):
//
//	PerRequest  = (8 + 5) c + 2 t3.5
//	PerRegister = 2 c
//	PerBit      = c / 8
//
// At 9600 baud 8N1 (10 bits), c = 1.04 ms: a request costs about 20.8 ms
// before its data, a register 2.08 ms, so joining two points across a hole is
// worth it while the hole is shorter than about ten registers.
//
// # Polling, buses and writes
//
// A [Client] is one connection to a device or gateway over any transport of
// the upstream client (tcp, rtu, rtuovertcp, rtuoverudp, udp, tcp+tls; see
// [ParseURL]); it connects lazily, reconnects with backoff and absorbs the
// upstream client's quirks (see [ClientConfig]). A [Device] is a polled
// device and a bridge.Source: it plans each cycle, reads, decodes, and emits
// one batch of samples per cycle, Bad samples when a read fails. Devices that
// share a serial line or an RTU gateway share a [Bus] ([NewDevices] makes
// them), which serialises their requests and keeps the line's inter-frame
// silence. [Device.WritePoint] writes holding registers and coils. The
// documentation of Device has the details.
//
// # Concurrency
//
// Points, profiles and plans are values: share them read-only. [Planner],
// [Client], [Bus] and [Device] are safe for concurrent use (a Device's Run is
// called once; WritePoint may be called while it polls).
package modbus
