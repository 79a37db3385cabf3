package kafka

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/cfgcheck"
	"github.com/m2mbridge/m2mbridge/internal/limits"
	"github.com/m2mbridge/m2mbridge/internal/redact"
	tmpl "github.com/m2mbridge/m2mbridge/internal/template"
	"github.com/m2mbridge/m2mbridge/internal/tlsfiles"
)

// Config holds the settings of a [Sink]. It loads from YAML with the keys
// shown in the field tags; [New] checks it. The password is given as a
// value: the gateway resolves password_env/password_file into it.
type Config struct {
	// Brokers are the seed brokers, host:port ("127.0.0.1:9092").
	// Required.
	Brokers []string `yaml:"brokers"`
	// Topic is the topic template: {source} and {point} are replaced by
	// the sample's source and point, with every character Kafka does not
	// allow in a topic name (anything but a-z A-Z 0-9 . _ -) replaced by
	// '_'. Default "m2m": one topic, the record key keeping each point in
	// order.
	Topic string `yaml:"topic"`
	// ClientID is the Kafka client id; default "m2mbridge".
	ClientID string `yaml:"client_id"`
	// Compression is none, gzip, snappy (the default), lz4 or zstd.
	Compression Compression `yaml:"compression"`
	// MaxBufferedRecords bounds the records produced but not yet
	// acknowledged; a Write waits for room. Default 10,000.
	MaxBufferedRecords int `yaml:"max_buffered_records"`
	// MaxMessageBytes is the largest record (key, value and overhead) and
	// record batch the sink produces: a sample whose record is larger is
	// rejected ([bridge.Permanent], kerr.MessageTooLarge). Set it to the
	// broker's message.max.bytes or the topic's max.message.bytes when they
	// are lower. Default 1,000,000, from 1,024 to 104,857,600.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// DeliveryTimeout bounds how long a record may wait to be
	// acknowledged, retries included, before it fails; default 30s.
	DeliveryTimeout time.Duration `yaml:"delivery_timeout"`
	// AutoCreateTopics asks the brokers to create missing topics (the
	// broker must allow it: auto.create.topics.enable).
	AutoCreateTopics bool `yaml:"auto_create_topics"`

	// SASLMechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty for no
	// SASL. Username and Password are its credentials.
	SASLMechanism SASLMechanism `yaml:"sasl_mechanism"`
	Username      string        `yaml:"username"`
	Password      string        `yaml:"password"`

	// TLS turns on TLS to the brokers. CAFile is a PEM file of the
	// authorities to trust (empty: the system's); CertFile and KeyFile a
	// PEM client certificate and key; InsecureSkipVerify turns off
	// verification of the brokers' certificates (tests only). Setting
	// any of them turns TLS on.
	TLS                bool   `yaml:"tls"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	// TLSConfig, when set, is used instead of the TLS files (Go users
	// only); it turns TLS on.
	TLSConfig *tls.Config `yaml:"-"`
}

// Compression is the codec of produced record batches: none, gzip,
// snappy, lz4 or zstd. Empty is the default, snappy.
type Compression string

// The compression codecs.
const (
	CompressionNone   Compression = "none"
	CompressionGzip   Compression = "gzip"
	CompressionSnappy Compression = "snappy"
	CompressionLz4    Compression = "lz4"
	CompressionZstd   Compression = "zstd"
)

var compressions = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// UnmarshalText accepts a codec name in any case. Another value is a
// *bridge.FieldError naming the codecs, with "did you mean" when one is
// close.
func (c *Compression) UnmarshalText(b []byte) error {
	v, err := Compression(b).parse("")
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// parse returns c lower-cased, or an error at path.
func (c Compression) parse(path string) (Compression, error) {
	v := Compression(strings.ToLower(strings.TrimSpace(string(c))))
	if v == "" || slices.Contains(compressions, string(v)) {
		return v, nil
	}
	return "", cfgcheck.Enum(path, "compression", string(c), compressions...)
}

// SASLMechanism is a SASL mechanism: PLAIN, SCRAM-SHA-256 or
// SCRAM-SHA-512. Empty means no SASL.
type SASLMechanism string

// The SASL mechanisms.
const (
	SASLPlain       SASLMechanism = "PLAIN"
	SASLScramSHA256 SASLMechanism = "SCRAM-SHA-256"
	SASLScramSHA512 SASLMechanism = "SCRAM-SHA-512"
)

var mechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

// UnmarshalText accepts a mechanism name in any case. Another value is a
// *bridge.FieldError naming the mechanisms, with "did you mean" when one
// is close ("SCRAM-SHA256").
func (m *SASLMechanism) UnmarshalText(b []byte) error {
	v, err := SASLMechanism(b).parse("")
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// parse returns m upper-cased, or an error at path.
func (m SASLMechanism) parse(path string) (SASLMechanism, error) {
	v := SASLMechanism(strings.ToUpper(strings.TrimSpace(string(m))))
	if v == "" || slices.Contains(mechanisms, string(v)) {
		return v, nil
	}
	return "", cfgcheck.Enum(path, "SASL mechanism", string(m), mechanisms...)
}

// settings is a checked Config with its defaults filled in.
type settings struct {
	Config
	topic template
	tls   *tls.Config
}

// Validate checks every setting without I/O and returns every problem at
// once, each a *bridge.FieldError whose Path is the setting's YAML key
// ("brokers[1]", "topic", "compression", "password"); a misspelt
// compression or sasl_mechanism has a "did you mean" Hint. [New] applies
// the same rules and also reads the TLS files, reporting their problems at
// ca_file or cert_file.
//
// SASL needs both credentials: with sasl_mechanism set, an empty username
// or password (what a password_env naming a variable that is set but empty
// gives) is an error. Without sasl_mechanism, no username or password may
// be given, and the sink connects without authentication.
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

	if len(c.Brokers) == 0 {
		bad("brokers", "at least one host:port is required")
	}
	for i, b := range c.Brokers {
		path := fmt.Sprintf("brokers[%d]", i)
		shown := redact.URL(b)
		if strings.Contains(b, "@") {
			errs = append(errs, &bridge.FieldError{Path: path, Msg: fmt.Sprintf("%q: holds credentials", shown),
				Hint: "put them in username and password_env (with sasl_mechanism), not in the address"})
			continue
		}
		host, port, err := net.SplitHostPort(b)
		if err != nil {
			bad(path, "%q: %v", shown, strings.ReplaceAll(err.Error(), b, shown))
			continue
		}
		if host == "" {
			bad(path, "%q: no host", shown)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			bad(path, "%q: port %q is not a number from 1 to 65535", shown, port)
		}
	}
	if s.Topic == "" {
		s.Topic = "m2m"
	}
	t, err := parseTemplate(s.Topic)
	if err != nil {
		errs = append(errs, err)
	}
	s.topic = t
	if s.ClientID == "" {
		s.ClientID = "m2mbridge"
	}
	if v, err := c.Compression.parse("compression"); err != nil {
		errs = append(errs, err)
	} else if s.Compression = v; v == "" {
		s.Compression = CompressionSnappy
	}
	if err := limits.Int("max_buffered_records", &s.MaxBufferedRecords, 10000, 1, 10000000); err != nil {
		errs = append(errs, err)
	}
	if err := limits.Int("max_message_bytes", &s.MaxMessageBytes, 1000000, 1024, 100<<20); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, limits.Durations(
		limits.Duration{Key: "delivery_timeout", P: &s.DeliveryTimeout, Def: 30 * time.Second, Min: time.Second, Max: time.Hour},
	)...)
	mech, err := c.SASLMechanism.parse("sasl_mechanism")
	switch {
	case err != nil:
		errs = append(errs, err)
	case mech == "":
		for _, k := range []struct{ key, v string }{{"username", c.Username}, {"password", c.Password}} {
			if k.v != "" {
				errs = append(errs, &bridge.FieldError{Path: k.key, Msg: "needs sasl_mechanism",
					Hint: "set sasl_mechanism to PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, or remove " + k.key})
			}
		}
	default:
		s.SASLMechanism = mech
		if c.Username == "" {
			bad("username", "required with sasl_mechanism %s", mech)
		}
		if err := cfgcheck.Secret("password", "sasl_mechanism", string(mech), c.Password); err != nil {
			errs = append(errs, err)
		}
	}
	if err := tlsfiles.Check(c.TLSConfig, "TLSConfig", c.CAFile, c.CertFile, c.KeyFile, c.InsecureSkipVerify); err != nil {
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
	if c.TLS || c.TLSConfig != nil || c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.InsecureSkipVerify {
		tc, err := tlsfiles.LoadOrClone(c.TLSConfig, "TLSConfig", c.CAFile, c.CertFile, c.KeyFile, c.InsecureSkipVerify)
		if err != nil {
			return nil, err
		}
		s.tls = tc
	}
	return s, nil
}

// template is a parsed topic template: literal text and placeholders.
type template struct {
	parts []part
	fixed string // the topic when there is no placeholder
}

type part struct {
	lit string
	ph  byte // 0 literal, 's' source, 'p' point
}

// maxTopic is the longest topic name Kafka accepts.
const maxTopic = 249

// parseTemplate parses a topic template. Its errors are field errors at
// "topic".
func parseTemplate(s string) (template, error) {
	var t template
	if len(s) > tmpl.MaxLen {
		return t, bridge.FieldErrorf("topic", "%d bytes, longer than %d", len(s), tmpl.MaxLen)
	}
	var errs []error
	rest := s
	for rest != "" {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			t.parts = append(t.parts, part{lit: rest})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, part{lit: rest[:i]})
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			errs = append(errs, bridge.FieldErrorf("topic", "%q: unclosed {", s))
			break
		}
		switch name := rest[i+1 : i+j]; name {
		case "source":
			t.parts = append(t.parts, part{ph: 's'})
		case "point":
			t.parts = append(t.parts, part{ph: 'p'})
		default:
			errs = append(errs, bridge.FieldErrorf("topic", "%q: unknown placeholder {%s} (want {source} or {point})", s, name))
		}
		rest = rest[i+j+1:]
	}
	for _, p := range t.parts {
		if p.ph != 0 {
			continue
		}
		for k := 0; k < len(p.lit); k++ {
			if !legal(p.lit[k]) {
				errs = append(errs, bridge.FieldErrorf("topic", "%q: %q is not allowed in a topic name (only a-z A-Z 0-9 . _ -)", s, p.lit[k]))
				break
			}
		}
	}
	if len(t.parts) == 1 && t.parts[0].ph == 0 {
		t.fixed = t.parts[0].lit
		if t.fixed == "." || t.fixed == ".." {
			errs = append(errs, bridge.FieldErrorf("topic", "%q is not a valid topic name", s))
		}
		if len(t.fixed) > maxTopic {
			errs = append(errs, bridge.FieldErrorf("topic", "%q is longer than %d characters", s, maxTopic))
		}
	}
	return t, errors.Join(errs...)
}

// legal reports whether c may appear in a Kafka topic name.
func legal(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// appendTopic appends the topic of a sample to dst.
func (t *template) appendTopic(dst []byte, source, point string) []byte {
	for _, p := range t.parts {
		switch p.ph {
		case 0:
			dst = append(dst, p.lit...)
		case 's':
			dst = appendSanitized(dst, source)
		case 'p':
			dst = appendSanitized(dst, point)
		}
	}
	return dst
}

// appendSanitized appends s with every byte Kafka does not allow in a topic
// replaced by '_' (a multi-byte UTF-8 character becomes one '_' per byte).
func appendSanitized(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !legal(c) {
			c = '_'
		}
		dst = append(dst, c)
	}
	return dst
}

// Topic returns the topic a sample of source and point goes to under the
// template tmpl, as a [Sink] with Topic tmpl would choose it, or an error for
// a template [New] would refuse. The topic may still be invalid (empty, "."
// or longer than 249 characters), which Write reports for the sample.
func Topic(tmpl, source, point string) (string, error) {
	t, err := parseTemplate(tmpl)
	if err != nil {
		return "", cfgcheck.Wrap("kafka", err)
	}
	return string(t.appendTopic(nil, source, point)), nil
}
