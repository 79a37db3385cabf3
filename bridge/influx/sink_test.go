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
	"gopkg.in/yaml.v3"

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

func TestNewChecksConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  influx.Config
		want []string
	}{
		{"Empty", influx.Config{}, []string{"url is required", "database is required"}},
		{"Unparsable", influx.Config{URL: "http://[::1", Database: "d"}, []string{`url "http://[::1"`}},
		{"Scheme", influx.Config{URL: "udp://h:8089", Database: "d"}, []string{`scheme "udp" is not http or https`}},
		{"Query", influx.Config{URL: "http://h?db=x", Database: "d"}, []string{"query and fragment are not allowed"}},
		{"API", influx.Config{URL: "http://h", API: "v3", Database: "d"}, []string{`api "v3"`}},
		{"Mixed", influx.Config{URL: "http://h", API: "v1", Database: "d", Token: "t"}, []string{"v2 settings"}},
		{"MixedV2", influx.Config{URL: "http://h", Bucket: "b", Username: "u", Database: "d", API: "v2"}, []string{"v1 settings"}},
		{"NoBucket", influx.Config{URL: "http://h", API: "v2"}, []string{"bucket is required"}},
		{"Keys", influx.Config{URL: "http://h", Database: "d", PointTag: "time", UnitTag: "point", Field: "_v"},
			[]string{`point_tag "time"`, `field "_v"`}},
		{"SameTags", influx.Config{URL: "http://h", Database: "d", PointTag: "unit"}, []string{"unit_tag and point_tag are both"}},
		{"FieldIsTag", influx.Config{URL: "http://h", Database: "d", Field: "x", PointTag: "x_int"}, []string{`field key "x_int" is also a tag key`}},
		{"Modes", influx.Config{URL: "http://h", Database: "d", Fields: "wide", Uint: "float"}, []string{`fields "wide"`, `uint "float"`}},
		{"Timeout", influx.Config{URL: "http://h", Database: "d", Timeout: -1}, []string{"timeout: -1ns is outside 100ms to 10m0s"}},
		{"TLSFiles", influx.Config{URL: "https://h", Database: "d", CAFile: "/nonexistent"}, []string{"ca_file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := influx.New(tc.cfg)
			require.Error(t, err)
			assert.Nil(t, s)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
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
