// Package pymodbus runs pymodbus, a Modbus implementation nobody here
// wrote, for the interop tests of the modbus and gateway packages:
// [StartTCP] serves a datastore on a free port of 127.0.0.1, [StartRTU] and
// [StartASCII] on one end of a socat pseudo-terminal pair. The caller fills
// the datastore with Python, so its registers are packed by Python's struct
// module, an encoder independent of ours. [RunClient] runs a pymodbus
// serial client (RTU or ASCII framer) against a server of ours.
//
// It is imported by tests only. A test without the peers (Debian's
// pymodbus, socat) is skipped, or failed when M2MB_INTEROP=1.
package pymodbus

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/internal/testproxy"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// Python is the interpreter that runs the server: Debian's pymodbus
// imports only under /usr/bin/python3.
const Python = "/usr/bin/python3"

// Server is a running pymodbus server. It is killed when the test ends.
type Server struct {
	// URL is what the code under test connects to: tcp://Addr, or on RTU
	// rtu://PTY?speed=19200&parity=none (8N2: a Linux pseudo-terminal
	// refuses parity, pyserial gets EINVAL).
	URL string
	// Addr is the host:port of the server's Modbus TCP side. On RTU the
	// same datastore is served over TCP as well, so a test can read it
	// back without a second master on the serial line the code under test
	// owns.
	Addr string
	// PTY is the serial device the code under test opens (RTU only).
	PTY string
}

// The Python side is prelude, the caller's setup, then serve. prelude gives
// the setup regs() (a value packed big-endian into registers) and tables of
// 100 zeros, which the setup fills or replaces (hr, ir, co, di). serve
// prints READY and its TCP port once it serves.
const prelude = `
import asyncio, math, struct, sys
from pymodbus.datastore import ModbusSequentialDataBlock, ModbusSlaveContext, ModbusServerContext
from pymodbus.server.async_io import ModbusTcpServer, ModbusSerialServer
from pymodbus.transaction import ModbusRtuFramer, ModbusAsciiFramer

def regs(fmt, v):
    b = struct.pack('>' + fmt, v)
    return [int.from_bytes(b[i:i+2], 'big') for i in range(0, len(b), 2)]

hr = [0] * 100
ir = [0] * 100
co = [False] * 100
di = [False] * 100
`

const serve = `
store = ModbusSlaveContext(
    hr=ModbusSequentialDataBlock(0, hr), ir=ModbusSequentialDataBlock(0, ir),
    co=ModbusSequentialDataBlock(0, co), di=ModbusSequentialDataBlock(0, di), zero_mode=True)
context = ModbusServerContext(slaves=store, single=True)

async def main():
    tcp = ModbusTcpServer(context, address=('127.0.0.1', 0), allow_reuse_address=True)
    task = asyncio.create_task(tcp.serve_forever())
    await tcp.serving
    if sys.argv[1] == 'rtu':
        serial = ModbusSerialServer(context, framer=ModbusRtuFramer, port=sys.argv[2],
                                    baudrate=19200, parity='N', stopbits=2, bytesize=8, timeout=0.005)
        await serial.start()
    elif sys.argv[1] == 'ascii':
        serial = ModbusSerialServer(context, framer=ModbusAsciiFramer, port=sys.argv[2], baudrate=19200,
                                    bytesize=int(sys.argv[3]), parity=sys.argv[4], stopbits=int(sys.argv[5]), timeout=0.005)
        await serial.start()
    print('READY', tcp.server.sockets[0].getsockname()[1], flush=True)
    await task

asyncio.run(main())
`

// Need skips the test when pymodbus is not installed, or fails it when
// M2MB_INTEROP=1.
func Need(tb testing.TB) {
	tb.Helper()
	_, err := os.Stat(Python)
	if err == nil {
		err = exec.Command(Python, "-c", "import pymodbus, serial_asyncio").Run()
	}
	if err == nil {
		return
	}
	if os.Getenv("M2MB_INTEROP") == "1" {
		tb.Fatalf("interop peer pymodbus (%s) missing (M2MB_INTEROP=1): %v", Python, err)
	}
	tb.Skipf("interop peer pymodbus (%s) not available: %v", Python, err)
}

// StartTCP runs pymodbus over Modbus TCP with the datastore setup fills
// (Python at the top level; see the package doc), and returns once it
// serves.
func StartTCP(tb testing.TB, setup string) *Server {
	tb.Helper()
	Need(tb)
	addr := start(tb, setup, "tcp")
	return &Server{URL: "tcp://" + addr, Addr: addr}
}

// StartRTU runs pymodbus over Modbus RTU on one end of a socat
// pseudo-terminal pair (and over TCP on the same datastore, at Addr), and
// returns once it serves.
func StartRTU(tb testing.TB, setup string) *Server {
	tb.Helper()
	a, b := ptyPair(tb)
	addr := start(tb, setup, "rtu", a)
	return &Server{URL: "rtu://" + b + "?speed=19200&parity=none", Addr: addr, PTY: b}
}

// ptyPair makes a socat pseudo-terminal pair for a serial server (a) and
// its client (b), closed at the end of the test.
func ptyPair(tb testing.TB) (a, b string) {
	tb.Helper()
	Need(tb)
	testproxy.LookPeer(tb, "socat")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, b, stop, err := modbustest.SocatPTY(ctx, tb.TempDir())
	require.NoError(tb, err)
	tb.Cleanup(stop)
	return a, b
}

// ASCIIFormat is the character format of the ASCII line [StartASCII] and
// [RunClient] use: 8N1. The specification's default for ASCII is 7E1, but
// a Linux pseudo-terminal refuses 7 data bits and parity (pyserial-asyncio,
// which pymodbus's serial server opens the port with, fails with EINVAL),
// and a pseudo-terminal carries whole bytes whatever the format.
const ASCIIFormat = "data_bits=8&parity=none&stop_bits=1"

// StartASCII runs pymodbus with its ASCII framer on one end of a socat
// pseudo-terminal pair (and over TCP on the same datastore, at Addr), and
// returns once it serves. URL is ascii://PTY with [ASCIIFormat].
func StartASCII(tb testing.TB, setup string) *Server {
	tb.Helper()
	a, b := ptyPair(tb)
	addr := start(tb, setup, "ascii", a, "8", "N", "1")
	return &Server{URL: "ascii://" + b + "?speed=19200&" + ASCIIFormat, Addr: addr, PTY: b}
}

// clientPrelude opens a pymodbus serial client, client, with the framer
// and format of the command line; out prints a JSON line.
const clientPrelude = `
import json, sys
from pymodbus.client import ModbusSerialClient
from pymodbus.transaction import ModbusRtuFramer, ModbusAsciiFramer

framer = {'rtu': ModbusRtuFramer, 'ascii': ModbusAsciiFramer}[sys.argv[1]]
client = ModbusSerialClient(sys.argv[2], framer=framer, baudrate=19200, bytesize=int(sys.argv[3]),
                            parity=sys.argv[4], stopbits=int(sys.argv[5]), timeout=2)
if not client.connect():
    sys.exit('cannot open ' + sys.argv[2])

def out(**kw):
    print(json.dumps(kw), flush=True)
`

// RunClient runs script, Python that uses a pymodbus serial client named
// client (framing "rtu" or "ascii"; ASCII in [ASCIIFormat], RTU 8N2) on the
// serial device port, and returns what it printed (its out(**kw) prints one
// JSON object a line). A script that fails, or runs longer than a minute,
// fails the test with its stderr.
func RunClient(tb testing.TB, framing, port, script string) string {
	tb.Helper()
	Need(tb)
	path := filepath.Join(tb.TempDir(), "client.py")
	require.NoError(tb, os.WriteFile(path, []byte(clientPrelude+script+"\nclient.close()\n"), 0o600))
	format := []string{"8", "N", "2"}
	if framing == "ascii" {
		format = []string{"8", "N", "1"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Python, append([]string{path, framing, port}, format...)...)
	var stderr syncBuilder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(tb, err, "pymodbus client: %s", stderr.String())
	return string(out)
}

// start runs the script with args and returns the TCP address it printed.
func start(tb testing.TB, setup string, args ...string) string {
	tb.Helper()
	script := filepath.Join(tb.TempDir(), "server.py")
	require.NoError(tb, os.WriteFile(script, []byte(prelude+setup+"\n"+serve), 0o600))
	cmd := exec.Command(Python, append([]string{script}, args...)...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(tb, err)
	var stderr syncBuilder
	cmd.Stderr = &stderr
	require.NoError(tb, cmd.Start())
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "READY" {
				ready <- f[1]
			}
		}
		close(ready)
	}()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	select {
	case port, ok := <-ready:
		require.True(tb, ok, "pymodbus server exited: %s", stderr.String())
		return net.JoinHostPort("127.0.0.1", port)
	case <-time.After(20 * time.Second):
		tb.Fatalf("pymodbus server did not start: %s", stderr.String())
	}
	return ""
}

// syncBuilder collects the server's stderr, which exec copies from a
// goroutine of its own while the test may read it.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
