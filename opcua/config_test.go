package opcua

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/m2mbridge/m2mbridge/bridge"
)

func TestParseConfigYAML(t *testing.T) {
	t.Setenv("PLC1_PASSWORD", "s3cret-from-env")
	cfg, err := ParseConfig([]byte(`
name: plc1
endpoint: opc.tcp://127.0.0.1:4840
mode: poll
interval: 500ms
security_policy: Basic256Sha256
security_mode: SignAndEncrypt
username: operator
password_env: PLC1_PASSWORD
pki_dir: ./pki
server_certificate_sha256: "AB:CD:ef:0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
nodes:
  - name: temperature
    node: "ns=2;s=Temperature"
    unit: "°C"
  - name: level
    node: "nsu=urn:plant;i=42"
`))
	require.NoError(t, err)
	assert.Equal(t, 500*time.Millisecond, cfg.Interval)
	assert.Equal(t, Poll, cfg.Mode)
	require.Len(t, cfg.Nodes, 2)
	src, err := New(cfg)
	require.NoError(t, err)
	assert.Equal(t, "s3cret-from-env", src.st.password)
	assert.Equal(t, ua.UserTokenTypeUserName, src.st.auth)
	assert.Equal(t, ua.MessageSecurityModeSignAndEncrypt, src.st.mode)
	assert.Equal(t, "urn:plant", src.st.nodes[1].nsu)

	_, err = ParseConfig([]byte("name: x\nendpont: opc.tcp://a:1\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "line 2")
	assert.Contains(t, err.Error(), "endpont")
	_, err = ParseConfig([]byte("name: x\ninterval: soon\n"))
	require.Error(t, err, "a wrong type is an error")
}

func TestNewReportsEveryProblem(t *testing.T) {
	cfg := Config{
		Endpoint:       "http://x",
		Mode:           "stream",
		Interval:       -time.Second,
		SecurityPolicy: "Basic256",
		SecurityMode:   "Loud",
		Auth:           "kerberos",
		Nodes: []Node{
			{Name: "a", Node: "ns=2;s=A"},
			{Name: "a", Node: "ns=2;s=B"},
			{Name: "", Node: "i=abc"},
			{Name: "c", Node: "nsu=;s=C"},
			{Name: "d", Node: "ns=2;i=1", Deadband: "relative"},
			{Name: "e", Node: "ns=2;i=2", Deadband: "percent", DeadbandValue: 150},
			{Name: "f", Node: "ns=2;i=3", Trigger: "always"},
		},
	}
	_, err := New(cfg)
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		"opcua: source (unnamed): invalid config",
		"name: is required",
		`endpoint: "http://x" is not an opc.tcp URL`,
		`mode: unknown mode "stream"`,
		"interval: -1s is out of range",
		"security_policy: Basic256 is deprecated",
		`security_mode: unknown security mode "Loud"`,
		`auth: unknown authentication "kerberos"`,
		`nodes[1].name: "a" is already used by nodes[0]`,
		"nodes[2].name: is required",
		`nodes[2].node: "i=abc"`,
		"nodes[3].node",
		`nodes[4].deadband: unknown deadband "relative"`,
		"nodes[5].deadband_value: 150",
		`nodes[6].trigger: unknown trigger "always"`,
	} {
		assert.Contains(t, msg, want)
	}
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Len(t, bridge.FieldErrors(err), 16, "every problem is a field error a loader can walk")

	_, err = New(Config{Name: "p", Endpoint: "opc.tcp://h:1", SecurityPolicy: "Basic256Sha256", Nodes: []Node{{Name: "a", Node: "i=1"}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "set server_certificate_sha256 or trust_dir")
	assert.Contains(t, err.Error(), "pki_dir")

	_, err = New(Config{Name: "p", Endpoint: "opc.tcp://h:1", Mode: Poll, Nodes: []Node{{Name: "a", Node: "i=1", Deadband: "absolute", DeadbandValue: 1}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nodes[0]: sampling_interval, queue_size, trigger and deadband apply to mode subscribe only")

	_, err = New(Config{Name: "p", Endpoint: "opc.tcp://h:1", SecurityPolicy: "Basic256", AllowDeprecatedPolicies: true,
		InsecureSkipVerify: true, PKIDir: t.TempDir(), Nodes: []Node{{Name: "a", Node: "i=1"}}})
	require.NoError(t, err, "deprecated policies with the explicit flag")
}

func TestPasswordNeverShown(t *testing.T) {
	const pw = "hunter2-very-secret"
	cfg := Config{Name: "p", Endpoint: "opc.tcp://h:1", Username: "op", Password: pw, PasswordEnv: "M2MB_UNSET_VARIABLE_FOR_TEST",
		Nodes: []Node{{Name: "a", Node: "bogus"}}}
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%v", &cfg), cfg.Password.String()} {
		assert.NotContains(t, s, pw)
	}
	y, err := yaml.Marshal(struct{ P Secret }{cfg.Password})
	require.NoError(t, err)
	assert.NotContains(t, string(y), pw)
	j, err := json.Marshal(cfg)
	require.NoError(t, err)
	assert.NotContains(t, string(j), pw)
	_, err = New(cfg)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), pw)

	file := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(file, []byte(pw+"\n"), 0o600))
	src, err := New(Config{Name: "p", Endpoint: "opc.tcp://h:1", Username: "op", PasswordFile: file, Nodes: []Node{{Name: "a", Node: "i=1"}}})
	require.NoError(t, err)
	assert.Equal(t, pw, src.st.password)
	assert.NotContains(t, fmt.Sprintf("%+v %#v", src.st.Config, src.st.Config), pw)
}

func TestToValue(t *testing.T) {
	ts := time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC)
	for _, tc := range []struct {
		name string
		in   any
		want bridge.Value
	}{
		{"bool", true, bridge.Bool(true)},
		{"sbyte", int8(-3), bridge.Int(-3)},
		{"int16", int16(-300), bridge.Int(-300)},
		{"int32", int32(-70000), bridge.Int(-70000)},
		{"int64", int64(-1) << 62, bridge.Int(-1 << 62)},
		{"byte", uint8(200), bridge.Uint(200)},
		{"uint16", uint16(60000), bridge.Uint(60000)},
		{"uint32", uint32(4e9), bridge.Uint(4e9)},
		{"uint64", uint64(1) << 63, bridge.Uint(1 << 63)},
		{"float", float32(1.5), bridge.Float(1.5)},
		{"double", 2.25, bridge.Float(2.25)},
		{"string", "hi", bridge.String("hi")},
		{"datetime", ts, bridge.String("2026-11-21T10:00:00.123456789Z")},
		{"localizedtext", ua.NewLocalizedText("txt"), bridge.String("txt")},
		{"statuscode", ua.StatusBadTimeout, bridge.Uint(uint64(ua.StatusBadTimeout))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := toValue(ua.MustVariant(tc.in))
			require.NoError(t, err)
			assert.True(t, tc.want.Equal(v), "got %v (%s)", v, v.Kind())
			assert.Equal(t, tc.want.Kind(), v.Kind())
		})
	}
	_, err := toValue(ua.MustVariant([]float64{1, 2}))
	require.ErrorIs(t, err, errArray)
	_, err = toValue(ua.MustVariant(ua.NewExtensionObject(&ua.EUInformation{})))
	require.ErrorContains(t, err, "structure")
	v, err := toValue(nil)
	require.NoError(t, err)
	assert.True(t, v.IsNone())
}

func TestFillQualityAndTime(t *testing.T) {
	arrival := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	src := arrival.Add(-time.Second)
	srv := arrival.Add(-time.Millisecond)
	for _, tc := range []struct {
		name     string
		dv       *ua.DataValue
		quality  bridge.Quality
		reason   string
		time     time.Time
		hasValue bool
	}{
		{"good source ts", &ua.DataValue{EncodingMask: ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp, Value: ua.MustVariant(1.0), SourceTimestamp: src, ServerTimestamp: srv}, bridge.Good, "", src, true},
		{"server ts only", &ua.DataValue{EncodingMask: ua.DataValueValue | ua.DataValueServerTimestamp, Value: ua.MustVariant(1.0), ServerTimestamp: srv}, bridge.Good, "", srv, true},
		{"no ts", &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(1.0)}, bridge.Good, "", arrival, true},
		{"uncertain keeps value", &ua.DataValue{EncodingMask: ua.DataValueValue | ua.DataValueStatusCode, Value: ua.MustVariant(1.0), Status: ua.StatusUncertainLastUsableValue}, bridge.Uncertain, "UncertainLastUsableValue", arrival, true},
		{"bad drops value", &ua.DataValue{EncodingMask: ua.DataValueValue | ua.DataValueStatusCode, Value: ua.MustVariant(1.0), Status: ua.StatusBadSensorFailure}, bridge.Bad, "BadSensorFailure", arrival, false},
		{"bad with info bits", &ua.DataValue{EncodingMask: ua.DataValueStatusCode, Status: ua.StatusBadSensorFailure | 0x0400}, bridge.Bad, "BadSensorFailure", arrival, false},
		{"unknown code", &ua.DataValue{EncodingMask: ua.DataValueStatusCode, Status: 0x80FF0000}, bridge.Bad, "0x80ff0000", arrival, false},
		{"array", &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant([]int32{1})}, bridge.Bad, "array", arrival, false},
		{"nil", nil, bridge.Bad, "BadNoData", arrival, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s bridge.Sample
			fill(&s, tc.dv, arrival)
			assert.Equal(t, tc.quality, s.Quality)
			assert.Contains(t, s.Reason, tc.reason)
			if tc.reason == "" {
				assert.Empty(t, s.Reason)
			}
			assert.Equal(t, tc.time, s.Time)
			assert.Equal(t, tc.hasValue, !s.Value.IsNone())
			if tc.dv != nil && tc.dv.Has(ua.DataValueStatusCode) {
				assert.Equal(t, uint32(tc.dv.Status), s.Code)
			}
		})
	}
}

func TestConvertFor(t *testing.T) {
	ok := []struct {
		in   any
		t    ua.TypeID
		want any
	}{
		{3, ua.TypeIDDouble, 3.0},
		{2.5, ua.TypeIDFloat, float32(2.5)},
		{7.0, ua.TypeIDInt32, int32(7)},
		{uint8(9), ua.TypeIDInt16, int16(9)},
		{-5, ua.TypeIDSByte, int8(-5)},
		{255, ua.TypeIDByte, uint8(255)},
		{bridge.Uint(1 << 40), ua.TypeIDUint64, uint64(1 << 40)},
		{bridge.Bool(true), ua.TypeIDBoolean, true},
		{"x", ua.TypeIDString, "x"},
		{"2026-11-21T10:00:00Z", ua.TypeIDDateTime, time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)},
	}
	for _, tc := range ok {
		got, err := convertFor(tc.in, tc.t)
		require.NoError(t, err, "%v → %s", tc.in, tc.t)
		assert.Equal(t, tc.want, got)
	}
	for _, tc := range []struct {
		in any
		t  ua.TypeID
	}{
		{3.5, ua.TypeIDInt32}, {-1, ua.TypeIDUint16}, {300, ua.TypeIDByte}, {uint64(1) << 63, ua.TypeIDInt64},
		{"1", ua.TypeIDDouble}, {1, ua.TypeIDBoolean}, {true, ua.TypeIDString}, {1e300, ua.TypeIDFloat},
		{bridge.Value{}, ua.TypeIDDouble}, {1, ua.TypeIDGUID},
	} {
		_, err := convertFor(tc.in, tc.t)
		assert.Error(t, err, "%v → %s", tc.in, tc.t)
	}
}

// TestConvertForRefusals: a value the node's type cannot hold exactly is
// refused with the refusal that says why, and a message naming the type.
func TestConvertForRefusals(t *testing.T) {
	for _, tc := range []struct {
		in   bridge.Value
		t    ua.TypeID
		want error
		msg  string
	}{
		{bridge.Float(3.5), ua.TypeIDInt32, bridge.ErrWrongType, "3.5 is not an integer, the node is Int32"},
		{bridge.Int(70000), ua.TypeIDUint16, bridge.ErrOutOfRange, "70000 is outside the range of UInt16, 0 to 65535"},
		{bridge.Float(70000), ua.TypeIDUint16, bridge.ErrOutOfRange, "UInt16"},
		{bridge.Int(-1), ua.TypeIDUint32, bridge.ErrOutOfRange, "-1 is outside the range of UInt32"},
		{bridge.Float(-1), ua.TypeIDUint64, bridge.ErrOutOfRange, "UInt64"},
		{bridge.Uint(1 << 63), ua.TypeIDInt64, bridge.ErrOutOfRange, "Int64"},
		{bridge.Float(0x1p63), ua.TypeIDInt64, bridge.ErrOutOfRange, "Int64"},
		{bridge.Float(0x1p64), ua.TypeIDUint64, bridge.ErrOutOfRange, "UInt64"},
		{bridge.Float(math.Inf(1)), ua.TypeIDInt32, bridge.ErrOutOfRange, "Int32"},
		{bridge.Float(math.NaN()), ua.TypeIDInt16, bridge.ErrWrongType, "Int16"},
		{bridge.Int(40000), ua.TypeIDInt16, bridge.ErrOutOfRange, "Int16, -32768 to 32767"},
		{bridge.Int(128), ua.TypeIDSByte, bridge.ErrOutOfRange, "SByte"},
		{bridge.Int(256), ua.TypeIDByte, bridge.ErrOutOfRange, "Byte"},
		{bridge.String("21.5"), ua.TypeIDDouble, bridge.ErrWrongType, `"21.5" is a string, the node is Double`},
		{bridge.Bool(true), ua.TypeIDDouble, bridge.ErrWrongType, "true is a bool, the node is Double"},
		{bridge.Float(1), ua.TypeIDBoolean, bridge.ErrWrongType, "1 is a number, the node is Boolean"},
		{bridge.Int(1), ua.TypeIDString, bridge.ErrWrongType, "1 is an integer, the node is String"},
		{bridge.String("soon"), ua.TypeIDDateTime, bridge.ErrWrongType, "RFC 3339"},
		{bridge.Float(1e39), ua.TypeIDFloat, bridge.ErrOutOfRange, "Float"},
		{bridge.Int(1<<24 + 1), ua.TypeIDFloat, bridge.ErrOutOfRange, "16777217 cannot be held exactly by a Float"},
		{bridge.Int(1<<53 + 1), ua.TypeIDDouble, bridge.ErrOutOfRange, "cannot be held exactly by a Double"},
		{bridge.Uint(math.MaxUint64), ua.TypeIDDouble, bridge.ErrOutOfRange, "Double"},
		{bridge.Value{}, ua.TypeIDDouble, bridge.ErrWrongType, "no value"},
		{bridge.Int(1), ua.TypeIDByteString, bridge.ErrWrongType, "writing ByteString nodes is not supported"},
	} {
		_, err := convertFor(tc.in, tc.t)
		require.ErrorIs(t, err, tc.want, "%v → %s", tc.in, tc.t)
		assert.Contains(t, err.Error(), tc.msg)
	}
	// What fits exactly is taken.
	for _, tc := range []struct {
		in   bridge.Value
		t    ua.TypeID
		want any
	}{
		{bridge.Int(65535), ua.TypeIDUint16, uint16(65535)},
		{bridge.Float(-32768), ua.TypeIDInt16, int16(-32768)},
		{bridge.Int(math.MinInt64), ua.TypeIDInt64, int64(math.MinInt64)},
		{bridge.Uint(math.MaxUint64), ua.TypeIDUint64, uint64(math.MaxUint64)},
		{bridge.Int(1 << 24), ua.TypeIDFloat, float32(1 << 24)},
		{bridge.Int(1<<30 + 128), ua.TypeIDFloat, float32(1<<30 + 128)},
		{bridge.Int(-1 << 53), ua.TypeIDDouble, float64(-1 << 53)},
		{bridge.Uint(1 << 63), ua.TypeIDDouble, float64(1 << 63)},
		{bridge.Float(0.1), ua.TypeIDFloat, float32(0.1)},
	} {
		got, err := convertFor(tc.in, tc.t)
		require.NoError(t, err, "%v → %s", tc.in, tc.t)
		assert.Equal(t, tc.want, got)
	}
}

func TestCheckRules(t *testing.T) {
	f := func(x float64) *float64 { return &x }
	n := Node{Writable: true, Min: f(-10), Max: f(0x1p53)}
	assert.NoError(t, checkRules(&n, bridge.Int(1<<53)))
	assert.ErrorIs(t, checkRules(&n, bridge.Int(1<<53+1)), bridge.ErrOutOfRange, "compared exactly, not rounded to 2^53")
	assert.ErrorIs(t, checkRules(&n, bridge.Uint(math.MaxUint64)), bridge.ErrOutOfRange)
	assert.ErrorIs(t, checkRules(&n, bridge.Float(-10.000001)), bridge.ErrOutOfRange)
	assert.NoError(t, checkRules(&n, bridge.Int(-10)))
	assert.ErrorIs(t, checkRules(&n, bridge.Float(math.NaN())), bridge.ErrOutOfRange)
	assert.ErrorIs(t, checkRules(&n, bridge.String("1")), bridge.ErrWrongType)
	assert.ErrorIs(t, checkRules(&n, bridge.Bool(true)), bridge.ErrWrongType)
	assert.NoError(t, checkRules(&Node{Writable: true}, bridge.String("any")), "no rules: the type check decides")

	many := Node{Writable: true}
	for i := range 12 {
		many.Allowed = append(many.Allowed, float64(i))
	}
	err := checkRules(&many, bridge.Int(20))
	require.ErrorIs(t, err, bridge.ErrOutOfRange)
	assert.Contains(t, err.Error(), "20 is not one of the allowed values 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 and 2 more")
	assert.NoError(t, checkRules(&many, bridge.Float(11)))
	assert.NoError(t, checkRules(&many, bridge.Uint(3)))
}

func TestParseWritableNode(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
name: plc1
endpoint: opc.tcp://127.0.0.1:4840
nodes:
  - {name: setpoint, node: "ns=2;s=Setpoint", writable: true, min: 0, max: 80}
  - {name: mode, node: "ns=2;s=Mode", writable: true, allowed: [0, 1, 2]}
  - {name: temperature, node: "ns=2;s=Temperature"}
`))
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	sp := cfg.Nodes[0]
	assert.True(t, sp.Writable)
	require.NotNil(t, sp.Min)
	require.NotNil(t, sp.Max)
	assert.Equal(t, 0.0, *sp.Min)
	assert.Equal(t, 80.0, *sp.Max)
	assert.Equal(t, []float64{0, 1, 2}, cfg.Nodes[1].Allowed)
	assert.False(t, cfg.Nodes[2].Writable, "deny by default")
	assert.Nil(t, cfg.Nodes[2].Min)
}

func TestNodeIDResolution(t *testing.T) {
	ns := nodeSpec{Node: Node{Node: "nsu=urn:b;s=Temp"}}
	require.NoError(t, ns.parse())
	id, err := ns.resolve([]string{"http://opcfoundation.org/UA/", "urn:a", "urn:b"})
	require.NoError(t, err)
	assert.Equal(t, "ns=2;s=Temp", id.String())
	id, err = ns.resolve([]string{"http://opcfoundation.org/UA/", "urn:b"})
	require.NoError(t, err)
	assert.Equal(t, "ns=1;s=Temp", id.String(), "resolved again at every connect")
	_, err = ns.resolve([]string{"http://opcfoundation.org/UA/"})
	require.ErrorContains(t, err, "urn:b")
	for _, s := range []string{"i=2258", "ns=1;g=5CE9DBCE-5D79-434C-9AC3-1CFBA9A6E92C", "ns=1;b=YWJj", "ns=3;s=a;b"} {
		n := nodeSpec{Node: Node{Node: s}}
		assert.NoError(t, n.parse(), s)
	}
	assert.Equal(t, "nsu=urn:b;s=Temp", withURI(ua.NewStringNodeID(2, "Temp"), []string{"x", "urn:a", "urn:b"}))
	assert.Equal(t, "i=2258", withURI(ua.NewNumericNodeID(0, 2258), []string{"x"}))
}

func TestStatusName(t *testing.T) {
	assert.Equal(t, "BadSensorFailure", StatusName(ua.StatusBadSensorFailure))
	assert.Equal(t, "Good", strings.TrimPrefix(StatusName(ua.StatusGood), "Status"))
}

func TestThumbprintAndPKI(t *testing.T) {
	dir := t.TempDir()
	st, err := Config{Name: "p", Endpoint: "opc.tcp://h:1", SecurityPolicy: "Aes256_Sha256_RsaPss", SecurityMode: "Sign",
		PKIDir: dir, InsecureSkipVerify: true, Nodes: []Node{{Name: "a", Node: "i=1"}}}.check()
	require.NoError(t, err)
	cert, key, err := st.clientCert()
	require.NoError(t, err)
	require.NotNil(t, key)
	// Generated once and kept.
	cert2, _, err := st.clientCert()
	require.NoError(t, err)
	assert.Equal(t, cert, cert2)
	fi, err := os.Stat(filepath.Join(dir, PKIKeyFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	st.pin = nil
	st.ServerCertificateSHA256 = Thumbprint(cert)
	st2, err := Config{Name: "p", Endpoint: "opc.tcp://h:1", ServerCertificateSHA256: Thumbprint(cert), Nodes: []Node{{Name: "a", Node: "i=1"}}}.check()
	require.NoError(t, err)
	require.NoError(t, st2.verifyServer(cert))
	require.ErrorIs(t, st2.verifyServer(cert[:len(cert)-1]), ErrUntrustedServer)

	trust := t.TempDir()
	st3, err := Config{Name: "p", Endpoint: "opc.tcp://h:1", TrustDir: trust, Nodes: []Node{{Name: "a", Node: "i=1"}}}.check()
	require.NoError(t, err)
	require.ErrorIs(t, st3.verifyServer(cert), ErrUntrustedServer)
	require.NoError(t, os.WriteFile(filepath.Join(trust, "server.der"), cert, 0o644))
	require.NoError(t, st3.verifyServer(cert))
}

// TestValidate checks each refusal's key path, and the ranges, hints and
// enum parsing the gateway relies on.
func TestValidate(t *testing.T) {
	base := func() Config {
		return Config{Name: "p", Endpoint: "opc.tcp://h:4840", Nodes: []Node{{Name: "a", Node: "ns=2;s=A"}, {Name: "b", Node: "i=2258"}, {Name: "c", Node: "ns=1;s=C"}}}
	}
	require.NoError(t, base().Validate())
	t.Setenv("M2MB_OPCUA_EMPTY", "")
	for _, tc := range []struct {
		name, path, msg, hint string
		mut                   func(*Config)
	}{
		{"unknown identifier type", "nodes[2].node", `unknown identifier type "x"`, "", func(c *Config) { c.Nodes[2].Node = "ns=1;x=Temperature" }},
		{"no identifier type", "nodes[2].node", "unknown identifier type", `did you mean "ns=1;s=Temperature"?`, func(c *Config) { c.Nodes[2].Node = "ns=1;Temperature" }},
		{"empty identifier", "nodes[2].node", "the identifier is empty", "", func(c *Config) { c.Nodes[2].Node = "ns=1;s=" }},
		{"nsu unknown type", "nodes[0].node", "unknown identifier type", "", func(c *Config) { c.Nodes[0].Node = "nsu=urn:a;q=1" }},
		{"empty password variable", "password_env", "M2MB_OPCUA_EMPTY is set but empty", "", func(c *Config) { c.Username, c.PasswordEnv = "op", "M2MB_OPCUA_EMPTY" }},
		{"user without password", "username", `user "op" has no password`, "set password_env or password_file", func(c *Config) { c.Username = "op" }},
		{"policy misspelt", "security_policy", "unknown security policy", `did you mean "Basic256Sha256"?`, func(c *Config) { c.SecurityPolicy = "Basic256Sha265" }},
		{"mode misspelt", "security_mode", "unknown security mode", `did you mean "SignAndEncrypt"?`, func(c *Config) { c.SecurityMode = "SignEncrypt" }},
		{"source mode misspelt", "mode", "unknown mode", `did you mean "subscribe"?`, func(c *Config) { c.Mode = "subscibe" }},
		{"trigger misspelt", "nodes[1].trigger", "unknown trigger", `did you mean "status_value"?`, func(c *Config) { c.Nodes[1].Trigger = "statusvalue" }},
		{"interval too short", "interval", "1µs is out of range: want 1ms to 24h0m0s", "", func(c *Config) { c.Interval = time.Microsecond }},
		{"interval too long", "interval", "is out of range", "", func(c *Config) { c.Interval = 1000 * time.Hour }},
		{"timeout too long", "timeout", "1000h0m0s is out of range", "", func(c *Config) { c.Timeout = 1000 * time.Hour }},
		{"reconnect max below min", "reconnect_max", "is below reconnect_min", "", func(c *Config) { c.ReconnectMin, c.ReconnectMax = time.Minute, time.Second }},
		{"reconnect too long", "reconnect_max", "is out of range", "", func(c *Config) { c.ReconnectMax = 48 * time.Hour }},
		{"watchdog below interval", "watchdog", "less than twice the interval", "", func(c *Config) { c.Interval, c.Watchdog = time.Second, 500*time.Millisecond }},
		{"keepalive too large", "keepalive_count", "out of range", "", func(c *Config) { c.KeepAliveCount = 1 << 30 }},
		{"buffer too large", "buffer", "out of range", "", func(c *Config) { c.Buffer = 1 << 40 }},
		{"node queue too large", "nodes[0].queue_size", "out of range", "", func(c *Config) { c.Nodes[0].QueueSize = 1 << 20 }},
		{"sampling interval too short", "nodes[1].sampling_interval", "out of range", "", func(c *Config) { c.Nodes[1].SamplingInterval = time.Nanosecond }},
		{"endpoint with a password", "endpoint", "a user name or password in the URL", "give username with password_env or password_file", func(c *Config) { c.Endpoint = "opc.tcp://op:hunter2@h:4840" }},
		{"endpoint port", "endpoint", "port 70000 is out of range", "", func(c *Config) { c.Endpoint = "opc.tcp://h:70000" }},
		{"application uri", "application_uri", "is not a URI", "", func(c *Config) { c.ApplicationURI = "gateway" }},
		{"no nodes", "nodes", "at least one node", "", func(c *Config) { c.Nodes = nil }},
		{"min without writable", "nodes[0].min", "applies to writable nodes only", "set writable: true, or remove min", func(c *Config) { c.Nodes[0].Min = new(float64) }},
		{"allowed without writable", "nodes[1].allowed", "applies to writable nodes only", "set writable: true, or remove allowed", func(c *Config) { c.Nodes[1].Allowed = []float64{1} }},
		{"max below min", "nodes[0].max", "5 is below min 10", "", func(c *Config) {
			lo, hi := 10.0, 5.0
			c.Nodes[0].Writable, c.Nodes[0].Min, c.Nodes[0].Max = true, &lo, &hi
		}},
		{"max not finite", "nodes[0].max", "want a finite number", "", func(c *Config) {
			hi := math.Inf(1)
			c.Nodes[0].Writable, c.Nodes[0].Max = true, &hi
		}},
		{"allowed above max", "nodes[2].allowed[1]", "90 is above max 80: it could never be written", "", func(c *Config) {
			hi := 80.0
			c.Nodes[2].Writable, c.Nodes[2].Max, c.Nodes[2].Allowed = true, &hi, []float64{10, 90}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.mut(&cfg)
			err := cfg.Validate()
			require.Error(t, err)
			assert.NotContains(t, err.Error(), "hunter2")
			var found *bridge.FieldError
			for _, fe := range bridge.FieldErrors(err) {
				if fe.Path == tc.path {
					found = fe
				}
			}
			require.NotNil(t, found, "no error with path %q in %v", tc.path, err)
			assert.Contains(t, found.Msg, tc.msg)
			assert.Equal(t, tc.hint, found.Hint)
		})
	}
}

func TestEnumsUnmarshalText(t *testing.T) {
	var c struct {
		Mode   Mode           `yaml:"mode"`
		Policy SecurityPolicy `yaml:"security_policy"`
		SMode  SecurityMode   `yaml:"security_mode"`
	}
	require.NoError(t, yaml.Unmarshal([]byte("mode: Poll\nsecurity_policy: basic256sha256\nsecurity_mode: signandencrypt\n"), &c))
	assert.Equal(t, Poll, c.Mode)
	err := yaml.Unmarshal([]byte("security_policy: Basic256Sha265\n"), &c)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `did you mean "Basic256Sha256"?`)
	var m Mode
	require.Error(t, m.UnmarshalText([]byte("stream")))
	var sm SecurityMode
	require.NoError(t, sm.UnmarshalText([]byte("Sign")))
	assert.Equal(t, SecurityMode("Sign"), sm)
}
