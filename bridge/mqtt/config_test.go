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
	"go.yaml.in/yaml/v3"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/testpki"
)

// fieldErrs returns the field errors of err as "path: msg (hint)".
func fieldErrs(err error) []string {
	var out []string
	for _, fe := range bridge.FieldErrors(err) {
		out = append(out, fe.Error())
	}
	return out
}

// TestValidate checks the path of every problem Validate reports, several
// at once, and that New reports the same field errors.
func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // each field error's "path: msg (hint)", in order
	}{
		{"NoURL", Config{}, []string{"url: missing (e.g. tcp://127.0.0.1:1883)"}},
		{"URL", Config{URL: "tcp://[::1"}, []string{`url: "tcp://[::1": missing ']' in host`}},
		{"NoScheme", Config{URL: "127.0.0.1:1883"}, []string{`url: "127.0.0.1:1883": no scheme (want tcp://, mqtt://, ssl://, tls://, mqtts://, ws:// or wss://)`}},
		{"Scheme", Config{URL: "mqqt://x"}, []string{`url: "mqqt://x": unknown scheme "mqqt": want tcp, mqtt, ssl, tls, mqtts, ws or wss (did you mean "mqtt"?)`}},
		{"NoHost", Config{URL: "tcp://:1883"}, []string{`url: "tcp://:1883": no host`}},
		{"Credentials", Config{URL: "tcp://u:secret@x:1883"}, []string{`url: "tcp://u:xxxxx@x:1883": holds credentials (put them in username and password_env (or password_file), not in the URL)`}},
		{"Version4", Config{URL: "tcp://x", Version: 4}, []string{`version: unknown version "4": want 3 (MQTT 3.1.1) or 5 (MQTT 5) (write 3: MQTT 3.1.1 is protocol level 4)`}},
		{"Version7", Config{URL: "tcp://x", Version: 7}, []string{`version: unknown version "7": want 3 (MQTT 3.1.1) or 5 (MQTT 5)`}},
		{"PersistentWithoutID", Config{URL: "tcp://x", PersistentSession: true}, []string{"client_id: required with persistent_session, so that the session can be resumed"}},
		{"PasswordWithoutUser", Config{URL: "tcp://x", Password: "p"}, []string{"password: given without username: MQTT 3.1.1 does not allow it (section 3.1.2.9)"}},
		{"Topic", Config{URL: "tcp://x", Topic: "a/{device}"}, []string{`topic: topic template "a/{device}": unknown placeholder {device} at offset 2 (known: {source}, {point})`}},
		{"StatusPlaceholder", Config{URL: "tcp://x", StatusTopic: "s/{source}"}, []string{`status_topic: "s/{source}": may hold no placeholder`}},
		{"QoS", Config{URL: "tcp://x", QoS: 3}, []string{"qos: 3 is not 0, 1 or 2"}},
		{"InFlight", Config{URL: "tcp://x", MaxInFlight: 70000}, []string{"max_in_flight: 70000 is outside 1 to 65535"}},
		{"CertWithoutKey", Config{URL: "ssl://x", CertFile: "c.pem"}, []string{"key_file: required with cert_file (give cert_file and key_file together, or neither)"}},
		{"TLSFilesOnTCP", Config{URL: "tcp://x", CAFile: "ca.pem", ServerName: "b"}, []string{
			"ca_file: needs a TLS url, not tcp:// (use ssl://, tls://, mqtts:// or wss://, or remove ca_file)",
			"server_name: needs a TLS url, not tcp:// (use ssl://, tls://, mqtts:// or wss://, or remove server_name)",
		}},
		{"Several", Config{URL: "ftp://x", Version: 4, QoS: 5, Topic: "{nope}", MaxInFlight: -1, AckTimeout: -time.Second, KeepAlive: time.Millisecond}, []string{
			`url: "ftp://x": unknown scheme "ftp": want tcp, mqtt, ssl, tls, mqtts, ws or wss`,
			`version: unknown version "4": want 3 (MQTT 3.1.1) or 5 (MQTT 5) (write 3: MQTT 3.1.1 is protocol level 4)`,
			`topic: topic template "{nope}": unknown placeholder {nope} at offset 0 (known: {source}, {point})`,
			"qos: 5 is not 0, 1 or 2",
			"max_in_flight: -1 is outside 1 to 65535",
			"ack_timeout: -1s is outside 100ms to 10m0s",
			"keep_alive: 1ms is outside 1s to 18h12m15s",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			assert.Equal(t, tc.want, fieldErrs(err))
			s, nerr := New(tc.cfg)
			require.Error(t, nerr)
			assert.Nil(t, s)
			assert.Equal(t, bridge.FieldErrors(err), bridge.FieldErrors(nerr), "New reports what Validate does")
			for _, line := range strings.Split(nerr.Error(), "\n") {
				assert.True(t, strings.HasPrefix(line, "mqtt: "), line)
			}
			for _, fe := range bridge.FieldErrors(err) {
				assert.False(t, strings.HasPrefix(fe.Msg, "mqtt"), "the message has no package prefix: %s", fe.Msg)
			}
		})
	}
}

// TestNewTLSFiles: what is wrong with the TLS files is found by New (it
// reads them), not by Validate, at the path of the setting.
func TestNewTLSFiles(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	require.NoError(t, os.WriteFile(junk, []byte("not pem"), 0o600))
	missing := filepath.Join(dir, "nope.pem")
	for _, tc := range []struct {
		name  string
		cfg   Config
		paths []string
	}{
		{"MissingCA", Config{URL: "ssl://x", CAFile: missing}, []string{"ca_file"}},
		{"JunkCA", Config{URL: "ssl://x", CAFile: junk}, []string{"ca_file"}},
		{"JunkPair", Config{URL: "tls://x", CertFile: junk, KeyFile: junk}, []string{"cert_file"}},
		{"Both", Config{URL: "mqtts://x", CAFile: missing, CertFile: junk, KeyFile: junk}, []string{"ca_file", "cert_file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, tc.cfg.Validate())
			_, err := New(tc.cfg)
			var paths []string
			for _, fe := range bridge.FieldErrors(err) {
				paths = append(paths, fe.Path)
			}
			assert.Equal(t, tc.paths, paths, "%v", err)
		})
	}
}

func TestVersionYAML(t *testing.T) {
	for in, want := range map[string]Version{"3": V311, "5": V5, `"3.1.1"`: V311, "5.0": V5} {
		var c Config
		require.NoError(t, yaml.Unmarshal([]byte("version: "+in), &c), in)
		assert.Equal(t, want, c.Version, in)
	}
	var c Config
	err := yaml.Unmarshal([]byte("version: 4"), &c)
	var fe *bridge.FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "write 3: MQTT 3.1.1 is protocol level 4", fe.Hint)
	out, err := yaml.Marshal(Config{Version: V5})
	require.NoError(t, err)
	assert.Contains(t, string(out), "version: \"5\"")
}

func TestConfigDefaults(t *testing.T) {
	s, err := New(Config{URL: "TCP://broker"})
	require.NoError(t, err)
	set := s.set
	assert.Equal(t, "tcp://broker:1883", set.url.String())
	assert.Equal(t, V311, set.Version)
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

// TestMetadataTopicRules checks that metadata_topic must hold {source}
// (else every source's retained metadata replaces the others') and must not
// be able to name the topic of a batch message, whatever the source names.
func TestMetadataTopicRules(t *testing.T) {
	for _, tc := range []struct {
		name, topic, meta string
		want              string // the field error, "" when valid
	}{
		{"Default", "", "m2m/{source}/meta", ""},
		{"OtherRoot", "m2m/{source}", "meta/{source}", ""},
		{"Deeper", "m2m/{source}/data", "m2m/{source}/meta", ""},
		{"LiteralBatchTopic", "m2m/all", "m2m/meta/{source}", ""},
		{"NoSource", "", "m2m/meta",
			`metadata_topic: "m2m/meta" does not hold {source}: every source's retained metadata would replace the others' (e.g. m2m/{source}/meta)`},
		{"SourceNamedLikeLevel", "m2m/{source}/x", "m2m/meta/{source}",
			`metadata_topic: "m2m/meta/{source}" can give the same topic as topic "m2m/{source}/x" for some source names, so a batch message could overwrite a source's metadata (give it a number of levels the topic does not have, or a literal level where the topic has a different one, e.g. m2m/{source}/meta with m2m/{source})`},
		{"SameLevels", "m2m/{source}", "m2m/meta-{source}",
			`metadata_topic: "m2m/meta-{source}" can give the same topic as topic "m2m/{source}" for some source names, so a batch message could overwrite a source's metadata (give it a number of levels the topic does not have, or a literal level where the topic has a different one, e.g. m2m/{source}/meta with m2m/{source})`},
		{"LiteralBatchTopicMatches", "m2m/meta-all", "m2m/meta-{source}",
			`metadata_topic: "m2m/meta-{source}" can give the same topic as topic "m2m/meta-all" for some source names, so a batch message could overwrite a source's metadata (give it a number of levels the topic does not have, or a literal level where the topic has a different one, e.g. m2m/{source}/meta with m2m/{source})`},
		{"Affixes", "m2m/{source}-d", "m2m/m-{source}",
			`metadata_topic: "m2m/m-{source}" can give the same topic as topic "m2m/{source}-d" for some source names, so a batch message could overwrite a source's metadata (give it a number of levels the topic does not have, or a literal level where the topic has a different one, e.g. m2m/{source}/meta with m2m/{source})`},
		{"DisjointAffixes", "m2m/d-{source}", "m2m/m-{source}", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{URL: "tcp://x", Layout: LayoutBatch, Topic: tc.topic, MetadataTopic: tc.meta}
			err := cfg.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				// What the check promises, by example: no source's batch
				// topic is another's metadata topic.
				s, err := cfg.check()
				require.NoError(t, err)
				names := []string{"meta", "x", "data", "all", "m2m", "d-1", "m-1", "meta-all"}
				for _, a := range names {
					for _, b := range names {
						assert.NotEqual(t, string(s.template.appendTopic(nil, a, "")), string(s.metaTemplate.appendTopic(nil, b, "")), "sources %q and %q", a, b)
					}
				}
				return
			}
			assert.Equal(t, []string{tc.want}, fieldErrs(err))
		})
	}
}
