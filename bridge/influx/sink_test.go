package influx_test

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/influx"
)

// fakeServer records write requests and answers them with answer.
type fakeServer struct {
	mu     sync.Mutex
	reqs   []*http.Request
	bodies []string
	answer func(n int, body string) (int, string)
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var rd io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		rd = zr
	}
	b, _ := io.ReadAll(rd)
	f.mu.Lock()
	n := len(f.reqs)
	f.reqs = append(f.reqs, r)
	f.bodies = append(f.bodies, string(b))
	f.mu.Unlock()
	code, msg := http.StatusNoContent, ""
	if f.answer != nil {
		code, msg = f.answer(n, string(b))
	}
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg)
}

func serve(t *testing.T, f http.Handler) string {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv.URL
}

func sinkFor(t *testing.T, cfg influx.Config) *influx.Sink {
	t.Helper()
	s, err := influx.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestV2Request(t *testing.T) {
	f := &fakeServer{}
	url := serve(t, f)
	s := sinkFor(t, influx.Config{URL: url + "/influx/", Org: "my org", Bucket: "b1", Token: "tok", Gzip: true})
	require.NoError(t, s.Write(ctxT(t), []bridge.Sample{
		{Source: "m", Point: "p", Value: bridge.Uint(18446744073709551615), Time: t0},
		{Source: "m", Point: "q", Value: bridge.Float(1.25), Unit: "A", Time: t0},
	}))
	require.Len(t, f.reqs, 1)
	r := f.reqs[0]
	assert.Equal(t, "/influx/api/v2/write", r.URL.Path)
	assert.Equal(t, "my org", r.URL.Query().Get("org"))
	assert.Equal(t, "b1", r.URL.Query().Get("bucket"))
	assert.Equal(t, "ns", r.URL.Query().Get("precision"))
	assert.Equal(t, "Token tok", r.Header.Get("Authorization"))
	assert.Equal(t, "gzip", r.Header.Get("Content-Encoding"))
	assert.Equal(t, "m,point=p value_uint=18446744073709551615u 1795255200123456789\n"+
		"m,point=q,unit=A value=1.25 1795255200123456789\n", f.bodies[0])
}

func TestV1Request(t *testing.T) {
	f := &fakeServer{}
	url := serve(t, f)
	s := sinkFor(t, influx.Config{URL: url, Database: "db", RetentionPolicy: "autogen", Username: "u", Password: "p", UnitTag: "-"})
	require.NoError(t, s.Write(ctxT(t), []bridge.Sample{{Source: "m", Point: "p", Value: bridge.Float(1), Unit: "V", Time: t0}}))
	r := f.reqs[0]
	assert.Equal(t, "/write", r.URL.Path)
	assert.Equal(t, "db", r.URL.Query().Get("db"))
	assert.Equal(t, "autogen", r.URL.Query().Get("rp"))
	user, pass, ok := r.BasicAuth()
	assert.True(t, ok)
	assert.Equal(t, "u", user)
	assert.Equal(t, "p", pass)
	assert.Equal(t, "m,point=p value=1 1795255200123456789\n", f.bodies[0])
}

func TestStatusMapping(t *testing.T) {
	one := []bridge.Sample{{Source: "m", Point: "p", Value: bridge.Float(1), Time: t0}}
	for _, tc := range []struct {
		code      int
		body      string
		permanent bool
	}{
		{500, `{"error":"timeout"}`, false},
		{503, `{"code":"unavailable","message":"busy"}`, false},
		{429, `{"code":"too many requests"}`, false},
		{408, ``, false},
		// Configuration and capacity problems, not bad data (issue 10
		// defect 2): the samples are kept for the Bridge to retry.
		{401, `{"code":"unauthorized","message":"unauthorized access"}`, false},
		{403, `{"error":"forbidden"}`, false},
		{404, `{"error":"database not found: \"x\""}`, false},
		{413, `{"error":"Request Entity Too Large"}`, false},
		{400, `{"error":"unable to parse 'm,point=p value=1': bad timestamp"}`, true},
		{422, `{"message":"unprocessable"}`, true},
	} {
		f := &fakeServer{answer: func(int, string) (int, string) { return tc.code, tc.body }}
		s := sinkFor(t, influx.Config{URL: serve(t, f), Bucket: "b"})
		err := s.Write(ctxT(t), one)
		var se *influx.StatusError
		require.ErrorAs(t, err, &se, "%d", tc.code)
		assert.Equal(t, tc.code, se.StatusCode)
		assert.Equal(t, tc.permanent, bridge.IsPermanent(err), "%d", tc.code)
		if strings.Contains(tc.body, "message") {
			assert.NotContains(t, se.Message, "{", "the message is taken out of the JSON")
		}
	}
}

func TestPartialWriteV2(t *testing.T) {
	// InfluxDB 2.x numbers the lines it rejected.
	f := &fakeServer{answer: func(int, string) (int, string) {
		return 400, `{"code":"invalid","message":"partial write error (2 written): line 2: invalid field format\nline 4: bad timestamp"}`
	}}
	s := sinkFor(t, influx.Config{URL: serve(t, f), Bucket: "b"})
	batch := make([]bridge.Sample, 5)
	for i := range batch {
		batch[i] = bridge.Sample{Source: "m", Point: "p", Value: bridge.Float(float64(i)), Time: t0.Add(time.Duration(i))}
	}
	batch[0].Quality = bridge.Bad // skipped: line 2 is batch[2]
	err := s.Write(ctxT(t), batch)
	var be *bridge.BatchError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, []int{2, 4}, be.Indexes())
	assert.True(t, bridge.IsPermanent(be.Failed[2]))
	assert.Equal(t, influx.Stats{Written: 2, Skipped: 1, Rejected: 2}, s.Stats())
}

func TestChunks(t *testing.T) {
	// 12,000 samples go in three requests of at most 5,000 lines; the
	// second fails, so its samples and the third's are reported, the
	// first's delivered.
	f := &fakeServer{answer: func(n int, _ string) (int, string) {
		if n == 1 {
			return 503, "busy"
		}
		return 204, ""
	}}
	s := sinkFor(t, influx.Config{URL: serve(t, f), Database: "db"})
	batch := make([]bridge.Sample, 12000)
	for i := range batch {
		batch[i] = bridge.Sample{Source: "m", Point: "p", Value: bridge.Float(float64(i)), Time: t0.Add(time.Duration(i))}
	}
	err := s.Write(ctxT(t), batch)
	var be *bridge.BatchError
	require.ErrorAs(t, err, &be)
	assert.Len(t, be.Failed, 7000)
	assert.Equal(t, 5000, be.Indexes()[0])
	assert.True(t, bridge.IsRetriable(be.Failed[5000]))
	require.Len(t, f.bodies, 2)
	assert.Equal(t, 5000, strings.Count(f.bodies[0], "\n"))

	f.answer = nil
	require.NoError(t, s.Write(ctxT(t), batch))
	require.Len(t, f.bodies, 5)
	assert.Equal(t, 2000, strings.Count(f.bodies[4], "\n"))
}

func TestNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	s := sinkFor(t, influx.Config{URL: url, Database: "db"})
	err := s.Write(ctxT(t), []bridge.Sample{{Source: "m", Point: "p", Value: bridge.Float(1), Time: t0}})
	require.Error(t, err)
	assert.True(t, bridge.IsRetriable(err))
	assert.Error(t, s.Connect(ctxT(t)))
}

// fieldErrs returns the field errors of err as "path: msg (hint)".
func fieldErrs(err error) []string {
	var out []string
	for _, fe := range bridge.FieldErrors(err) {
		out = append(out, fe.Error())
	}
	return out
}

// TestValidate checks the path of every problem Validate reports, several
// at once, and that New reports the same field errors.
func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  influx.Config
		want []string // each field error's "path: msg (hint)", in order
	}{
		{"Empty", influx.Config{}, []string{"url: required (e.g. http://127.0.0.1:8086)", "database: required for the v1 API (or set bucket for v2)"}},
		{"Unparsable", influx.Config{URL: "http://[::1", Database: "d"}, []string{`url: "http://[::1": missing ']' in host`}},
		{"Scheme", influx.Config{URL: "udp://h:8089", Database: "d"}, []string{`url: "udp://h:8089": scheme "udp" is not http or https`}},
		{"Query", influx.Config{URL: "http://h?db=x", Database: "d"}, []string{`url: "http://h?db=xxxxx": query and fragment are not allowed (use the database, retention_policy, org and bucket settings)`}},
		{"SecretInURL", influx.Config{URL: "tcp://u:S3CRET@h", Database: "d"}, []string{`url: "tcp://u:xxxxx@h": scheme "tcp" is not http or https`}},
		{"API", influx.Config{URL: "http://h", API: "2", Bucket: "b"}, []string{`api: unknown api "2": want v1 or v2 (did you mean "v2"?)`}},
		{"V2SettingsOnV1", influx.Config{URL: "http://h", API: "v1", Database: "d", Org: "o", Token: "t"}, []string{
			"org: a v2 setting: the v1 API takes database, retention_policy, username and password",
			"token: a v2 setting: the v1 API takes database, retention_policy, username and password",
		}},
		{"V1SettingsOnV2", influx.Config{URL: "http://h", Bucket: "b", Username: "u", Database: "d", API: "v2"}, []string{
			"database: a v1 setting: the v2 API takes org, bucket and token",
			"username: a v1 setting: the v2 API takes org, bucket and token",
		}},
		{"NoBucket", influx.Config{URL: "http://h", API: "v2"}, []string{"bucket: required for the v2 API"}},
		{"PasswordWithoutUser", influx.Config{URL: "http://h", Database: "d", Password: "p"}, []string{"password: given without username"}},
		{"EmptyPassword", influx.Config{URL: "http://h", Database: "d", Username: "u"}, []string{"password: empty, but username is set (password_env or password_file must name a variable or file that holds the password; one that is set but empty gives an empty password)"}},
		{"Keys", influx.Config{URL: "http://h", Database: "d", PointTag: "time", Field: "_v"}, []string{
			`point_tag: "time": InfluxDB reserves the key time`,
			`field: "_v": not a usable key (line break, trailing backslash or leading underscore)`,
		}},
		{"SameTags", influx.Config{URL: "http://h", Database: "d", PointTag: "unit"}, []string{`unit_tag: "unit" is also the point_tag`}},
		{"FieldIsTag", influx.Config{URL: "http://h", Database: "d", Field: "x", PointTag: "x_int"}, []string{`field: makes the field key "x_int", which is also a tag key`}},
		{"Modes", influx.Config{URL: "http://h", Database: "d", Fields: "bykind", Uint: "float"}, []string{
			`fields: unknown fields mode "bykind": want by_kind or single (did you mean "by_kind"?)`,
			`uint: unknown uint mode "float": want integer or unsigned`,
		}},
		{"Timeout", influx.Config{URL: "http://h", Database: "d", Timeout: -1}, []string{"timeout: -1ns is outside 100ms to 10m0s"}},
		{"CertWithoutKey", influx.Config{URL: "https://h", Database: "d", CertFile: "c.pem"}, []string{"key_file: required with cert_file (give cert_file and key_file together, or neither)"}},
		{"Several", influx.Config{URL: "ftp://x", Database: "d", Bucket: "b", Uint: "unsinged", Timeout: time.Hour}, []string{
			`url: "ftp://x": scheme "ftp" is not http or https`,
			"bucket: a v2 setting: the v1 API takes database, retention_policy, username and password",
			`uint: unknown uint mode "unsinged": want integer or unsigned (did you mean "unsigned"?)`,
			"timeout: 1h0m0s is outside 100ms to 10m0s",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			assert.Equal(t, tc.want, fieldErrs(err))
			s, nerr := influx.New(tc.cfg)
			require.Error(t, nerr)
			assert.Nil(t, s)
			assert.Equal(t, bridge.FieldErrors(err), bridge.FieldErrors(nerr), "New reports what Validate does")
			for _, line := range strings.Split(nerr.Error(), "\n") {
				assert.True(t, strings.HasPrefix(line, "influx: "), line)
			}
		})
	}
}

// TestNewTLSFiles: what is wrong with the TLS files is found by New (it
// reads them), not by Validate, at the path of the setting.
func TestNewTLSFiles(t *testing.T) {
	cfg := influx.Config{URL: "https://h", Database: "d", CAFile: "/nonexistent/ca.pem"}
	require.NoError(t, cfg.Validate())
	_, err := influx.New(cfg)
	fes := bridge.FieldErrors(err)
	require.Len(t, fes, 1, "%v", err)
	assert.Equal(t, "ca_file", fes[0].Path)
}

func TestEnumYAML(t *testing.T) {
	var cfg influx.Config
	require.NoError(t, yaml.Unmarshal([]byte("api: V2\nfields: Single\nuint: integer\n"), &cfg))
	assert.Equal(t, influx.Config{API: influx.APIv2, Fields: influx.FieldsSingle, Uint: influx.UintInteger}, cfg)
	for doc, hint := range map[string]string{"api: '1'": `did you mean "v1"?`, "fields: singel": `did you mean "single"?`, "uint: unsinged": `did you mean "unsigned"?`} {
		err := yaml.Unmarshal([]byte(doc), &cfg)
		var fe *bridge.FieldError
		require.ErrorAs(t, err, &fe, doc)
		assert.Equal(t, hint, fe.Hint, doc)
	}
}

func TestClosed(t *testing.T) {
	s := sinkFor(t, influx.Config{URL: "http://127.0.0.1:1", Database: "db"})
	require.NoError(t, s.Close(context.Background()))
	assert.ErrorIs(t, s.Write(context.Background(), nil), bridge.ErrClosed)
	assert.ErrorIs(t, s.Connect(context.Background()), bridge.ErrClosed)
	assert.ErrorIs(t, s.Close(context.Background()), bridge.ErrClosed)
}

func TestConfigYAML(t *testing.T) {
	var cfg influx.Config
	dec := yaml.NewDecoder(strings.NewReader(`
url: http://127.0.0.1:8086
api: v2
org: o
bucket: b
token: t
point_tag: pt
unit_tag: "-"
field: v
fields: single
uint: unsigned
gzip: true
timeout: 3s
ca_file: ca.pem
cert_file: c.pem
key_file: k.pem
insecure_skip_verify: true
`))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&cfg))
	assert.Equal(t, influx.Config{
		URL: "http://127.0.0.1:8086", API: "v2", Org: "o", Bucket: "b", Token: "t", PointTag: "pt", UnitTag: "-",
		Field: "v", Fields: "single", Uint: "unsigned", Gzip: true, Timeout: 3 * time.Second,
		CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem", InsecureSkipVerify: true,
	}, cfg)
	var v1 influx.Config
	require.NoError(t, yaml.Unmarshal([]byte("{url: 'http://h', database: d, retention_policy: r, username: u, password: p}"), &v1))
	assert.Equal(t, influx.Config{URL: "http://h", Database: "d", RetentionPolicy: "r", Username: "u", Password: "p"}, v1)
}
