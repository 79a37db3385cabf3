package httpsink

import (
	"crypto/tls"
	"errors"
	"net/textproto"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/bodycodec"
	"github.com/m2mbridge/m2mbridge/internal/cfgcheck"
	"github.com/m2mbridge/m2mbridge/internal/limits"
	"github.com/m2mbridge/m2mbridge/internal/redact"
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
	// Compression compresses request bodies: "none" (the default, also
	// when empty), "gzip" or "zstd", sent with that Content-Encoding. The
	// server must decode it: most HTTP frameworks and proxies decode gzip;
	// zstd (RFC 8878) fewer.
	Compression string `yaml:"compression"`
	// Gzip is compression: gzip, as it was written before compression had
	// a choice; not with Compression set to something else.
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

// Validate checks every setting without I/O and returns every problem at
// once, each a *bridge.FieldError whose Path is the setting's YAML key
// ("url", "headers.Content-Length", "token"). [New] applies the same rules
// and also reads the TLS files, reporting their problems at ca_file or
// cert_file. Deprecated settings are not errors: see [Config.Deprecations].
//
// One way to authenticate may be given: username and password (HTTP basic
// authentication), token, or an Authorization header. A username needs a
// non-empty password: an empty one is what a password_env naming a variable
// that is set but empty gives, so it is refused at "password" rather than
// sent. For a server that takes a key as the user name with an empty
// password, set the Authorization header instead.
func (c Config) Validate() error {
	_, err := c.check()
	return err
}

// check validates c and returns it with its defaults filled in, without
// I/O.
func (c Config) check() (*settings, error) {
	s := &settings{Config: c}
	var errs []error
	bad := func(path, format string, args ...any) { errs = append(errs, bridge.FieldErrorf(path, format, args...)) }

	shown := redact.URL(c.URL)
	if c.URL == "" {
		bad("url", "required (e.g. https://example.com/ingest)")
	} else if u, err := url.Parse(c.URL); err != nil {
		bad("url", "%q: %v", shown, redact.ParseError(err, c.URL))
	} else if u.Scheme != "http" && u.Scheme != "https" {
		bad("url", "%q: scheme %q is not http or https", shown, u.Scheme)
	} else if u.Host == "" {
		bad("url", "%q: no host", shown)
	}
	names := make([]string, 0, len(c.Headers))
	for k := range c.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	authHeader := ""
	for _, k := range names {
		v := c.Headers[k]
		path := bridge.JoinPath("headers", k)
		switch {
		case !validName(k):
			bad(path, "%q is not a valid header name", k)
		case managed[textproto.CanonicalMIMEHeaderKey(k)]:
			bad(path, "set by the sink")
		case strings.ContainsAny(v, "\r\n\x00"):
			bad(path, "the value holds a line break or NUL")
		}
		if textproto.CanonicalMIMEHeaderKey(k) == "Authorization" {
			authHeader = k
		}
	}
	// One way to authenticate: the second and later ways given are errors.
	first := ""
	for _, a := range []struct {
		key string
		set bool
	}{{"username", c.Username != "" || c.Password != ""}, {"token", c.Token != ""}, {bridge.JoinPath("headers", authHeader), authHeader != ""}} {
		switch {
		case !a.set:
		case first == "":
			first = a.key
		default:
			bad(a.key, "not allowed with %s: username/password, token and an Authorization header exclude each other", first)
		}
	}
	if c.Password != "" && c.Username == "" {
		bad("password", "given without username")
	}
	if err := cfgcheck.Secret("password", "username", c.Username, c.Password); err != nil {
		errs = append(errs, err)
	}
	if codec, fe := bodycodec.Choose(c.Compression, c.Gzip); fe != nil {
		errs = append(errs, fe)
	} else {
		s.Compression = codec
	}
	errs = append(errs, limits.Durations(
		limits.Duration{Key: "timeout", P: &s.Timeout, Def: 10 * time.Second, Min: limits.MinTimeout, Max: limits.MaxTimeout},
	)...)
	if err := tlsfiles.Check(c.TLS, "TLS", c.CAFile, c.CertFile, c.KeyFile, c.InsecureSkipVerify); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// build returns c checked, with its defaults filled in and its TLS files
// loaded: what New needs. Its errors are field errors.
func (c Config) build() (*settings, error) {
	s, err := c.check()
	if err != nil {
		return nil, err
	}
	t, err := tlsfiles.LoadOrClone(c.TLS, "TLS", c.CAFile, c.CertFile, c.KeyFile, c.InsecureSkipVerify)
	if err != nil {
		return nil, err
	}
	s.tls = t
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
