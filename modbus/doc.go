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
// # Scale factors and not-implemented values
//
// A point may take its power-of-ten scale from another register
// ([Point.ScaleFactor], SunSpec's sunssf): value = raw × 10^sf. The
// planner treats this as a constraint, not a hope: every request that
// carries such a point also reads its factor (a factor shared by points
// far apart is read again in each request that needs it), so a factor that
// changes at run time is never applied to a value from another response.
// A point farther from its factor than one request reaches is unplanned,
// and [ValidatePoints] refuses it. A write of such a point reads the factor
// first, with the link held, and computes the raw value under it.
// [Point.NotImplemented] names the raw value by which a device says it has
// no reading (min, max, zero, nan, eui48): such a read yields no sample,
// or a Bad one with [DeviceConfig.ReportNotImplemented], never a number.
// Package sunspec builds such points from the SunSpec model definitions.
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
// [ASCIICost] models Modbus ASCII (2.5.2): every byte is sent as two hex
// characters, between ':' and CR LF, with a one-byte LRC instead of the CRC,
// and frames are delimited by characters, not by silence. A read request is
// 1 + 2 × (1 + 5 + 1) + 2 = 17 characters, the response 1 + 2 × (1 + 2 + 1)
// + 2 = 11 characters plus the data:
//
//	PerRequest  = (17 + 11) c
//	PerRegister = 4 c
//	PerBit      = c / 4
//
// At 9600 baud 7E1 (10 bits, the ASCII default), a request costs about
// 29.2 ms before its data and a register 4.17 ms: holes are worth reading
// while shorter than about seven registers. [EndpointCost] picks the model
// of a device URL; a [Device] plans with it.
//
// # Polling, buses and writes
//
// A [Client] is one connection to a device or gateway over Modbus TCP, UDP
// or TLS (MBAP), RTU (rtu, rtuovertcp, rtuoverudp) or ASCII (ascii,
// asciiovertcp) — see [ParseURL]; it connects lazily, reconnects with
// backoff, matches every reply to its request and can abandon a request on
// the wire (see [Client] for why it speaks the protocol over its own
// transports rather than the upstream client's). A [Device] is a polled
// device and a bridge.Source: it plans each cycle, reads, decodes, and emits
// one batch of samples per cycle, Bad samples when a read fails. Devices that
// share a serial line or an RTU or ASCII gateway share a [Bus] ([NewDevices]
// makes them), which serialises their requests and keeps the line's
// inter-frame silence. [Device.Write] writes holding registers and coils (see Writes).
// The documentation of Device has the details.
//
// # Writes
//
// A [Device] is a bridge.Writer: bridge.Bridge.Write routes commands from
// the IoT side to [Device.Write] (and Go code may call it, or
// [Device.WritePoint], directly: the same rules apply). Writes are denied by
// default. A point accepts them only with writable: true, and only in the
// holding and coil tables (input registers and discrete inputs are
// read-only in Modbus, and writable there is a configuration error):
//
//	points:
//	  - {name: setpoint, table: holding, address: 100, type: int16, scale: 0.1, writable: true, min: 0, max: 80}
//	  - {name: mode, table: holding, address: 101, type: uint16, writable: true, allowed: [0, 1, 2]}
//	  - {name: pump, table: coil, address: 0, type: bool, writable: true}
//
// Before anything is sent, the value is checked ([Point.CheckWrite]): its
// kind (a number for a number, a bool or 0/1 for a bool, a string for a
// string), the type's range with no truncation, rounding or wrap-around
// (21.5 for an int16, 70000 for a uint16 and -1 for a uint are refused),
// min, max and allowed in engineering units, and for a scaled integer
// that the inverse of scale and offset gives an integral register value
// (21.55 at scale 0.1 is not representable). A refusal is a
// [*RefusalError] — "setpoint: 95 is above max 80" — wrapping
// bridge.ErrUnknownPoint, ErrNotWritable, ErrWrongType or ErrOutOfRange.
//
// The write itself is FC 06 or 16 for holding registers, in the point's
// word and byte order, and FC 05 for a coil; a bool in one bit of a
// holding register is a read-modify-write (FC 03, then FC 06) with the
// link held across both requests, so that no poll or other request of the
// process — on a shared [Bus], of any device — comes between the read and
// the write. Then the point is read back (same registers) and Write
// returns that sample, Good, which the bridge emits at once. A timeout or
// an exception at the device is returned as the [*OpError] that names it,
// not as a refusal, and is not retried (only Busy and Acknowledge are, as
// for reads). Writes of one Device are serialised with each other and
// take their turn on the link with the polls.
//
// # Configuration and its ranges
//
// [ClientConfig], [DeviceConfig], [Point] and [Limits] load from YAML with
// the keys of their tags and each has a Validate method that returns every
// problem at once as *bridge.FieldError values, with paths in YAML keys
// relative to the value ("timeout", "modbus.speed", "points[3].address");
// [NewClient] and [NewDevice] run the same checks. The ranges:
//
//	url               required; no user information; printed redacted in errors
//	speed             one of StandardBaudRates (50 ... 4000000; 96000 or 12345 are refused); default 19200
//	parity            none | even | odd (N, E, O); default even
//	data_bits         5-8, default 8;   stop_bits 1-2, default 1 with parity, 2 without
//	                  ascii, asciiovertcp: data_bits default 7; 7E1, 7O1, 7N2, or 8 data bits
//	timeout           1ms-10m; default 1s (500ms for rtu); on rtu and ascii
//	                  serial lines the request's and its longest reply's
//	                  transfer time at the line's speed is added
//	min_backoff       1ms-24h, default 100ms;  max_backoff 1ms-24h, default 30s; min <= max
//	late_reply_wait   1ms-1h; default 3 × timeout (serial-line links: RTU and ASCII)
//	inter_char_timeout 1ms-1m; default 1s (ascii and asciiovertcp only)
//	unit              0-255 on tcp, tcp+tls, udp (0 is a unit like any other);
//	                  1-247 on rtu, rtuovertcp, rtuoverudp, ascii, asciiovertcp
//	                  (0 is broadcast, 248-255 reserved)
//	interval          10ms-24h, default 1s (a point's own interval likewise)
//	max_busy_retries  -1 (none) to 10, default 3;  busy_retry_delay 1ms-10s, default 20ms
//	limits            max_registers 1-125, max_bits 1-2000 (0 = those); forbidden first <= last
//	scale, offset     finite; scale not negative (0 = 1); a string's length 1-125; bit 0-15
//	writable          false (default) or true; only in the holding and coil tables
//	min, max, allowed only with writable, on a number; finite; min <= max; within the
//	                  type after scale and offset; each allowed value one the point can hold
//
// Enumerations accept documented aliases: tables holding_registers,
// input_registers, coils, discrete_inputs (Telegraf's names); types in any
// case and FLOAT32-IEEE, FLOAT64-IEEE, BIT. Telegraf's byte_order spellings
// (ABCD, CDAB, BADC, DCBA ...) set two keys at once and are refused with the
// word_order and byte_order to write; an address that fails validation and
// looks like a Modicon register number (40001+, 30001+, 10001+) gets a hint
// with its protocol address.
//
// # Serial-line links (RTU and ASCII) and late replies
//
// The serial-line framings have no transaction ids, so the adapter runs its
// own transport on rtu, rtuovertcp, rtuoverudp, ascii and asciiovertcp
// links: it discards buffered input before each request, waits (listening)
// up to LateReplyWait for the late reply of a request that timed out before
// sending the next one, and checks every reply against its request (unit,
// function, byte count, a write's echo). Frames that do not match are
// discarded, counted in [Stats].Discarded, and never decoded: a late reply
// is never published as another register's value.
//
// ASCII framing (Modbus over Serial Line V1.02, 2.5.2) sends ':', the
// address, PDU and [LRC] as upper-case hex pairs, and CR LF
// ([AppendASCIIFrame]). A reply frame is taken only whole and well formed:
// characters before a ':' are noise, a ':' inside a frame starts a new one,
// and a frame with a character that is not hex, an odd number of digits, a
// CR without LF, more than 255 bytes, a length its function does not allow,
// a bad LRC, or a gap between two characters longer than InterCharTimeout
// (1 s by default, 2.5.2.1) is discarded and counted like a bad CRC on
// RTU. The line defaults to 7E1 (the specification's; 7O1 and 7N2 are its
// other formats, and 8 data bits are accepted for devices and converters
// that use them, and for pseudo-terminals, which take nothing else).
//
// # Shutdown
//
// When the context of [Device.Run] (or of any Client call) ends, the
// request in progress is abandoned: its connection is closed under it and
// the call returns at once (within one 2 ms poll on a serial port), on every
// transport, since the package speaks MBAP and the serial-line framings
// over its own transports (the upstream client's requests could not be
// interrupted). Requests run on the caller's goroutine; one registration
// with the context serves all the requests made with it.
//
// # Health and link statistics
//
// A [Device] reports its device's health ([Device.Health], a
// bridge.HealthReporter): up when a poll cycle got answers, down with the
// reason when a whole cycle got none. [DeviceStats] are per device;
// [LinkStats] gives each link's [Stats] once, keyed by [Device.Link], so
// devices sharing one serial line or RTU gateway do not count its requests
// twice.
//
// # Concurrency
//
// Points, profiles and plans are values: share them read-only. [Planner],
// [Client], [Bus] and [Device] are safe for concurrent use (a Device's Run is
// called once; Write and WritePoint may be called while it polls).
package modbus
