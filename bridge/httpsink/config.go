package httpsink

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/textproto"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/limits"
	"github.com/m2mbridge/m2mbridge/internal/tlsfiles"
)

// Config holds the settings of a [Sink]. It loads from YAML with the keys
// shown in the field tags; [New] checks it. Secrets (Password, Token) are
// given as values: the gateway resolves password_env/password_file and
// token_env/token_file into them.
type Config struct {
	// URL receives the POSTs, http:// or https://. Required.
	URL string `yaml:"url"`
	// Headers are added to every request ("X-Api-Key": "..."). They may
	// set Content-Type (default application/json) and Authorization, but
	// not the headers the sink manages (Content-Length, Content-Encoding,
	// Transfer-Encoding, Host, Connection).
	Headers map[string]string `yaml:"headers"`
	// Username and Password send HTTP basic authentication.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Token sends "Authorization: Bearer <token>".
	Token string `yaml:"token"`
	// Gzip compresses request bodies (Content-Encoding: gzip).
	Gzip bool `yaml:"gzip"`
	// Timeout bounds each request; default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// Retries is ignored.
	//
	// Deprecated: the Bridge's retry (bridge.SinkOptions.Retry, the sink's
	// retry: block in the gateway) is the one retry policy; Write sends
	// each request once. [Config.Deprecations] reports it when set.
	Retries int `yaml:"retries"`
	// RetryBackoff is ignored.
	//
	// Deprecated: as Retries.
	RetryBackoff time.Duration `yaml:"retry_backoff"`

	// CAFile is a PEM file of the certificate authorities to trust for
	// https; empty uses the system's.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// servers that ask for one (mutual TLS).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// InsecureSkipVerify turns off verification of the server's
	// certificate. For tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// TLS, when set, is used for https instead of the four settings above
	// (Go users only).
	TLS *tls.Config `yaml:"-"`
}

// managed are the headers the sink sets itself.
var managed = map[string]bool{
	"Content-Length": true, "Content-Encoding": true, "Transfer-Encoding": true, "Host": true, "Connection": true,
}

// settings is a checked Config with its defaults filled in.
type settings struct {
	Config
	tls *tls.Config
}

func (c Config) check() (*settings, error) {
	s := &settings{Config: c}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("httpsink: "+format, args...)) }

	if c.URL == "" {
		bad("url is required")
	} else if u, err := url.Parse(c.URL); err != nil {
		bad("url %q: %v", c.URL, err)
	} else if u.Scheme != "http" && u.Scheme != "https" {
		bad("url %q: scheme %q is not http or https", c.URL, u.Scheme)
	} else if u.Host == "" {
		bad("url %q: no host", c.URL)
	}
	names := make([]string, 0, len(c.Headers))
	for k := range c.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := c.Headers[k]
		switch {
		case !validName(k):
			bad("headers: %q is not a valid header name", k)
		case managed[textproto.CanonicalMIMEHeaderKey(k)]:
			bad("headers: %s is set by the sink", k)
		case strings.ContainsAny(v, "\r\n\x00"):
			bad("headers: the value of %s holds a line break or NUL", k)
		}
	}
	auth := 0
	if c.Username != "" || c.Password != "" {
		auth++
		if c.Username == "" {
			bad("password given without username")
		}
	}
	if c.Token != "" {
		auth++
	}
	for k := range c.Headers {
		if textproto.CanonicalMIMEHeaderKey(k) == "Authorization" {
			auth++
		}
	}
	if auth > 1 {
		bad("username/password, token and an Authorization header exclude each other")
	}
	for _, err := range limits.Durations(
		limits.Duration{Key: "timeout", P: &s.Timeout, Def: 10 * time.Second, Min: limits.MinTimeout, Max: limits.MaxTimeout},
	) {
		errs = append(errs, fmt.Errorf("httpsink: %w", err))
	}
	t, err := tlsfiles.LoadOrClone(c.TLS, "tls", c.CAFile, c.CertFile, c.KeyFile, c.InsecureSkipVerify)
	if err != nil {
		errs = append(errs, fmt.Errorf("httpsink: %w", err))
	}
	s.tls = t
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// validName reports whether k is an HTTP header name (an RFC 9110 token).
func validName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// Deprecations returns a field error for each deprecated setting c sets
// (retries, retry_backoff): they are accepted and ignored, so a loader
// should print these as warnings, not refuse the configuration.
func (c Config) Deprecations() []*bridge.FieldError {
	var out []*bridge.FieldError
	if c.Retries != 0 {
		out = append(out, &bridge.FieldError{Path: "retries", Msg: "deprecated and ignored: the sink sends each request once", Hint: "set the sink's retry: block instead; remove retries"})
	}
	if c.RetryBackoff != 0 {
		out = append(out, &bridge.FieldError{Path: "retry_backoff", Msg: "deprecated and ignored: the sink sends each request once", Hint: "set the sink's retry: block instead; remove retry_backoff"})
	}
	return out
}
