package fieldtool

import (
	"testing"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
)

func TestParseModicon(t *testing.T) {
	for _, tt := range []struct {
		in    string
		table modbus.Table
		addr  uint16
		bad   bool
	}{
		{in: "40001", table: modbus.Holding, addr: 0},
		{in: "49999", table: modbus.Holding, addr: 9998},
		{in: "30010", table: modbus.Input, addr: 9},
		{in: "10001", table: modbus.Discrete, addr: 0},
		{in: "00001", table: modbus.Coil, addr: 0},
		{in: "400001", table: modbus.Holding, addr: 0},
		{in: "465536", table: modbus.Holding, addr: 65535},
		{in: "465537", bad: true},
		{in: "40000", bad: true},
		{in: "20001", bad: true},
		{in: "4001", bad: true},
		{in: "1", bad: true},
		{in: "4+001", bad: true},
		{in: "4000a", bad: true},
		{in: "", bad: true},
	} {
		t.Run(tt.in, func(t *testing.T) {
			tb, a, err := ParseModicon(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("ParseModicon(%q) = %s %d, want an error", tt.in, tb, a)
				}
				return
			}
			if err != nil || tb != tt.table || a != tt.addr {
				t.Fatalf("ParseModicon(%q) = %s %d %v, want %s %d", tt.in, tb, a, err, tt.table, tt.addr)
			}
		})
	}
}

func FuzzParseModicon(f *testing.F) {
	for _, s := range []string{"40001", "00001", "465536", "4-001", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tb, a, err := ParseModicon(s)
		if err != nil {
			return
		}
		// What parses describes itself back: table digit and number.
		want := map[modbus.Table]byte{modbus.Coil: '0', modbus.Discrete: '1', modbus.Input: '3', modbus.Holding: '4'}[tb]
		if s[0] != want || (len(s) == 5 && a > 9998) {
			t.Fatalf("ParseModicon(%q) = %s %d", s, tb, a)
		}
	})
}

func TestParseValue(t *testing.T) {
	num := modbus.Point{Table: modbus.Holding, Type: modbus.Int16}
	for _, tt := range []struct {
		p    modbus.Point
		in   string
		want bridge.Value
	}{
		{num, "42", bridge.Int(42)},
		{num, "-42", bridge.Int(-42)},
		{num, "18446744073709551615", bridge.Uint(18446744073709551615)},
		{num, "42.5", bridge.Float(42.5)},
		{num, "1e3", bridge.Float(1000)},
		{num, "true", bridge.Bool(true)},
		{num, "hot", bridge.String("hot")},
		{modbus.Point{Table: modbus.Holding, Type: modbus.String, Length: 4}, "42", bridge.String("42")},
	} {
		if got := ParseValue(tt.p, tt.in); !got.Equal(tt.want) || got.Kind() != tt.want.Kind() {
			t.Errorf("ParseValue(%s, %q) = %v (%s), want %v (%s)", tt.p.Type, tt.in, got, got.Kind(), tt.want, tt.want.Kind())
		}
	}
}
