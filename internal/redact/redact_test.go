package redact

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestURL(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"Plain", "tcp://127.0.0.1:1883", "tcp://127.0.0.1:1883"},
		{"HostPort", "broker:9092", "broker:9092"},
		{"Empty", "", ""},
		{"UserPassword", "mqtt://u:PW@host:1883/x", "mqtt://u:xxxxx@host:1883/x"},
		{"UserOnly", "nats://user@host:4222", "nats://user@host:4222"},
		{"EmptyPassword", "tcp://u:@h", "tcp://u:@h"},
		{"NoScheme", "u:PW@host:9092", "u:xxxxx@host:9092"},
		{"PasswordWithAt", "tcp://u:p@ss@h:502", "tcp://u:xxxxx@h:502"},
		// Ambiguous: the '?' may start a query, so what follows the '@' is
		// hidden too.
		{"PasswordWithSlashAndQuestion", "http://u:p/a?b@h/x", "http://u:xxxxx@xxxxx"},
		{"PasswordWithComma", "u:p,w@h:1", "u:xxxxx@h:1"},
		{"Query", "https://h/ingest?api_key=K&site=7", "https://h/ingest?api_key=xxxxx&site=xxxxx"},
		{"QuerySemicolon", "http://h/?a=1;b=2", "http://h/?a=xxxxx;b=xxxxx"},
		{"QueryBare", "http://h/?TOKEN", "http://h/?xxxxx"},
		{"QueryEmptyValue", "http://h/?a=&b", "http://h/?a=&xxxxx"},
		{"QueryAndFragment", "http://h/?k=v#frag", "http://h/?k=xxxxx#frag"},
		{"QueryWithAt", "http://h/?email=a@b.c", "http://h/?email=xxxxx"},
		{"Both", "https://u:PW@h:8443/p?token=T", "https://u:xxxxx@h:8443/p?token=xxxxx"},
		{"BadEscape", "http://u:p%zz@h/?k=%zz", "http://u:xxxxx@h/?k=xxxxx"},
		{"UnclosedBracket", "http://u:PW@[::1/?k=v", "http://u:xxxxx@[::1/?k=xxxxx"},
		{"List", "nats://u:P1@a:4222,nats://v:P2@b:4222", "nats://u:xxxxx@a:4222,nats://v:xxxxx@b:4222"},
		{"ListSpaces", "nats://a:1, tls://u:P@b:2", "nats://a:1, tls://u:xxxxx@b:2"},
		{"HostPortList", "a:9092,b:9092", "a:9092,b:9092"},
		{"HostPortListPassword", "a:9092,u:PW@b:9092", "a:xxxxx@b:9092"}, // hides too much, never too little
		{"QueryWithCommaInList", "http://h/?k=1,2", "http://h/?k=xxxxx"},
		{"Idempotent", "http://u:xxxxx@h/?k=xxxxx", "http://u:xxxxx@h/?k=xxxxx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, URL(tc.in))
			assert.Equal(t, URL(tc.in), URL(URL(tc.in)), "idempotent")
		})
	}
}

func TestError(t *testing.T) {
	cause := errors.New("connection refused")
	err := Error(&url.Error{Op: "Post", URL: "http://h/?api_key=SECRET", Err: cause})
	assert.NotContains(t, err.Error(), "SECRET")
	assert.Contains(t, err.Error(), "api_key=xxxxx")
	assert.ErrorIs(t, err, cause)
	assert.Nil(t, Error(nil))
	assert.Equal(t, cause, Error(cause))
}

// FuzzURL checks that a password or query value marked SECRET never survives
// and that URL is idempotent and total.
func FuzzURL(f *testing.F) {
	f.Add("tcp", "u", "p", "host:1", "/x", "k", "v")
	f.Add("", "u", "p@x", "h:9092", "", "", "")
	f.Add("http", "", "", "[::1", "/a@b", "api_key", "1,2")
	f.Add("nats", "a", "b", "h1:1,nats://h2:2", "", "", "")
	f.Fuzz(func(t *testing.T, scheme, user, pw, host, path, key, val string) {
		for _, s := range []string{scheme, user, host, path, key} {
			if strings.Contains(s, "SECRET") {
				t.Skip()
			}
		}
		// The user name and host are what URL keeps: they hold no
		// delimiter of their own part (else they would not be a user or a
		// host).
		if strings.ContainsAny(user, ":@/?#,") || scheme != "" && strings.Contains(pw, "://") || strings.ContainsAny(host, "@?#") || strings.ContainsAny(path, "?#") ||
			strings.ContainsAny(key, "=&;#") || strings.ContainsAny(scheme, ":/?#@,") {
			t.Skip()
		}
		s := ""
		if scheme != "" {
			s = scheme + "://"
		}
		s += user + ":SECRET" + pw + "@" + host + path
		if !strings.Contains(pw, "#") {
			s += "?" + key + "=SECRET" + val
		}
		got := URL(s)
		if strings.Contains(got, "SECRET") {
			t.Fatalf("URL(%q) = %q: a secret survived", s, got)
		}
		if again := URL(got); again != got {
			t.Fatalf("URL is not idempotent: %q -> %q -> %q", s, got, again)
		}
	})
}

func FuzzURLAny(f *testing.F) {
	f.Add("http://u:p@h/?k=v")
	f.Add(",,@@??##")
	f.Fuzz(func(t *testing.T, s string) {
		got := URL(s)
		assert.Equal(t, got, URL(got))
		if u, err := url.Parse(s); err == nil && u.User != nil && !strings.ContainsAny(s, ",") {
			if p, ok := u.User.Password(); ok && len(p) > 5 && !strings.Contains(u.User.Username()+u.Host+u.Path, p) {
				assert.NotContains(t, got, p)
			}
		}
	})
}

func TestParseError(t *testing.T) {
	raw := "http://u:S3CRET@[::1"
	_, err := url.Parse(raw)
	require.Error(t, err)
	assert.Equal(t, "missing ']' in host", ParseError(err, raw))
	assert.Equal(t, `x "u:xxxxx@h"`, ParseError(errors.New(`x "u:S3CRET@h"`), "u:S3CRET@h"))
}
