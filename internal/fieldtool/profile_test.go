package fieldtool

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/modbus"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func convert(t *testing.T, file string, opt CSVOptions) (*modbus.Profile, []string, error) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", file))
	require.NoError(t, err)
	defer f.Close()
	opt.File = file
	return ProfileFromCSV(f, opt)
}

func TestProfileFromCSVVariants(t *testing.T) {
	p, warns, err := convert(t, "good_semicolon.csv", CSVOptions{})
	require.NoError(t, err)
	assert.Empty(t, warns)
	assert.Equal(t, "good_semicolon", p.Name)
	want := []modbus.Point{
		{Name: "voltage_l1_n", Table: modbus.Holding, Address: 0, Type: modbus.Float32, Unit: "V"},
		{Name: "voltage_l2_n", Table: modbus.Holding, Address: 2, Type: modbus.Float32, Unit: "V"},
		{Name: "current_l1", Table: modbus.Holding, Address: 6, Type: modbus.Float32, Unit: "A"},
		{Name: "energy_import", Table: modbus.Holding, Address: 0x48, Type: modbus.Int32, Unit: "kWh", Scale: 0.1},
		{Name: "frequency", Table: modbus.Holding, Address: 70, Type: modbus.Uint16, Unit: "Hz", Scale: 0.01},
	}
	assert.Equal(t, want, p.Points)

	p, _, err = convert(t, "good_modicon.csv", CSVOptions{Modicon: true})
	require.NoError(t, err)
	assert.Equal(t, []modbus.Point{
		{Name: "voltage", Table: modbus.Input, Address: 0, Type: modbus.Int32, Unit: "V", Scale: 0.1, WordOrder: modbus.LowFirst},
		{Name: "current", Table: modbus.Input, Address: 2, Type: modbus.Int32, Unit: "A", Scale: 0.001, WordOrder: modbus.LowFirst},
		{Name: "setpoint", Table: modbus.Holding, Address: 100, Type: modbus.Uint16},
		{Name: "relay", Table: modbus.Coil, Address: 0, Type: modbus.Bool},
	}, p.Points)

	// Without -modicon the numbers are taken as protocol addresses, and
	// a warning says what they look like.
	p, warns, err = convert(t, "good_modicon.csv", CSVOptions{})
	require.NoError(t, err)
	assert.Equal(t, uint16(30001), p.Points[0].Address)
	assert.Equal(t, []string{"good_modicon.csv:3: address 30001 looks like a Modicon number: if the map uses them, give -modicon"}, warns)
}

func TestProfileFromCSVOptions(t *testing.T) {
	in := "Name\tAddress\tType\nVoltage L1\t0\tfloat32\n"
	p, _, err := ProfileFromCSV(strings.NewReader(in), CSVOptions{File: "t.tsv", KeepNames: true, Table: modbus.Input})
	require.NoError(t, err)
	assert.Equal(t, "Voltage L1", p.Points[0].Name)
	assert.Equal(t, modbus.Input, p.Points[0].Table)

	_, warns, err := ProfileFromCSV(strings.NewReader("name,address,type,colour\na,0,uint16,red\n"), CSVOptions{File: "w.csv"})
	require.NoError(t, err)
	assert.Equal(t, []string{`w.csv:1: column "colour" ignored (not one of name, address, type, unit, scale, offset, table, word_order, byte_order, length, bit)`}, warns)

	for _, tt := range []struct{ name, in, want string }{
		{"empty", "", "x.csv: empty"},
		{"no type column", "name,address\na,1\n", `x.csv:1: no type column (the header row has ["name" "address"])`},
		{"header only", "name,address,type\n", "x.csv: no rows after the header"},
		{"table and modicon", "name,address,type,table\n", "a table column and -modicon"},
		{"bad quote", "name,address,type\n\"a,0,uint16\n", `x.csv: line 2, column 13: extraneous or missing " in quoted-field`},
		{"modicon hint", "name,address,type\na,400001,uint16\n", "x.csv:2: address: 400001 is above 65535 (a Modicon number? then give -modicon)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ProfileFromCSV(strings.NewReader(tt.in), CSVOptions{File: "x.csv", Modicon: tt.name == "table and modicon"})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// TestProfileFromCSVErrors: every problem of a bad map at once, by CSV
// line, in the order of the file (golden file testdata/bad.golden).
func TestProfileFromCSVErrors(t *testing.T) {
	_, _, err := convert(t, "bad.csv", CSVOptions{})
	require.Error(t, err)
	got := err.Error() + "\n"
	golden := filepath.Join("testdata", "bad.golden")
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.Equal(t, string(want), got)
	assert.Contains(t, got, `bad.csv:2: type "flaot32": did you mean float32?`)
}

func TestMarshalProfile(t *testing.T) {
	p, _, err := convert(t, "good_modicon.csv", CSVOptions{Modicon: true})
	require.NoError(t, err)
	out, err := MarshalProfile(p, "generated from good_modicon.csv")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(out), "# generated from good_modicon.csv\nname: good_modicon\n"), string(out))
	assert.Contains(t, string(out), "{name: voltage, table: input, address: 0, type: int32, word_order: low_first, scale: 0.1, unit: V}")
	back, err := modbus.LoadProfile(bytes.NewReader(out), "x.yaml")
	require.NoError(t, err)
	assert.Equal(t, p.Points, back.Points)
}

func TestEditDistance(t *testing.T) {
	assert.Equal(t, 1, editDistance("flaot32", "float32"))
	assert.Equal(t, 1, editDistance("unit16", "uint16"))
	assert.Equal(t, 0, editDistance("a", "a"))
	assert.Equal(t, 3, editDistance("", "abc"))
	assert.Equal(t, "uint16", nearest("unit16", typeNames))
	assert.Equal(t, "", nearest("banana", typeNames))
}

func FuzzProfileFromCSV(f *testing.F) {
	for _, name := range []string{"good_semicolon.csv", "good_modicon.csv", "bad.csv"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(f, err)
		f.Add(b, false)
	}
	f.Fuzz(func(t *testing.T, in []byte, modicon bool) {
		p, _, err := ProfileFromCSV(bytes.NewReader(in), CSVOptions{File: "f.csv", Modicon: modicon})
		if err != nil {
			return
		}
		require.NoError(t, p.Validate())
		_, err = MarshalProfile(p, "fuzz")
		require.NoError(t, err)
	})
}
