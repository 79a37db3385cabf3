package mqtt

import (
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/internal/testpki"
	"github.com/m2mbridge/m2mbridge/internal/testproxy"
)

// TestTLSAndPassword runs a Mosquitto of its own with a TLS listener that
// requires a client certificate from the test's CA, a listener that
// requires a username and password, and a WebSocket listener.
func TestTLSAndPassword(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t)
	caFile := ca.WriteCA(t, dir)
	srvCert, srvKey := ca.IssueFiles(t, dir, "server", x509.ExtKeyUsageServerAuth, "127.0.0.1", "localhost")
	cliCert, cliKey := ca.IssueFiles(t, dir, "client", x509.ExtKeyUsageClientAuth)
	otherCAFile := testpki.NewCA(t).WriteCA(t, t.TempDir()) // a CA the broker does not trust

	passwd := filepath.Join(dir, "passwd")
	require.NoError(t, os.WriteFile(passwd, nil, 0o600))
	out, err := exec.Command(testproxy.LookPeer(t, "mosquitto_passwd"), "-b", passwd, "bridge", "s3cret").CombinedOutput()
	require.NoError(t, err, "mosquitto_passwd: %s", out)

	tlsPort, pwPort, wsPort := testproxy.FreePort(t), testproxy.FreePort(t), testproxy.FreePort(t)
	testproxy.StartServer(t, "mosquitto", filepath.Join(dir, "mosquitto.conf"), fmt.Sprintf(`user root
persistence false
log_dest none
per_listener_settings true
listener %d 127.0.0.1
cafile %s
certfile %s
keyfile %s
require_certificate true
allow_anonymous true
listener %d 127.0.0.1
allow_anonymous false
password_file %s
listener %d 127.0.0.1
protocol websockets
allow_anonymous true
`, tlsPort, caFile, srvCert, srvKey, pwPort, passwd, wsPort), tlsPort, pwPort, wsPort)

	for _, v := range versions {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			ctx := testCtx(t, 30*time.Second)
			tlsURL := fmt.Sprintf("ssl://127.0.0.1:%d", tlsPort)
			pwURL := fmt.Sprintf("tcp://127.0.0.1:%d", pwPort)
			ok := func(cfg Config) {
				t.Helper()
				cfg.Version, cfg.QoS, cfg.ConnectTimeout = v, 1, 5*time.Second
				s := newSink(t, cfg)
				require.NoError(t, s.Connect(ctx))
				// QoS 1: nil means the broker acknowledged every sample.
				require.NoError(t, s.Write(ctx, samples("secure", 10)))
			}
			fails := func(cfg Config, want ...string) {
				t.Helper()
				cfg.Version, cfg.ConnectTimeout = v, 5*time.Second
				s := newSink(t, cfg)
				err := s.Connect(ctx)
				require.Error(t, err)
				for _, w := range want {
					assert.Contains(t, strings.ToLower(err.Error()), w)
				}
				assert.NotContains(t, err.Error(), "s3cret")
			}
			ok(Config{URL: tlsURL, CAFile: caFile, CertFile: cliCert, KeyFile: cliKey})
			fails(Config{URL: tlsURL, CAFile: otherCAFile, CertFile: cliCert, KeyFile: cliKey}, "certificate")
			ok(Config{URL: pwURL, Username: "bridge", Password: "s3cret"})
			fails(Config{URL: pwURL, Username: "bridge", Password: "wrong"})
			fails(Config{URL: pwURL})
			ok(Config{URL: fmt.Sprintf("ws://127.0.0.1:%d/mqtt", wsPort)})
		})
	}
}
