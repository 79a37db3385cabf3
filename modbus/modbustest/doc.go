// Package modbustest provides an in-process Modbus device for tests and
// benchmarks, in the manner of net/http/httptest.
//
// [NewServer] serves a [modbus.Profile] on 127.0.0.1 on a port the OS
// chooses, with Modbus TCP framing or, with [WithFraming]([RTU]) or
// [WithFraming]([ASCII]), as an RTU- or ASCII-over-TCP gateway;
// [NewRTUServer] and [NewASCIIServer] serve on any stream, such as the
// master end of a pseudo-terminal from [OpenPTY] (Linux, no socat needed),
// one end of a pair from [SocatPTY], or a serial port from [OpenSerial]. Values move (sine
// waves, counters, toggling bools), addresses no point covers answer Illegal
// Data Address (or, inside the map of a device that fills its gaps, zeros),
// and a [Hook] injects faults per request: an exception, a
// delay (a late reply), no reply, a dropped or reset connection, a bad CRC
// or LRC. The server logs every
// request (table, address, quantity, unit) so a test can check how many
// requests a poll cycle took.
//
// A Server is safe for concurrent use by any number of clients.
package modbustest
