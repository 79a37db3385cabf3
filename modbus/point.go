package modbus

import (
	"slices"
	"strconv"
	"time"
)

// Table is one of the four Modbus data tables (Modbus Application Protocol
// V1.1b3, 4.3 "Data Model").
type Table string

// The four tables. Holding registers and coils are writable; input registers
// and discrete inputs are read-only.
const (
	Holding  Table = "holding"  // 16-bit registers, FC 03 read, FC 06/16 write
	Input    Table = "input"    // 16-bit registers, FC 04 read
	Coil     Table = "coil"     // bits, FC 01 read, FC 05/15 write
	Discrete Table = "discrete" // bits, FC 02 read
)

// Type is the data type of a point's value.
type Type string

// The point types. Numeric types of more than 16 bits span consecutive
// registers; Bool reads a coil or discrete input, or one bit of a register
// (Point.Bit); String spans Point.Length registers, two bytes each.
const (
	Bool    Type = "bool"
	Int16   Type = "int16"
	Uint16  Type = "uint16"
	Int32   Type = "int32"
	Uint32  Type = "uint32"
	Int64   Type = "int64"
	Uint64  Type = "uint64"
	Float32 Type = "float32"
	Float64 Type = "float64"
	String  Type = "string"
)

// WordOrder is the order of 16-bit registers within a value of more than one
// register.
type WordOrder string

// Word orders. HighFirst ("big-endian words") is the Modbus convention and the
// default; LowFirst is common on devices whose firmware copies little-endian
// memory.
const (
	HighFirst WordOrder = "high_first"
	LowFirst  WordOrder = "low_first"
)

// ByteOrder is the order of the two bytes inside each 16-bit register.
type ByteOrder string

// Byte orders. Big is the Modbus convention (Application Protocol 4.2) and
// the default.
const (
	BigEndian    ByteOrder = "big"
	LittleEndian ByteOrder = "little"
)

// Point is one named value of a device: where it lives and how its registers
// turn into a reading. A Point is plain data; it loads from YAML with the keys
// of the gateway configuration and can be written as a Go literal.
type Point struct {
	Name      string    `yaml:"name"`                 // unique within the device; the Sample's Point
	Table     Table     `yaml:"table"`                // holding, input, coil or discrete
	Address   uint16    `yaml:"address"`              // protocol address, 0-based
	Type      Type      `yaml:"type"`                 // how the registers (or bit) read
	WordOrder WordOrder `yaml:"word_order,omitempty"` // default HighFirst
	ByteOrder ByteOrder `yaml:"byte_order,omitempty"` // default BigEndian
	// Scale and Offset give value = raw*Scale + Offset. A zero Scale means 1.
	Scale  float64 `yaml:"scale,omitempty"`
	Offset float64 `yaml:"offset,omitempty"`
	// Unit is the engineering unit ("V", "kWh"), copied into the samples.
	Unit string `yaml:"unit,omitempty"`
	// Length is the number of registers of a String point.
	Length uint16 `yaml:"length,omitempty"`
	// Bit, when set, makes a Bool point of a register table read one bit
	// (0 = least significant) of the register at Address.
	Bit *uint8 `yaml:"bit,omitempty"`
	// Interval, when non-zero, polls this point at its own period instead of
	// the device's.
	Interval time.Duration `yaml:"interval,omitempty"`
	// ScaleFactor, when set, names the point of the same device and table
	// (an int16, the same interval) that holds a power-of-ten exponent for
	// this one, as SunSpec's sunssf points do: value = raw × 10^sf (then
	// Scale and Offset). The [Planner] reads a point and its scale factor
	// in the same request, always, so that a factor that changes at run
	// time is never applied to a value read before or after it; a point
	// too far from its factor for one request is a configuration error. A
	// factor that reads its not-implemented value (0x8000) makes the
	// point's samples Bad. Its values are always floats (bridge.Float),
	// under a factor of 0 too, so that its kind never changes.
	ScaleFactor string `yaml:"scale_factor,omitempty"`
	// NotImplemented, when set, is the raw value by which the device says
	// it does not implement the point (see [NotImplemented]); a read of it
	// gives no sample, or a Bad one ([DeviceConfig.ReportNotImplemented]),
	// never a number.
	NotImplemented NotImplemented `yaml:"not_implemented,omitempty"`

	// Writable lets [Device.Write] write the point; without it every write
	// is refused (deny by default). Only points of the holding and coil
	// tables can be writable.
	Writable bool `yaml:"writable,omitempty"`
	// Min and Max, when set, bound the values a write may set, in
	// engineering units (before the inverse of Scale and Offset); a write
	// outside them is refused. Only on a writable numeric point.
	Min *float64 `yaml:"min,omitempty"`
	Max *float64 `yaml:"max,omitempty"`
	// Allowed, when not empty, is the set of the only values a write may
	// set, in engineering units: the states of an enumeration ("0 stop,
	// 1 run, 2 auto"). Only on a writable numeric point; every value must
	// be one the point can hold.
	Allowed []float64 `yaml:"allowed,omitempty"`
}

// NotImplemented names the raw value by which a device says it does not
// implement a point (SunSpec Information Model Specification, "Not
// implemented values").
type NotImplemented string

// The not-implemented values.
const (
	// NotImplementedMin is the most negative value of a signed integer:
	// 0x8000, 0x80000000, 0x8000000000000000 (SunSpec int, sunssf).
	NotImplementedMin NotImplemented = "min"
	// NotImplementedMax is every bit set in an unsigned integer: 0xFFFF,
	// 0xFFFFFFFF, ... (SunSpec uint, enum, bitfield).
	NotImplementedMax NotImplemented = "max"
	// NotImplementedZero is every register 0: an integer 0 (SunSpec acc,
	// ipaddr) or a string of NULs.
	NotImplementedZero NotImplemented = "zero"
	// NotImplementedNaN is any NaN of a float32 or float64.
	NotImplementedNaN NotImplemented = "nan"
	// NotImplementedEUI48 is an EUI-48 (MAC address) of all-ones bytes in
	// the low 48 bits of a uint64, as SunSpec's eui48 has it
	// (FF:FF:FF:FF:FF:FF).
	NotImplementedEUI48 NotImplemented = "eui48"
)

// AddressRange is an inclusive range of addresses of one table.
type AddressRange struct {
	Table Table  `yaml:"table"` // the table the addresses belong to
	First uint16 `yaml:"first"` // first address of the range, 0-based
	Last  uint16 `yaml:"last"`  // last address, inclusive
}

// Limits are what a device accepts in one request.
type Limits struct {
	// MaxRegisters is the most registers per read request; 0 means 125, the
	// protocol's limit for FC 03/04 (Application Protocol 6.3).
	MaxRegisters uint16 `yaml:"max_registers,omitempty"`
	// MaxBits is the most coils or discrete inputs per read; 0 means 2000
	// (Application Protocol 6.1).
	MaxBits uint16 `yaml:"max_bits,omitempty"`
	// Forbidden lists address ranges that must never be read, not even as
	// filler between two points of one request.
	Forbidden []AddressRange `yaml:"forbidden,omitempty"`
	// FillsGaps records that the device answers a read spanning registers
	// (or bits) its map does not list, between listed ones, with data
	// (typically zeros) instead of Illegal Data Address, as Eastron meters
	// do. The [Planner] joins points across such gaps whether or not it is
	// set (and on a device that refuses them learns the holes at run time,
	// at the price of extra requests); the modbustest simulator serves a
	// profile that sets it the way the device does.
	FillsGaps bool `yaml:"fills_gaps,omitempty"`
}

// Profile is a named register map of a kind of device: its points and its
// request limits.
type Profile struct {
	Name   string  `yaml:"name"`             // the kind of device: "eastron-sdm630"
	Limits Limits  `yaml:"limits,omitempty"` // what the device accepts in one request
	Points []Point `yaml:"points"`           // its register map
}

// Registers returns how many registers of a register table (holding or input)
// the point spans: 1 for a bool (a whole register, or one bit of it), 1 for
// 16-bit types, 2 for 32-bit, 4 for 64-bit and Length for a string. For a
// point of a bit table (coil or discrete) it returns 1: the point spans one
// bit. An unknown type spans 0 registers ([Profile.Validate] reports it).
func (p Point) Registers() uint16 {
	if p.Table.IsBits() {
		return 1
	}
	switch p.Type {
	case Bool, Int16, Uint16:
		return 1
	case Int32, Uint32, Float32:
		return 2
	case Int64, Uint64, Float64:
		return 4
	case String:
		return p.Length
	}
	return 0
}

// IsBitPoint reports whether p reads one bit of a register (a Bool point of a
// register table with Bit set). Bit points may share their register with each
// other and with the point that reads the whole register.
func (p Point) IsBitPoint() bool { return p.Bit != nil && p.Type == Bool && !p.Table.IsBits() }

// IsBits reports whether t holds single bits (coils and discrete inputs)
// rather than 16-bit registers.
func (t Table) IsBits() bool { return t == Coil || t == Discrete }

// Writable reports whether t can be written (holding registers and coils).
func (t Table) Writable() bool { return t == Holding || t == Coil }

// Valid reports whether t is one of the four tables.
func (t Table) Valid() bool {
	switch t {
	case Holding, Input, Coil, Discrete:
		return true
	}
	return false
}

// Valid reports whether t is one of the point types.
func (t Type) Valid() bool {
	switch t {
	case Bool, Int16, Uint16, Int32, Uint32, Int64, Uint64, Float32, Float64, String:
		return true
	}
	return false
}

// scale returns the effective scale (a zero Scale means 1).
func (p *Point) scale() float64 {
	if p.Scale == 0 {
		return 1
	}
	return p.Scale
}

// scaled reports whether the point applies a scale or an offset.
func (p *Point) scaled() bool { return (p.Scale != 0 && p.Scale != 1) || p.Offset != 0 }

// BitOf returns a pointer to b, for writing a Point's Bit as a Go literal:
// Point{Bit: modbus.BitOf(3)}.
func BitOf(b uint8) *uint8 { return &b }

// Limit returns a pointer to f, for writing a Point's Min or Max as a Go
// literal: Point{Writable: true, Min: modbus.Limit(0), Max: modbus.Limit(80)}.
func Limit(f float64) *float64 { return &f }

// Contains reports whether r covers address a of table t.
func (r AddressRange) Contains(t Table, a uint16) bool {
	return r.Table == t && r.First <= a && a <= r.Last
}

// Overlaps reports whether r and the inclusive range first..last of table t
// share an address.
func (r AddressRange) Overlaps(t Table, first, last uint16) bool {
	return r.Table == t && r.First <= last && first <= r.Last
}

// String formats r as "holding 100-199".
func (r AddressRange) String() string {
	return string(r.Table) + " " + strconv.Itoa(int(r.First)) + "-" + strconv.Itoa(int(r.Last))
}

// Default request limits (Modbus Application Protocol V1.1b3, 6.1-6.4).
const (
	DefaultMaxRegisters = 125  // FC 03/04: 1 to 125 registers
	DefaultMaxBits      = 2000 // FC 01/02: 1 to 2000 bits
)

// Registers returns the effective most registers per read request.
func (l Limits) Registers() uint16 {
	if l.MaxRegisters == 0 {
		return DefaultMaxRegisters
	}
	return l.MaxRegisters
}

// Bits returns the effective most coils or discrete inputs per read request.
func (l Limits) Bits() uint16 {
	if l.MaxBits == 0 {
		return DefaultMaxBits
	}
	return l.MaxBits
}

// Max returns the effective request limit for table t: Registers for holding
// and input registers, Bits for coils and discrete inputs.
func (l Limits) Max(t Table) uint16 {
	if t.IsBits() {
		return l.Bits()
	}
	return l.Registers()
}

// Clone returns a deep copy of p: changing the copy's points, bits or
// forbidden ranges leaves p as it was.
func (p *Profile) Clone() *Profile {
	if p == nil {
		return nil
	}
	c := *p
	c.Limits.Forbidden = append([]AddressRange(nil), p.Limits.Forbidden...)
	c.Points = make([]Point, len(p.Points))
	for i, pt := range p.Points {
		pt.clonePointers()
		c.Points[i] = pt
	}
	return &c
}

// Point returns the point named name and whether there is one.
func (p *Profile) Point(name string) (Point, bool) {
	for _, pt := range p.Points {
		if pt.Name == name {
			return pt, true
		}
	}
	return Point{}, false
}

// clonePointers gives p its own copies of the fields it holds by
// reference (Bit, Min, Max, Allowed), so a copy can change them.
func (p *Point) clonePointers() {
	if p.Bit != nil {
		p.Bit = BitOf(*p.Bit)
	}
	if p.Min != nil {
		p.Min = Limit(*p.Min)
	}
	if p.Max != nil {
		p.Max = Limit(*p.Max)
	}
	p.Allowed = slices.Clone(p.Allowed)
}
