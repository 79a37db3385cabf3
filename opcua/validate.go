package opcua

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/cfgcheck"
	"github.com/m2mbridge/m2mbridge/internal/redact"
)

// Ranges of the numeric settings, enforced by [Config.Validate]. Zero
// always means "the default" and is allowed.
const (
	MinInterval         = time.Millisecond // Interval (and a node's SamplingInterval)
	MaxInterval         = 24 * time.Hour
	MinTimeout          = 10 * time.Millisecond // Timeout
	MaxTimeout          = 5 * time.Minute
	MinReconnect        = 10 * time.Millisecond // ReconnectMin and ReconnectMax
	MaxReconnect        = time.Hour
	MinWatchdog         = 40 * time.Millisecond // Watchdog; at least 2×Interval in subscribe mode
	MaxWatchdog         = time.Hour
	MaxKeepAliveCount   = 10_000    // KeepAliveCount
	MaxBuffer           = 1_000_000 // Buffer (deprecated)
	MaxNodes            = 100_000   // len(Nodes)
	MaxNodeQueueSize    = 10_000    // a node's QueueSize
	maxNameLen          = 256
	maxSecretFileLength = 64 << 10
)

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

// ConfigError is the error of [New] for a Config that [Config.Validate]
// refuses. Its Unwrap returns the *bridge.FieldError values, so
// bridge.FieldErrors walks them.
type ConfigError struct {
	Name   string  // the Config's Name, "(unnamed)" when empty
	Fields []error // *bridge.FieldError values
}

// Error returns "opcua: source <name>: invalid config: " and the field
// errors, one per line.
func (e *ConfigError) Error() string {
	return "opcua: source " + e.Name + ": invalid config: " + errors.Join(e.Fields...).Error()
}

// Unwrap returns the field errors.
func (e *ConfigError) Unwrap() []error { return e.Fields }

// Validate checks c and returns every problem at once (errors.Join), each a
// *bridge.FieldError whose Path is the YAML key relative to c ("endpoint",
// "nodes[2].node"). It reads PasswordEnv and PasswordFile, to report a
// variable that is unset or empty and a file that cannot be read, but no
// value ever appears in an error. It does no network I/O. The ranges of the
// numeric settings are the Min and Max constants of this package.
func (c Config) Validate() error {
	_, err := c.check()
	return err
}

type fieldErrs []error

func (f *fieldErrs) add(path, format string, args ...any) {
	*f = append(*f, bridge.FieldErrorf(path, format, args...))
}

func (f *fieldErrs) hint(path, hint, format string, args ...any) {
	*f = append(*f, &bridge.FieldError{Path: path, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

// duration checks an optional duration against its range and applies the
// default.
func (f *fieldErrs) duration(path string, v *time.Duration, def, lo, hi time.Duration) {
	switch {
	case *v == 0:
		*v = def
	case *v < lo || *v > hi:
		f.add(path, "%s is out of range: want %s to %s (or 0 for the default)", *v, lo, hi)
	}
}

func (c Config) check() (*settings, error) {
	var errs fieldErrs
	st := &settings{Config: c}
	switch {
	case c.Name == "":
		errs.add("name", "is required")
	case len(c.Name) > maxNameLen:
		errs.add("name", "is %d bytes long: at most %d", len(c.Name), maxNameLen)
	}
	checkEndpoint(&errs, c.Endpoint)
	mode, err := parseMode(string(c.Mode))
	if err != nil {
		errs.fromErr("mode", err)
	}
	st.Mode = mode

	errs.duration("interval", &st.Interval, DefaultInterval, MinInterval, MaxInterval)
	errs.duration("timeout", &st.Timeout, DefaultTimeout, MinTimeout, MaxTimeout)
	errs.duration("reconnect_min", &st.ReconnectMin, DefaultReconnectMin, MinReconnect, MaxReconnect)
	errs.duration("reconnect_max", &st.ReconnectMax, DefaultReconnectMax, MinReconnect, MaxReconnect)
	if st.ReconnectMax < st.ReconnectMin {
		errs.add("reconnect_max", "%s is below reconnect_min %s", st.ReconnectMax, st.ReconnectMin)
	}
	errs.duration("watchdog", &st.Watchdog, max(5*time.Second, 4*st.Interval), MinWatchdog, MaxWatchdog)
	if st.Mode == Subscribe && c.Watchdog != 0 && st.Watchdog < 2*st.Interval {
		errs.add("watchdog", "%s is less than twice the interval %s: a healthy subscription would look silent", st.Watchdog, st.Interval)
	}
	switch {
	case c.KeepAliveCount > MaxKeepAliveCount:
		errs.add("keepalive_count", "%d is out of range: want 1 to %d (or 0 for the default)", c.KeepAliveCount, MaxKeepAliveCount)
	case c.KeepAliveCount == 0 && st.Interval > 0:
		st.KeepAliveCount = uint32(min(MaxKeepAliveCount, max(1, int64(st.Watchdog/2/st.Interval))))
	}
	if c.Buffer < 0 || c.Buffer > MaxBuffer {
		errs.add("buffer", "%d is out of range: want 0 to %d (deprecated and ignored: the bridge's source queue_size replaces it)", c.Buffer, MaxBuffer)
	}
	if st.ApplicationURI == "" {
		st.ApplicationURI = DefaultApplicationURI
	} else if u, err := url.Parse(st.ApplicationURI); err != nil || u.Scheme == "" {
		errs.add("application_uri", "%q is not a URI (want for example urn:company:gateway)", st.ApplicationURI)
	}

	// Security.
	st.policyURI, err = c.SecurityPolicy.uri(c.AllowDeprecatedPolicies)
	if err != nil {
		errs.fromErr("security_policy", err)
	}
	secure := st.policyURI != "" && st.policyURI != ua.SecurityPolicyURINone
	smode, err := c.SecurityMode.mode()
	switch {
	case err != nil:
		errs.fromErr("security_mode", err)
	case c.SecurityMode == "" && secure:
		st.mode = ua.MessageSecurityModeSignAndEncrypt
	case c.SecurityMode == "":
		st.mode = ua.MessageSecurityModeNone
	default:
		st.mode = smode
		if st.policyURI != "" {
			if secure && smode == ua.MessageSecurityModeNone {
				errs.add("security_mode", "None does not go with security_policy %s", c.SecurityPolicy)
			}
			if !secure && smode != ua.MessageSecurityModeNone {
				errs.add("security_mode", "%s needs a security_policy other than None", c.SecurityMode)
			}
		}
	}
	if c.ServerCertificateSHA256 != "" {
		h := strings.ReplaceAll(strings.ToLower(c.ServerCertificateSHA256), ":", "")
		pin, err := hex.DecodeString(h)
		if err != nil || len(pin) != 32 {
			errs.add("server_certificate_sha256", "want 64 hex digits (SHA-256 of the DER certificate)")
		}
		st.pin = pin
	}
	if secure && c.ServerCertificateSHA256 == "" && c.TrustDir == "" && !c.InsecureSkipVerify {
		errs.hint("security_policy", "set server_certificate_sha256 or trust_dir, or insecure_skip_verify",
			"%s: the server's certificate must be verified", c.SecurityPolicy)
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
		errs.hint("auth", didYouMean(c.Auth, "anonymous", "username", "certificate"), "unknown authentication %q: want anonymous, username or certificate", c.Auth)
	}
	if st.auth == ua.UserTokenTypeUserName {
		st.password = c.checkPassword(&errs)
	} else if c.Username != "" || c.Password != "" || c.PasswordEnv != "" || c.PasswordFile != "" {
		errs.add("auth", "username/password given but auth is %s", c.Auth)
	}
	needCert := secure || st.auth == ua.UserTokenTypeCertificate
	if (c.Certificate == "") != (c.PrivateKey == "") {
		path := "private_key"
		if c.Certificate == "" {
			path = "certificate"
		}
		errs.add(path, "certificate and private_key go together")
	}
	if needCert && c.Certificate == "" && c.PKIDir == "" {
		errs.hint("pki_dir", "set pki_dir, or certificate and private_key",
			"a client certificate is needed (security policy %s, auth %s)", policyName(st.policyURI), authName(st.auth))
	}

	// Nodes.
	switch {
	case len(c.Nodes) == 0:
		errs.add("nodes", "at least one node is required")
	case len(c.Nodes) > MaxNodes:
		errs.add("nodes", "%d nodes: at most %d per source", len(c.Nodes), MaxNodes)
	}
	seen := make(map[string]int, len(c.Nodes))
	st.nodes = make([]nodeSpec, len(c.Nodes))
	for i, n := range c.Nodes {
		st.nodes[i] = checkNode(&errs, fmt.Sprintf("nodes[%d]", i), n, st.Mode, seen, i)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return st, nil
}

// checkEndpoint checks the endpoint URL. Userinfo and query values never
// appear in the errors.
func checkEndpoint(errs *fieldErrs, endpoint string) {
	if endpoint == "" {
		errs.add("endpoint", "is required")
		return
	}
	shown := redact.URL(endpoint)
	u, err := url.Parse(endpoint)
	switch {
	case err != nil || u.Scheme != "opc.tcp" || u.Host == "":
		errs.hint("endpoint", "write opc.tcp://host:port", "%q is not an opc.tcp URL", shown)
	case u.User != nil:
		errs.hint("endpoint", "give username with password_env or password_file", "%q: a user name or password in the URL is not supported", shown)
	case u.RawQuery != "":
		errs.add("endpoint", "%q: OPC UA endpoint URLs have no query", shown)
	case u.Port() != "":
		if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
			errs.add("endpoint", "%q: port %s is out of range 1 to 65535", shown, u.Port())
		}
	}
	if err == nil && u.Hostname() == "" && u.Host != "" {
		errs.add("endpoint", "%q has no host", shown)
	}
}

// checkPassword reads the password of user name authentication.
func (c Config) checkPassword(errs *fieldErrs) string {
	if c.Username == "" {
		errs.add("username", "is required with auth username")
	}
	n, password := 0, ""
	if c.Password != "" {
		n++
		password = string(c.Password)
	}
	if c.PasswordEnv != "" {
		n++
		v, ok := os.LookupEnv(c.PasswordEnv)
		switch {
		case !ok:
			errs.add("password_env", "environment variable %s is not set", c.PasswordEnv)
		case v == "":
			errs.add("password_env", "environment variable %s is set but empty", c.PasswordEnv)
		}
		password = v
	}
	if c.PasswordFile != "" {
		n++
		b, err := readSecretFile(c.PasswordFile)
		if err != nil {
			// The error names the file, never its content.
			errs.add("password_file", "%s", err)
		} else if b == "" {
			errs.add("password_file", "%s is empty", c.PasswordFile)
		}
		password = b
	}
	if n > 1 {
		errs.add("username", "give one of password, password_env and password_file")
	}
	if n == 0 && c.Username != "" {
		errs.hint("username", "set password_env or password_file", "user %q has no password", c.Username)
	}
	return password
}

func readSecretFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.Size() > maxSecretFileLength {
		return "", fmt.Errorf("%s is %d bytes: not a password file", path, fi.Size())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func checkNode(errs *fieldErrs, at string, n Node, mode Mode, seen map[string]int, i int) nodeSpec {
	p := func(key string) string { return bridge.JoinPath(at, key) }
	ns := nodeSpec{Node: n}
	switch {
	case n.Name == "":
		errs.add(p("name"), "is required")
	case len(n.Name) > maxNameLen:
		errs.add(p("name"), "is %d bytes long: at most %d", len(n.Name), maxNameLen)
	default:
		if j, dup := seen[n.Name]; dup {
			errs.add(p("name"), "%q is already used by nodes[%d]", n.Name, j)
		} else {
			seen[n.Name] = i
		}
	}
	if err := ns.parse(); err != nil {
		errs.fromErr(p("node"), err)
	}
	if n.SamplingInterval != 0 && (n.SamplingInterval < MinInterval || n.SamplingInterval > MaxInterval) {
		errs.add(p("sampling_interval"), "%s is out of range: want %s to %s (or 0 for the publishing interval)", n.SamplingInterval, MinInterval, MaxInterval)
	}
	if n.QueueSize > MaxNodeQueueSize {
		errs.add(p("queue_size"), "%d is out of range: want 1 to %d (or 0 for 1)", n.QueueSize, MaxNodeQueueSize)
	}
	switch strings.ToLower(n.Trigger) {
	case "", "status_value":
		ns.trigger = ua.DataChangeTriggerStatusValue
	case "status":
		ns.trigger = ua.DataChangeTriggerStatus
	case "status_value_timestamp":
		ns.trigger = ua.DataChangeTriggerStatusValueTimestamp
	default:
		errs.hint(p("trigger"), didYouMean(n.Trigger, "status", "status_value", "status_value_timestamp"),
			"unknown trigger %q: want status, status_value or status_value_timestamp", n.Trigger)
	}
	switch strings.ToLower(n.Deadband) {
	case "", "none":
		ns.deadband = ua.DeadbandTypeNone
		if n.DeadbandValue != 0 {
			errs.add(p("deadband_value"), "%g without deadband absolute or percent", n.DeadbandValue)
		}
	case "absolute":
		ns.deadband = ua.DeadbandTypeAbsolute
	case "percent":
		ns.deadband = ua.DeadbandTypePercent
		if n.DeadbandValue > 100 {
			errs.add(p("deadband_value"), "%g: a percentage is 0 to 100", n.DeadbandValue)
		}
	default:
		errs.hint(p("deadband"), didYouMean(n.Deadband, "none", "absolute", "percent"), "unknown deadband %q: want none, absolute or percent", n.Deadband)
	}
	if n.DeadbandValue < 0 || math.IsNaN(n.DeadbandValue) || math.IsInf(n.DeadbandValue, 0) {
		errs.add(p("deadband_value"), "%g: want a finite number ≥ 0", n.DeadbandValue)
	}
	if ns.deadband != ua.DeadbandTypeNone && ns.trigger == ua.DataChangeTriggerStatus {
		errs.add(p("deadband"), "a deadband needs trigger status_value or status_value_timestamp")
	}
	checkWritable(errs, p, n)
	if mode == Poll && (n.SamplingInterval != 0 || n.QueueSize != 0 || ns.deadband != ua.DeadbandTypeNone || n.Trigger != "") {
		errs.add(at, "sampling_interval, queue_size, trigger and deadband apply to mode subscribe only")
	}
	return ns
}

// MaxAllowed is the most values a node's Allowed may list.
const MaxAllowed = 10_000

// checkWritable checks a node's write rules: Min, Max and Allowed only with
// Writable, finite, Min ≤ Max, every allowed value within them.
func checkWritable(errs *fieldErrs, p func(string) string, n Node) {
	if !n.Writable {
		for _, k := range []struct {
			key string
			set bool
		}{{"min", n.Min != nil}, {"max", n.Max != nil}, {"allowed", len(n.Allowed) > 0}} {
			if k.set {
				errs.hint(p(k.key), "set writable: true, or remove "+k.key, "applies to writable nodes only")
			}
		}
		return
	}
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	if n.Min != nil && !finite(*n.Min) {
		errs.add(p("min"), "%g: want a finite number", *n.Min)
	}
	if n.Max != nil && !finite(*n.Max) {
		errs.add(p("max"), "%g: want a finite number", *n.Max)
	}
	if n.Min != nil && n.Max != nil && *n.Min > *n.Max {
		errs.add(p("max"), "%g is below min %g", *n.Max, *n.Min)
	}
	if len(n.Allowed) > MaxAllowed {
		errs.add(p("allowed"), "%d values: at most %d", len(n.Allowed), MaxAllowed)
	}
	for k, a := range n.Allowed {
		at := p(fmt.Sprintf("allowed[%d]", k))
		switch {
		case !finite(a):
			errs.add(at, "%g: want a finite number", a)
		case n.Min != nil && a < *n.Min:
			errs.add(at, "%g is below min %g: it could never be written", a, *n.Min)
		case n.Max != nil && a > *n.Max:
			errs.add(at, "%g is above max %g: it could never be written", a, *n.Max)
		}
	}
}

// suggestion is an error that carries a "did you mean" hint.
type suggestion struct {
	msg, hint string
}

// Error returns the message and the hint in parentheses, as a
// bridge.FieldError prints them.
func (e *suggestion) Error() string {
	if e.hint == "" {
		return e.msg
	}
	return e.msg + " (" + e.hint + ")"
}

// fromErr adds err as the error of path, keeping a suggestion's hint apart.
func (f *fieldErrs) fromErr(path string, err error) {
	var s *suggestion
	if errors.As(err, &s) {
		f.hint(path, s.hint, "%s", s.msg)
		return
	}
	f.add(path, "%s", err)
}

// didYouMean returns `did you mean "x"?` for the one candidate close to s
// (cfgcheck.Suggest: case, '-', '_' and spaces ignored; at most a third of
// its letters off), or "".
func didYouMean(s string, candidates ...string) string {
	if best := cfgcheck.Suggest(s, candidates...); best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return ""
}
