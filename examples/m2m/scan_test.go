package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// scanJSON is one line of m2m scan -json.
type scanJSON struct {
	Kind          string   `json:"kind"`
	Unit          *int     `json:"unit"`
	URL           string   `json:"url"`
	Speed         int      `json:"speed"`
	Parity        string   `json:"parity"`
	DataBits      int      `json:"data_bits"`
	StopBits      int      `json:"stop_bits"`
	Register      string   `json:"register"`
	Values        []uint16 `json:"values"`
	Exception     int      `json:"exception"`
	ExceptionName string   `json:"exception_name"`
	LatencyMS     float64  `json:"latency_ms"`
	Replies       int      `json:"replies"`
}

func decodeScan(t *testing.T, out string) []scanJSON {
	t.Helper()
	var res []scanJSON
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var s scanJSON
		require.NoError(t, json.Unmarshal([]byte(l), &s), l)
		res = append(res, s)
	}
	return res
}

// TestScanTCP: unit ids behind a gateway. Unit 1 answers with values, unit
// 42 only with exceptions (it is there: found), unit 9 is answered for by
// the gateway with 0x0B (target device failed to respond: not found), the
// others are silent.
func TestScanTCP(t *testing.T) {
	srv, err := modbustest.NewServer(device, modbustest.WithUnits(1, 9, 42), modbustest.WithHook(modbustest.Chain(
		modbustest.ForUnit(42, modbustest.Except(modbus.IllegalFunction)),
		modbustest.ForUnit(9, modbustest.Except(modbus.GatewayTargetDeviceFailedToRespond)))))
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	require.NoError(t, srv.Set("f_high", 230.5))

	code, out, errOut := m2m(t, "scan", srv.URL(), "-units", "0-12,40-44", "-timeout", "200ms")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "m2m: scan "+srv.URL()+": 18 unit ids, reading holding:0, 200ms each; at most 3.6s")
	assert.Contains(t, errOut, "m2m: found 2 (18 of 18 tries")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	assert.Regexp(t, `^UNIT\s+SETTINGS\s+ANSWER\s+LATENCY$`, lines[0])
	assert.Regexp(t, `^1\s+-\s+holding:0 = 0x4366\s+\S+$`, lines[1])
	assert.Regexp(t, `^42\s+-\s+exception 1 \(illegal function\)\s+\S+$`, lines[2])
	assert.NotContains(t, errOut, "\r", "no progress bar when stderr is not a terminal")

	// JSON lines, another register (a Modicon number), the values read.
	code, out, errOut = m2m(t, "scan", srv.URL(), "-units", "1,9,42,100", "-timeout", "200ms", "-register", "40003", "-json")
	require.Equal(t, 0, code, errOut)
	finds := decodeScan(t, out)
	require.Len(t, finds, 2, out)
	assert.Equal(t, "found", finds[0].Kind)
	assert.Equal(t, 1, *finds[0].Unit)
	assert.Equal(t, "holding:2", finds[0].Register)
	assert.Len(t, finds[0].Values, 1)
	assert.Equal(t, srv.URL(), finds[0].URL)
	assert.Zero(t, finds[0].Speed, "no serial settings on tcp")
	assert.Equal(t, 42, *finds[1].Unit)
	assert.Equal(t, 1, finds[1].Exception)
	assert.Equal(t, "illegal function", finds[1].ExceptionName)
	assert.Nil(t, finds[1].Values)

	// Every try reached the device; the silent units were asked once each.
	units := map[uint8]int{}
	for _, r := range srv.Requests() {
		units[r.Unit]++
	}
	for _, u := range []uint8{1, 9, 42} {
		assert.Equal(t, 2, units[u], "unit %d: asked once per scan", u)
	}
}

// TestScanNothing: no unit answers: exit 1 and said; -max-time bounds the
// scan and says where it stopped; a link that cannot be opened is an error.
func TestScanNothing(t *testing.T) {
	srv, err := modbustest.NewServer(device, modbustest.WithUnits(200))
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })

	code, out, errOut := m2m(t, "scan", srv.URL(), "-units", "1-3", "-timeout", "20ms")
	assert.Equal(t, 1, code, errOut)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "m2m: no unit answered (3 of 3 tries")

	start := time.Now()
	code, _, errOut = m2m(t, "scan", srv.URL(), "-units", "1-199", "-timeout", "100ms", "-max-time", "400ms")
	assert.Equal(t, 1, code, errOut)
	assert.Less(t, time.Since(start), 10*time.Second)
	assert.Contains(t, errOut, "at most 19.9s; -max-time 400ms stops it sooner")
	assert.Regexp(t, `no unit answered \(\d of 199 tries in \S+, stopped by -max-time 400ms\)`, errOut)

	dead := srv.URL()
	srv.Close()
	code, _, errOut = m2m(t, "scan", dead, "-units", "1-3", "-timeout", "20ms")
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, errOut, "cannot open "+dead)
}

func TestScanUsage(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no URL", []string{"scan"}, "scan wants one URL"},
		{"bad units", []string{"scan", "tcp://127.0.0.1:1", "-units", "5-1"}, `-units: units "5-1": "5-1" is not a unit id`},
		{"unit above 255", []string{"scan", "tcp://127.0.0.1:1", "-units", "1-300"}, "is not a unit id (0-255)"},
		{"unit 0 on rtu", []string{"scan", "rtuovertcp://127.0.0.1:1", "-units", "0-3"}, "unit 0 on rtuovertcp://: serial unit ids are 1 to 247"},
		{"speeds on tcp", []string{"scan", "tcp://127.0.0.1:1", "-speeds", "9600"}, "-speeds and -parity apply to a serial line (rtu://, ascii://) only"},
		{"bad speed", []string{"scan", "rtu:///dev/null", "-speeds", "9600,12345"}, "12345"},
		{"bad parity", []string{"scan", "rtu:///dev/null", "-parity", "even,mark"}, `"mark" is not none, even or odd`},
		{"bad register", []string{"scan", "tcp://127.0.0.1:1", "-register", "holdings:0"}, "-register"},
		{"bad URL", []string{"scan", "ftp://x"}, "ftp"},
		{"negative max-time", []string{"scan", "tcp://127.0.0.1:1", "-max-time", "-1s"}, "-max-time -1s is negative"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := m2m(t, tt.args...)
			assert.Equal(t, 2, code, errOut)
			assert.Contains(t, errOut, tt.want)
		})
	}
	code, _, errOut := m2m(t, "scan", "-h")
	assert.Equal(t, 0, code)
	assert.Contains(t, errOut, "usage: m2m scan URL")
	assert.Contains(t, errOut, "-max-time")
	assert.Contains(t, errOut, "Exit status: 0 a unit was found, 1 none answered")
}

// TestScanHint: replies that come too late for their try (or garbled ones)
// are no find, but the scan says something answered. Unit 5 answers after
// 150ms, later than the 100ms -timeout; the tries of the silent units 6-8
// that follow read and discard its reply, whenever it comes in their
// window (from about 125ms to 450ms).
func TestScanHint(t *testing.T) {
	srv, err := modbustest.NewServer(device, modbustest.WithFraming(modbustest.RTU), modbustest.WithUnits(5),
		modbustest.WithHook(modbustest.Delay(150*time.Millisecond)))
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	url := "rtuovertcp://" + srv.Addr()
	code, out, errOut := m2m(t, "scan", url, "-units", "5-8", "-timeout", "100ms")
	assert.Equal(t, 1, code, errOut)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "m2m: hint: on this link 1 replies did not decode or answered no request of ours")
	assert.Contains(t, errOut, "no unit answered (4 of 4 tries")

	code, out, _ = m2m(t, "scan", url, "-units", "5-8", "-timeout", "100ms", "-json")
	assert.Equal(t, 1, code)
	hints := decodeScan(t, out)
	require.Len(t, hints, 1, out)
	assert.Equal(t, "garbled", hints[0].Kind)
	assert.Equal(t, 1, hints[0].Replies)

	// With time enough, unit 5 is found.
	code, out, errOut = m2m(t, "scan", url, "-units", "5-6", "-timeout", "1s")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `\n5\s+-\s+holding:0 = 0x[0-9A-F]{4}\s`, out)
}
