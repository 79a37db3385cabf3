// Package modbustest provides an in-process Modbus device for tests and
// benchmarks, in the manner of net/http/httptest.
//
// [NewServer] serves a [modbus.Profile] on 127.0.0.1 on a port the OS
// chooses, with Modbus TCP framing or, with [WithFraming]([RTU]), as an
// RTU-over-TCP gateway; [NewRTUServer] serves RTU frames on any stream, such
// as one end of a pseudo-terminal pair from [SocatPTY]. Values move (sine
// waves, counters, toggling bools), addresses no point covers answer Illegal
// Data Address (or, inside the map of a device that fills its gaps, zeros),
// and a [Hook] injects faults per request: an exception, a
// delay, no reply, a dropped or reset connection. The server logs every
// request (table, address, quantity, unit) so a test can check how many
// requests a poll cycle took.
//
// A Server is safe for concurrent use by any number of clients.
package modbustest
