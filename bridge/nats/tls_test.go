package nats

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pki is a throw-away certificate authority for tests.
type pki struct {
	dir    string
	caFile string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial int64
}

func newPKI(t *testing.T, dir string) *pki {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "m2mtest CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTpl, caTpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	p := &pki{dir: dir, caFile: filepath.Join(dir, "ca.pem"), ca: ca, caKey: caKey, serial: 1}
	require.NoError(t, os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600))
	return p
}

// issue writes a certificate and key named name, for a server on 127.0.0.1
// or for a client.
func (p *pki) issue(t *testing.T, name string, server bool) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	p.serial++
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: "m2mtest " + name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, p.ca, &k.PublicKey, p.caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(k)
	require.NoError(t, err)
	cert, key = filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+".key")
	require.NoError(t, os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return cert, key
}

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
	pki := newPKI(t, dir)
	srvCert, srvKey := pki.issue(t, "server", true)
	cliCert, cliKey := pki.issue(t, "client", false)
	other := newPKI(t, t.TempDir())

	tokenPort, userPort, tlsPort := freePort(t), freePort(t), freePort(t)
	startServer(t, dir, "token", fmt.Sprintf("listen: 127.0.0.1:%d\nauthorization { token: \"t0ken-s3cret\" }\n", tokenPort), tokenPort)
	startServer(t, dir, "user", fmt.Sprintf("listen: 127.0.0.1:%d\nauthorization { user: bridge, password: \"s3cret\" }\n", userPort), userPort)
	startServer(t, dir, "tls", fmt.Sprintf("listen: 127.0.0.1:%d\ntls { cert_file: %q, key_file: %q, ca_file: %q, verify: true }\n",
		tlsPort, srvCert, srvKey, pki.caFile), tlsPort)

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
	ok(Config{URL: url("tls", tlsPort), CAFile: pki.caFile, CertFile: cliCert, KeyFile: cliKey})
	ok(Config{URL: url("nats", tlsPort), CAFile: pki.caFile, CertFile: cliCert, KeyFile: cliKey})
	fails(Config{URL: url("tls", tlsPort), CAFile: other.caFile, CertFile: cliCert, KeyFile: cliKey}, "certificate")
	fails(Config{URL: url("tls", tlsPort), CAFile: pki.caFile}, "")
}
