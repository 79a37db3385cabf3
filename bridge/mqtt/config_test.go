package mqtt

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/m2mbridge/m2mbridge/internal/testpki"
)

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	require.NoError(t, os.WriteFile(junk, []byte("not pem"), 0o600))
	cases := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"no url", Config{}, []string{"url: missing"}},
		{"unparsable url", Config{URL: "tcp://[::1"}, []string{`url "tcp://[::1"`}},
		{"no scheme", Config{URL: "127.0.0.1:1883"}, []string{`url "127.0.0.1:1883"`}},
		{"unknown scheme", Config{URL: "http://x:1883"}, []string{`unknown scheme "http"`}},
		{"no host", Config{URL: "tcp://:1883"}, []string{"no host"}},
		{"credentials in url", Config{URL: "tcp://u:secret@x:1883"}, []string{"put credentials in username"}},
		{"version", Config{URL: "tcp://x", Version: 4}, []string{"version 4"}},
		{"version 7", Config{URL: "tcp://x", Version: 7}, []string{"version 7: want 3"}},
		{"qos", Config{URL: "tcp://x", QoS: -1}, []string{"qos -1"}},
		{"unknown placeholder", Config{URL: "tcp://x", Topic: "a/{device}"}, []string{"unknown placeholder {device}"}},
		{"unclosed brace", Config{URL: "tcp://x", Topic: "a/{source"}, []string{"not closed"}},
		{"stray brace", Config{URL: "tcp://x", Topic: "a/source}"}, []string{"without '{'"}},
		{"wildcard in template", Config{URL: "tcp://x", Topic: "a/+/{point}"}, []string{"wildcards"}},
		{"hash in template", Config{URL: "tcp://x", Topic: "a/#"}, []string{"wildcards"}},
		{"invalid utf8 template", Config{URL: "tcp://x", Topic: "a/\xff"}, []string{"not valid UTF-8"}},
		{"status placeholder", Config{URL: "tcp://x", StatusTopic: "s/{source}"}, []string{"status_topic", "no placeholder"}},
		{"persistent without id", Config{URL: "tcp://x", PersistentSession: true}, []string{"client_id: required"}},
		{"password without user v3", Config{URL: "tcp://x", Password: "p"}, []string{"password without username"}},
		{"in flight", Config{URL: "tcp://x", MaxInFlight: 70000}, []string{"max_in_flight: 70000 is outside 1 to 65535"}},
		{"negative timeout", Config{URL: "tcp://x", AckTimeout: -time.Second}, []string{"ack_timeout: -1s is outside"}},
		{"keepalive too short", Config{URL: "tcp://x", KeepAlive: time.Millisecond}, []string{"keep_alive: 1ms is outside 1s"}},
		{"cert without key", Config{URL: "ssl://x", CertFile: "c.pem"}, []string{"give both or neither"}},
		{"tls files on tcp", Config{URL: "tcp://x", CAFile: junk}, []string{"need a TLS url"}},
		{"missing ca file", Config{URL: "ssl://x", CAFile: filepath.Join(dir, "nope.pem")}, []string{"ca_file", "no such file"}},
		{"junk ca file", Config{URL: "ssl://x", CAFile: junk}, []string{"no PEM certificate"}},
		{"junk client cert", Config{URL: "tls://x", CertFile: junk, KeyFile: junk}, []string{"cert_file"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := New(c.cfg)
			require.Error(t, err)
			assert.Nil(t, s)
			assert.True(t, strings.HasPrefix(err.Error(), "mqtt: bad config: "), err.Error())
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestConfigAllErrorsAtOnce(t *testing.T) {
	_, err := New(Config{URL: "ftp://x", QoS: 5, Topic: "{nope}", MaxInFlight: -1})
	require.Error(t, err)
	for _, w := range []string{"unknown scheme", "qos 5", "{nope}", "max_in_flight: -1"} {
		assert.Contains(t, err.Error(), w)
	}
}

func TestConfigDefaults(t *testing.T) {
	s, err := New(Config{URL: "TCP://broker"})
	require.NoError(t, err)
	set := s.set
	assert.Equal(t, "tcp://broker:1883", set.url.String())
	assert.Equal(t, 3, set.Version)
	assert.Equal(t, DefaultTopic, set.Topic)
	assert.True(t, strings.HasPrefix(set.ClientID, "m2mbridge-"))
	assert.LessOrEqual(t, len(set.ClientID), 23, "MQTT 3.1.1 servers must accept ids up to 23 bytes")
	assert.Equal(t, 1024, set.MaxInFlight)
	assert.Equal(t, 10*time.Second, set.AckTimeout)
	assert.Nil(t, set.tls)

	s, err = New(Config{URL: "mqtts://broker"})
	require.NoError(t, err)
	assert.Equal(t, "mqtts://broker:8883", s.set.url.String())
	require.NotNil(t, s.set.tls)
	assert.Equal(t, "broker", s.set.tls.ServerName)

	s, err = New(Config{URL: "ws://broker/mqtt"})
	require.NoError(t, err)
	assert.Equal(t, "ws://broker:80/mqtt", s.set.url.String())
}

func TestConfigStringRedactsPassword(t *testing.T) {
	cfg := Config{URL: "tcp://x", Username: "u", Password: "hunter2"}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(f, cfg)
		assert.NotContains(t, out, "hunter2", f)
		assert.Contains(t, out, "[redacted]", f)
	}
	_, err := New(Config{URL: "tcp://u:hunter2@x"})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2")
}

func TestConfigTLSFiles(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := writeCerts(t, dir)
	s, err := New(Config{URL: "ssl://broker:8883", CAFile: ca, CertFile: cert, KeyFile: key, ServerName: "other"})
	require.NoError(t, err)
	require.NotNil(t, s.set.tls.RootCAs)
	require.Len(t, s.set.tls.Certificates, 1)
	assert.Equal(t, "other", s.set.tls.ServerName)
}

func TestTopicEscaping(t *testing.T) {
	tpl, err := parseTemplate("x/{source}/{point}")
	require.NoError(t, err)
	first, err := parseTemplate("{source}/{point}")
	require.NoError(t, err)
	cases := []struct {
		tpl           template
		source, point string
		want          string
	}{
		{tpl, "meter1", "voltage_l1", "x/meter1/voltage_l1"},
		{tpl, "a/b", "c+d#e", "x/a_b/c_d_e"},
		{tpl, "nul\x00", "bad\xffutf8", "x/nul_/bad_utf8"},
		{tpl, "$SYS", "°C", "x/$SYS/°C"}, // '$' only matters at the start
		{tpl, "", "", "x//"},
		{first, "$SYS", "p", "_SYS/p"},
		{first, "a", "$b", "a/$b"},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, string(c.tpl.appendTopic(nil, c.source, c.point)), "%q %q", c.source, c.point)
	}
}

func FuzzTopic(f *testing.F) {
	f.Add("m2m/{source}/{point}", "meter1", "v")
	f.Add("{source}", "$a/b+#", "\xff")
	f.Add("a{point}b{source}", "", "x")
	f.Fuzz(func(t *testing.T, tplText, source, point string) {
		tpl, err := parseTemplate(tplText)
		if err != nil {
			return
		}
		plain := string(tpl.appendTopic(nil, "s", "p"))
		topic := string(tpl.appendTopic(nil, source, point))
		if !utf8.ValidString(topic) {
			t.Fatalf("topic %q is not valid UTF-8", topic)
		}
		if strings.ContainsAny(topic, "+#\x00") {
			t.Fatalf("topic %q holds a wildcard or NUL", topic)
		}
		if strings.HasPrefix(topic, "$") && !strings.HasPrefix(tplText, "$") {
			t.Fatalf("topic %q begins with '$'", topic)
		}
		if strings.Count(topic, "/") != strings.Count(plain, "/") {
			t.Fatalf("topic %q has other levels than %q", topic, plain)
		}
	})
}

// writeCerts writes a CA and a client certificate signed by it, as PEM.
func writeCerts(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	pki := testpki.NewCA(t)
	cert, key = pki.IssueFiles(t, dir, "client", x509.ExtKeyUsageClientAuth)
	return pki.WriteCA(t, dir), cert, key
}

func TestConfigYAML(t *testing.T) {
	// The gateway's sink block (DESIGN.md) and the other documented keys.
	doc := `
url: tcp://127.0.0.1:1883
topic: "m2m/{source}/{point}"
qos: 1
version: 5
client_id: gw1
username: bridge
retain: true
persistent_session: true
session_expiry: 2h
status_topic: m2m/status/gw1
max_in_flight: 100
ack_timeout: 5s
keep_alive: 20s
connect_timeout: 3s
max_reconnect_interval: 30s
`
	var cfg Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&cfg))
	assert.Equal(t, Config{
		URL: "tcp://127.0.0.1:1883", Topic: "m2m/{source}/{point}", QoS: 1, Version: 5, ClientID: "gw1",
		Username: "bridge", Retain: true, PersistentSession: true, SessionExpiry: 2 * time.Hour,
		StatusTopic: "m2m/status/gw1", MaxInFlight: 100, AckTimeout: 5 * time.Second, KeepAlive: 20 * time.Second,
		ConnectTimeout: 3 * time.Second, MaxReconnectInterval: 30 * time.Second,
	}, cfg)
	_, err := New(cfg)
	require.NoError(t, err)

	// The password has no YAML key: the gateway resolves password_env.
	dec = yaml.NewDecoder(strings.NewReader("url: tcp://x\npassword: secret\n"))
	dec.KnownFields(true)
	require.Error(t, dec.Decode(&cfg))
}

func TestBackoff(t *testing.T) {
	b := backoff(time.Second)
	assert.Zero(t, b(0))
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 100: time.Second} {
		d := b(n)
		assert.LessOrEqual(t, d, want, "attempt %d", n)
		assert.GreaterOrEqual(t, d, want*3/4, "attempt %d", n)
	}
}

// TestConfigHidesSecrets is issue 10 defect 8: a URL's password and query
// values never appear in errors nor in String.
func TestConfigHidesSecrets(t *testing.T) {
	for _, u := range []string{"tcp://u:S3CRET@h:1883", "tcp://u:S3CRET@h:bad", "foo://u:S3CRET@h", "tcp://u:S3CRET@[::1"} {
		_, err := New(Config{URL: u})
		require.Error(t, err, u)
		assert.NotContains(t, err.Error(), "S3CRET", u)
		assert.NotContains(t, Config{URL: u}.String(), "S3CRET", u)
	}
}

// TestConfigRanges is issue 10 defect 6: settings that would fail or hang at
// run time are refused, naming the setting.
func TestConfigRanges(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"HugeTopic", Config{URL: "tcp://h", Topic: strings.Repeat("t", 70000)}, "topic: topic template is 70000 bytes, longer than 1024"},
		{"HugeStatusTopic", Config{URL: "tcp://h", StatusTopic: strings.Repeat("t", 2000)}, "status_topic: topic template is 2000 bytes"},
		{"AckTimeout", Config{URL: "tcp://h", AckTimeout: 1000 * time.Hour}, "ack_timeout: 1000h0m0s is outside 100ms to 10m0s"},
		{"ConnectTimeout", Config{URL: "tcp://h", ConnectTimeout: time.Nanosecond}, "connect_timeout: 1ns is outside"},
		{"Reconnect", Config{URL: "tcp://h", MaxReconnectInterval: 48 * time.Hour}, "max_reconnect_interval: 48h0m0s is outside"},
		{"SessionExpiry", Config{URL: "tcp://h", SessionExpiry: time.Millisecond}, "session_expiry: 1ms is outside 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
