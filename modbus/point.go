package modbus

import "time"

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
	Name      string    `yaml:"name"`
	Table     Table     `yaml:"table"`
	Address   uint16    `yaml:"address"` // protocol address, 0-based
	Type      Type      `yaml:"type"`
	WordOrder WordOrder `yaml:"word_order,omitempty"` // default HighFirst
	ByteOrder ByteOrder `yaml:"byte_order,omitempty"` // default BigEndian
	// Scale and Offset give value = raw*Scale + Offset. A zero Scale means 1.
	Scale  float64 `yaml:"scale,omitempty"`
	Offset float64 `yaml:"offset,omitempty"`
	Unit   string  `yaml:"unit,omitempty"`
	// Length is the number of registers of a String point.
	Length uint16 `yaml:"length,omitempty"`
	// Bit, when set, makes a Bool point of a register table read one bit
	// (0 = least significant) of the register at Address.
	Bit *uint8 `yaml:"bit,omitempty"`
	// Interval, when non-zero, polls this point at its own period instead of
	// the device's.
	Interval time.Duration `yaml:"interval,omitempty"`
}

// AddressRange is an inclusive range of addresses of one table.
type AddressRange struct {
	Table Table  `yaml:"table"`
	First uint16 `yaml:"first"`
	Last  uint16 `yaml:"last"`
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
}

// Profile is a named register map of a kind of device: its points and its
// request limits.
type Profile struct {
	Name   string  `yaml:"name"`
	Limits Limits  `yaml:"limits,omitempty"`
	Points []Point `yaml:"points"`
}
