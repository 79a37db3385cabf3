package influx

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
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
	// URL is the InfluxDB server's base URL, http:// or https://
	// ("http://127.0.0.1:8086"). Required. A path is kept as a prefix
	// (for a server behind a reverse proxy).
	URL string `yaml:"url"`
	// API is "v1" (POST /write, for InfluxDB 1.x and the 1.x compatibility
	// API of 2.x and 3.x) or "v2" (POST /api/v2/write, for InfluxDB 2.x,
	// 3.x and 1.8+). Empty chooses v1 when Database is set and v2 when
	// Bucket is set.
	API string `yaml:"api"`

	// Database is the v1 database (required for v1).
	Database string `yaml:"database"`
	// RetentionPolicy is the v1 retention policy; empty is the database's
	// default.
	RetentionPolicy string `yaml:"retention_policy"`
	// Username and Password authenticate v1 writes (the u and p
	// parameters are sent as HTTP basic authentication).
	Username string `yaml:"username"`
	Password string `yaml:"password"`

	// Org is the v2 organisation (name or ID; InfluxDB 3 ignores it).
	Org string `yaml:"org"`
	// Bucket is the v2 bucket (required for v2); for InfluxDB 3 the
	// database.
	Bucket string `yaml:"bucket"`
	// Token is the v2 API token, sent as "Authorization: Token <token>".
	Token string `yaml:"token"`

	// PointTag is the tag key holding Sample.Point; default "point".
	PointTag string `yaml:"point_tag"`
	// UnitTag is the tag key holding Sample.Unit, for samples that have
	// a unit; default "unit", "-" leaves units out.
	UnitTag string `yaml:"unit_tag"`
	// Field is the field key holding Sample.Value; default "value".
	Field string `yaml:"field"`
	// Fields is "by_kind" (the default) or "single". by_kind writes floats
	// to Field and the other kinds to Field+"_int", "_uint", "_bool" and
	// "_string", because InfluxDB fixes the type of a field per
	// measurement and a source's points often differ in kind (a float
	// voltage, a bool alarm). single writes every value to Field: right
	// when each source's points are all of one kind.
	Fields string `yaml:"fields"`
	// Uint says how uint64 values are written: "integer" (with the "i"
	// suffix; values above math.MaxInt64 are rejected) or "unsigned" (the
	// "u" suffix). Default "integer" for v1, whose InfluxDB 1.x rejects
	// "u", and "unsigned" for v2.
	Uint string `yaml:"uint"`

	// Gzip compresses request bodies (Content-Encoding: gzip).
	Gzip bool `yaml:"gzip"`
	// Timeout bounds each write request; default 10s.
	Timeout time.Duration `yaml:"timeout"`

	// CAFile is a PEM file of the certificate authorities to trust for
	// https; empty uses the system's.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// servers that ask for one.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// InsecureSkipVerify turns off verification of the server's
	// certificate. For tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// TLS, when set, is used for https instead of the four settings above
	// (Go users only).
	TLS *tls.Config `yaml:"-"`
}

// settings is a checked Config with its defaults filled in.
type settings struct {
	Config
	base   *url.URL
	v2     bool
	noUint bool
	byKind bool
	tls    *tls.Config
}

// check validates c and returns every problem at once. It reads the TLS
// files named in c but does no network I/O.
func (c Config) check() (*settings, error) {
	s := &settings{Config: c}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("influx: "+format, args...)) }

	if c.URL == "" {
		bad("url is required")
	} else if u, err := url.Parse(c.URL); err != nil {
		bad("url %q: %v", c.URL, err)
	} else if u.Scheme != "http" && u.Scheme != "https" {
		bad("url %q: scheme %q is not http or https", c.URL, u.Scheme)
	} else if u.Host == "" {
		bad("url %q: no host", c.URL)
	} else if u.RawQuery != "" || u.Fragment != "" {
		bad("url %q: query and fragment are not allowed (use the database, bucket ... settings)", c.URL)
	} else {
		s.base = u
	}

	switch c.API {
	case "v1":
	case "v2":
		s.v2 = true
	case "":
		s.v2 = c.Bucket != "" && c.Database == ""
	default:
		bad("api %q: want v1 or v2", c.API)
	}
	if s.v2 {
		if c.Bucket == "" {
			bad("bucket is required for the v2 API")
		}
		if c.Database != "" || c.RetentionPolicy != "" || c.Username != "" || c.Password != "" {
			bad("database, retention_policy, username and password are v1 settings; the v2 API takes org, bucket and token")
		}
	} else {
		if c.Database == "" {
			bad("database is required for the v1 API (or set bucket for v2)")
		}
		if c.Org != "" || c.Bucket != "" || c.Token != "" {
			bad("org, bucket and token are v2 settings; the v1 API takes database, retention_policy, username and password")
		}
		if c.Password != "" && c.Username == "" {
			bad("password given without username")
		}
	}

	if s.PointTag == "" {
		s.PointTag = "point"
	}
	switch s.UnitTag {
	case "":
		s.UnitTag = "unit"
	case "-":
		s.UnitTag = ""
	}
	if s.Field == "" {
		s.Field = "value"
	}
	for _, k := range []struct{ name, v string }{{"point_tag", s.PointTag}, {"unit_tag", s.UnitTag}, {"field", s.Field}} {
		switch {
		case k.v == "time":
			bad("%s %q: InfluxDB reserves the key time", k.name, k.v)
		case k.v != "" && (!writable(k.v, tagSpecial) || k.v[0] == '_'):
			bad("%s %q: not a usable key (line break, trailing backslash or leading underscore)", k.name, k.v)
		}
	}
	if s.UnitTag != "" && s.UnitTag == s.PointTag {
		bad("unit_tag and point_tag are both %q", s.UnitTag)
	}
	for _, k := range []bridge.Kind{bridge.KindFloat, bridge.KindInt, bridge.KindUint, bridge.KindBool, bridge.KindString} {
		if f := FieldKey(s.Field, k, c.Fields != "single"); f == s.PointTag || f == s.UnitTag {
			bad("field key %q is also a tag key", f)
		}
	}
	switch c.Fields {
	case "", "by_kind":
		s.byKind = true
	case "single":
	default:
		bad("fields %q: want by_kind or single", c.Fields)
	}
	switch c.Uint {
	case "":
		s.noUint = !s.v2
	case "integer":
		s.noUint = true
	case "unsigned":
	default:
		bad("uint %q: want integer or unsigned", c.Uint)
	}
	for _, err := range limits.Durations(
		limits.Duration{Key: "timeout", P: &s.Timeout, Def: 10 * time.Second, Min: limits.MinTimeout, Max: limits.MaxTimeout},
	) {
		errs = append(errs, fmt.Errorf("influx: %w", err))
	}

	t, err := tlsfiles.LoadOrClone(c.TLS, "tls", c.CAFile, c.CertFile, c.KeyFile, c.InsecureSkipVerify)
	if err != nil {
		errs = append(errs, fmt.Errorf("influx: %w", err))
	}
	s.tls = t
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}
