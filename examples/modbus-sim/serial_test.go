package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/internal/pymodbus"
	"github.com/m2mbridge/m2mbridge/internal/testproxy"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// simBinary builds modbus-sim once for the tests that run it as a user
// would.
func simBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "modbus-sim-test")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "modbus-sim")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			binPath = string(out)
		}
	})
	require.NoError(t, buildErr, binPath)
	return binPath
}

var servingRE = regexp.MustCompile(`on (\S+)`)

// startBinary runs the built simulator with args and returns the URL it
// says it serves at; it is interrupted when the test ends.
func startBinary(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(simBinary(t), args...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	r := bufio.NewReader(stderr)
	line, err := r.ReadString('\n')
	require.NoError(t, err, line)
	go io.Copy(io.Discard, r)
	m := servingRE.FindStringSubmatch(line)
	require.NotNil(t, m, line)
	return m[1]
}

// readFrequency reads the SDM630's frequency (fixed with -set) through the
// library at url.
func readFrequency(t *testing.T, url string) float64 {
	t.Helper()
	p, err := modbus.BuiltinProfile("eastron-sdm630")
	require.NoError(t, err)
	freq, ok := p.Point("frequency")
	require.True(t, ok)
	c, err := modbus.NewClient(modbus.ClientConfig{URL: url, Timeout: time.Second})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	regs, err := c.ReadRegisters(ctx, 1, freq.Table, freq.Address, freq.Registers())
	require.NoError(t, err, url)
	v, err := freq.Decode(regs)
	require.NoError(t, err)
	assert.Zero(t, c.Stats().Discarded)
	return v.Float()
}

// TestSimRTUOnPTY: the built binary serves RTU on one end of a socat
// pseudo-terminal pair (-rtu DEVICE, and -rtu=DEVICE), the library reads
// the other end.
func TestSimRTUOnPTY(t *testing.T) {
	testproxy.LookPeer(t, "socat")
	for _, form := range []string{"-rtu DEVICE", "-rtu=DEVICE", "-ascii DEVICE", "-rtu DEVICE -ascii"} {
		t.Run(form, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			a, b, stop, err := modbustest.SocatPTY(ctx, t.TempDir())
			require.NoError(t, err)
			t.Cleanup(stop)
			args := []string{"-profile", "eastron-sdm630", "-set", "frequency=49.75", "-parity", "none"}
			scheme := "rtu"
			switch form {
			case "-rtu DEVICE":
				args = append(args, "-rtu", a)
			case "-rtu=DEVICE":
				args = append(args, "-rtu="+a)
			case "-ascii DEVICE":
				scheme = "ascii"
				args = append(args, "-data-bits", "8", "-ascii", a)
			case "-rtu DEVICE -ascii":
				scheme = "ascii"
				args = append(args, "-rtu", a, "-ascii", "-data-bits", "8")
			}
			url := startBinary(t, args...)
			assert.Regexp(t, "^"+scheme+"://"+regexp.QuoteMeta(a)+`\?`, url)
			// The client opens the other end with the same settings.
			ep, err := modbus.ParseURL(url)
			require.NoError(t, err)
			ep.Address = b
			assert.Equal(t, 49.75, readFrequency(t, ep.String()))
		})
	}
}

// TestSimPTY: -pty makes the pseudo-terminal pair itself and prints the
// device to open; the library reads it with the URL printed, in RTU and
// in ASCII.
func TestSimPTY(t *testing.T) {
	if runtime.GOOS != "linux" {
		testproxy.LookPeer(t, "socat") // elsewhere -pty needs socat
	}
	for _, framing := range []string{"rtu", "ascii"} {
		t.Run(framing, func(t *testing.T) {
			args := []string{"-profile", "eastron-sdm630", "-set", "frequency=50.25", "-pty"}
			if framing == "ascii" {
				args = append(args, "-ascii")
			}
			url := startBinary(t, args...)
			assert.Regexp(t, "^"+framing+":///", url)
			assert.Equal(t, 50.25, readFrequency(t, url))
			// A second client after the first closed its end.
			assert.Equal(t, 50.25, readFrequency(t, url))
		})
	}
}

// TestSimASCIIOverTCP: -ascii alone is an ASCII-over-TCP gateway.
func TestSimASCIIOverTCP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-ascii", "-set", "frequency=49.5"}, io.Discard, pw)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err)
	go io.Copy(io.Discard, pr)
	m := servingRE.FindStringSubmatch(line)
	require.NotNil(t, m, line)
	assert.Regexp(t, `^asciiovertcp://127\.0\.0\.1:\d+$`, m[1])
	assert.Equal(t, 49.5, readFrequency(t, m[1]))
	cancel()
	require.NoError(t, <-done)
}

func TestSimLineFlagErrors(t *testing.T) {
	for args, want := range map[string][]string{
		"unexpected arg":    {"/dev/ttyUSB0"},
		"two devices":       {"-rtu=/dev/a", "/dev/b"},
		"pty and device":    {"-pty", "-rtu", "/dev/a"},
		"settings over tcp": {"-rtu", "-speed", "9600"},
		"udp on serial":     {"-udp", "-rtu", "/dev/a"},
		"bad ascii format":  {"-ascii", "/dev/a", "-data-bits", "7", "-parity", "none", "-stop-bits", "1"},
		"bad speed":         {"-rtu", "/dev/a", "-speed", "12345"},
		"no such device":    {"-rtu", "/nonexistent/tty"},
	} {
		t.Run(args, func(t *testing.T) {
			err := run(context.Background(), append([]string{"-addr", "127.0.0.1:0"}, want...), io.Discard, io.Discard)
			require.Error(t, err)
		})
	}
	err := run(context.Background(), []string{"-ascii", "-parity", "none", "-stop-bits", "1", "/dev/x"}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "stop_bits: 1 with 7 data bits and no parity")
	err = run(context.Background(), []string{"-rtu", "-speed", "9600"}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "are for a serial device")
	err = run(context.Background(), []string{"-rtu", "/nonexistent/tty"}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "/nonexistent/tty")
	// Flags after the device are read too.
	err = run(context.Background(), []string{"-ascii", "/nonexistent/tty", "-parity", "none", "-stop-bits", "1"}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "stop_bits: 1 with 7 data bits and no parity")
	err = run(context.Background(), []string{"-rtu", "/dev/a", "/dev/b"}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, `unexpected argument "/dev/b" after the serial device /dev/a`)
}

// TestSimASCIIWithPymodbusClient: pymodbus's ASCII client, a master
// nobody here wrote, reads the built binary on the pseudo-terminal -pty
// made: the frequency fixed at 49.75 is the float32 0x42470000.
func TestSimASCIIWithPymodbusClient(t *testing.T) {
	pymodbus.Need(t)
	if runtime.GOOS != "linux" {
		testproxy.LookPeer(t, "socat")
	}
	url := startBinary(t, "-profile", "eastron-sdm630", "-set", "frequency=49.75", "-pty", "-ascii")
	ep, err := modbus.ParseURL(url)
	require.NoError(t, err)
	p, err := modbus.BuiltinProfile("eastron-sdm630")
	require.NoError(t, err)
	freq, ok := p.Point("frequency")
	require.True(t, ok)
	out := pymodbus.RunClient(t, "ascii", ep.Address, fmt.Sprintf(`
rr = client.read_input_registers(%d, 2, slave=1)
out(error=rr.isError(), registers=getattr(rr, 'registers', None))
`, freq.Address))
	assert.JSONEq(t, `{"error": false, "registers": [16967, 0]}`, strings.TrimSpace(out))
}

func TestSimSunSpecNotOnSerial(t *testing.T) {
	err := run(context.Background(), []string{"-sunspec", "-pty"}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "-sunspec serves over the network only")
}

// TestSimPTYEmulatedLine: -pty with -speed and -parity behaves as a meter
// on a real line: a client at those settings reads it, a client at another
// speed or parity gets no valid answer, as on RS-485 (a bare
// pseudo-terminal would answer at every setting).
func TestSimPTYEmulatedLine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("an emulated line needs Linux")
	}
	for _, framing := range []string{"rtu", "ascii"} {
		t.Run(framing, func(t *testing.T) {
			args := []string{"-profile", "eastron-sdm630", "-set", "frequency=50.25", "-pty", "-speed", "9600", "-parity", "odd"}
			if framing == "ascii" {
				args = append(args, "-ascii")
			}
			url := startBinary(t, args...)
			assert.Regexp(t, "^"+framing+`:///dev/pts/\d+\?`, url)
			assert.Contains(t, url, "speed=9600")
			assert.Contains(t, url, "parity=odd")
			assert.Equal(t, 50.25, readFrequency(t, url))

			path, query, _ := strings.Cut(strings.TrimPrefix(url, framing+"://"), "?")
			for _, wrong := range []string{"speed=19200&parity=odd", "speed=9600&parity=even", "speed=9600&parity=none"} {
				q := query
				q = strings.Replace(q, "speed=9600", "", 1)
				q = strings.Replace(q, "parity=odd", "", 1)
				u := framing + "://" + path + "?" + wrong + "&" + strings.Trim(strings.ReplaceAll(q, "&&", "&"), "&")
				c, err := modbus.NewClient(modbus.ClientConfig{URL: strings.TrimSuffix(u, "&"), Timeout: 300 * time.Millisecond})
				require.NoError(t, err)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err = c.ReadRegisters(ctx, 1, modbus.Input, 0x46, 2)
				cancel()
				c.Close()
				assert.Error(t, err, "a client at %s must not get an answer", wrong)
			}
			// And the right settings still read after the wrong ones.
			assert.Equal(t, 50.25, readFrequency(t, url))
		})
	}
}
