package fieldtool_test

import (
	"fmt"
	"strings"

	"github.com/m2mbridge/m2mbridge/internal/fieldtool"
)

// ExampleProfileFromCSV reads a register map as a spreadsheet exports it
// (';', decimal commas, Modicon numbers, vendor type names), and reports
// a bad one by line.
func ExampleProfileFromCSV() {
	csv := "Name;Register;Data type;Unit;Factor\n" +
		"Voltage L1;30001;DINT;V;0,1\n" +
		"Frequency;30003;U16;Hz;0,01\n"
	p, _, err := fieldtool.ProfileFromCSV(strings.NewReader(csv), fieldtool.CSVOptions{File: "em7.csv", Modicon: true})
	if err != nil {
		panic(err)
	}
	for _, pt := range p.Points {
		fmt.Println(pt.Name, pt.Table, pt.Address, pt.Type, pt.Scale, pt.Unit)
	}

	_, _, err = fieldtool.ProfileFromCSV(strings.NewReader("name,address,type\nv,0,flaot32\nv,1,uint16\n"), fieldtool.CSVOptions{File: "bad.csv"})
	fmt.Println(err)
	// Output:
	// voltage_l1 input 0 int32 0.1 V
	// frequency input 2 uint16 0.01 Hz
	// bad.csv:2: type "flaot32": did you mean float32?
	// bad.csv:3: name: duplicate of line 2
}
