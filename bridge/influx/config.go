package influx

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"slices"
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
	// URL is the InfluxDB server's base URL, http:// or https://
	// ("http://127.0.0.1:8086"). Required. A path is kept as a prefix
	// (for a server behind a reverse proxy).
	URL string `yaml:"url"`
	// API is "v1" (POST /write, for InfluxDB 1.x and the 1.x compatibility
	// API of 2.x and 3.x) or "v2" (POST /api/v2/write, for InfluxDB 2.x,
	// 3.x and 1.8+). Empty chooses v1 when Database is set and v2 when
	// Bucket is set.
	API API `yaml:"api"`

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
	Fields FieldMode `yaml:"fields"`
	// Uint says how uint64 values are written: "integer" (with the "i"
	// suffix; values above math.MaxInt64 are rejected) or "unsigned" (the
	// "u" suffix). Default "integer" for v1, whose InfluxDB 1.x rejects
	// "u", and "unsigned" for v2.
	Uint UintMode `yaml:"uint"`

	// Compression compresses request bodies: "none" (the default, also
	// when empty), "gzip" or "zstd", sent with that Content-Encoding.
	// InfluxDB 1.x and 2.x decode gzip (their write API takes gzip or
	// identity): zstd is for servers and proxies in front of them that
	// decode it; InfluxDB itself answers it with an error, and the samples
	// stay queued.
	Compression string `yaml:"compression"`
	// Gzip is compression: gzip, as it was written before compression had
	// a choice; not with Compression set to something else.
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

// API is the InfluxDB write API: [APIv1] or [APIv2]. Empty chooses v1 when
// Database is set and v2 when Bucket is set.
type API string

// The write APIs.
const (
	APIv1 API = "v1" // POST /write
	APIv2 API = "v2" // POST /api/v2/write
)

// UnmarshalText accepts v1 or v2 (any case). Another value is a
// *bridge.FieldError, with "did you mean" when one is close ("2").
func (a *API) UnmarshalText(b []byte) error {
	v, err := API(b).parse("")
	if err == nil {
		*a = v
	}
	return err
}

func (a API) parse(path string) (API, error) {
	return parseEnum(path, "api", a, APIv1, APIv2)
}

// FieldMode says which fields hold the values: [FieldsByKind] or
// [FieldsSingle] (see Config.Fields). Empty is by_kind.
type FieldMode string

// The field modes.
const (
	FieldsByKind FieldMode = "by_kind"
	FieldsSingle FieldMode = "single"
)

// UnmarshalText accepts by_kind or single (any case). Another value is a
// *bridge.FieldError, with "did you mean" when one is close.
func (m *FieldMode) UnmarshalText(b []byte) error {
	v, err := FieldMode(b).parse("")
	if err == nil {
		*m = v
	}
	return err
}

func (m FieldMode) parse(path string) (FieldMode, error) {
	return parseEnum(path, "fields mode", m, FieldsByKind, FieldsSingle)
}

// UintMode says how uint64 values are written: [UintInteger] or
// [UintUnsigned] (see Config.Uint). Empty chooses by the API.
type UintMode string

// The uint modes.
const (
	UintInteger  UintMode = "integer"
	UintUnsigned UintMode = "unsigned"
)

// UnmarshalText accepts integer or unsigned (any case). Another value is a
// *bridge.FieldError, with "did you mean" when one is close.
func (m *UintMode) UnmarshalText(b []byte) error {
	v, err := UintMode(b).parse("")
	if err == nil {
		*m = v
	}
	return err
}

func (m UintMode) parse(path string) (UintMode, error) {
	return parseEnum(path, "uint mode", m, UintInteger, UintUnsigned)
}

// parseEnum returns v lower-cased when it is empty or one of names, and an
// error at path naming what otherwise.
func parseEnum[T ~string](path, what string, v T, names ...T) (T, error) {
	l := T(strings.ToLower(strings.TrimSpace(string(v))))
	if l == "" || slices.Contains(names, l) {
		return l, nil
	}
	ns := make([]string, len(names))
	for i, n := range names {
		ns[i] = string(n)
	}
	return "", cfgcheck.Enum(path, what, string(v), ns...)
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

// Validate checks every setting without I/O and returns every problem at
// once, each a *bridge.FieldError whose Path is the setting's YAML key
// ("url", "bucket", "point_tag"); a misspelt api, fields or uint value has a
// "did you mean" Hint. [New] applies the same rules and also reads the TLS
// files, reporting their problems at ca_file or cert_file.
//
// The v1 API authenticates by username and password together: a username
// with an empty password (what a password_env naming a variable that is
// set but empty gives) is an error at "password". Without a username the
// sink writes without authentication; v2 needs no token for a server
// without authentication.
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
		bad("url", "required (e.g. http://127.0.0.1:8086)")
	} else if u, err := url.Parse(c.URL); err != nil {
		bad("url", "%q: %v", shown, redact.ParseError(err, c.URL))
	} else if u.Scheme != "http" && u.Scheme != "https" {
		bad("url", "%q: scheme %q is not http or https", shown, u.Scheme)
	} else if u.Host == "" {
		bad("url", "%q: no host", shown)
	} else if u.RawQuery != "" || u.Fragment != "" {
		errs = append(errs, &bridge.FieldError{Path: "url", Msg: fmt.Sprintf("%q: query and fragment are not allowed", shown),
			Hint: "use the database, retention_policy, org and bucket settings"})
	} else {
		s.base = u
	}

	api, err := c.API.parse("api")
	if err != nil {
		errs = append(errs, err)
	}
	s.API = api
	switch api {
	case APIv2:
		s.v2 = true
	case "":
		s.v2 = c.Bucket != "" && c.Database == ""
	}
	other := func(keys []string, vals []string, msg string) {
		for i, k := range keys {
			if vals[i] != "" {
				bad(k, "%s", msg)
			}
		}
	}
	if s.v2 {
		if c.Bucket == "" {
			bad("bucket", "required for the v2 API")
		}
		other([]string{"database", "retention_policy", "username", "password"}, []string{c.Database, c.RetentionPolicy, c.Username, c.Password},
			"a v1 setting: the v2 API takes org, bucket and token")
	} else {
		if c.Database == "" {
			bad("database", "required for the v1 API (or set bucket for v2)")
		}
		other([]string{"org", "bucket", "token"}, []string{c.Org, c.Bucket, c.Token},
			"a v2 setting: the v1 API takes database, retention_policy, username and password")
		if c.Password != "" && c.Username == "" {
			bad("password", "given without username")
		}
		if err := cfgcheck.Secret("password", "username", c.Username, c.Password); err != nil {
			errs = append(errs, err)
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
			bad(k.name, "%q: InfluxDB reserves the key time", k.v)
		case k.v != "" && (!writable(k.v, tagSpecial) || k.v[0] == '_'):
			bad(k.name, "%q: not a usable key (line break, trailing backslash or leading underscore)", k.v)
		}
	}
	if s.UnitTag != "" && s.UnitTag == s.PointTag {
		bad("unit_tag", "%q is also the point_tag", s.UnitTag)
	}
	fields, err := c.Fields.parse("fields")
	if err != nil {
		errs = append(errs, err)
	}
	s.Fields = fields
	s.byKind = fields != FieldsSingle
	for _, k := range []bridge.Kind{bridge.KindFloat, bridge.KindInt, bridge.KindUint, bridge.KindBool, bridge.KindString} {
		if f := FieldKey(s.Field, k, s.byKind); f == s.PointTag || f == s.UnitTag {
			bad("field", "makes the field key %q, which is also a tag key", f)
		}
	}
	um, err := c.Uint.parse("uint")
	if err != nil {
		errs = append(errs, err)
	}
	s.Uint = um
	switch um {
	case "":
		s.noUint = !s.v2
	case UintInteger:
		s.noUint = true
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
