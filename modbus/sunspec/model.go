package sunspec

import (
	"slices"
	"strings"

	"github.com/m2mbridge/m2mbridge/modbus"
)

//go:generate go run ./internal/gen -models models -out models_gen.go

// Type is a SunSpec point type (SunSpec Information Model Specification,
// "Point types"), as spelled in the model definitions.
type Type string

// The SunSpec point types.
const (
	Int16      Type = "int16"
	Uint16     Type = "uint16"
	Count      Type = "count"
	Acc16      Type = "acc16"
	Enum16     Type = "enum16"
	Bitfield16 Type = "bitfield16"
	Pad        Type = "pad"
	Int32      Type = "int32"
	Uint32     Type = "uint32"
	Acc32      Type = "acc32"
	Enum32     Type = "enum32"
	Bitfield32 Type = "bitfield32"
	IPAddr     Type = "ipaddr"
	Int64      Type = "int64"
	Uint64     Type = "uint64"
	Acc64      Type = "acc64"
	IPv6Addr   Type = "ipv6addr"
	Float32    Type = "float32"
	Float64    Type = "float64"
	String     Type = "string"
	Sunssf     Type = "sunssf"
	EUI48      Type = "eui48"
)

// Model is a SunSpec model definition: its id and its top-level group,
// whose name is the model's name ("common", "inverter", "mppt").
type Model struct {
	ID    uint16
	Group Group
}

// Name returns the model's name, the first part of its points' names.
func (m *Model) Name() string { return m.Group.Name }

// Label returns the model's human-readable name.
func (m *Model) Label() string { return m.Group.Label }

// Group is a block of points of a model. The model's own group is read
// once; a nested group may repeat: Count names the point holding the
// number of repeats, or, when Repeat is set and Count is empty, it repeats
// as often as the model's length L allows.
type Group struct {
	Name   string
	Label  string
	Repeat bool   // the group repeats (its instances are <group>[i])
	Count  string // the point holding the number of repeats; "" with Repeat: fill L
	Points []Point
	Groups []Group
}

// Point is a SunSpec point definition.
type Point struct {
	Name  string
	Label string
	Type  Type
	Size  uint16 // registers
	// SF names the sunssf point (of this group or an enclosing one) that
	// scales the point: value = raw × 10^sf. FixedSF is the exponent when
	// the model fixes it (HasFixedSF).
	SF         string
	FixedSF    int8
	HasFixedSF bool
	Units      string
	Writable   bool // access RW
	Mandatory  bool
	Static     bool
	Value      int64 // the fixed value (a model's ID point), when HasValue
	HasValue   bool
	Symbols    []Symbol // an enum's values or a bitfield's bits
}

// Symbol names one value of an enumeration or one bit of a bitfield.
type Symbol struct {
	Name  string
	Value int64
}

// Lookup returns the definition of the model with the given id, or nil
// when the tables do not have it.
func Lookup(id uint16) *Model { return modelTable[id] }

// ModelIDs returns the ids of every model in the tables, sorted.
func ModelIDs() []uint16 {
	ids := make([]uint16, 0, len(modelTable))
	for id := range modelTable {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Len returns the registers one instance of g spans, its nested groups
// counted with n repeats each as count gives (count(g) for a repeating
// group; nil counts every repeating group once).
func (g *Group) Len(count func(*Group) int) int {
	n := 0
	for _, p := range g.Points {
		n += int(p.Size)
	}
	for k := range g.Groups {
		sg := &g.Groups[k]
		r := 1
		if sg.Repeat && count != nil {
			r = count(sg)
		}
		n += r * sg.Len(count)
	}
	return n
}

// ModbusType returns the modbus point type that reads a SunSpec type, and
// the value that says "not implemented" in it; ok is false for a type that
// is not read as a point (pad, ipv6addr).
func (t Type) ModbusType() (mt modbus.Type, ni modbus.NotImplemented, ok bool) {
	switch t {
	case Int16:
		return modbus.Int16, modbus.NotImplementedMin, true
	case Sunssf:
		return modbus.Int16, modbus.NotImplementedMin, true
	case Uint16, Enum16, Bitfield16:
		return modbus.Uint16, modbus.NotImplementedMax, true
	case Count:
		return modbus.Uint16, "", true
	case Acc16:
		return modbus.Uint16, modbus.NotImplementedZero, true
	case Int32:
		return modbus.Int32, modbus.NotImplementedMin, true
	case Uint32, Enum32, Bitfield32:
		return modbus.Uint32, modbus.NotImplementedMax, true
	case Acc32:
		return modbus.Uint32, modbus.NotImplementedZero, true
	case IPAddr:
		return modbus.Uint32, modbus.NotImplementedZero, true
	case Int64:
		return modbus.Int64, modbus.NotImplementedMin, true
	case Uint64:
		return modbus.Uint64, modbus.NotImplementedMax, true
	case Acc64:
		return modbus.Uint64, modbus.NotImplementedZero, true
	case Float32:
		return modbus.Float32, modbus.NotImplementedNaN, true
	case Float64:
		return modbus.Float64, modbus.NotImplementedNaN, true
	case String:
		return modbus.String, modbus.NotImplementedZero, true
	case EUI48:
		return modbus.Uint64, modbus.NotImplementedEUI48, true
	}
	return "", "", false
}

// IsEnum reports whether t is an enumeration (enum16, enum32).
func (t Type) IsEnum() bool { return t == Enum16 || t == Enum32 }

// IsBitfield reports whether t is a bitfield (bitfield16, bitfield32).
func (t Type) IsBitfield() bool { return t == Bitfield16 || t == Bitfield32 }

// label returns the symbolic name of raw for an enum (the symbol of that
// value) or a bitfield (the symbols of the bits set, joined with "|");
// a value or bit without a symbol is written as its number.
func (p *Point) label(raw uint64) string {
	if p.Type.IsEnum() {
		for _, s := range p.Symbols {
			if uint64(s.Value) == raw {
				return s.Name
			}
		}
		return itoa(raw)
	}
	var names []string
	for bit := 0; bit < 64; bit++ {
		if raw&(1<<bit) == 0 {
			continue
		}
		name := "bit" + itoa(uint64(bit))
		for _, s := range p.Symbols {
			if s.Value == int64(bit) {
				name = s.Name
				break
			}
		}
		names = append(names, name)
	}
	return strings.Join(names, "|")
}

func itoa(u uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			return string(b[i:])
		}
	}
}
