package opcua

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gopcua/opcua/ua"
	"go.yaml.in/yaml/v3"
)

// Mode says how a [Source] gets values.
type Mode string

// The modes.
const (
	// Subscribe creates a subscription with one monitored item per node;
	// the server pushes changes. The default.
	Subscribe Mode = "subscribe"
	// Poll reads every node each Interval with batched Read requests.
	Poll Mode = "poll"
)

// ParseMode returns the Mode a configuration names, case-insensitively;
// "" is Subscribe.
func parseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "subscribe":
		return Subscribe, nil
	case "poll":
		return Poll, nil
	}
	return "", &suggestion{
		msg:  fmt.Sprintf("unknown mode %q: want subscribe or poll", s),
		hint: didYouMean(s, "subscribe", "poll", "subscription", "polling"),
	}
}

// UnmarshalText parses "subscribe" or "poll" (any case), so a Mode decodes
// from YAML, JSON or a flag; an unknown name is an error with a "did you
// mean" hint.
func (m *Mode) UnmarshalText(text []byte) error {
	v, err := parseMode(string(text))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// SecurityPolicy names an OPC UA security policy: None, Basic256Sha256,
// Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss, or the deprecated
// Basic128Rsa15 and Basic256; a full policy URI is accepted too.
type SecurityPolicy string

// UnmarshalText accepts the names above in any case, and a policy URI;
// an unknown name is an error with a "did you mean" hint.
func (p *SecurityPolicy) UnmarshalText(text []byte) error {
	v := SecurityPolicy(text)
	if _, err := v.uri(true); err != nil {
		return err
	}
	*p = v
	return nil
}

// uri returns the policy URI ("" is None).
func (p SecurityPolicy) uri(allowDeprecated bool) (string, error) {
	name := string(p)
	if name == "" {
		name = "None"
	}
	uri, ok := policies[strings.ToLower(name)]
	if !ok {
		for _, u := range policies {
			if u == name {
				uri, ok = u, true
			}
		}
	}
	if !ok {
		return "", &suggestion{
			msg:  fmt.Sprintf("unknown security policy %q: want None, Basic256Sha256, Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss", string(p)),
			hint: didYouMean(name, "None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss", "Basic128Rsa15", "Basic256"),
		}
	}
	if deprecatedPolicy(uri) && !allowDeprecated {
		return uri, fmt.Errorf("%s is deprecated (broken cryptography); set allow_deprecated_policies to use it", string(p))
	}
	return uri, nil
}

// SecurityMode names a message security mode: None, Sign or
// SignAndEncrypt.
type SecurityMode string

// UnmarshalText accepts None, Sign and SignAndEncrypt in any case; an
// unknown name is an error with a "did you mean" hint.
func (m *SecurityMode) UnmarshalText(text []byte) error {
	v := SecurityMode(text)
	if _, err := v.mode(); err != nil {
		return err
	}
	*m = v
	return nil
}

func (m SecurityMode) mode() (ua.MessageSecurityMode, error) {
	switch strings.ToLower(strings.NewReplacer("_", "", "-", "", " ", "").Replace(string(m))) {
	case "", "none":
		return ua.MessageSecurityModeNone, nil
	case "sign":
		return ua.MessageSecurityModeSign, nil
	case "signandencrypt":
		return ua.MessageSecurityModeSignAndEncrypt, nil
	}
	return ua.MessageSecurityModeInvalid, &suggestion{
		msg:  fmt.Sprintf("unknown security mode %q: want None, Sign or SignAndEncrypt", string(m)),
		hint: didYouMean(string(m), "None", "Sign", "SignAndEncrypt"),
	}
}

// Secret is a password. It prints, marshals and formats as "[redacted]" so
// that a Config can be logged; use string(s) to get the value.
type Secret string

const redacted = "[redacted]"

// String returns "[redacted]" (or "" when the secret is empty).
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString returns the redacted form too, for %#v.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// MarshalYAML writes the redacted form.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalText writes the redacted form (JSON and others).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Config configures one OPC UA server as a [Source]. It is plain data: it
// loads from YAML (see [ParseConfig]) and can be written as a Go literal.
// Zero fields take the defaults documented on each.
type Config struct {
	// Name is the Sample.Source of every sample ("plc1"). Required.
	Name string `yaml:"name"`
	// Endpoint is the server's URL, "opc.tcp://host:port[/path]". Required.
	// The adapter always dials this URL, whatever URLs GetEndpoints
	// announces (servers behind NAT or a proxy often announce wrong ones).
	Endpoint string `yaml:"endpoint"`
	// Mode is subscribe (default) or poll.
	Mode Mode `yaml:"mode"`
	// Interval is the poll period in poll mode and the publishing interval
	// in subscribe mode. Default 1s; 1ms to 24h.
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds each request (and the dial). Default 5s; 10ms to 5m.
	Timeout time.Duration `yaml:"timeout"`

	// SecurityPolicy is None (default), Basic256Sha256,
	// Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss; the deprecated
	// Basic128Rsa15 and Basic256 only with AllowDeprecatedPolicies. A full
	// policy URI is accepted too.
	SecurityPolicy SecurityPolicy `yaml:"security_policy"`
	// SecurityMode is None, Sign or SignAndEncrypt. Default None with
	// policy None, else SignAndEncrypt.
	SecurityMode SecurityMode `yaml:"security_mode"`
	// AllowDeprecatedPolicies permits Basic128Rsa15 and Basic256.
	AllowDeprecatedPolicies bool `yaml:"allow_deprecated_policies"`

	// Auth is anonymous, username or certificate. Default: username when
	// Username is set, else anonymous. Certificate authentication uses the
	// client certificate and key.
	Auth string `yaml:"auth"`
	// Username for user name authentication.
	Username string `yaml:"username"`
	// Password for user name authentication, for Go callers; from YAML use
	// PasswordEnv or PasswordFile. It never appears in logs or errors.
	Password Secret `yaml:"-"`
	// PasswordEnv names the environment variable holding the password.
	PasswordEnv string `yaml:"password_env"`
	// PasswordFile names a file whose content (trailing newline removed) is
	// the password.
	PasswordFile string `yaml:"password_file"`

	// PKIDir is where the client certificate (own/cert.der) and key
	// (own/private/key.pem) are kept; they are generated there on first use
	// when absent. Needed for a security policy other than None or for
	// certificate authentication, unless Certificate and PrivateKey are set.
	PKIDir string `yaml:"pki_dir"`
	// Certificate and PrivateKey are files (DER or PEM) holding the client
	// certificate and its RSA key, used instead of PKIDir's.
	Certificate string `yaml:"certificate"`
	PrivateKey  string `yaml:"private_key"`
	// ApplicationURI is the client's application URI, written into a
	// generated certificate. Default "urn:m2mbridge:opcua:client".
	ApplicationURI string `yaml:"application_uri"`

	// ServerCertificateSHA256 pins the server certificate: the hex SHA-256
	// of its DER bytes (colons allowed).
	ServerCertificateSHA256 string `yaml:"server_certificate_sha256"`
	// TrustDir holds trusted server certificates (DER or PEM files); the
	// server's certificate must be one of them.
	TrustDir string `yaml:"trust_dir"`
	// InsecureSkipVerify accepts any server certificate. With a security
	// policy other than None one of ServerCertificateSHA256, TrustDir or
	// InsecureSkipVerify is required.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`

	// KeepAliveCount is the subscription's MaxKeepAliveCount (publishing
	// intervals without data before the server sends a keep-alive). Default:
	// so that a keep-alive comes at least twice per Watchdog period; at most
	// 10000.
	KeepAliveCount uint32 `yaml:"keepalive_count"`
	// Watchdog is how long a subscription may stay silent before the
	// connection is considered dead and rebuilt. The adapter monitors the
	// server's CurrentTime (i=2258) as a heartbeat sampled at Watchdog/4,
	// so a healthy subscription is never silent that long. Default
	// max(5s, 4×Interval); 40ms to 1h, and in subscribe mode at least
	// 2×Interval.
	Watchdog time.Duration `yaml:"watchdog"`
	// ReconnectMin and ReconnectMax bound the exponential backoff (with
	// jitter) between connection attempts. Defaults 500ms and 30s; each
	// 10ms to 1h, ReconnectMax not below ReconnectMin.
	ReconnectMin time.Duration `yaml:"reconnect_min"`
	ReconnectMax time.Duration `yaml:"reconnect_max"`
	// Buffer is accepted (0 to 1000000) and ignored.
	//
	// Deprecated: the source has no queue of its own any more; the Bridge
	// owns it: give the source a bridge.SourceOptions QueueSize (in
	// samples, where Buffer counted batches of one sample per node).
	Buffer int `yaml:"buffer"`

	// Nodes are the variables to read. Required (1 to 100000), names
	// unique.
	Nodes []Node `yaml:"nodes"`
}

// Node is one variable of the server, one Sample.Point.
type Node struct {
	// Name is the Sample.Point. Required, unique within the Config.
	Name string `yaml:"name"`
	// Node is the node id: "ns=2;s=Temperature", "i=2258", "ns=1;g=<guid>",
	// "ns=1;b=<base64>", or "nsu=<namespace URI>;s=..." resolved against the
	// server's namespace array at every connect. Required.
	Node string `yaml:"node"`
	// Unit is the engineering unit; when empty it is taken from the node's
	// EngineeringUnits property (its DisplayName) if there is one.
	Unit string `yaml:"unit"`
	// SamplingInterval asks the server to sample this node at this period
	// (subscribe mode). Zero: the publishing interval; else 1ms to 24h.
	SamplingInterval time.Duration `yaml:"sampling_interval"`
	// QueueSize is the monitored item's server-side queue (subscribe mode).
	// Zero: 1; at most 10000.
	QueueSize uint32 `yaml:"queue_size"`
	// Trigger is the data change trigger: status, status_value (default)
	// or status_value_timestamp.
	Trigger string `yaml:"trigger"`
	// Deadband is none (default), absolute or percent (of the node's EURange).
	Deadband string `yaml:"deadband"`
	// DeadbandValue is the deadband's width (absolute units, or 0–100 %).
	DeadbandValue float64 `yaml:"deadband_value"`

	// Writable lets [Source.Write] (commands from the IoT side, through
	// bridge.Bridge.Write) write this node. Default false: deny by default.
	// WriteNode, the Go API, does not look at it.
	Writable bool `yaml:"writable"`
	// Min and Max bound the values Write accepts, inclusive, in the node's
	// own units (OPC UA values are not scaled). Optional; only with
	// Writable; Min not above Max.
	Min *float64 `yaml:"min"`
	Max *float64 `yaml:"max"`
	// Allowed, when not empty, is the set of values Write accepts (an
	// enumeration's values, a mode selector's positions), each within Min
	// and Max. Only with Writable.
	Allowed []float64 `yaml:"allowed"`
}

// ParseConfig decodes a YAML document into a Config, strictly: unknown keys
// and wrong types are errors naming the line. It does not validate; New does.
func ParseConfig(data []byte) (Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("opcua: config: %w", err)
	}
	return cfg, nil
}

// Defaults.
const (
	DefaultInterval     = time.Second
	DefaultTimeout      = 5 * time.Second
	DefaultReconnectMin = 500 * time.Millisecond
	DefaultReconnectMax = 30 * time.Second
	// DefaultBuffer is unused.
	//
	// Deprecated: see Config.Buffer.
	DefaultBuffer         = 256
	DefaultApplicationURI = "urn:m2mbridge:opcua:client"
	// DefaultMaxNodesPerRead is used when the server does not announce
	// its MaxNodesPerRead operation limit (or announces 0, no limit).
	DefaultMaxNodesPerRead = 1000
	// DefaultMaxMonitoredItemsPerCall is the batch size for creating
	// monitored items when the server announces no limit.
	DefaultMaxMonitoredItemsPerCall = 1000
)

var policies = map[string]string{
	"none":                  ua.SecurityPolicyURINone,
	"basic256sha256":        ua.SecurityPolicyURIBasic256Sha256,
	"aes128_sha256_rsaoaep": ua.SecurityPolicyURIAes128Sha256RsaOaep,
	"aes256_sha256_rsapss":  ua.SecurityPolicyURIAes256Sha256RsaPss,
	"basic128rsa15":         ua.SecurityPolicyURIBasic128Rsa15,
	"basic256":              ua.SecurityPolicyURIBasic256,
}

func deprecatedPolicy(uri string) bool {
	return uri == ua.SecurityPolicyURIBasic128Rsa15 || uri == ua.SecurityPolicyURIBasic256
}

// parse checks the node id's syntax (Part 6, 5.3.1.10): an optional
// "ns=<index>;" or "nsu=<URI>;", then one of i=, s=, g= or b= and a
// non-empty identifier. The upstream parser takes anything else as a string
// id ("ns=1;x=T" would be the string "x=T"), which no server has; that is
// refused here. An nsu= id is kept for resolution at connect.
func (n *nodeSpec) parse() error {
	s := strings.TrimSpace(n.Node.Node)
	if s == "" {
		return errors.New("is required")
	}
	prefix, rest := "", s
	if strings.HasPrefix(s, "nsu=") || strings.HasPrefix(s, "ns=") {
		p, r, ok := strings.Cut(s, ";")
		if !ok {
			return &suggestion{msg: fmt.Sprintf("%q: want [ns=<index>;]<i=|s=|g=|b=><identifier>", s), hint: "write for example ns=2;s=Temperature"}
		}
		prefix, rest = p+";", r
	}
	kind, id, ok := strings.Cut(rest, "=")
	switch {
	case !ok || len(kind) != 1 || !strings.Contains("isgb", kind):
		hint := ""
		if !ok {
			hint = fmt.Sprintf("did you mean %q?", prefix+"s="+rest)
		}
		return &suggestion{msg: fmt.Sprintf("%q: unknown identifier type %q: want i= (numeric), s= (string), g= (GUID) or b= (opaque)", s, kind), hint: hint}
	case id == "":
		return fmt.Errorf("%q: the identifier is empty", s)
	}
	if strings.HasPrefix(s, "nsu=") {
		uri := strings.TrimPrefix(prefix, "nsu=")
		uri = strings.TrimSuffix(uri, ";")
		if uri == "" {
			return fmt.Errorf("%q: want nsu=<namespace URI>;<i=|s=|g=|b=>...", s)
		}
		// Check the identifier part with a placeholder namespace index.
		if _, err := ua.ParseNodeID("ns=1;" + rest); err != nil {
			return fmt.Errorf("%q: %s", s, upstreamMsg(err))
		}
		n.nsu, n.rest = uri, rest
		return nil
	}
	id2, err := ua.ParseNodeID(s)
	if err != nil {
		return fmt.Errorf("%q: %s", s, upstreamMsg(err))
	}
	n.parsed = id2
	return nil
}

// resolve returns the node id for the server's namespace array.
func (n *nodeSpec) resolve(namespaces []string) (*ua.NodeID, error) {
	if n.parsed != nil {
		return n.parsed, nil
	}
	for i, uri := range namespaces {
		if uri == n.nsu {
			return ua.ParseNodeID("ns=" + strconv.Itoa(i) + ";" + n.rest)
		}
	}
	return nil, fmt.Errorf("namespace %q is not in the server's namespace array", n.nsu)
}

// upstreamMsg is an upstream error's text without its "opcua: " prefix,
// which would read as this package's.
func upstreamMsg(err error) string { return strings.TrimPrefix(err.Error(), "opcua: ") }
