//go:build linux

package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/internal/pymodbus"
	"github.com/m2mbridge/m2mbridge/internal/testline"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// rtuDevice serves the test device as unit 3 with RTU framing at settings
// dev, behind an emulated serial line: the scan opens line.Path() at each
// speed and parity it tries, and the line garbles what a real line at
// mismatched settings would.
func rtuDevice(t *testing.T, dev testline.Settings) (*testline.Line, *modbustest.Server) {
	t.Helper()
	devEnd, lineEnd := net.Pipe()
	srv, err := modbustest.NewRTUServer(device, devEnd, modbustest.WithUnits(3))
	require.NoError(t, err)
	line, err := testline.Open(lineEnd, dev)
	require.NoError(t, err)
	t.Cleanup(func() {
		line.Close()
		srv.Close()
	})
	require.NoError(t, srv.Set("f_high", 230.5))
	return line, srv
}

// TestScanRTU: the scan finds unit 3 at 19200 8E1, and only there, among
// nine settings.
func TestScanRTU(t *testing.T) {
	line, srv := rtuDevice(t, testline.Settings{Speed: 19200, Parity: modbus.ParityEven})
	code, out, errOut := m2m(t, "scan", "rtu://"+line.Path(), "-units", "1-4", "-speeds", "9600,19200,38400",
		"-parity", "none,even,odd", "-timeout", "200ms", "-json")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "4 unit ids × 9 serial settings = 36 tries, reading holding:0, 200ms each")
	var finds []scanJSON
	for _, f := range decodeScan(t, out) {
		if f.Kind == "found" {
			finds = append(finds, f)
		}
	}
	require.Len(t, finds, 1, "out: %s\nerr: %s", out, errOut)
	f := finds[0]
	assert.Equal(t, 3, *f.Unit)
	assert.Equal(t, 19200, f.Speed)
	assert.Equal(t, "even", f.Parity)
	assert.Equal(t, 8, f.DataBits)
	assert.Equal(t, 1, f.StopBits)
	assert.Equal(t, []uint16{0x4366}, f.Values)
	assert.Equal(t, "rtu://"+line.Path()+"?speed=19200&parity=even&data_bits=8&stop_bits=1", f.URL)
	assert.Contains(t, errOut, "m2m: found 1 (36 of 36 tries")

	// The line did its job: bytes at the wrong settings were garbled, and
	// the device saw requests only at the right ones (a garbled frame
	// fails its CRC and is dropped).
	assert.Positive(t, line.Garbled())
	assert.Positive(t, line.Passed())
	for _, r := range srv.Requests() {
		assert.Equal(t, uint8(3), r.Unit)
	}
	assert.Len(t, srv.Requests(), 1, "unit 3 was asked once at the right settings")

	// The URL it printed reads the device.
	code, out, errOut = m2m(t, "read", f.URL, "-unit", "3", "-address", "0", "-type", "float32")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "230.5")

	// -first stops after the first setting with a find.
	code, _, errOut = m2m(t, "scan", "rtu://"+line.Path(), "-units", "3", "-speeds", "19200,38400", "-parity", "even,odd",
		"-timeout", "300ms", "-first")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "found 1 (1 of 4 tries")
	assert.Contains(t, errOut, "stopped at the first setting with a find (-first)")
}

// TestScanRTUNone: the device talks 9600 8O1; a scan of other settings
// finds nothing (exit 1), and the table says so.
func TestScanRTUNone(t *testing.T) {
	line, _ := rtuDevice(t, testline.Settings{Speed: 9600, Parity: modbus.ParityOdd})
	code, out, errOut := m2m(t, "scan", "rtu://"+line.Path(), "-units", "3", "-speeds", "19200,38400", "-timeout", "100ms")
	assert.Equal(t, 1, code, errOut)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "1 unit id × 6 serial settings = 6 tries")
	assert.Contains(t, errOut, "no unit answered (6 of 6 tries")
	assert.NotContains(t, errOut, "m2m: found")
	// The URL's own settings are the default when -speeds and -parity are
	// not given... and the right ones find it.
	code, out, errOut = m2m(t, "scan", "rtu://"+line.Path()+"?speed=9600&parity=odd", "-units", "2-3", "-timeout", "300ms")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "2 unit ids × 1 serial setting = 2 tries")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	assert.Regexp(t, `^3\s+9600 8O1\s+holding:0 = 0x4366`, lines[1])
}

// TestScanRTUPymodbus: the same search against pymodbus, a device nobody
// here wrote, behind the emulated line at 38400 8E1 (M2MB_INTEROP=1).
func TestScanRTUPymodbus(t *testing.T) {
	py := pymodbus.StartRTU(t, "hr[0:2] = regs('f', 230.5)")
	dev, err := testline.OpenRaw(py.PTY)
	require.NoError(t, err)
	line, err := testline.Open(dev, testline.Settings{Speed: 38400, Parity: modbus.ParityEven})
	require.NoError(t, err)
	t.Cleanup(func() { line.Close() })

	code, out, errOut := m2m(t, "scan", "rtu://"+line.Path(), "-units", "1-2", "-speeds", "9600,19200,38400,115200",
		"-parity", "none,even,odd", "-timeout", "200ms", "-json")
	require.Equal(t, 0, code, errOut)
	var finds []scanJSON
	for _, f := range decodeScan(t, out) {
		if f.Kind == "found" {
			finds = append(finds, f)
		}
	}
	// pymodbus with a single context answers every unit id: both are
	// found, and only at 38400 even.
	require.Len(t, finds, 2, "out: %s\nerr: %s", out, errOut)
	for _, f := range finds {
		assert.Equal(t, 38400, f.Speed, "%+v", f)
		assert.Equal(t, "even", f.Parity)
		assert.Equal(t, []uint16{0x4366}, f.Values)
	}
	assert.Positive(t, line.Garbled())

	code, out, errOut = m2m(t, "read", finds[0].URL, "-unit", "1", "-address", "0", "-type", "float32")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "230.5")
}

// TestScanProgressBar: with stderr on a terminal the scan draws a bar,
// redrawn in place, and clears it before each find and at the end; stdout
// (a pipe here) gets only the table.
func TestScanProgressBar(t *testing.T) {
	srv, err := modbustest.NewServer(device, modbustest.WithUnits(7))
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	master, tty, err := testline.OpenPTY()
	require.NoError(t, err)
	t.Cleanup(func() { master.Close() })
	slave, err := testline.OpenRaw(tty)
	require.NoError(t, err)

	var screen strings.Builder
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			screen.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	cmd := exec.Command(m2mBin, "scan", srv.URL(), "-units", "1-10", "-timeout", "100ms")
	var stdout strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, slave
	require.NoError(t, cmd.Run())
	slave.Close()
	master.SetReadDeadline(time.Now().Add(2 * time.Second))
	<-done

	s := screen.String()
	assert.Contains(t, s, "\r\x1b[K[", "the bar is drawn in place")
	assert.Contains(t, s, "] 10/10", "and reaches the end")
	assert.Regexp(t, `\[#+\.*\] \d+/10  unit \d+\s+found \d`, s)
	assert.Contains(t, s, "m2m: found 1 (10 of 10 tries")
	assert.NotContains(t, stdout.String(), "\r")
	assert.Regexp(t, `^UNIT\s+SETTINGS\s+ANSWER\s+LATENCY\n7\s+-\s+holding:0 = 0x`, stdout.String())
}

// TestScanSimulatorOnPTY is the README's walk-through on one machine:
// modbus-sim serves on a pseudo-terminal, linesim puts a line at 9600 8O1
// in front of it, and the scan finds the simulator there and only there;
// the URL it prints reads a value.
func TestScanSimulatorOnPTY(t *testing.T) {
	dir := t.TempDir()
	sim, linesim := filepath.Join(dir, "modbus-sim"), filepath.Join(dir, "linesim")
	for bin, pkg := range map[string]string{sim: "../modbus-sim", linesim: "../../internal/testline/linesim"} {
		out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	simPTY := startAndWait(t, regexp.MustCompile(`pseudo-terminal: open (\S+)\)`), sim, "-pty")
	linePTY := startAndWait(t, regexp.MustCompile(`: open (\S+)$`), linesim, "-device", simPTY, "-speed", "9600", "-parity", "odd")

	code, out, errOut := m2m(t, "scan", "rtu://"+linePTY, "-units", "1", "-speeds", "9600,19200", "-register", "input:0",
		"-timeout", "300ms", "-json")
	require.Equal(t, 0, code, errOut)
	finds := decodeScan(t, out)
	require.Len(t, finds, 1, "out: %s\nerr: %s", out, errOut)
	assert.Equal(t, 9600, finds[0].Speed)
	assert.Equal(t, "odd", finds[0].Parity)
	assert.Contains(t, errOut, "1 unit id × 6 serial settings = 6 tries")

	code, out, errOut = m2m(t, "read", finds[0].URL, "-modicon", "30001", "-type", "float32")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `input:0\s+2\d\d\.\d+\s`, out, "an SDM630 voltage")
}

// startAndWait starts a program, waits for a line of its output matching
// re, and returns the match's first group; the program is killed when the
// test ends.
func startAndWait(t *testing.T, re *regexp.Regexp, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stdout, w, err := os.Pipe() // stdout and stderr, as a person sees them
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = w, w
	require.NoError(t, cmd.Start())
	w.Close()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case s := <-found:
		return s
	case <-time.After(30 * time.Second):
		t.Fatalf("%s %q did not say where it serves within 30s", bin, args)
	}
	return ""
}

// TestScanASCII: on an ascii:// line the scan tries speeds and parities
// too, with ASCII's 7 data bits, and finds the unit at its settings.
func TestScanASCII(t *testing.T) {
	devEnd, lineEnd := net.Pipe()
	srv, err := modbustest.NewASCIIServer(device, devEnd, modbustest.WithUnits(9))
	require.NoError(t, err)
	line, err := testline.Open(lineEnd, testline.Settings{Speed: 9600, Parity: modbus.ParityEven})
	require.NoError(t, err)
	t.Cleanup(func() {
		line.Close()
		srv.Close()
	})
	code, out, errOut := m2m(t, "scan", "ascii://"+line.Path(), "-units", "8-9", "-speeds", "9600,19200", "-parity", "even,odd",
		"-timeout", "300ms", "-json")
	require.Equal(t, 0, code, errOut)
	finds := decodeScan(t, out)
	require.Len(t, finds, 1, "out: %s\nerr: %s", out, errOut)
	assert.Equal(t, 9, *finds[0].Unit)
	assert.Equal(t, 9600, finds[0].Speed)
	assert.Equal(t, "even", finds[0].Parity)
	assert.Equal(t, 7, finds[0].DataBits)
	assert.Equal(t, "ascii://"+line.Path()+"?speed=9600&parity=even&data_bits=7&stop_bits=1", finds[0].URL)
}
