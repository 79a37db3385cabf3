package fieldtool

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

func TestParseUnits(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []uint8
		err  string
	}{
		{"1-3", []uint8{1, 2, 3}, ""},
		{"5, 1-2,5", []uint8{5, 1, 2}, ""},
		{"0", []uint8{0}, ""},
		{"255", []uint8{255}, ""},
		{"3-1", nil, `"3-1" is not a unit id`},
		{"1-256", nil, "is not a unit id (0-255)"},
		{"a", nil, `"a" is not a unit id`},
		{"", nil, `"" is not a unit id`},
		{"-3", nil, `"-3" is not a unit id`},
	} {
		got, err := ParseUnits(tt.in)
		if tt.err != "" {
			require.Error(t, err, tt.in)
			assert.Contains(t, err.Error(), tt.err)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
}

func TestParseRegister(t *testing.T) {
	for in, want := range map[string]Register{
		"holding:0":  {modbus.Holding, 0},
		"input:100":  {modbus.Input, 100},
		"coils:0x10": {modbus.Coil, 16},
		"40001":      {modbus.Holding, 0},
		"30010":      {modbus.Input, 9},
		"00001":      {modbus.Coil, 0},
	} {
		got, err := ParseRegister(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"holdings:0", "holding:65536", "holding:x", "20001", "4"} {
		_, err := ParseRegister(bad)
		assert.Error(t, err, bad)
	}
}

func TestParseSpeedsParities(t *testing.T) {
	sp, err := ParseSpeeds("9600, 19200")
	require.NoError(t, err)
	assert.Equal(t, []int{9600, 19200}, sp)
	_, err = ParseSpeeds("9600,fast")
	assert.ErrorContains(t, err, `"fast" is not a baud rate`)
	ps, err := ParseParities("N,even,O")
	require.NoError(t, err)
	assert.Equal(t, []modbus.Parity{modbus.ParityNone, modbus.ParityEven, modbus.ParityOdd}, ps)
	_, err = ParseParities("none,")
	assert.Error(t, err)
}

// TestScanCheck: the worst case is every try waiting its timeout, plus on
// RTU framing the late-reply wait and the frame silence.
func TestScanCheck(t *testing.T) {
	tries, worst, err := ScanConfig{URL: "tcp://127.0.0.1:502", Units: []uint8{1, 2, 3}, Timeout: 100 * time.Millisecond}.Check()
	require.NoError(t, err)
	assert.Equal(t, 3, tries)
	assert.Equal(t, 300*time.Millisecond, worst)

	tries, worst, err = ScanConfig{URL: "rtu:///dev/ttyUSB0", Units: []uint8{1, 2}, Speeds: []int{9600, 38400},
		Parities: []modbus.Parity{modbus.ParityEven}, Timeout: 100 * time.Millisecond}.Check()
	require.NoError(t, err)
	assert.Equal(t, 4, tries)
	// 9600 8E1: 11 bits a character, 3.5 characters ≈ 4.01ms; 38400: 1.75ms.
	silence9600 := 11 * time.Second / 9600 * 7 / 2
	assert.Equal(t, 2*(125*time.Millisecond+silence9600)+2*(125*time.Millisecond+1750*time.Microsecond), worst)

	for _, tt := range []struct {
		cfg  ScanConfig
		want string
	}{
		{ScanConfig{URL: "tcp://x", Timeout: time.Second}, "no unit ids"},
		{ScanConfig{URL: "tcp://x", Units: []uint8{1}}, "-timeout 0s"},
		{ScanConfig{URL: "rtuovertcp://x", Units: []uint8{0}, Timeout: time.Second}, "unit 0 on rtuovertcp://"},
		{ScanConfig{URL: "rtu:///dev/x", Units: []uint8{248}, Timeout: time.Second}, "unit 248"},
		{ScanConfig{URL: "rtu:///dev/x", Units: []uint8{1}, Speeds: []int{12345}, Timeout: time.Second}, "12345"},
		{ScanConfig{URL: "tcp://x", Units: []uint8{1}, Speeds: []int{9600}, Timeout: time.Second}, "apply to a serial line (rtu://, ascii://) only"},
	} {
		_, _, err := tt.cfg.Check()
		var ue *UsageError
		require.ErrorAs(t, err, &ue, tt.want)
		assert.Contains(t, err.Error(), tt.want)
	}
}

// TestScanFound: finds are reported as they are found, in unit order, with
// the register's values or the exception; the callbacks see progress.
func TestScanFound(t *testing.T) {
	p := &modbus.Profile{Name: "t", Points: []modbus.Point{{Name: "a", Table: modbus.Input, Address: 5, Type: modbus.Uint16}}}
	srv, err := modbustest.NewServer(p, modbustest.WithUnits(2, 4))
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	require.NoError(t, srv.Set("a", 77))
	var found []Find
	var progress []Progress
	res, err := Scan(context.Background(), ScanConfig{URL: srv.URL(), Units: []uint8{1, 2, 3, 4}, Register: Register{modbus.Input, 5},
		Timeout: 30 * time.Millisecond, Found: func(f Find) { found = append(found, f) }, Progress: func(p Progress) { progress = append(progress, p) }})
	require.NoError(t, err)
	assert.True(t, res.Complete)
	assert.Equal(t, 4, res.Tries)
	require.Len(t, res.Finds, 2)
	assert.Equal(t, res.Finds, found)
	assert.Equal(t, uint8(2), found[0].Unit)
	assert.Equal(t, []uint16{77}, found[0].Values)
	assert.Equal(t, "input:5 = 0x004D", found[0].Answer(Register{modbus.Input, 5}))
	assert.Equal(t, srv.URL(), found[0].URL)
	require.Len(t, progress, 5)
	assert.Equal(t, Progress{Done: 4, Total: 4, Found: 2, Elapsed: progress[4].Elapsed}, progress[4])

	// Another register: unit 4 answers with an exception, still a find.
	res, err = Scan(context.Background(), ScanConfig{URL: srv.URL(), Units: []uint8{4}, Register: Register{modbus.Holding, 0}, Timeout: 30 * time.Millisecond})
	require.NoError(t, err)
	require.Len(t, res.Finds, 1)
	assert.Equal(t, modbus.IllegalDataAddress, res.Finds[0].Exception)
	assert.Equal(t, "exception 2 (illegal data address)", res.Finds[0].Answer(Register{}))

	// A cancelled context ends the scan with what it found.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err = Scan(ctx, ScanConfig{URL: srv.URL(), Units: []uint8{2, 4}, Timeout: 30 * time.Millisecond})
	require.NoError(t, err)
	assert.False(t, res.Complete)
	assert.Zero(t, res.Tries)
}

func FuzzParseUnits(f *testing.F) {
	for _, s := range []string{"1-247", "0,1,2", "5-1", "1-", "-", ",,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		us, err := ParseUnits(s)
		if err != nil {
			return
		}
		seen := map[uint8]bool{}
		for _, u := range us {
			require.False(t, seen[u], "unit %d twice", u)
			seen[u] = true
		}
	})
}

func FuzzParseRegister(f *testing.F) {
	for _, s := range []string{"holding:0", "40001", "coil:0x10", "input:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRegister(s)
		if err != nil {
			return
		}
		require.NotEmpty(t, r.Table)
	})
}
