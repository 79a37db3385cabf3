package nats

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/internal/testpki"
)

// startServer runs a nats-server of the test's own with conf (which must
// listen on port) and returns when it listens.
func startServer(t *testing.T, dir, name, conf string, port int) {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nats-server"); serr == nil {
			bin, err = "/usr/sbin/nats-server", nil
		}
	}
	if err != nil {
		if os.Getenv("M2MB_INTEROP") == "1" {
			t.Fatalf("nats-server not found (M2MB_INTEROP=1): %v", err)
		}
		t.Skipf("nats-server not found: %v", err)
	}
	cf := filepath.Join(dir, name+".conf")
	require.NoError(t, os.WriteFile(cf, []byte(conf), 0o600))
	var out bytes.Buffer
	cmd := exec.Command(bin, "-c", cf)
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	require.Eventually(t, func() bool {
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
	}, 10*time.Second, 20*time.Millisecond, "nats-server does not listen on %d", port)
	select {
	case <-exited:
		t.Fatalf("nats-server exited: %s", out.String())
	default:
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestAuthAndTLS runs nats-servers of its own that require a token, a user
// and password, and a TLS client certificate from the test's CA.
func TestAuthAndTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t)
	caFile := ca.WriteCA(t, dir)
	srvCert, srvKey := ca.IssueFiles(t, dir, "server", x509.ExtKeyUsageServerAuth, "127.0.0.1", "localhost")
	cliCert, cliKey := ca.IssueFiles(t, dir, "client", x509.ExtKeyUsageClientAuth)
	otherCAFile := testpki.NewCA(t).WriteCA(t, t.TempDir())

	tokenPort, userPort, tlsPort := freePort(t), freePort(t), freePort(t)
	startServer(t, dir, "token", fmt.Sprintf("listen: 127.0.0.1:%d\nauthorization { token: \"t0ken-s3cret\" }\n", tokenPort), tokenPort)
	startServer(t, dir, "user", fmt.Sprintf("listen: 127.0.0.1:%d\nauthorization { user: bridge, password: \"s3cret\" }\n", userPort), userPort)
	startServer(t, dir, "tls", fmt.Sprintf("listen: 127.0.0.1:%d\ntls { cert_file: %q, key_file: %q, ca_file: %q, verify: true }\n",
		tlsPort, srvCert, srvKey, caFile), tlsPort)

	ctx := testCtx(t, 60*time.Second)
	url := func(scheme string, port int) string { return fmt.Sprintf("%s://127.0.0.1:%d", scheme, port) }
	ok := func(cfg Config) {
		t.Helper()
		cfg.ConnectTimeout = 5 * time.Second
		s := newSink(t, cfg)
		require.NoError(t, s.Connect(ctx))
		// Core NATS: nil means the server received every sample.
		require.NoError(t, s.Write(ctx, samples("secure", 10)))
	}
	fails := func(cfg Config, want string) {
		t.Helper()
		cfg.ConnectTimeout = 5 * time.Second
		s := newSink(t, cfg)
		err := s.Connect(ctx)
		require.Error(t, err)
		assert.Contains(t, strings.ToLower(err.Error()), want)
		assert.NotContains(t, err.Error(), "s3cret")
	}
	ok(Config{URL: url("nats", tokenPort), Token: "t0ken-s3cret"})
	fails(Config{URL: url("nats", tokenPort), Token: "wrong"}, "authorization")
	ok(Config{URL: url("nats", userPort), Username: "bridge", Password: "s3cret"})
	fails(Config{URL: url("nats", userPort), Username: "bridge", Password: "wrong"}, "authorization")
	ok(Config{URL: url("tls", tlsPort), CAFile: caFile, CertFile: cliCert, KeyFile: cliKey})
	ok(Config{URL: url("nats", tlsPort), CAFile: caFile, CertFile: cliCert, KeyFile: cliKey})
	fails(Config{URL: url("tls", tlsPort), CAFile: otherCAFile, CertFile: cliCert, KeyFile: cliKey}, "certificate")
	fails(Config{URL: url("tls", tlsPort), CAFile: caFile}, "")
}
