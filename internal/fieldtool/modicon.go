package fieldtool

import (
	"fmt"
	"strconv"

	"github.com/m2mbridge/m2mbridge/modbus"
)

// modiconTables maps the first digit of a Modicon reference number to its
// table (Modicon Modbus Protocol Reference Guide PI-MBUS-300 Rev. J,
// "Data Addresses in Modbus Messages": 0xxxx coils, 1xxxx discrete inputs,
// 3xxxx input registers, 4xxxx holding registers, counted from 1).
var modiconTables = map[byte]modbus.Table{
	'0': modbus.Coil,
	'1': modbus.Discrete,
	'3': modbus.Input,
	'4': modbus.Holding,
}

// ParseModicon translates a Modicon reference number into its table and
// 0-based protocol address: 40001 is holding address 0, 30010 input address
// 9, 00001 coil address 0. Five digits reach the addresses 1-9999 of the
// table, six (400001, the extended form) 1-65536. The table is the first
// digit, so it is parsed from the text: a coil's leading zeros count.
func ParseModicon(s string) (modbus.Table, uint16, error) {
	bad := func(why string) error {
		return fmt.Errorf("Modicon number %q: %s (want 5 or 6 digits, the first the table: "+
			"0 coil, 1 discrete, 3 input, 4 holding; 40001 is holding address 0)", s, why)
	}
	if len(s) != 5 && len(s) != 6 {
		return "", 0, bad(fmt.Sprintf("%d digits", len(s)))
	}
	n, err := strconv.ParseUint(s[1:], 10, 32)
	if err != nil || s[1] == '+' {
		return "", 0, bad("not a number")
	}
	t, ok := modiconTables[s[0]]
	if !ok {
		return "", 0, bad(fmt.Sprintf("no table has first digit %c", s[0]))
	}
	if n == 0 || (len(s) == 6 && n > 65536) {
		return "", 0, bad(fmt.Sprintf("%d is outside 1 to %d", n, map[bool]int{true: 9999, false: 65536}[len(s) == 5]))
	}
	return t, uint16(n - 1), nil
}

// DescribeModicon says what ParseModicon made of s, for the person who
// typed it: "Modicon 40001 is holding register, protocol address 0".
func DescribeModicon(s string, t modbus.Table, addr uint16) string {
	kind := map[modbus.Table]string{modbus.Holding: "holding register", modbus.Input: "input register",
		modbus.Coil: "coil", modbus.Discrete: "discrete input"}[t]
	return fmt.Sprintf("Modicon %s is %s, protocol address %d (-table %s -address %d)", s, kind, addr, t, addr)
}
