package modbus

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/m2mbridge/m2mbridge/bridge"
)

const goodYAML = `name: test-meter
limits:
  max_registers: 64
  forbidden:
    - {table: holding, first: 100, last: 199}
points:
  - name: voltage
    table: input
    address: 0
    type: float32
    unit: V
  - name: energy
    table: holding
    address: 2
    type: int32
    word_order: low_first
    byte_order: big
    scale: 0.1
    unit: kWh
    interval: 1m30s
  - {name: alarm, table: holding, address: 10, type: bool, bit: 3}
  - {name: model, table: holding, address: 20, type: string, length: 4}
  - {name: relay, table: coil, address: 0, type: bool}
`

func TestLoadProfile(t *testing.T) {
	p, err := LoadProfile(strings.NewReader(goodYAML), "test.yaml")
	require.NoError(t, err)
	assert.Equal(t, "test-meter", p.Name)
	assert.Equal(t, uint16(64), p.Limits.MaxRegisters)
	assert.Equal(t, []AddressRange{{Table: Holding, First: 100, Last: 199}}, p.Limits.Forbidden)
	require.Len(t, p.Points, 5)
	assert.Equal(t, Point{Name: "energy", Table: Holding, Address: 2, Type: Int32, WordOrder: LowFirst, ByteOrder: BigEndian,
		Scale: 0.1, Unit: "kWh", Interval: 90 * time.Second}, p.Points[1])
	require.NotNil(t, p.Points[2].Bit)
	assert.Equal(t, uint8(3), *p.Points[2].Bit)

	// Marshalling gives YAML that loads back to the same profile.
	out, err := yaml.Marshal(p)
	require.NoError(t, err)
	assert.Contains(t, string(out), "interval: 1m30s")
	back, err := LoadProfile(strings.NewReader(string(out)), "back.yaml")
	require.NoError(t, err)
	assert.Equal(t, p, back)
}

func TestLoadProfileNamesFromSource(t *testing.T) {
	p, err := LoadProfile(strings.NewReader("points: [{name: a, table: coil, address: 1, type: bool}]"), "dir/my-device.yaml")
	require.NoError(t, err)
	assert.Equal(t, "my-device", p.Name)
}

func TestLoadProfileErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown key", "name: x\npoints:\n  - name: a\n    table: input\n    adress: 3\n    type: uint16\n", []string{"p.yaml:5: field adress not found"}},
		{"unknown top key", "name: x\nlimit: {}\npoints: []\n", []string{"p.yaml:2: field limit not found"}},
		{"wrong type", "points:\n  - name: a\n    table: input\n    address: seven\n    type: uint16\n", []string{"p.yaml:4: cannot unmarshal !!str `seven` into uint16"}},
		{"address out of range", "points:\n  - {name: a, table: input, address: 70000, type: uint16}\n", []string{"p.yaml:2:", "70000"}},
		{"bad duration", "points:\n  - {name: a, table: input, type: uint16, interval: 5}\n", []string{"p.yaml:2:"}},
		{"syntax", "points: [\n", []string{"p.yaml:"}},
		{"empty", "", []string{"empty document"}},
		{"validation with lines", "name: x\nlimits:\n  max_bits: 3000\npoints:\n  - name: a\n    table: input\n    type: float32\n    bit: 3\n  - name: a\n    table: input\n    address: 1\n    type: uint16\n  - name: s\n    table: holding\n    type: string\n",
			[]string{`p.yaml:3: limits.max_bits: 3000 outside`, `p.yaml:8: point 0 "a": bit: only a bool`, `p.yaml:9: point 1 "a": name: duplicate of point 0`,
				`p.yaml:11: point 1 "a": address: input registers 1-1 overlap point 0 "a" (0-1)`, `p.yaml:13: point 2 "s": length: a string needs`}},
		{"forbidden line", "limits:\n  forbidden:\n    - table: holding\n      first: 9\n      last: 3\npoints: []\n", []string{"p.yaml:5: limits.forbidden[0].last"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadProfile(strings.NewReader(tt.yaml), "p.yaml")
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestLoadProfileFieldErrorsAreTyped(t *testing.T) {
	_, err := LoadProfile(strings.NewReader("points:\n  - {name: a, table: coil, type: int16}\n"), "p.yaml")
	var fe *FieldError
	require.True(t, errors.As(err, &fe))
	assert.Equal(t, FieldError{File: "p.yaml", Line: 2, Index: 0, Point: "a", Field: "type", Msg: "a coil table holds single bits: type must be bool, not int16"}, *fe)
}

func TestLoadProfileFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.yaml")
	require.NoError(t, os.WriteFile(path, []byte(goodYAML), 0o600))
	p, err := LoadProfileFile(path)
	require.NoError(t, err)
	assert.Equal(t, "test-meter", p.Name)
	_, err = LoadProfileFile(filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
	require.NoError(t, os.WriteFile(path, []byte("points:\n  - {name: a, table: coil, type: int16}\n"), 0o600))
	_, err = LoadProfileFile(path)
	require.ErrorContains(t, err, path+":2:")
}

func TestBuiltinProfiles(t *testing.T) {
	names := BuiltinProfiles()
	require.Contains(t, names, "eastron-sdm630")
	require.Contains(t, names, "carlo-gavazzi-em24")
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			p, err := BuiltinProfile(name)
			require.NoError(t, err)
			assert.Equal(t, name, p.Name)
			require.NoError(t, p.Validate())
			assert.NotEmpty(t, p.Points)
			for _, pt := range p.Points {
				assert.NotEmpty(t, pt.Unit+string(pt.Type), pt.Name)
			}
			// A fresh copy each time.
			p.Points[0].Name = "changed"
			again, err := BuiltinProfile(name)
			require.NoError(t, err)
			assert.NotEqual(t, "changed", again.Points[0].Name)
		})
	}
	_, err := BuiltinProfile("no-such-meter")
	require.ErrorContains(t, err, `no built-in profile "no-such-meter" (have carlo-gavazzi-em24, eastron-sdm630`)
}

func TestSDM630Profile(t *testing.T) {
	p, err := BuiltinProfile("eastron-sdm630")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(p.Points), 30)
	for name, addr := range map[string]uint16{"voltage_l1": 0, "current_l1": 6, "power_total": 52, "frequency": 70, "import_energy": 72, "total_energy": 0x156} {
		pt, ok := p.Point(name)
		require.True(t, ok, name)
		assert.Equal(t, addr, pt.Address, name)
		assert.Equal(t, Input, pt.Table)
		assert.Equal(t, Float32, pt.Type)
	}
	v, _ := p.Point("voltage_l1")
	assert.Equal(t, "V", v.Unit)
	e, _ := p.Point("total_energy")
	assert.Equal(t, "kWh", e.Unit)
}

func TestProfileClone(t *testing.T) {
	p := &Profile{Name: "x", Limits: Limits{Forbidden: []AddressRange{{Table: Coil, First: 1, Last: 2}}},
		Points: []Point{{Name: "b", Table: Holding, Type: Bool, Bit: BitOf(2)}}}
	c := p.Clone()
	require.Equal(t, p, c)
	*c.Points[0].Bit = 5
	c.Limits.Forbidden[0].Last = 9
	assert.Equal(t, uint8(2), *p.Points[0].Bit)
	assert.Equal(t, uint16(2), p.Limits.Forbidden[0].Last)
	assert.Nil(t, (*Profile)(nil).Clone())
	_, ok := p.Point("nope")
	assert.False(t, ok)
}

// FuzzLoadProfile: no input makes the loader panic, and what loads validates.
func FuzzLoadProfile(f *testing.F) {
	f.Add(goodYAML)
	f.Add("points: [{name: a, table: coil, type: bool, bit: 3}]")
	f.Add("limits: {forbidden: [{table: x, first: 2, last: 1}]}")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := LoadProfile(strings.NewReader(s), "f.yaml")
		if err == nil {
			require.NoError(t, p.Validate())
		}
	})
}

func TestEM24Profile(t *testing.T) {
	p, err := BuiltinProfile("carlo-gavazzi-em24")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(p.Points), 30)
	v, ok := p.Point("voltage_l1_n")
	require.True(t, ok)
	assert.Equal(t, Point{Name: "voltage_l1_n", Table: Input, Address: 0, Type: Int32, WordOrder: LowFirst, Scale: 0.1, Unit: "V"}, v)
	// 230.4 V is 2304 in two registers, least significant word first.
	got, err := v.Decode([]uint16{2304, 0})
	require.NoError(t, err)
	assert.InDelta(t, 230.4, got.Float(), 1e-9)
	// A negative power: -1234.5 W is -12345 as INT32, LSW first.
	w, _ := p.Point("power_total")
	got, err = w.Decode([]uint16{uint16(0x10000 - 12345), 0xFFFF})
	require.NoError(t, err)
	assert.InDelta(t, -1234.5, got.Float(), 1e-9)
	pf, _ := p.Point("power_factor_l1")
	assert.Equal(t, Int16, pf.Type)
	assert.Equal(t, 0.001, pf.Scale)
	e, _ := p.Point("import_energy")
	assert.Equal(t, uint16(0x34), e.Address)
	assert.Equal(t, "kWh", e.Unit)
	ps, _ := p.Point("phase_sequence")
	got, err = ps.Decode([]uint16{0xFFFF})
	require.NoError(t, err)
	assert.Equal(t, bridge.Int(-1), got)
}
