package testproxy

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// PeerAddr returns the address of the shared third-party server a test
// uses: the environment variable env, or def when it is empty. When nothing
// listens there it skips the test, naming the server as what, or fails it
// when M2MB_INTEROP=1 (a missing peer is then an error).
func PeerAddr(tb testing.TB, env, def, what string) string {
	tb.Helper()
	addr := os.Getenv(env)
	if addr == "" {
		addr = def
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		if os.Getenv("M2MB_INTEROP") == "1" {
			tb.Fatalf("no %s at %s (M2MB_INTEROP=1): %v", what, addr, err)
		}
		tb.Skipf("no %s at %s: %v", what, addr, err)
	}
	c.Close()
	return addr
}

// LookPeer finds the third-party program name on PATH or in /usr/sbin or
// /usr/local/sbin, skipping the test without it unless M2MB_INTEROP=1,
// where that fails it.
func LookPeer(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} {
			if _, serr := os.Stat(filepath.Join(dir, name)); serr == nil {
				return filepath.Join(dir, name)
			}
		}
		if os.Getenv("M2MB_INTEROP") == "1" {
			tb.Fatalf("%s not found (M2MB_INTEROP=1): %v", name, err)
		}
		tb.Skipf("%s not found: %v", name, err)
	}
	return p
}

// FreePort returns a port nothing listens on at 127.0.0.1, for a server
// the test starts itself and which cannot be given port 0.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// StartServer runs a server of the test's own: the program name (found by
// [LookPeer]) with "-c confFile", after writing conf to confFile. It
// returns once the server listens on every one of ports on 127.0.0.1, fails
// the test with the server's output if it exits first, and kills it when
// the test ends.
func StartServer(tb testing.TB, name, confFile, conf string, ports ...int) {
	tb.Helper()
	bin := LookPeer(tb, name)
	require.NoError(tb, os.WriteFile(confFile, []byte(conf), 0o600))
	var out bytes.Buffer
	cmd := exec.Command(bin, "-c", confFile)
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(tb, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	for _, port := range ports {
		require.Eventually(tb, func() bool {
			select {
			case <-exited:
				return true
			default:
			}
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
			if err == nil {
				c.Close()
			}
			return err == nil
		}, 10*time.Second, 20*time.Millisecond, "%s does not listen on %d", name, port)
		select {
		case <-exited:
			tb.Fatalf("%s exited: %s", name, out.String())
		default:
		}
	}
}

// NodePeer returns the node binary and the folder .ci/<ciDir> of the
// module (the first folder at or above the working directory with a
// go.mod), once node is on PATH and npm ci has installed every one of
// packages there. It skips the test otherwise, and fails it under
// M2MB_INTEROP=1, naming what is missing; what names the peer in those
// messages.
func NodePeer(tb testing.TB, ciDir, what string, packages ...string) (node, dir string) {
	tb.Helper()
	dir, err := moduleDir()
	dir = filepath.Join(dir, ".ci", ciDir)
	if err == nil {
		node, err = exec.LookPath("node")
	}
	for _, pkg := range packages {
		if err != nil {
			break
		}
		_, err = os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json"))
	}
	if err != nil {
		if os.Getenv("M2MB_INTEROP") == "1" {
			tb.Fatalf("%s peer missing (node on PATH and npm ci in %s): %v", what, dir, err)
		}
		tb.Skipf("%s peer missing (run npm ci in .ci/%s, or set M2MB_INTEROP=1 to require it): %v", what, ciDir, err)
	}
	return node, dir
}

// moduleDir is the first folder at or above the working directory (a
// package's, under go test) with a go.mod.
func moduleDir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("no go.mod at or above " + wd)
		}
	}
}
