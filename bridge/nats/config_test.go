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
	"gopkg.in/yaml.v3"
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
		{"unparsable url", Config{URL: "nats://[::1"}, []string{`url "nats://[::1"`}},
		{"no scheme", Config{URL: "127.0.0.1:4222"}, []string{`url "127.0.0.1:4222"`}},
		{"unknown scheme", Config{URL: "http://x:4222"}, []string{`unknown scheme "http"`}},
		{"bad second url", Config{URL: "nats://a:4222, mqtt://b"}, []string{`unknown scheme "mqtt"`}},
		{"no host", Config{URL: "nats://:4222"}, []string{"no host"}},
		{"credentials in url", Config{URL: "nats://u:secret@x:4222"}, []string{"put credentials in"}},
		{"unknown placeholder", Config{URL: "nats://x", Subject: "a.{device}"}, []string{"unknown placeholder {device}"}},
		{"unclosed brace", Config{URL: "nats://x", Subject: "a.{source"}, []string{"not closed"}},
		{"stray brace", Config{URL: "nats://x", Subject: "a.source}"}, []string{"without '{'"}},
		{"wildcard", Config{URL: "nats://x", Subject: "a.*.{point}"}, []string{"wildcard"}},
		{"full wildcard", Config{URL: "nats://x", Subject: "a.>"}, []string{"wildcard"}},
		{"space", Config{URL: "nats://x", Subject: "a b.{point}"}, []string{"whitespace"}},
		{"empty token", Config{URL: "nats://x", Subject: "a..{point}"}, []string{"token 2 is empty"}},
		{"trailing dot", Config{URL: "nats://x", Subject: "a.{point}."}, []string{"token 3 is empty"}},
		{"stream without jetstream", Config{URL: "nats://x", Stream: "S"}, []string{"needs jetstream"}},
		{"bad stream name", Config{URL: "nats://x", JetStream: true, Stream: "a.b"}, []string{`stream "a.b"`, "not allowed"}},
		{"create without stream", Config{URL: "nats://x", JetStream: true, CreateStream: true}, []string{"create_stream: needs a stream"}},
		{"max ack pending", Config{URL: "nats://x", MaxAckPending: -1}, []string{"max_ack_pending: -1"}},
		{"negative timeout", Config{URL: "nats://x", AckTimeout: -time.Second}, []string{"ack_timeout: -1s is outside"}},
		{"two auths", Config{URL: "nats://x", Token: "t", Username: "u"}, []string{"one way to authenticate"}},
		{"password without user", Config{URL: "nats://x", Password: "p"}, []string{"password without username"}},
		{"missing creds", Config{URL: "nats://x", CredsFile: filepath.Join(dir, "nope.creds")}, []string{"creds_file", "no such file"}},
		{"cert without key", Config{URL: "tls://x", CertFile: "c.pem"}, []string{"give both or neither"}},
		{"missing ca", Config{URL: "tls://x", CAFile: filepath.Join(dir, "nope.pem")}, []string{"ca_file", "no such file"}},
		{"junk ca", Config{URL: "tls://x", CAFile: junk}, []string{"no PEM certificate"}},
		{"junk client cert", Config{URL: "tls://x", CertFile: junk, KeyFile: junk}, []string{"cert_file"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := New(c.cfg)
			require.Error(t, err)
			assert.Nil(t, s)
			assert.True(t, strings.HasPrefix(err.Error(), "nats: bad config: "), err.Error())
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
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
