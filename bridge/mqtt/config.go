package mqtt

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/cfgcheck"
	"github.com/m2mbridge/m2mbridge/internal/limits"
	"github.com/m2mbridge/m2mbridge/internal/redact"
	"github.com/m2mbridge/m2mbridge/internal/tlsfiles"
)

// Config holds the settings of an MQTT [Sink]. The zero value of every
// field but URL is a usable default. The yaml keys are those of the
// gateway's `mqtt:` sink block.
type Config struct {
	// URL is the broker: tcp://host:port or mqtt://host:port for plain TCP,
	// ssl://, tls:// or mqtts:// for TLS, ws:// or wss:// for MQTT over
	// WebSocket (the path is kept, e.g. ws://host:8080/mqtt). Without a port,
	// 1883 (TCP) or 8883 (TLS) is used.
	URL string `yaml:"url"`
	// Version is the protocol version: 3 for MQTT 3.1.1 (the default, also
	// when 0) or 5 for MQTT 5.
	Version Version `yaml:"version"`
	// ClientID identifies the session at the broker. When empty, a random
	// "m2mbridge-" id is made (at most 23 characters, as MQTT 3.1.1 servers
	// must accept). Required with PersistentSession.
	ClientID string `yaml:"client_id"`
	// Username, when set, is sent in CONNECT.
	Username string `yaml:"username"`
	// Password is sent in CONNECT with Username. It is never logged nor
	// printed (see [Config.String]) and is not read from YAML: the gateway
	// fills it from password_env or password_file.
	Password string `yaml:"-"`
	// CAFile is a PEM file of CA certificates that verify the broker; when
	// empty the system roots are used. Only with a TLS URL.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the PEM client certificate and its key, for
	// brokers that authenticate clients by certificate. Both or neither;
	// only with a TLS URL.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the host name the broker's certificate is
	// checked against (default: the URL's host).
	ServerName string `yaml:"server_name"`

	// Topic is the topic template; {source} and {point} are replaced by the
	// sample's Source and Point (see the package doc for how characters MQTT
	// forbids are replaced). Default [DefaultTopic].
	Topic string `yaml:"topic"`
	// QoS is the quality of service of every publish: 0 (at most once, the
	// default), 1 (at least once) or 2 (exactly once).
	QoS int `yaml:"qos"`
	// Retain sets the retain flag on every sample, so that a new subscriber
	// gets the last value of each point at once.
	Retain bool `yaml:"retain"`
	// PersistentSession asks the broker to keep the session (subscriptions
	// and unacknowledged QoS 1/2 messages) across connections: MQTT 3.1.1
	// CleanSession=0, MQTT 5 Clean Start=0 with SessionExpiry. The default
	// is a clean session, which the broker discards on disconnect.
	PersistentSession bool `yaml:"persistent_session"`
	// SessionExpiry is how long an MQTT 5 broker keeps a persistent session
	// after the connection ends (default 1h). Ignored for MQTT 3.1.1, whose
	// persistent sessions do not expire.
	SessionExpiry time.Duration `yaml:"session_expiry"`

	// StatusTopic, when set, carries the sink's connection status as a
	// retained message: "online" is published on each connect (the birth),
	// the broker publishes the last will "offline" when the connection ends
	// without a DISCONNECT, and Close publishes "offline" before it
	// disconnects. It may hold no placeholder.
	StatusTopic string `yaml:"status_topic"`

	// Layout is how samples become messages: "sample" (the default, also
	// when empty: one message per sample, bridge.AppendJSON, on Topic) or
	// "batch" (one message per source and poll cycle in bridge's batch
	// layout, bridge.AppendBatchJSON; Topic then may hold {source}, not
	// {point}, and defaults to [DefaultBatchTopic]).
	Layout string `yaml:"layout"`
	// MetadataTopic, with layout batch, is where the units of each
	// source's points go (bridge.AppendMetaJSON), retained, once per
	// connection and whenever they change; the batch messages then leave
	// units out. It must hold {source} (one retained message per source),
	// not {point}, and must not be able to name a batch message's topic
	// for any source names (see the package doc). Empty (the default):
	// every batch message carries its points' units.
	MetadataTopic string `yaml:"metadata_topic"`
	// Compression compresses each batch message: "none" (the default,
	// also when empty) or "zstd" (RFC 8878), announced by the MQTT 5
	// Content Type "application/json+zstd". Only with layout batch and
	// version 5: MQTT 3.1.1 has no property to announce it.
	Compression string `yaml:"compression"`

	// MaxInFlight bounds the QoS 1/2 publishes Write has sent and not yet
	// seen acknowledged (default 1024, at most 65535). An MQTT 5 broker's
	// Receive Maximum may lower it further.
	MaxInFlight int `yaml:"max_in_flight"`
	// AckTimeout is how long one publish may wait for its acknowledgement
	// (or, at QoS 0, to be written) before Write reports it failed (default
	// 10s).
	AckTimeout time.Duration `yaml:"ack_timeout"`
	// KeepAlive is the MQTT keep-alive interval (default 30s).
	KeepAlive time.Duration `yaml:"keep_alive"`
	// ConnectTimeout bounds one connection attempt (default 10s).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// MaxReconnectInterval caps the back-off between reconnection attempts
	// after the connection is lost (default 10s).
	MaxReconnectInterval time.Duration `yaml:"max_reconnect_interval"`
}

// String describes the configuration with the password redacted, so that a
// Config may be logged.
func (c Config) String() string {
	pw := ""
	if c.Password != "" {
		pw = "[redacted]"
	}
	return fmt.Sprintf("mqtt.Config{URL:%q Version:%d ClientID:%q Username:%q Password:%q CAFile:%q CertFile:%q KeyFile:%q Topic:%q QoS:%d Retain:%t PersistentSession:%t StatusTopic:%q MaxInFlight:%d}",
		redact.URL(c.URL), c.Version, c.ClientID, c.Username, pw, c.CAFile, c.CertFile, c.KeyFile, c.Topic, c.QoS, c.Retain, c.PersistentSession, c.StatusTopic, c.MaxInFlight)
}

// GoString is String, so that %#v does not print the password either.
func (c Config) GoString() string { return c.String() }

// Version is an MQTT protocol version: [V311] or [V5]. The zero value is
// the default, MQTT 3.1.1.
type Version int

// The protocol versions.
const (
	V311 Version = 3 // MQTT 3.1.1 (protocol level 4)
	V5   Version = 5 // MQTT 5
)

// String returns "3" or "5", as written in the configuration.
func (v Version) String() string { return strconv.Itoa(int(v)) }

// MarshalText returns the version as written in the configuration.
func (v Version) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText accepts 3 (or 3.1.1) for MQTT 3.1.1 and 5 (or 5.0) for
// MQTT 5. Other values are a *bridge.FieldError with the value to write:
// 4, the protocol level of 3.1.1, and 3.1, which this sink does not speak,
// are answered with "write 3".
func (v *Version) UnmarshalText(b []byte) error {
	p, err := parseVersion(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}

func parseVersion(s string) (Version, error) {
	switch t := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(s), "v")); t {
	case "3", "3.1.1", "311":
		return V311, nil
	case "5", "5.0":
		return V5, nil
	}
	return 0, versionError("", s)
}

// versionError is the error for a version v that is not 3 or 5.
func versionError(path, v string) *bridge.FieldError {
	fe := &bridge.FieldError{Path: path, Msg: fmt.Sprintf("unknown version %q: want 3 (MQTT 3.1.1) or 5 (MQTT 5)", v)}
	switch strings.TrimSpace(v) {
	case "4":
		fe.Hint = "write 3: MQTT 3.1.1 is protocol level 4"
	case "3.1", "3.1.0":
		fe.Hint = "write 3: MQTT 3.1 is not supported, 3.1.1 is"
	case "5.1", "6":
		fe.Hint = "did you mean 5?"
	}
	return fe
}

// settings is a validated Config with its defaults applied.
type settings struct {
	Config
	url      *url.URL // scheme lower-cased, port filled in
	tls      *tls.Config
	tlsOn    bool // the URL asks for TLS
	template template
	// metaTemplate is MetadataTopic parsed, when set.
	metaTemplate template
}

// Validate checks every setting without I/O and returns every problem at
// once, each a *bridge.FieldError whose Path is the setting's YAML key
// ("url", "qos", "cert_file"); unknown version values carry a hint. [New]
// applies the same rules and also reads the TLS files, reporting what is
// wrong with them at ca_file or cert_file.
//
// A password is required with a username only by brokers, not by MQTT, so
// a username without a password is valid (brokers such as ThingsBoard take
// an access token as the username). A password without a username is an
// error for MQTT 3.1.1 (section 3.1.2.9), not for MQTT 5.
func (c Config) Validate() error {
	_, err := c.check()
	return err
}

// check validates c and returns it with its defaults applied, without I/O:
// the TLS configuration is left to New.
func (c Config) check() (*settings, error) {
	s := &settings{Config: c}
	var errs []error
	bad := func(path, format string, args ...any) { errs = append(errs, bridge.FieldErrorf(path, format, args...)) }

	isTLS := false
	switch {
	case c.URL == "":
		bad("url", "missing (e.g. tcp://127.0.0.1:1883)")
	default:
		shown := redact.URL(c.URL)
		u, err := url.Parse(c.URL)
		if !strings.Contains(c.URL, "://") {
			u, err = &url.URL{}, nil // "host:port": say what is missing
		}
		if err != nil {
			bad("url", "%q: %v", shown, redact.ParseError(err, c.URL))
			break
		}
		u.Scheme = strings.ToLower(u.Scheme)
		port := ""
		switch u.Scheme {
		case "tcp", "mqtt":
			port = "1883"
		case "ssl", "tls", "mqtts":
			port, isTLS = "8883", true
		case "ws":
			port = "80"
		case "wss":
			port, isTLS = "443", true
		case "":
			bad("url", "%q: no scheme (want tcp://, mqtt://, ssl://, tls://, mqtts://, ws:// or wss://)", shown)
		default:
			fe := cfgcheck.Enum("url", "scheme", u.Scheme, schemes...)
			fe.Msg = fmt.Sprintf("%q: %s", shown, fe.Msg)
			errs = append(errs, fe)
		}
		if port == "" {
			break
		}
		if u.Hostname() == "" {
			bad("url", "%q: no host", shown)
			break
		}
		if u.Port() == "" {
			u.Host = net.JoinHostPort(u.Hostname(), port)
		}
		if u.User != nil {
			errs = append(errs, &bridge.FieldError{Path: "url", Msg: fmt.Sprintf("%q: holds credentials", shown),
				Hint: "put them in username and password_env (or password_file), not in the URL"})
		}
		s.url = u
	}

	switch c.Version {
	case 0:
		s.Version = V311
	case V311, V5:
	default:
		errs = append(errs, versionError("version", c.Version.String()))
	}

	if c.ClientID == "" {
		if c.PersistentSession {
			bad("client_id", "required with persistent_session, so that the session can be resumed")
		}
	} else if len(c.ClientID) > 65535 {
		bad("client_id", "%d bytes, longer than MQTT allows (65535)", len(c.ClientID))
	}
	if c.Password != "" && c.Username == "" && s.Version == V311 {
		bad("password", "given without username: MQTT 3.1.1 does not allow it (section 3.1.2.9)")
	}

	switch c.Layout {
	case "", LayoutSample:
		s.Layout = LayoutSample
	case LayoutBatch:
	default:
		errs = append(errs, cfgcheck.Enum("layout", "layout", c.Layout, LayoutSample, LayoutBatch))
	}
	if c.Topic == "" {
		s.Topic = DefaultTopic
		if s.Layout == LayoutBatch {
			s.Topic = DefaultBatchTopic
		}
	}
	t, err := parseTemplate(s.Topic)
	if err != nil {
		bad("topic", "%v", err)
	} else if s.Layout == LayoutBatch && t.hasPoint() {
		errs = append(errs, &bridge.FieldError{Path: "topic", Msg: fmt.Sprintf("%q holds {point}, but a batch message carries many points", s.Topic),
			Hint: "use {source} only, e.g. " + DefaultBatchTopic})
	}
	s.template = t
	if c.MetadataTopic != "" {
		mt, err := parseTemplate(c.MetadataTopic)
		switch {
		case s.Layout != LayoutBatch:
			bad("metadata_topic", "is only used with layout batch")
		case err != nil:
			bad("metadata_topic", "%v", err)
		case mt.hasPoint():
			bad("metadata_topic", "%q holds {point}: the metadata message of a source names all its points", c.MetadataTopic)
		case !mt.hasSource():
			errs = append(errs, &bridge.FieldError{Path: "metadata_topic", Msg: fmt.Sprintf("%q does not hold {source}: every source's retained metadata would replace the others'", c.MetadataTopic),
				Hint: "e.g. m2m/{source}/meta"})
		case c.MetadataTopic == s.Topic:
			bad("metadata_topic", "%q is the topic of the batch messages: give the metadata a topic of its own", c.MetadataTopic)
		case len(t.Parts()) > 0 && mayCollide(mt, t):
			// A source's batch message would overwrite another's metadata
			// (topic m2m/{source}/x, metadata m2m/meta/{source}: the
			// source "meta" and the source "x" share m2m/meta/x).
			errs = append(errs, &bridge.FieldError{Path: "metadata_topic", Msg: fmt.Sprintf("%q can give the same topic as topic %q for some source names, so a batch message could overwrite a source's metadata", c.MetadataTopic, s.Topic),
				Hint: "give it a number of levels the topic does not have, or a literal level where the topic has a different one, e.g. m2m/{source}/meta with m2m/{source}"})
		}
		s.metaTemplate = mt
	}
	switch c.Compression {
	case "", CompressionNone:
		s.Compression = CompressionNone
	case CompressionZstd:
		if s.Layout != LayoutBatch {
			bad("compression", "zstd is only for layout batch: a message per sample is too small to gain from it")
		} else if s.Version == V311 {
			errs = append(errs, &bridge.FieldError{Path: "compression", Msg: "zstd needs MQTT 5: its content type rides in an MQTT 5 property, which MQTT 3.1.1 does not have",
				Hint: "set version: 5"})
		}
	default:
		errs = append(errs, cfgcheck.Enum("compression", "compression", c.Compression, CompressionNone, CompressionZstd))
	}
	if c.StatusTopic != "" {
		st, err := parseTemplate(c.StatusTopic)
		switch {
		case err != nil:
			bad("status_topic", "%v", err)
		case !st.literal():
			bad("status_topic", "%q: may hold no placeholder", c.StatusTopic)
		}
	}

	if c.QoS < 0 || c.QoS > 2 {
		bad("qos", "%d is not 0, 1 or 2", c.QoS)
	}
	if err := limits.Int("max_in_flight", &s.MaxInFlight, 1024, 1, 65535); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, limits.Durations(
		limits.AckTimeout(&s.AckTimeout),
		limits.Duration{Key: "keep_alive", P: &s.KeepAlive, Def: 30 * time.Second, Min: time.Second, Max: 65535 * time.Second},
		limits.ConnectTimeout(&s.ConnectTimeout, 10*time.Second),
		limits.Duration{Key: "max_reconnect_interval", P: &s.MaxReconnectInterval, Def: 10 * time.Second, Min: limits.MinTimeout, Max: time.Hour},
		limits.Duration{Key: "session_expiry", P: &s.SessionExpiry, Def: time.Hour, Min: time.Second, Max: 0xFFFFFFFF * time.Second},
	)...)

	if err := tlsfiles.Check(nil, "", c.CAFile, c.CertFile, c.KeyFile, false); err != nil {
		errs = append(errs, err)
	}
	if !isTLS && s.url != nil {
		for _, k := range []struct{ key, v string }{{"ca_file", c.CAFile}, {"cert_file", c.CertFile}, {"key_file", c.KeyFile}, {"server_name", c.ServerName}} {
			if k.v != "" {
				errs = append(errs, &bridge.FieldError{Path: k.key, Msg: "needs a TLS url, not " + s.url.Scheme + "://",
					Hint: "use ssl://, tls://, mqtts:// or wss://, or remove " + k.key})
			}
		}
	}
	s.tlsOn = isTLS

	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// schemes are the URL schemes the sink dials.
var schemes = []string{"tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"}

// build returns c checked, with its defaults applied, a client id made up
// when it has none, and its TLS files loaded: what New needs. Its errors
// are field errors.
func (c Config) build() (*settings, error) {
	s, err := c.check()
	if err != nil {
		return nil, err
	}
	if s.ClientID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		s.ClientID = "m2mbridge-" + hex.EncodeToString(b[:])
	}
	if s.tlsOn {
		tc, err := tlsfiles.Load(c.CAFile, c.CertFile, c.KeyFile, false)
		if err != nil {
			return nil, err
		}
		tc.ServerName = c.ServerName
		if tc.ServerName == "" {
			tc.ServerName = s.url.Hostname()
		}
		s.tls = tc
	}
	return s, nil
}

// redactURL returns u with its secrets hidden, for errors and logs.
func redactURL(u *url.URL) string { return redact.URL(u.String()) }
