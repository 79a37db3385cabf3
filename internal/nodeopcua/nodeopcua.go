// Package nodeopcua runs node-opcua, an OPC UA server nobody here wrote, for
// the interop tests of the opcua and gateway packages: [Start] runs
// .ci/node-opcua/server.js on a free port of 127.0.0.1 and waits until it
// serves.
//
// It is imported by tests only. The peer is node on PATH and node-opcua
// installed into .ci/node-opcua/node_modules (npm ci there). A test without
// it is skipped, or failed when M2MB_INTEROP=1.
package nodeopcua

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/internal/testproxy"
)

// Namespace is the URI of the namespace server.js puts its variables in.
const Namespace = "urn:m2mbridge:node-opcua"

// The user name and password the server accepts (OPC_USER, OPC_PASS).
const (
	User     = "operator"
	Password = "correct-horse-battery"
)

// The variables of server.js, by browse name. Every TICK_MS (100ms) the
// server changes Counter (UInt32, +1), Ramp (Double, 0..99), Fine (Double,
// +0.1), Text (String, "tick-N"), Temperature (an AnalogDataItem in °C) and
// Fault (Double, always BadSensorFailure). Setpoint (Double) and Mode
// (Int32) are writable; Locked (Double, 5) is read-only on the server, so
// a write to it is answered BadNotWritable.
const (
	Counter     = "Counter"
	Ramp        = "Ramp"
	Fine        = "Fine"
	Fault       = "Fault"
	Text        = "Text"
	Temperature = "Temperature"
	Setpoint    = "Setpoint"
	Mode        = "Mode"
	Locked      = "Locked"
)

// NodeID is the node id of the variable name, with its namespace by URI.
func NodeID(name string) string { return "nsu=" + Namespace + ";s=" + name }

// ExtraName is the name of the i-th extra Double variable (EXTRA=n).
func ExtraName(i int) string { return fmt.Sprintf("x%05d", i) }

// Require returns the node binary and the folder of server.js, skipping
// the test when the peer is missing (failing it under M2MB_INTEROP=1).
func Require(tb testing.TB) (node, dir string) {
	tb.Helper()
	return testproxy.NodePeer(tb, "node-opcua", "node-opcua", "node-opcua")
}

// Server is a node-opcua server process started by the test. It is killed
// when the test ends.
type Server struct {
	tb   testing.TB
	node string
	dir  string
	pki  string
	port int
	env  []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	stderr *bytes.Buffer
}

// Start runs server.js on a free port of 127.0.0.1 and waits until it
// serves. env adds NAME=value settings server.js reads (TICK_MS, EXTRA,
// MAX_READ); PORT, PKI_DIR (a temporary folder), OPC_USER and OPC_PASS
// are set by Start.
func Start(tb testing.TB, env ...string) *Server {
	tb.Helper()
	node, dir := Require(tb)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(tb, l.Close())
	s := &Server{tb: tb, node: node, dir: dir, pki: tb.TempDir(), port: port, env: env}
	s.start()
	tb.Cleanup(s.Kill)
	return s
}

// URL is the server's endpoint, opc.tcp://127.0.0.1:port.
func (s *Server) URL() string { return "opc.tcp://" + s.Addr() }

// Addr is the server's host:port.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// Restart starts the server again after [Server.Kill], on the same port and
// with the same PKI, and waits until it serves.
func (s *Server) Restart() {
	s.tb.Helper()
	s.start()
}

// start runs the server and waits until it says READY.
func (s *Server) start() {
	s.tb.Helper()
	cmd := exec.Command(s.node, "server.js")
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", s.port), "PKI_DIR="+s.pki,
		"OPC_USER="+User, "OPC_PASS="+Password)
	cmd.Env = append(cmd.Env, s.env...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(s.tb, err)
	stderr := &bytes.Buffer{}
	cmd.Stderr = &lockedWriter{w: stderr}
	require.NoError(s.tb, cmd.Start())
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "READY") {
				close(ready)
				break
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	s.mu.Lock()
	s.cmd, s.stderr = cmd, stderr
	s.mu.Unlock()
	select {
	case <-ready:
	case <-time.After(120 * time.Second):
		s.Kill()
		s.tb.Fatalf("node-opcua server did not start: %s", stderr.String())
	}
}

// Kill ends the server process at once (SIGKILL), like a crash. It may be
// called more than once.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	cmd.Wait()
}

// lockedWriter serialises writes: exec copies stderr from its own goroutine.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
