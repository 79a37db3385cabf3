package mqtt

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

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
	Version int `yaml:"version"`
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

// settings is a validated Config with its defaults applied.
type settings struct {
	Config
	url      *url.URL // scheme lower-cased, port filled in
	tls      *tls.Config
	template template
}

// validate checks every setting, applies defaults and loads the TLS files.
// It returns all problems at once.
func (c Config) validate() (*settings, error) {
	s := &settings{Config: c}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	isTLS := false
	switch {
	case c.URL == "":
		bad("url: missing (e.g. tcp://127.0.0.1:1883)")
	default:
		u, err := url.Parse(c.URL)
		if err != nil {
			bad("url %q: %v", redact.URL(c.URL), strings.ReplaceAll(fmt.Sprint(errors.Unwrap(err)), c.URL, redact.URL(c.URL)))
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
			bad("url %q: no scheme (want tcp://, mqtt://, ssl://, tls://, mqtts://, ws:// or wss://)", redact.URL(c.URL))
		default:
			bad("url %q: unknown scheme %q (want tcp, mqtt, ssl, tls, mqtts, ws or wss)", redact.URL(c.URL), u.Scheme)
		}
		if port == "" {
			break
		}
		if u.Hostname() == "" {
			bad("url %q: no host", redact.URL(c.URL))
			break
		}
		if u.Port() == "" {
			u.Host = net.JoinHostPort(u.Hostname(), port)
		}
		if u.User != nil {
			bad("url %q: put credentials in username and password, not in the URL", redact.URL(c.URL))
		}
		s.url = u
	}

	switch c.Version {
	case 0:
		s.Version = 3
	case 3, 5:
	case 4:
		bad("version 4: write 3 for MQTT 3.1.1 (protocol level 4) or 5 for MQTT 5")
	default:
		bad("version %d: want 3 (MQTT 3.1.1) or 5 (MQTT 5)", c.Version)
	}

	if c.ClientID == "" {
		if c.PersistentSession {
			bad("client_id: required with persistent_session, so that the session can be resumed")
		}
		var b [6]byte
		_, _ = rand.Read(b[:])
		s.ClientID = "m2mbridge-" + hex.EncodeToString(b[:])
	} else if len(c.ClientID) > 65535 {
		bad("client_id: %d bytes, longer than MQTT allows (65535)", len(c.ClientID))
	}
	if c.Password != "" && c.Username == "" && s.Version == 3 {
		bad("password without username: MQTT 3.1.1 does not allow it (section 3.1.2.9)")
	}

	if c.Topic == "" {
		s.Topic = DefaultTopic
	}
	t, err := parseTemplate(s.Topic)
	if err != nil {
		bad("topic: %v", err)
	}
	s.template = t
	if c.StatusTopic != "" {
		st, err := parseTemplate(c.StatusTopic)
		switch {
		case err != nil:
			bad("status_topic: %v", err)
		case !st.literal():
			bad("status_topic %q: may hold no placeholder", c.StatusTopic)
		}
	}

	if c.QoS < 0 || c.QoS > 2 {
		bad("qos %d: want 0, 1 or 2", c.QoS)
	}
	if err := limits.Int("max_in_flight", &s.MaxInFlight, 1024, 1, 65535); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, limits.Durations(
		limits.Duration{Key: "ack_timeout", P: &s.AckTimeout, Def: 10 * time.Second, Min: limits.MinTimeout, Max: limits.MaxTimeout},
		limits.Duration{Key: "keep_alive", P: &s.KeepAlive, Def: 30 * time.Second, Min: time.Second, Max: 65535 * time.Second},
		limits.Duration{Key: "connect_timeout", P: &s.ConnectTimeout, Def: 10 * time.Second, Min: limits.MinTimeout, Max: limits.MaxTimeout},
		limits.Duration{Key: "max_reconnect_interval", P: &s.MaxReconnectInterval, Def: 10 * time.Second, Min: limits.MinTimeout, Max: time.Hour},
		limits.Duration{Key: "session_expiry", P: &s.SessionExpiry, Def: time.Hour, Min: time.Second, Max: 0xFFFFFFFF * time.Second},
	)...)

	certFile, keyFile := c.CertFile, c.KeyFile
	if (certFile == "") != (keyFile == "") {
		bad("cert_file and key_file: give both or neither")
		certFile, keyFile = "", "" // reported; the CA file is still checked
	}
	if !isTLS && s.url != nil && (c.CAFile != "" || c.CertFile != "" || c.ServerName != "") {
		bad("ca_file, cert_file and server_name need a TLS url (ssl://, tls://, mqtts:// or wss://), not %s://", s.url.Scheme)
	}
	if isTLS {
		tc, err := tlsfiles.Load(c.CAFile, certFile, keyFile, false)
		if err != nil {
			errs = append(errs, err)
		} else {
			tc.ServerName = c.ServerName
			if tc.ServerName == "" && s.url != nil {
				tc.ServerName = s.url.Hostname()
			}
			s.tls = tc
		}
	}

	if len(errs) > 0 {
		return nil, fmt.Errorf("mqtt: bad config: %w", errors.Join(errs...))
	}
	return s, nil
}

// redactURL returns u with its secrets hidden, for errors and logs.
func redactURL(u *url.URL) string { return redact.URL(u.String()) }
