package sparkplug

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

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/mqtt"
	"github.com/m2mbridge/m2mbridge/internal/testpki"
	"github.com/m2mbridge/m2mbridge/internal/testproxy"
)

// TestTLSAndPassword: the edge node connects as the MQTT sink does (its
// helpers): to a Mosquitto of the test's own over TLS with a client
// certificate, with a username and password, and over WebSocket; a CA the
// broker's certificate is not from, or a wrong password, is a Connect
// error that shows no secret.
func TestTLSAndPassword(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t)
	caFile := ca.WriteCA(t, dir)
	srvCert, srvKey := ca.IssueFiles(t, dir, "server", x509.ExtKeyUsageServerAuth, "127.0.0.1", "localhost")
	cliCert, cliKey := ca.IssueFiles(t, dir, "client", x509.ExtKeyUsageClientAuth)
	otherCAFile := testpki.NewCA(t).WriteCA(t, t.TempDir())

	passwd := filepath.Join(dir, "passwd")
	require.NoError(t, os.WriteFile(passwd, nil, 0o600))
	out, err := exec.Command(testproxy.LookPeer(t, "mosquitto_passwd"), "-b", passwd, "edge", "s3cret").CombinedOutput()
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

	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		t.Run("mqtt"+v.String(), func(t *testing.T) {
			ctx := testCtx(t, 60*time.Second)
			config := func(url string) Config {
				c := testConfig(t, "")
				c.URL, c.Version = url, v
				return c
			}
			ok := func(cfg Config) {
				t.Helper()
				s := newSink(t, cfg)
				require.NoError(t, s.Connect(ctx), "born: subscribed and NBIRTH published")
				require.NoError(t, s.Write(ctx, []bridge.Sample{sample("d1", "p", bridge.Float(1))}))
				assert.EqualValues(t, 1, s.Stats().DeviceBirths)
			}
			fails := func(cfg Config, want string) {
				t.Helper()
				s := newSink(t, cfg)
				err := s.Connect(ctx)
				require.Error(t, err)
				assert.Contains(t, strings.ToLower(err.Error()), want)
				assert.NotContains(t, err.Error(), "s3cret")
			}
			tlsURL := fmt.Sprintf("ssl://127.0.0.1:%d", tlsPort)
			c := config(tlsURL)
			c.CAFile, c.CertFile, c.KeyFile = caFile, cliCert, cliKey
			ok(c)
			c.CAFile = otherCAFile
			fails(c, "certificate")
			c = config(fmt.Sprintf("tcp://127.0.0.1:%d", pwPort))
			c.Username, c.Password = "edge", "s3cret"
			ok(c)
			c.Password = "wrong"
			fails(c, "")
			ok(config(fmt.Sprintf("ws://127.0.0.1:%d/mqtt", wsPort)))
		})
	}
}
