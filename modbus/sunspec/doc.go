// Package sunspec reads SunSpec devices — inverters, batteries and meters
// that describe themselves over Modbus — with no register map written by
// hand.
//
// # Model tables
//
// The SunSpec model definitions (models/model_*.json, from
// github.com/sunspec/models, Apache-2.0; see models/NOTICE) are compiled
// into Go tables (models_gen.go) by go generate (internal/gen); a test
// fails when the tables are stale. [Lookup] returns a [Model]: its groups,
// their repeat counts and their points with type, size, scale factor,
// units, access and symbols.
//
// # Discovery
//
// [Discover] probes the base addresses 40000, 0 and 50000, each also one
// lower and one higher ([Bases]), for the marker 0x5375 0x6E53 ("SunS") in
// the holding registers, then walks the model headers (the next model at
// address + L + 2) to the end model 0xFFFF. An end model without its
// length, or a chain that ends without one, is accepted; unknown model ids
// are listed in the [Chain] and skipped. Each model read is laid out into
// modbus points:
//
//	<model>.<point>                  inverter_three_phase.W, common.SN
//	<model>.<group>[i].<point>       mppt.module[0].DCA (i from 0)
//	<model>.<group>.<point>          a nested group that does not repeat
//	<model>_2.<point>                the second instance of a model
//
// Repeating groups repeat as their count point says (NCrv, NPt) or, for a
// group with count 0, as often as the model's length allows. The header
// (ID, L) and pads are not points. Types map to modbus types (int, uint,
// acc, enum, bitfield, count, sunssf to the integer of their size; float32
// and float64; string; ipaddr as uint32; eui48 as uint64), the model's
// units become the samples' Unit.
//
// # Scale factors and not-implemented values
//
// A point with a sunssf gets modbus.Point.ScaleFactor, so the modbus
// planner reads it and its factor in the same request, always: a factor
// that changes at run time (Fronius's DCW_SF with power) is never applied
// to a value of another request. A point whose factor is more than one
// request away (125 registers, or the device's limits.max_registers), or
// that would be read with a forbidden range (limits.forbidden), cannot be
// read that way; it is left out and listed in Chain.Skipped. Discovery
// itself reads no more registers per request and nothing forbidden. value = raw × 10^sf. Not-implemented values
// (0x8000 int16 and sunssf, 0xFFFF uint16, enum16 and bitfield16,
// 0x80000000, 0xFFFFFFFF, NaN, 0 for acc, all-NUL strings, all-FF eui48)
// never appear as numbers: the point is left out of the cycle, or, with
// not_implemented: bad, yields a Bad sample "not implemented". A factor that
// is itself not implemented makes its points Bad.
//
// # Enumerations and bitfields
//
// Enum and bitfield points carry the raw integer as their value. Beside
// each, the [Device] emits the string point <name>.label: the enum's
// symbol (inverter_three_phase.St.label = "MPPT"), or the symbols of the
// bits set joined with "|" ("GROUND_FAULT|AC_DISCONNECT"); a value or bit
// the model does not name is written as its number. A Bad value has a Bad
// label beside it (same reason and code). Config.Labels false
// turns them off.
//
// # Devices and writes
//
// A [Device] is a bridge.Source: it discovers the chain (retrying with
// backoff while it fails), polls its points with a modbus.Device, and
// discovers again when the common model's serial number changes, or when a
// point answers Illegal Data Address and a re-read of the marker and model
// headers shows the chain changed (checked at most once per poll interval,
// at least 1s, doubling to 1m while it stands). A point refused while the
// chain stands is not a changed chain: it is reported Bad, and modbus.Device
// keeps what it learned. A changed chain is discovered again no sooner than
// the poll interval (at least 1s) after the last discovery, that wait
// doubling to 1m while the chain keeps changing. Writes are denied by default: only the
// points listed in Config.Writable, each read-write in its model, accept
// them; a scaled point is written under the factor read just before, with
// the link held, raw = value / 10^sf range-checked, and refused when the
// factor is not implemented.
//
// [Chain.Profile] turns a chain into a modbus.Profile (with scale_factor
// and not_implemented on its points), which pins the map: a plain modbus
// device reads it without discovery.
//
// # Concurrency
//
// Model tables and chains are read-only values; a Device is safe for
// concurrent use (Run once; Write and CheckWrite at any time).
package sunspec
