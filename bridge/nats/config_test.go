package nats

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/m2mbridge/m2mbridge/bridge"
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
		{"NoURL", Config{}, []string{"url: missing (e.g. nats://127.0.0.1:4222)"}},
		{"URL", Config{URL: "nats://[::1"}, []string{`url: "nats://[::1": missing ']' in host`}},
		{"NoScheme", Config{URL: "127.0.0.1:4222"}, []string{`url: "127.0.0.1:4222": no scheme (want nats://, tls://, ws:// or wss://)`}},
		{"Scheme", Config{URL: "nast://x:4222"}, []string{`url: "nast://x:4222": unknown scheme "nast": want nats, tls, ws or wss (did you mean "nats"?)`}},
		{"SecondURL", Config{URL: "nats://a:4222, mqtt://b"}, []string{`url: "mqtt://b": unknown scheme "mqtt": want nats, tls, ws or wss`}},
		{"NoHost", Config{URL: "nats://:4222"}, []string{`url: "nats://:4222": no host`}},
		{"Credentials", Config{URL: "nats://u:secret@x:4222"}, []string{`url: "nats://u:xxxxx@x:4222": holds credentials (put them in username and password_env, token_env or creds_file, not in the URL)`}},
		{"Subject", Config{URL: "nats://x", Subject: "a..{point}"}, []string{`subject: subject template "a..{point}": token 2 is empty (leading, trailing or doubled '.')`}},
		{"StreamWithoutJetStream", Config{URL: "nats://x", Stream: "S"}, []string{"stream: needs jetstream: true (set jetstream: true, or remove stream)"}},
		{"StreamName", Config{URL: "nats://x", JetStream: true, Stream: "a.b"}, []string{`stream: "a.b": character '.' at offset 1 is not allowed in a stream name`}},
		{"CreateWithoutStream", Config{URL: "nats://x", JetStream: true, CreateStream: true}, []string{"create_stream: needs a stream name (stream)"}},
		{"TwoAuths", Config{URL: "nats://x", Token: "t", Username: "u", Password: "p"}, []string{"username: not allowed with token: give one way to authenticate"}},
		{"PasswordWithoutUser", Config{URL: "nats://x", Password: "p"}, []string{"password: given without username"}},
		{"EmptyPassword", Config{URL: "nats://x", Username: "u"}, []string{"password: empty, but username is set (password_env or password_file must name a variable or file that holds the password; one that is set but empty gives an empty password)"}},
		{"CertWithoutKey", Config{URL: "tls://x", CertFile: "c.pem"}, []string{"key_file: required with cert_file (give cert_file and key_file together, or neither)"}},
		{"Several", Config{URL: "http://x", Subject: "a.*", MaxAckPending: -1, AckTimeout: -time.Second, ReconnectWait: time.Nanosecond, CredsFile: "x.creds", Token: "t", KeyFile: "k.pem"}, []string{
			`url: "http://x": unknown scheme "http": want nats, tls, ws or wss`,
			`subject: subject template "a.*" holds the wildcard '*' at offset 2: a publish subject cannot`,
			"max_ack_pending: -1 is outside 1 to 1000000",
			"ack_timeout: -1s is outside 100ms to 10m0s",
			"reconnect_wait: 1ns is outside 10ms to 1h0m0s",
			"token: not allowed with creds_file: give one way to authenticate",
			"cert_file: required with key_file (give cert_file and key_file together, or neither)",
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
				assert.True(t, strings.HasPrefix(line, "nats: "), line)
			}
		})
	}
}

// TestNewFiles: what is wrong with the TLS files and creds_file is found by
// New (it reads them), not by Validate, at the path of the setting.
func TestNewFiles(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	require.NoError(t, os.WriteFile(junk, []byte("not pem"), 0o600))
	missing := filepath.Join(dir, "nope.pem")
	for _, tc := range []struct {
		name  string
		cfg   Config
		paths []string
	}{
		{"MissingCreds", Config{URL: "nats://x", CredsFile: missing}, []string{"creds_file"}},
		{"MissingCA", Config{URL: "tls://x", CAFile: missing}, []string{"ca_file"}},
		{"JunkCA", Config{URL: "tls://x", CAFile: junk}, []string{"ca_file"}},
		{"JunkPair", Config{URL: "tls://x", CertFile: junk, KeyFile: junk}, []string{"cert_file"}},
		{"All", Config{URL: "tls://x", CredsFile: missing, CAFile: junk, CertFile: junk, KeyFile: junk}, []string{"creds_file", "ca_file", "cert_file"}},
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

func TestConfigDefaults(t *testing.T) {
	s, err := New(Config{URL: "NATS://a:4222,nats://b"})
	require.NoError(t, err)
	assert.Equal(t, []string{"nats://a:4222", "nats://b"}, s.set.servers)
	assert.Equal(t, DefaultSubject, s.set.Subject)
	assert.Equal(t, 4096, s.set.MaxAckPending)
	assert.Equal(t, 10*time.Second, s.set.AckTimeout)
	assert.Equal(t, "m2mbridge", s.set.Name)
	assert.Nil(t, s.set.tls)
}

func TestConfigStringRedactsSecrets(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "nats://x", Username: "u", Password: "hunter2"},
		{URL: "nats://x", Token: "hunter2"},
	} {
		for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
			out := fmt.Sprintf(f, cfg)
			assert.NotContains(t, out, "hunter2", f)
			assert.Contains(t, out, "[redacted]", f)
		}
	}
	_, err := New(Config{URL: "nats://u:hunter2@x"})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2")
}

func TestSubjectEscaping(t *testing.T) {
	tpl, err := parseTemplate("x.{source}.{point}")
	require.NoError(t, err)
	mixed, err := parseTemplate("x.dev-{source}.{point}-v")
	require.NoError(t, err)
	cases := []struct {
		tpl           template
		source, point string
		want          string
	}{
		{tpl, "meter1", "voltage_l1", "x.meter1.voltage_l1"},
		{tpl, "a.b", "c*d>e", "x.a_b.c_d_e"},
		{tpl, "tab\there", "nl\r\n", "x.tab_here.nl__"},
		{tpl, "nbsp\u00a0x", "bad\xffutf8", "x.nbsp_x.bad_utf8"},
		{tpl, "", "°C/m³", "x._.°C/m³"},
		{mixed, "m1", "p", "x.dev-m1.p-v"},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, string(c.tpl.appendSubject(nil, c.source, c.point)), "%q %q", c.source, c.point)
	}
	assert.Equal(t, "x.*.*", tpl.wildcard())
	assert.Equal(t, "x.*.*", mixed.wildcard())
}

func FuzzSubject(f *testing.F) {
	f.Add("m2m.{source}.{point}", "meter1", "v")
	f.Add("{source}", "a.b*>", "\xff")
	f.Add("a{point}b.{source}", "", " ")
	f.Fuzz(func(t *testing.T, tplText, source, point string) {
		tpl, err := parseTemplate(tplText)
		if err != nil {
			return
		}
		plain := string(tpl.appendSubject(nil, "s", "p"))
		subj := string(tpl.appendSubject(nil, source, point))
		if !utf8.ValidString(subj) {
			t.Fatalf("subject %q is not valid UTF-8", subj)
		}
		if strings.IndexFunc(subj, unicode.IsSpace) >= 0 {
			t.Fatalf("subject %q holds whitespace", subj)
		}
		toks := strings.Split(subj, ".")
		if len(toks) != strings.Count(plain, ".")+1 {
			t.Fatalf("subject %q has other tokens than %q", subj, plain)
		}
		for _, tok := range toks {
			if tok == "" || tok == "*" || tok == ">" {
				t.Fatalf("subject %q has an empty or wildcard token", subj)
			}
		}
	})
}

func TestConfigYAML(t *testing.T) {
	// The gateway's sink block (DESIGN.md) and the other documented keys.
	doc := `
url: nats://127.0.0.1:4222
subject: "m2m.{source}.{point}"
jetstream: true
stream: M2M
create_stream: true
max_ack_pending: 1000
ack_timeout: 5s
name: gw1
username: bridge
connect_timeout: 2s
reconnect_wait: 500ms
`
	var cfg Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&cfg))
	assert.Equal(t, Config{
		URL: "nats://127.0.0.1:4222", Subject: "m2m.{source}.{point}", JetStream: true, Stream: "M2M",
		CreateStream: true, MaxAckPending: 1000, AckTimeout: 5 * time.Second, Name: "gw1", Username: "bridge",
		ConnectTimeout: 2 * time.Second, ReconnectWait: 500 * time.Millisecond,
	}, cfg)
	require.ErrorContains(t, cfg.Validate(), "password: empty, but username is set", "the gateway fills the password in")
	cfg.Password = "secret"
	_, err := New(cfg)
	require.NoError(t, err)

	// Secrets have no YAML key: the gateway resolves password_env and
	// token_env.
	for _, bad := range []string{"password: secret\n", "token: secret\n"} {
		dec = yaml.NewDecoder(strings.NewReader("url: nats://x\n" + bad))
		dec.KnownFields(true)
		require.Error(t, dec.Decode(&cfg), bad)
	}
}

func TestSubjectCovers(t *testing.T) {
	cases := []struct {
		filter, pattern string
		want            bool
	}{
		{"m2m.*.*", "m2m.*.*", true},
		{"m2m.>", "m2m.*.*", true},
		{">", "m2m.*.*", true},
		{"m2m.*.>", "m2m.*.*", true},
		{"m2m.a.*", "m2m.*.*", false},
		{"m2m.*", "m2m.*.*", false},
		{"m2m.*.*.*", "m2m.*.*", false},
		{"other.>", "m2m.*.*", false},
		{"m2m.>", "m2m", false},
		{"m2m.dev.*", "m2m.dev.*", true},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, subjectCovers(c.filter, c.pattern), "%s covers %s", c.filter, c.pattern)
	}
}

// TestConfigHidesSecrets is issue 10 defect 8: a URL's password and query
// values never appear in errors nor in String.
func TestConfigHidesSecrets(t *testing.T) {
	for _, u := range []string{"nats://u:S3CRET@h:4222", "nats://h:1,nats://u:S3CRET@h:bad", "foo://u:S3CRET@h", "nats://u:S3CRET@"} {
		_, err := New(Config{URL: u})
		require.Error(t, err, u)
		assert.NotContains(t, err.Error(), "S3CRET", u)
	}
}

// TestConfigRanges is issue 10 defect 6.
func TestConfigRanges(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"HugeSubject", Config{URL: "nats://h", Subject: strings.Repeat("s", 70000)}, "subject: subject template is 70000 bytes, longer than 1024"},
		{"AckTimeout", Config{URL: "nats://h", AckTimeout: 1000 * time.Hour}, "ack_timeout: 1000h0m0s is outside 100ms to 10m0s"},
		{"ReconnectWait", Config{URL: "nats://h", ReconnectWait: time.Nanosecond}, "reconnect_wait: 1ns is outside"},
		{"MaxAckPending", Config{URL: "nats://h", MaxAckPending: 1 << 40}, "max_ack_pending: 1099511627776 is outside 1 to 1000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
