package opcua

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gopcua/opcua/ua"
	"gopkg.in/yaml.v3"
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
	// in subscribe mode. Default 1s.
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds each request (and the dial). Default 5s.
	Timeout time.Duration `yaml:"timeout"`

	// SecurityPolicy is None (default), Basic256Sha256,
	// Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss; the deprecated
	// Basic128Rsa15 and Basic256 only with AllowDeprecatedPolicies. A full
	// policy URI is accepted too.
	SecurityPolicy string `yaml:"security_policy"`
	// SecurityMode is None, Sign or SignAndEncrypt. Default None with
	// policy None, else SignAndEncrypt.
	SecurityMode string `yaml:"security_mode"`
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
	// so that a keep-alive comes at least twice per Watchdog period.
	KeepAliveCount uint32 `yaml:"keepalive_count"`
	// Watchdog is how long a subscription may stay silent before the
	// connection is considered dead and rebuilt. The adapter monitors the
	// server's CurrentTime (i=2258) as a heartbeat sampled at Watchdog/4,
	// so a healthy subscription is never silent that long. Default
	// max(5s, 4×Interval).
	Watchdog time.Duration `yaml:"watchdog"`
	// ReconnectMin and ReconnectMax bound the exponential backoff (with
	// jitter) between connection attempts. Defaults 500ms and 30s.
	ReconnectMin time.Duration `yaml:"reconnect_min"`
	ReconnectMax time.Duration `yaml:"reconnect_max"`
	// Buffer is how many batches of samples may wait for the Emitter
	// before the oldest are dropped (counted in Stats.Dropped). Default 256.
	Buffer int `yaml:"buffer"`

	// Nodes are the variables to read. Required, names unique.
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
	// (subscribe mode). Zero: the publishing interval.
	SamplingInterval time.Duration `yaml:"sampling_interval"`
	// QueueSize is the monitored item's server-side queue (subscribe mode).
	// Zero: 1.
	QueueSize uint32 `yaml:"queue_size"`
	// Trigger is the data change trigger: status, status_value (default)
	// or status_value_timestamp.
	Trigger string `yaml:"trigger"`
	// Deadband is none (default), absolute or percent (of the node's EURange).
	Deadband string `yaml:"deadband"`
	// DeadbandValue is the deadband's width (absolute units, or 0–100 %).
	DeadbandValue float64 `yaml:"deadband_value"`
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
	DefaultInterval       = time.Second
	DefaultTimeout        = 5 * time.Second
	DefaultReconnectMin   = 500 * time.Millisecond
	DefaultReconnectMax   = 30 * time.Second
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

// settings is a validated Config with defaults applied and strings parsed.
type settings struct {
	Config
	policyURI string
	mode      ua.MessageSecurityMode
	auth      ua.UserTokenType
	password  string
	pin       []byte
	nodes     []nodeSpec
}

type nodeSpec struct {
	Node
	parsed   *ua.NodeID // nil when the id uses nsu= (resolved at connect)
	nsu      string     // namespace URI of an nsu= id
	rest     string     // the id after "nsu=...;"
	trigger  ua.DataChangeTrigger
	deadband ua.DeadbandType
}

func (c Config) validate() (*settings, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	st := &settings{Config: c}
	if c.Name == "" {
		bad("name is required")
	}
	switch {
	case c.Endpoint == "":
		bad("endpoint is required")
	case !strings.HasPrefix(c.Endpoint, "opc.tcp://") || len(c.Endpoint) == len("opc.tcp://"):
		bad("endpoint %q: want opc.tcp://host:port", c.Endpoint)
	}
	switch c.Mode {
	case "":
		st.Mode = Subscribe
	case Subscribe, Poll:
	default:
		bad("mode %q: want subscribe or poll", c.Mode)
	}
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"interval", &st.Interval, DefaultInterval},
		{"timeout", &st.Timeout, DefaultTimeout},
		{"reconnect_min", &st.ReconnectMin, DefaultReconnectMin},
		{"reconnect_max", &st.ReconnectMax, DefaultReconnectMax},
		{"watchdog", &st.Watchdog, 0},
	}
	for _, d := range durations {
		switch {
		case *d.v < 0:
			bad("%s %s is negative", d.name, *d.v)
		case *d.v == 0:
			*d.v = d.def
		}
	}
	if st.Interval > 0 && st.Interval < time.Millisecond {
		bad("interval %s: at least 1ms", st.Interval)
	}
	if st.ReconnectMax < st.ReconnectMin {
		bad("reconnect_max %s is below reconnect_min %s", st.ReconnectMax, st.ReconnectMin)
	}
	if st.Watchdog == 0 {
		st.Watchdog = max(5*time.Second, 4*st.Interval)
	}
	if st.Watchdog < 4*time.Millisecond {
		bad("watchdog %s: at least 4ms", st.Watchdog)
	}
	if st.KeepAliveCount == 0 && st.Interval > 0 {
		st.KeepAliveCount = uint32(max(1, int64(st.Watchdog/2/st.Interval)))
	}
	switch {
	case c.Buffer < 0:
		bad("buffer %d is negative", c.Buffer)
	case c.Buffer == 0:
		st.Buffer = DefaultBuffer
	}
	if st.ApplicationURI == "" {
		st.ApplicationURI = DefaultApplicationURI
	}

	// Security.
	pol := c.SecurityPolicy
	if pol == "" {
		pol = "None"
	}
	if uri, ok := policies[strings.ToLower(pol)]; ok {
		st.policyURI = uri
	} else {
		for _, uri := range policies {
			if uri == pol {
				st.policyURI = uri
			}
		}
		if st.policyURI == "" {
			bad("security_policy %q: want None, Basic256Sha256, Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss", c.SecurityPolicy)
		}
	}
	if deprecatedPolicy(st.policyURI) && !c.AllowDeprecatedPolicies {
		bad("security_policy %q is deprecated (broken cryptography); set allow_deprecated_policies to use it", c.SecurityPolicy)
	}
	secure := st.policyURI != "" && st.policyURI != ua.SecurityPolicyURINone
	switch strings.ToLower(c.SecurityMode) {
	case "":
		st.mode = ua.MessageSecurityModeNone
		if secure {
			st.mode = ua.MessageSecurityModeSignAndEncrypt
		}
	case "none":
		st.mode = ua.MessageSecurityModeNone
	case "sign":
		st.mode = ua.MessageSecurityModeSign
	case "signandencrypt":
		st.mode = ua.MessageSecurityModeSignAndEncrypt
	default:
		bad("security_mode %q: want None, Sign or SignAndEncrypt", c.SecurityMode)
	}
	if st.policyURI != "" {
		if secure && st.mode == ua.MessageSecurityModeNone && c.SecurityMode != "" {
			bad("security_mode None does not go with security_policy %s", pol)
		}
		if !secure && st.mode != ua.MessageSecurityModeNone {
			bad("security_mode %s needs a security_policy other than None", c.SecurityMode)
		}
	}
	if c.ServerCertificateSHA256 != "" {
		h := strings.ReplaceAll(strings.ToLower(c.ServerCertificateSHA256), ":", "")
		pin, err := hex.DecodeString(h)
		if err != nil || len(pin) != 32 {
			bad("server_certificate_sha256: want 64 hex digits (SHA-256 of the DER certificate)")
		}
		st.pin = pin
	}
	if secure && c.ServerCertificateSHA256 == "" && c.TrustDir == "" && !c.InsecureSkipVerify {
		bad("security_policy %s: set server_certificate_sha256 or trust_dir to verify the server (or insecure_skip_verify)", pol)
	}

	// Authentication.
	switch strings.ToLower(c.Auth) {
	case "":
		st.auth = ua.UserTokenTypeAnonymous
		if c.Username != "" {
			st.auth = ua.UserTokenTypeUserName
		}
	case "anonymous":
		st.auth = ua.UserTokenTypeAnonymous
	case "username":
		st.auth = ua.UserTokenTypeUserName
	case "certificate":
		st.auth = ua.UserTokenTypeCertificate
	default:
		bad("auth %q: want anonymous, username or certificate", c.Auth)
	}
	if st.auth == ua.UserTokenTypeUserName {
		if c.Username == "" {
			bad("auth username: username is required")
		}
		n := 0
		if c.Password != "" {
			n++
			st.password = string(c.Password)
		}
		if c.PasswordEnv != "" {
			n++
			v, ok := os.LookupEnv(c.PasswordEnv)
			if !ok {
				bad("password_env: environment variable %s is not set", c.PasswordEnv)
			}
			st.password = v
		}
		if c.PasswordFile != "" {
			n++
			b, err := os.ReadFile(c.PasswordFile)
			if err != nil {
				// The error names the file, never its content.
				bad("password_file: %w", err)
			}
			st.password = strings.TrimRight(string(b), "\r\n")
		}
		if n > 1 {
			bad("username %q: give one of password, password_env and password_file", c.Username)
		}
	} else if c.Username != "" || c.Password != "" || c.PasswordEnv != "" || c.PasswordFile != "" {
		bad("username/password given but auth is %s", c.Auth)
	}
	needCert := secure || st.auth == ua.UserTokenTypeCertificate
	if (c.Certificate == "") != (c.PrivateKey == "") {
		bad("certificate and private_key go together")
	}
	if needCert && c.Certificate == "" && c.PKIDir == "" {
		bad("a client certificate is needed (security policy %s, auth %s): set pki_dir, or certificate and private_key", pol, authName(st.auth))
	}

	// Nodes.
	if len(c.Nodes) == 0 {
		bad("nodes: at least one node is required")
	}
	seen := make(map[string]int, len(c.Nodes))
	st.nodes = make([]nodeSpec, len(c.Nodes))
	for i, n := range c.Nodes {
		where := fmt.Sprintf("nodes[%d]", i)
		if n.Name != "" {
			where += " (" + n.Name + ")"
		}
		ns := nodeSpec{Node: n}
		if n.Name == "" {
			bad("%s: name is required", where)
		} else if j, dup := seen[n.Name]; dup {
			bad("%s: name %q already used by nodes[%d]", where, n.Name, j)
		} else {
			seen[n.Name] = i
		}
		if err := ns.parse(); err != nil {
			bad("%s: node: %w", where, err)
		}
		if n.SamplingInterval < 0 {
			bad("%s: sampling_interval %s is negative", where, n.SamplingInterval)
		}
		switch strings.ToLower(n.Trigger) {
		case "", "status_value":
			ns.trigger = ua.DataChangeTriggerStatusValue
		case "status":
			ns.trigger = ua.DataChangeTriggerStatus
		case "status_value_timestamp":
			ns.trigger = ua.DataChangeTriggerStatusValueTimestamp
		default:
			bad("%s: trigger %q: want status, status_value or status_value_timestamp", where, n.Trigger)
		}
		switch strings.ToLower(n.Deadband) {
		case "", "none":
			ns.deadband = ua.DeadbandTypeNone
			if n.DeadbandValue != 0 {
				bad("%s: deadband_value %g without deadband absolute or percent", where, n.DeadbandValue)
			}
		case "absolute":
			ns.deadband = ua.DeadbandTypeAbsolute
		case "percent":
			ns.deadband = ua.DeadbandTypePercent
			if n.DeadbandValue > 100 {
				bad("%s: deadband_value %g: a percentage is 0–100", where, n.DeadbandValue)
			}
		default:
			bad("%s: deadband %q: want none, absolute or percent", where, n.Deadband)
		}
		if n.DeadbandValue < 0 || math.IsNaN(n.DeadbandValue) || math.IsInf(n.DeadbandValue, 0) {
			bad("%s: deadband_value %g: want a finite number ≥ 0", where, n.DeadbandValue)
		}
		if ns.deadband != ua.DeadbandTypeNone && ns.trigger == ua.DataChangeTriggerStatus {
			bad("%s: a deadband needs trigger status_value or status_value_timestamp", where)
		}
		if st.Mode == Poll && (n.SamplingInterval != 0 || n.QueueSize != 0 || ns.deadband != ua.DeadbandTypeNone || n.Trigger != "") {
			bad("%s: sampling_interval, queue_size, trigger and deadband apply to mode subscribe only", where)
		}
		st.nodes[i] = ns
	}
	if err := errors.Join(errs...); err != nil {
		name := c.Name
		if name == "" {
			name = "(unnamed)"
		}
		return nil, fmt.Errorf("opcua: source %s: invalid config: %w", name, err)
	}
	return st, nil
}

// parse checks the node id's syntax; an nsu= id is kept for resolution at
// connect.
func (n *nodeSpec) parse() error {
	s := strings.TrimSpace(n.Node.Node)
	if s == "" {
		return errors.New("node id is required")
	}
	if strings.HasPrefix(s, "nsu=") {
		uri, rest, ok := strings.Cut(s[len("nsu="):], ";")
		if !ok || uri == "" || rest == "" {
			return fmt.Errorf("%q: want nsu=<namespace URI>;<i=|s=|g=|b=>...", s)
		}
		// Check the identifier part with a placeholder namespace index.
		if _, err := ua.ParseNodeID("ns=1;" + rest); err != nil {
			return fmt.Errorf("%q: %s", s, upstreamMsg(err))
		}
		n.nsu, n.rest = uri, rest
		return nil
	}
	id, err := ua.ParseNodeID(s)
	if err != nil {
		return fmt.Errorf("%q: %s", s, upstreamMsg(err))
	}
	n.parsed = id
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
