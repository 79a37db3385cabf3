package modbus_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// paths returns "path: msg" of every field error of err, and fails when an
// error in it is not a *bridge.FieldError.
func paths(t *testing.T, err error) map[string]*bridge.FieldError {
	t.Helper()
	out := map[string]*bridge.FieldError{}
	for _, fe := range bridge.FieldErrors(err) {
		out[fe.Path] = fe
	}
	return out
}

func TestClientConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  modbus.ClientConfig
		path string
		msg  string
	}{
		{"no url", modbus.ClientConfig{}, "url", "required"},
		{"baud the port cannot take", modbus.ClientConfig{URL: "rtu:///dev/ttyUSB0", Speed: 96000}, "speed", "96000 baud"},
		{"odd baud", modbus.ClientConfig{URL: "rtu:///dev/ttyUSB0", Speed: 12345}, "speed", "12345"},
		{"baud in the url", modbus.ClientConfig{URL: "rtu:///dev/ttyUSB0?speed=96000"}, "url", "96000"},
		{"data bits", modbus.ClientConfig{URL: "rtu:///dev/ttyUSB0", DataBits: 9}, "data_bits", "5 to 8"},
		{"stop bits", modbus.ClientConfig{URL: "rtu:///dev/ttyUSB0", StopBits: 3}, "stop_bits", "1 or 2"},
		{"parity", modbus.ClientConfig{URL: "rtu:///dev/ttyUSB0", Parity: "mark"}, "parity", "mark"},
		{"timeout too long", modbus.ClientConfig{URL: "tcp://h", Timeout: 1000 * time.Hour}, "timeout", "outside 1ms to 10m0s"},
		{"timeout negative", modbus.ClientConfig{URL: "tcp://h", Timeout: -time.Second}, "timeout", "negative"},
		{"backoffs crossed", modbus.ClientConfig{URL: "tcp://h", MinBackoff: time.Minute, MaxBackoff: time.Second}, "min_backoff", "above max_backoff"},
		{"min above default max", modbus.ClientConfig{URL: "tcp://h", MinBackoff: time.Hour}, "min_backoff", "above max_backoff 30s"},
		{"max backoff range", modbus.ClientConfig{URL: "tcp://h", MaxBackoff: 48 * time.Hour}, "max_backoff", "outside"},
		{"late reply wait", modbus.ClientConfig{URL: "rtuovertcp://h:4001", LateReplyWait: 2 * time.Hour}, "late_reply_wait", "outside"},
		{"tls files on tcp", modbus.ClientConfig{URL: "tcp://h", TLSCAFile: "ca.pem"}, "ca_file", "tcp+tls only"},
		{"key without cert", modbus.ClientConfig{URL: "tcp+tls://h", TLSCertFile: "c.pem"}, "key_file", "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			require.Error(t, err)
			fe := paths(t, err)[tt.path]
			require.NotNil(t, fe, "no error at %q in %v", tt.path, err)
			assert.Contains(t, fe.Msg, tt.msg)
			_, nerr := modbus.NewClient(tt.cfg)
			assert.Equal(t, err.Error(), nerr.Error(), "NewClient applies the same rules")
		})
	}
	for _, ok := range []modbus.ClientConfig{
		{URL: "tcp://127.0.0.1:502"},
		{URL: "rtu:///dev/ttyUSB0", Speed: 9600, Parity: modbus.ParityNone, DataBits: 8, StopBits: 2},
		{URL: "rtuovertcp://gw:4001", Speed: 115200, Timeout: 10 * time.Minute, MinBackoff: time.Second, MaxBackoff: time.Second},
	} {
		assert.NoError(t, ok.Validate(), ok.URL)
	}
}

// TestSecretsInURLsAreNotPrinted: a password in a device URL never shows
// in an error.
func TestSecretsInURLsAreNotPrinted(t *testing.T) {
	for _, u := range []string{"tcp://u:PW@host:502", "tcp://u:PW@host:502?x=PW", "rtuovertcp://u:PW@gw", "tcp://u:PW@[::1"} {
		err := modbus.ClientConfig{URL: u}.Validate()
		require.Error(t, err, u)
		assert.NotContains(t, err.Error(), "PW", u)
		_, err = modbus.ParseURL(u)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "PW")
		_, err = modbus.NewDevice(modbus.DeviceConfig{Name: "d", Unit: 1, Conn: modbus.ClientConfig{URL: u},
			Points: []modbus.Point{{Name: "p", Table: modbus.Holding, Type: modbus.Uint16}}})
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "PW")
	}
}

func TestDeviceConfigValidate(t *testing.T) {
	pts := []modbus.Point{{Name: "v", Table: modbus.Holding, Address: 0, Type: modbus.Uint16}}
	tcp := modbus.ClientConfig{URL: "tcp://127.0.0.1:502"}
	rtu := modbus.ClientConfig{URL: "rtu:///dev/ttyUSB0"}
	tests := []struct {
		name string
		cfg  modbus.DeviceConfig
		path string
		msg  string
		hint string
	}{
		{"no name", modbus.DeviceConfig{Conn: tcp, Points: pts}, "name", "required", ""},
		{"unit 0 on rtu", modbus.DeviceConfig{Name: "d", Conn: rtu, Points: pts}, "unit", "broadcast", "1 to 247"},
		{"unit 0 over an rtu gateway", modbus.DeviceConfig{Name: "d", Conn: modbus.ClientConfig{URL: "rtuovertcp://gw:4001"}, Points: pts}, "unit", "broadcast", ""},
		{"unit 248 on rtu", modbus.DeviceConfig{Name: "d", Unit: 248, Conn: rtu, Points: pts}, "unit", "reserved", ""},
		{"interval 1ns", modbus.DeviceConfig{Name: "d", Conn: tcp, Points: pts, Interval: time.Nanosecond}, "interval", "outside 10ms to 24h", ""},
		{"busy retries", modbus.DeviceConfig{Name: "d", Conn: tcp, Points: pts, MaxBusyRetries: 1000}, "max_busy_retries", "outside -1", ""},
		{"busy delay", modbus.DeviceConfig{Name: "d", Conn: tcp, Points: pts, BusyRetryDelay: time.Minute}, "busy_retry_delay", "outside", ""},
		{"connection setting", modbus.DeviceConfig{Name: "d", Conn: modbus.ClientConfig{URL: "rtu:///dev/x", Speed: 96000}, Unit: 1, Points: pts}, "modbus.speed", "96000", ""},
		{"no points", modbus.DeviceConfig{Name: "d", Conn: tcp}, "points", "no points", ""},
		{"point field", modbus.DeviceConfig{Name: "d", Conn: tcp, Points: []modbus.Point{pts[0], {Name: "s", Table: modbus.Holding, Address: 5, Type: modbus.String}}}, "points[1].length", "length", ""},
		{"point interval", modbus.DeviceConfig{Name: "d", Conn: tcp, Points: []modbus.Point{{Name: "f", Table: modbus.Holding, Type: modbus.Uint16, Interval: time.Microsecond}}}, "points[0].interval", "outside", ""},
		{"limits", modbus.DeviceConfig{Name: "d", Conn: tcp, Points: pts, Limits: modbus.Limits{MaxRegisters: 200}}, "limits.max_registers", "125", ""},
		{"modicon holding", modbus.DeviceConfig{Name: "d", Conn: tcp, Points: []modbus.Point{{Name: "e", Table: modbus.Holding, Address: 65534, Type: modbus.Float64}}}, "points[0].address", "65535", ""},
		{"modicon overlap", modbus.DeviceConfig{Name: "d", Conn: tcp, Points: []modbus.Point{
			{Name: "a", Table: modbus.Holding, Address: 40101, Type: modbus.Float32},
			{Name: "b", Table: modbus.Holding, Address: 40102, Type: modbus.Float32}}}, "points[1].address", "overlap", "holding register 40102 is protocol address 101"},
		{"modicon input", modbus.DeviceConfig{Name: "d", Conn: tcp, Points: []modbus.Point{{Name: "i", Table: modbus.Input, Address: 30001, Type: modbus.Uint16}},
			Limits: modbus.Limits{Forbidden: []modbus.AddressRange{{Table: modbus.Input, First: 30000, Last: 30010}}}}, "points[0].address", "forbidden", "protocol address 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			require.Error(t, err)
			fe := paths(t, err)[tt.path]
			require.NotNil(t, fe, "no error at %q in %v", tt.path, err)
			assert.Contains(t, fe.Msg, tt.msg)
			assert.Contains(t, fe.Hint, tt.hint)
			_, nerr := modbus.NewDevice(tt.cfg)
			require.Error(t, nerr)
			assert.NotNil(t, paths(t, nerr)[tt.path], "NewDevice applies the same rules: %v", nerr)
		})
	}
	assert.NoError(t, modbus.DeviceConfig{Name: "d", Conn: tcp, Points: pts}.Validate(), "unit 0 on TCP")
	assert.NoError(t, modbus.DeviceConfig{Name: "d", Conn: tcp, Unit: 255, Points: pts, Interval: 10 * time.Millisecond}.Validate())
}

// TestUnitZeroOnTCP: unit 0 is sent as unit 0, end to end.
func TestUnitZeroOnTCP(t *testing.T) {
	p := testProfile()
	s := newSim(t, p)
	d := newDevice(t, modbus.DeviceConfig{Conn: modbus.ClientConfig{URL: s.URL()}, Unit: 0, Profile: p})
	rec := bridgetest.NewRecorder()
	require.NoError(t, d.PollOnce(ctxT(t), rec))
	require.NotEmpty(t, s.Requests())
	for _, r := range s.Requests() {
		assert.Equal(t, uint8(0), r.Unit)
	}
	for _, smp := range rec.Samples() {
		assert.Equal(t, bridge.Good, smp.Quality, smp.Reason)
	}
}

// TestYAMLAliases: the YAML keys of the tags, the enums' spellings and the
// Telegraf aliases, and the Telegraf spellings refused with the keys to
// write.
func TestYAMLAliases(t *testing.T) {
	var cfg modbus.DeviceConfig
	src := `
name: meter
unit: 0
interval: 500ms
modbus: {url: "rtu:///dev/ttyUSB0", speed: 9600, parity: N, data_bits: 8, stop_bits: 2, timeout: 300ms, min_backoff: 1s, max_backoff: 1m}
max_busy_retries: -1
limits: {max_registers: 60}
points:
  - {name: a, table: holding_registers, address: 0, type: FLOAT32-IEEE}
  - {name: b, table: Input_Registers, address: 0, type: INT16}
  - {name: c, table: coils, address: 0, type: BIT}
  - {name: d, table: discrete_inputs, address: 0, type: bool}
  - {name: e, table: input, address: 10, type: float64, word_order: low_first, byte_order: little}
`
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&cfg))
	assert.Equal(t, modbus.ParityNone, cfg.Conn.Parity)
	assert.Equal(t, 300*time.Millisecond, cfg.Conn.Timeout)
	assert.Equal(t, []modbus.Table{modbus.Holding, modbus.Input, modbus.Coil, modbus.Discrete, modbus.Input},
		[]modbus.Table{cfg.Points[0].Table, cfg.Points[1].Table, cfg.Points[2].Table, cfg.Points[3].Table, cfg.Points[4].Table})
	assert.Equal(t, []modbus.Type{modbus.Float32, modbus.Int16, modbus.Bool, modbus.Bool},
		[]modbus.Type{cfg.Points[0].Type, cfg.Points[1].Type, cfg.Points[2].Type, cfg.Points[3].Type})
	assert.Equal(t, modbus.LowFirst, cfg.Points[4].WordOrder)
	assert.Equal(t, modbus.LittleEndian, cfg.Points[4].ByteOrder)
	fe := paths(t, cfg.Validate())["unit"]
	require.NotNil(t, fe, "unit 0 on rtu")

	for _, tc := range []struct{ src, hint string }{
		{"{byte_order: CDAB}", "word_order: low_first and byte_order: big"},
		{"{byte_order: DCBA}", "word_order: low_first and byte_order: little"},
		{"{word_order: BADC}", "word_order: high_first and byte_order: little"},
		{"{byte_order: BA}", "byte_order: little"},
		{"{type: FIXED}", "scale"},
		{"{table: holdings}", "holding, input, coil or discrete"},
	} {
		var p modbus.Point
		err := yaml.Unmarshal([]byte(tc.src), &p)
		require.Error(t, err, tc.src)
		assert.Contains(t, err.Error(), tc.hint, tc.src)
	}
}

// TestConnectErrorNamesUnit: a connection error names the unit asked for.
func TestConnectErrorNamesUnit(t *testing.T) {
	s := newSim(t, testProfile())
	addr := s.Addr()
	require.NoError(t, s.Close())
	c := newClient(t, modbus.ClientConfig{URL: "tcp://" + addr})
	_, err := c.ReadRegisters(ctxT(t), 7, modbus.Input, 0, 2)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connect tcp://"+addr+" unit 7:")
	c2 := newClient(t, modbus.ClientConfig{URL: "tcp://" + addr})
	err = c2.Connect(ctxT(t))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "unit 0", "a connection is not one unit's")
}

// TestShutdownDoesNotWaitForSilentDevice: with a long timeout and a device
// that never answers, Run returns promptly once its context ends: the RTU
// link is closed at once; the upstream TCP request is abandoned.
func TestShutdownDoesNotWaitForSilentDevice(t *testing.T) {
	for _, framing := range []modbustest.Framing{modbustest.TCP, modbustest.RTU} {
		p := testProfile()
		s := newSim(t, p, modbustest.WithFraming(framing), modbustest.WithHook(modbustest.NoReply()))
		d := newDevice(t, modbus.DeviceConfig{Conn: modbus.ClientConfig{URL: s.URL(), Timeout: 10 * time.Minute}, Unit: 1, Profile: p})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx, bridgetest.NewRecorder()) }()
		require.Eventually(t, func() bool { return len(s.Requests()) > 0 }, 5*time.Second, time.Millisecond)
		start := time.Now()
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
			assert.Less(t, time.Since(start), time.Second, s.URL())
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Run did not return after its context ended", s.URL())
		}
		require.NoError(t, d.Close())
		require.NoError(t, s.Close())
	}
}

// TestDeviceHealth: the device reports whether its device answers.
func TestDeviceHealth(t *testing.T) {
	p := testProfile()
	var silent atomic.Bool
	s := newSim(t, p, modbustest.WithHook(func(modbustest.Request) modbustest.Fault {
		return modbustest.Fault{NoReply: silent.Load()}
	}))
	d := newDevice(t, modbus.DeviceConfig{Conn: modbus.ClientConfig{URL: s.URL(), Timeout: 50 * time.Millisecond,
		MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}, Unit: 1, Profile: p, Interval: 10 * time.Millisecond})
	var hr bridge.HealthReporter = d
	h := hr.Health()
	assert.False(t, h.Up)
	assert.Equal(t, "not started", h.Reason)
	runDevice(t, d)
	require.Eventually(t, func() bool { return d.Health().Up }, 10*time.Second, time.Millisecond)
	up := d.Health()
	assert.Empty(t, up.Reason)
	silent.Store(true)
	require.Eventually(t, func() bool { return !d.Health().Up }, 10*time.Second, time.Millisecond)
	down := d.Health()
	assert.Contains(t, down.Reason, "timed out")
	assert.True(t, down.Since.After(up.Since))
	silent.Store(false)
	require.Eventually(t, func() bool { return d.Health().Up }, 10*time.Second, time.Millisecond)
}

// TestLinkStatsCountALineOnce: two devices on one RTU gateway share a
// link; LinkStats has one entry for it, whose requests are both devices'.
func TestLinkStatsCountALineOnce(t *testing.T) {
	p := testProfile()
	s := newSim(t, p, modbustest.WithFraming(modbustest.RTU))
	other := newSim(t, p)
	conn := modbus.ClientConfig{URL: s.URL()}
	devs, buses, err := modbus.NewDevices(
		modbus.DeviceConfig{Name: "a", Conn: conn, Unit: 1, Profile: p},
		modbus.DeviceConfig{Name: "b", Conn: conn, Unit: 2, Profile: p},
		modbus.DeviceConfig{Name: "c", Conn: modbus.ClientConfig{URL: other.URL()}, Unit: 1, Profile: p},
	)
	require.NoError(t, err)
	require.Len(t, buses, 1)
	t.Cleanup(func() {
		for _, d := range devs {
			d.Close()
		}
		buses[0].Close()
	})
	for _, d := range devs {
		require.NoError(t, d.PollOnce(ctxT(t), bridgetest.NewRecorder()))
	}
	ls := modbus.LinkStats(devs...)
	require.Len(t, ls, 2)
	assert.Equal(t, devs[0].Link(), devs[1].Link())
	line := ls[devs[0].Link()]
	assert.Equal(t, devs[0].Stats().Requests+devs[1].Stats().Requests, line.Requests)
	assert.Len(t, line.Units, 2)
	assert.Equal(t, devs[2].Stats().Requests, ls[devs[2].Link()].Requests)
}
