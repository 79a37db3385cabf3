package nats

import (
	"crypto/x509"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/internal/testpki"
	"github.com/m2mbridge/m2mbridge/internal/testproxy"
)

// TestAuthAndTLS runs nats-servers of its own that require a token, a user
// and password, and a TLS client certificate from the test's CA.
func TestAuthAndTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t)
	caFile := ca.WriteCA(t, dir)
	srvCert, srvKey := ca.IssueFiles(t, dir, "server", x509.ExtKeyUsageServerAuth, "127.0.0.1", "localhost")
	cliCert, cliKey := ca.IssueFiles(t, dir, "client", x509.ExtKeyUsageClientAuth)
	otherCAFile := testpki.NewCA(t).WriteCA(t, t.TempDir())

	tokenPort, userPort, tlsPort := testproxy.FreePort(t), testproxy.FreePort(t), testproxy.FreePort(t)
	testproxy.StartServer(t, "nats-server", filepath.Join(dir, "token.conf"), fmt.Sprintf("listen: 127.0.0.1:%d\nauthorization { token: \"t0ken-s3cret\" }\n", tokenPort), tokenPort)
	testproxy.StartServer(t, "nats-server", filepath.Join(dir, "user.conf"), fmt.Sprintf("listen: 127.0.0.1:%d\nauthorization { user: bridge, password: \"s3cret\" }\n", userPort), userPort)
	testproxy.StartServer(t, "nats-server", filepath.Join(dir, "tls.conf"), fmt.Sprintf("listen: 127.0.0.1:%d\ntls { cert_file: %q, key_file: %q, ca_file: %q, verify: true }\n",
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
