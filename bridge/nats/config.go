package nats

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/cfgcheck"
	"github.com/m2mbridge/m2mbridge/internal/limits"
	"github.com/m2mbridge/m2mbridge/internal/redact"
	"github.com/m2mbridge/m2mbridge/internal/tlsfiles"
	"github.com/nats-io/nats.go/jetstream"
)

// Config holds the settings of a NATS [Sink]. The zero value of every field
// but URL is a usable default. The yaml keys are those of the gateway's
// `nats:` sink block.
type Config struct {
	// URL is the server, or a comma-separated list of servers of one
	// cluster: nats://host:port (TLS when the server asks for it or a TLS
	// setting is given), tls://host:port (TLS required), ws:// or wss://.
	// Without a port, 4222 is used.
	URL string `yaml:"url"`
	// Subject is the subject template; {source} and {point} are replaced by
	// the sample's Source and Point (see the package doc for how characters
	// NATS forbids in a token are replaced). Default [DefaultSubject].
	Subject string `yaml:"subject"`
	// JetStream publishes to JetStream and waits for the stream's
	// acknowledgement of every sample. Without it, samples are published
	// with core NATS (at most once) and each Write ends with a flush: a
	// round trip that proves the server has received them.
	JetStream bool `yaml:"jetstream"`
	// Stream is the JetStream stream the subjects belong to. With it,
	// Connect checks that the stream exists and takes every subject of the
	// template (or creates it, with CreateStream). Without it, any stream
	// whose subjects match is used.
	Stream string `yaml:"stream"`
	// CreateStream creates Stream, when absent, with the subject filter of
	// the template (each token holding a placeholder becomes '*', so
	// "m2m.{source}.{point}" gives "m2m.*.*") and the server's defaults
	// otherwise (file storage, limits retention).
	CreateStream bool `yaml:"create_stream"`
	// Layout is how samples become messages: "sample" (the default, also
	// when empty: one message per sample, bridge.AppendJSON, on Subject)
	// or "batch" (one message per source and poll cycle in bridge's batch
	// layout, bridge.AppendBatchJSON; Subject then holds {source} only and
	// defaults to [DefaultBatchSubject]).
	Layout string `yaml:"layout"`
	// MetadataSubject, with layout batch, is where the units of each
	// source's points go (bridge.AppendMetaJSON), once per connection and
	// whenever they change; the batch messages then leave units out. It
	// may hold {source} but not {point}. With create_stream the stream
	// takes these subjects too. Empty (the default): every batch message
	// carries its points' units.
	MetadataSubject string `yaml:"metadata_subject"`
	// MaxAckPending bounds the JetStream publishes sent and not yet
	// acknowledged (default 4096).
	MaxAckPending int `yaml:"max_ack_pending"`
	// AckTimeout is how long a JetStream publish may wait for its
	// acknowledgement, and a core NATS flush for the server's reply, before
	// Write reports the samples failed (default 10s).
	AckTimeout time.Duration `yaml:"ack_timeout"`

	// Name is the connection name the server shows (default "m2mbridge").
	Name string `yaml:"name"`
	// CredsFile is a NATS credentials file (user JWT and NKey seed).
	CredsFile string `yaml:"creds_file"`
	// Token is an authentication token. It is not read from YAML and never
	// printed (see [Config.String]); the gateway fills it from token_env or
	// token_file.
	Token string `yaml:"-"`
	// Username and Password authenticate by user and password. Password is
	// not read from YAML and never printed; the gateway fills it from
	// password_env or password_file.
	Username string `yaml:"username"`
	Password string `yaml:"-"`
	// CAFile is a PEM file of CA certificates that verify the server; when
	// empty the system roots are used.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the PEM client certificate and its key, for
	// servers that verify clients. Both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`

	// ConnectTimeout bounds one connection attempt (default 5s).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// ReconnectWait is the pause between reconnection attempts to the same
	// server after the connection is lost (default 1s, plus jitter).
	ReconnectWait time.Duration `yaml:"reconnect_wait"`
}

// String describes the configuration with the password and token redacted,
// so that a Config may be logged.
func (c Config) String() string {
	red := func(s string) string {
		if s == "" {
			return ""
		}
		return "[redacted]"
	}
	return fmt.Sprintf("nats.Config{URL:%q Subject:%q JetStream:%t Stream:%q CreateStream:%t MaxAckPending:%d Name:%q CredsFile:%q Token:%q Username:%q Password:%q CAFile:%q CertFile:%q KeyFile:%q}",
		c.URL, c.Subject, c.JetStream, c.Stream, c.CreateStream, c.MaxAckPending, c.Name, c.CredsFile, red(c.Token), c.Username, red(c.Password), c.CAFile, c.CertFile, c.KeyFile)
}

// GoString is String, so that %#v does not print secrets either.
func (c Config) GoString() string { return c.String() }

// settings is a validated Config with its defaults applied.
type settings struct {
	Config
	servers  []string
	tls      *tls.Config
	template template
	// metaTemplate is MetadataSubject parsed, when set.
	metaTemplate template
}

// Validate checks every setting without I/O and returns every problem at
// once, each a *bridge.FieldError whose Path is the setting's YAML key
// ("url", "subject", "ack_timeout", "key_file"). [New] applies the same
// rules, and also reads the TLS files and checks that creds_file exists,
// reporting those problems at their keys.
//
// A username needs a password: nats-server authenticates users by both, so
// an empty password (what a password_env naming a variable that is set but
// empty gives) is an error at "password". A configuration without username,
// token or creds_file connects without authentication.
func (c Config) Validate() error {
	_, err := c.check()
	return err
}

// check validates c and returns it with its defaults applied, without I/O.
func (c Config) check() (*settings, error) {
	s := &settings{Config: c}
	var errs []error
	bad := func(path, format string, args ...any) { errs = append(errs, bridge.FieldErrorf(path, format, args...)) }

	if strings.TrimSpace(c.URL) == "" {
		bad("url", "missing (e.g. nats://127.0.0.1:4222)")
	}
	for _, raw := range strings.Split(c.URL, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		shown := redact.URL(raw)
		if !strings.Contains(raw, "://") {
			bad("url", "%q: no scheme (want nats://, tls://, ws:// or wss://)", shown)
			continue
		}
		u, err := url.Parse(raw)
		if err != nil {
			bad("url", "%q: %v", shown, redact.ParseError(err, raw))
			continue
		}
		u.Scheme = strings.ToLower(u.Scheme)
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			fe := cfgcheck.Enum("url", "scheme", u.Scheme, "nats", "tls", "ws", "wss")
			fe.Msg = fmt.Sprintf("%q: %s", shown, fe.Msg)
			errs = append(errs, fe)
			continue
		}
		if u.Hostname() == "" {
			bad("url", "%q: no host", shown)
			continue
		}
		if u.User != nil {
			errs = append(errs, &bridge.FieldError{Path: "url", Msg: fmt.Sprintf("%q: holds credentials", shown),
				Hint: "put them in username and password_env, token_env or creds_file, not in the URL"})
			continue
		}
		s.servers = append(s.servers, u.String())
	}

	switch c.Layout {
	case "", LayoutSample:
		s.Layout = LayoutSample
	case LayoutBatch:
	default:
		errs = append(errs, cfgcheck.Enum("layout", "layout", c.Layout, LayoutSample, LayoutBatch))
	}
	if c.Subject == "" {
		s.Subject = DefaultSubject
		if s.Layout == LayoutBatch {
			s.Subject = DefaultBatchSubject
		}
	}
	t, err := parseTemplate(s.Subject)
	if err != nil {
		bad("subject", "%v", err)
	} else if s.Layout == LayoutBatch && t.hasPoint() {
		errs = append(errs, &bridge.FieldError{Path: "subject", Msg: fmt.Sprintf("%q holds {point}, but a batch message carries many points", s.Subject),
			Hint: "use {source} only, e.g. " + DefaultBatchSubject})
	}
	s.template = t
	if c.MetadataSubject != "" {
		mt, err := parseTemplate(c.MetadataSubject)
		switch {
		case s.Layout != LayoutBatch:
			bad("metadata_subject", "is only used with layout batch")
		case err != nil:
			bad("metadata_subject", "%v", err)
		case mt.hasPoint():
			bad("metadata_subject", "%q holds {point}: the metadata message of a source names all its points", c.MetadataSubject)
		case subjectCovers(mt.wildcard(), t.wildcard()) || subjectCovers(t.wildcard(), mt.wildcard()):
			bad("metadata_subject", "%q overlaps the subjects of the batch messages (%s): give the metadata subjects of their own", c.MetadataSubject, t.wildcard())
		}
		s.metaTemplate = mt
	}

	if c.Stream != "" {
		if !c.JetStream {
			errs = append(errs, &bridge.FieldError{Path: "stream", Msg: "needs jetstream: true", Hint: "set jetstream: true, or remove stream"})
		}
		if i := strings.IndexFunc(c.Stream, func(r rune) bool {
			return r <= ' ' || r == '.' || r == '*' || r == '>' || r == '/' || r == '\\' || r == 0x7f
		}); i >= 0 {
			bad("stream", "%q: character %q at offset %d is not allowed in a stream name", c.Stream, c.Stream[i], i)
		}
	}
	if c.CreateStream && c.Stream == "" {
		bad("create_stream", "needs a stream name (stream)")
	}
	if err := limits.Int("max_ack_pending", &s.MaxAckPending, 4096, 1, 1000000); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, limits.Durations(
		limits.AckTimeout(&s.AckTimeout),
		limits.ConnectTimeout(&s.ConnectTimeout, 5*time.Second),
		limits.Duration{Key: "reconnect_wait", P: &s.ReconnectWait, Def: time.Second, Min: 10 * time.Millisecond, Max: time.Hour},
	)...)
	if c.Name == "" {
		s.Name = "m2mbridge"
	}

	// One way to authenticate: the second and later ways given are errors.
	first := ""
	for _, a := range []struct {
		key string
		set bool
	}{{"creds_file", c.CredsFile != ""}, {"token", c.Token != ""}, {"username", c.Username != "" || c.Password != ""}} {
		switch {
		case !a.set:
		case first == "":
			first = a.key
		default:
			errs = append(errs, &bridge.FieldError{Path: a.key, Msg: "not allowed with " + first + ": give one way to authenticate"})
		}
	}
	if c.Password != "" && c.Username == "" {
		bad("password", "given without username")
	}
	if err := cfgcheck.Secret("password", "username", c.Username, c.Password); err != nil {
		errs = append(errs, err)
	}
	if err := tlsfiles.Check(nil, "", c.CAFile, c.CertFile, c.KeyFile, false); err != nil {
		errs = append(errs, err)
	}

	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// build returns c checked, with its defaults applied, its TLS files loaded
// and its creds_file found: what New needs. Its errors are field errors.
func (c Config) build() (*settings, error) {
	s, err := c.check()
	if err != nil {
		return nil, err
	}
	var errs []error
	if c.CredsFile != "" {
		if _, err := os.Stat(c.CredsFile); err != nil {
			errs = append(errs, bridge.FieldErrorf("creds_file", "%v", err))
		}
	}
	if c.CAFile != "" || c.CertFile != "" {
		tc, err := tlsfiles.Load(c.CAFile, c.CertFile, c.KeyFile, false)
		if err != nil {
			errs = append(errs, err)
		}
		s.tls = tc
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// subjects are the subject filters of the sink's messages: the template's,
// and the metadata's.
func (s *settings) subjects() []string {
	out := []string{s.template.wildcard()}
	if s.MetadataSubject != "" {
		out = append(out, s.metaTemplate.wildcard())
	}
	return out
}

// streamConfig is the stream CreateStream makes.
func (s *settings) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        s.Stream,
		Subjects:    s.subjects(),
		Description: "samples from m2mbridge",
	}
}
