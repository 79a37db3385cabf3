package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestCheckErrors")

// gatewayBin is the gateway binary the tests run, as a user would.
var gatewayBin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "gateway-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gatewayBin = filepath.Join(dir, "gateway")
	args := []string{"build", "-o", gatewayBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the gateway: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running gateway whose stderr (the log) is collected.
type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	stdout bytes.Buffer
	done   chan struct{}
	err    error
}

// lockedWriter appends to a buffer under the proc's lock.
type lockedWriter struct {
	p *proc
	b *bytes.Buffer
}

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.b.Write(b)
}

// start runs the gateway in dir with args and the extra environment.
func start(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command(gatewayBin, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = lockedWriter{p, &p.stderr}
	p.cmd.Stdout = lockedWriter{p, &p.stdout}
	require.NoError(t, p.cmd.Start())
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("gateway stderr:\n%s", p.log())
		}
	})
	return p
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

func (p *proc) out() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String()
}

// wait waits for the gateway to exit and returns its exit code.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("the gateway did not exit within %v", timeout)
	}
	return p.cmd.ProcessState.ExitCode()
}

// runGateway runs the gateway to its end and returns its exit code, stdout
// and stderr.
func runGateway(t *testing.T, dir string, env []string, args ...string) (int, string, string) {
	t.Helper()
	p := start(t, dir, env, args...)
	code := p.wait(t, 60*time.Second)
	return code, p.out(), p.log()
}

// writeConfig writes a configuration file into dir.
func writeConfig(t *testing.T, dir, text string) string {
	t.Helper()
	path := filepath.Join(dir, "gateway.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

// sdm630 serves the built-in Eastron SDM630 profile over Modbus TCP.
func sdm630(t *testing.T, opts ...modbustest.Option) (*modbustest.Server, *modbus.Profile) {
	t.Helper()
	p, err := modbus.BuiltinProfile("eastron-sdm630")
	require.NoError(t, err)
	srv, err := modbustest.NewServer(p, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	return srv, p
}

// readSamples decodes the JSON lines of a file written by the file sink;
// a missing file holds none.
func readSamples(t *testing.T, path string) []bridge.Sample {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	defer f.Close()
	return decodeLines(t, f)
}

func decodeLines(t *testing.T, r io.Reader) []bridge.Sample {
	t.Helper()
	var out []bridge.Sample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		s, err := bridge.DecodeJSON(line)
		require.NoError(t, err, "line %q", line)
		out = append(out, s)
	}
	return out
}

var metricsURLRE = regexp.MustCompile(`url=(http://[^ ]+)/metrics`)

// metricsBase waits for the gateway to log where it serves metrics.
func (p *proc) metricsBase(t *testing.T) string {
	t.Helper()
	var base string
	require.Eventually(t, func() bool {
		if m := metricsURLRE.FindStringSubmatch(p.log()); m != nil {
			base = m[1]
			return true
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "no metrics address in the log")
	return base
}

// needPeer skips the test when no TCP server listens at addr; under
// M2MB_INTEROP=1 an absent peer fails the test instead.
func needPeer(t *testing.T, addr, what string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		return
	}
	if os.Getenv("M2MB_INTEROP") == "1" {
		t.Fatalf("%s is not reachable at %s: %v", what, addr, err)
	}
	t.Skipf("%s is not reachable at %s", what, addr)
}

func TestUsage(t *testing.T) {
	code, _, stderr := runGateway(t, t.TempDir(), nil, "-check", "-once")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "-check and -once exclude each other")

	code, _, stderr = runGateway(t, t.TempDir(), nil, "-config", "absent.yaml", "-check")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "absent.yaml")

	code, _, stderr = runGateway(t, t.TempDir(), nil, "-log-format", "xml", "-check")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, `-log-format "xml": want text or json`)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func countBy(samples []bridge.Sample, f func(bridge.Sample) bool) int {
	n := 0
	for _, s := range samples {
		if f(s) {
			n++
		}
	}
	return n
}

func pointsOf(samples []bridge.Sample) map[string]bool {
	m := map[string]bool{}
	for _, s := range samples {
		m[s.Point] = true
	}
	return m
}

func hasAll(got map[string]bool, p *modbus.Profile) bool {
	for _, pt := range p.Points {
		if !got[pt.Name] {
			return false
		}
	}
	return true
}

func mkdir(dir string) error { return os.MkdirAll(dir, 0o755) }

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o600) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
