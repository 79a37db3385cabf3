package httpsink_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
	"github.com/m2mbridge/m2mbridge/bridge/httpsink"
	"github.com/m2mbridge/m2mbridge/internal/testpki"
)

// receiver is an HTTP endpoint that decodes and keeps every batch posted to
// it.
type receiver struct {
	mu       sync.Mutex
	samples  []bridge.Sample
	requests []*http.Request
	bodies   [][]byte        // decompressed
	status   func(n int) int // the status of the n-th request (from 0); nil: 204
	arrived  chan struct{}
}

func newReceiver() *receiver { return &receiver{arrived: make(chan struct{}, 1)} }

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// Each codec is read by its reference decoder.
	switch ce := r.Header.Get("Content-Encoding"); ce {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err == nil {
			body, err = io.ReadAll(zr)
		}
		if err != nil {
			http.Error(w, "bad gzip: "+err.Error(), http.StatusBadRequest)
			return
		}
	case "zstd":
		d, err := zstd.NewReader(nil)
		if err == nil {
			body, err = d.DecodeAll(body, nil)
			d.Close()
		}
		if err != nil {
			http.Error(w, "bad zstd: "+err.Error(), http.StatusBadRequest)
			return
		}
	case "":
	default:
		http.Error(w, "unknown Content-Encoding "+ce, http.StatusUnsupportedMediaType)
		return
	}
	rc.mu.Lock()
	n := len(rc.requests)
	rc.requests = append(rc.requests, r)
	rc.bodies = append(rc.bodies, body)
	status := http.StatusNoContent
	if rc.status != nil {
		status = rc.status(n)
	}
	rc.mu.Unlock()
	if status/100 != 2 {
		http.Error(w, "refused by test", status)
		return
	}
	var objs []json.RawMessage
	if err := json.Unmarshal(body, &objs); err != nil {
		http.Error(w, "not a JSON array: "+err.Error(), http.StatusBadRequest)
		return
	}
	var got []bridge.Sample
	for _, o := range objs {
		s, err := bridge.DecodeJSON(o)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got = append(got, s)
	}
	rc.mu.Lock()
	rc.samples = append(rc.samples, got...)
	rc.mu.Unlock()
	select {
	case rc.arrived <- struct{}{}:
	default:
	}
	w.WriteHeader(status)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.requests)
}

func (rc *receiver) readback(ctx context.Context, want int) ([]bridge.Sample, error) {
	for {
		rc.mu.Lock()
		got := append([]bridge.Sample(nil), rc.samples...)
		rc.mu.Unlock()
		if len(got) >= want {
			return got, nil
		}
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-rc.arrived:
		}
	}
}

func newSink(t *testing.T, cfg httpsink.Config) *httpsink.Sink {
	t.Helper()
	s, err := httpsink.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var sample = bridge.Sample{
	Source: "meter1", Point: "voltage_l1", Value: bridge.Float(230.5), Unit: "V",
	Time: time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC),
}

func TestConformance(t *testing.T) {
	for _, codec := range []string{"", "gzip", "zstd"} {
		t.Run("compression "+codec, func(t *testing.T) {
			// One server, made before the suite (whose goroutine leak
			// check must see only the sink's goroutines), with a
			// receiver per sink under its own path.
			var mu sync.Mutex
			receivers := map[string]*receiver{}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				rc := receivers[r.URL.Path]
				mu.Unlock()
				if rc == nil {
					http.NotFound(w, r)
					return
				}
				rc.ServeHTTP(w, r)
			}))
			defer srv.Close()
			bridgetest.TestSink(t, bridgetest.Harness{
				New: func(t *testing.T) (bridge.Sink, bridgetest.Readback) {
					rc := newReceiver()
					mu.Lock()
					path := "/sink" + strconv.Itoa(len(receivers))
					receivers[path] = rc
					mu.Unlock()
					return newSink(t, httpsink.Config{URL: srv.URL + path, Compression: codec}), rc.readback
				},
			})
		})
	}
}

func TestRequest(t *testing.T) {
	for _, codec := range []string{"", "gzip", "zstd"} {
		rc := newReceiver()
		srv := httptest.NewServer(rc)
		defer srv.Close()
		s := newSink(t, httpsink.Config{
			URL:     srv.URL + "/ingest?site=7",
			Headers: map[string]string{"X-Api-Key": "k1", "content-type": "application/vnd.m2m+json"},
			Token:   "t0ken", Compression: codec, Gzip: codec == "gzip",
		})
		bad := bridge.BadSample("meter1", "current", sample.Time, errors.New("timeout"))
		big := bridge.Sample{Source: "meter1", Point: "n", Value: bridge.Uint(math.MaxUint64), Time: sample.Time}
		require.NoError(t, s.Write(testCtx(t), []bridge.Sample{sample, bad, big}))

		require.Equal(t, 1, rc.count())
		r := rc.requests[0]
		assert.Equal(t, http.MethodPost, r.Method)
		assert.Equal(t, "/ingest", r.URL.Path)
		assert.Equal(t, "7", r.URL.Query().Get("site"))
		assert.Equal(t, "k1", r.Header.Get("X-Api-Key"))
		assert.Equal(t, "Bearer t0ken", r.Header.Get("Authorization"))
		assert.Equal(t, "application/vnd.m2m+json", r.Header.Get("Content-Type"))
		assert.Equal(t, codec, r.Header.Get("Content-Encoding"))
		assert.Equal(t, `[`+
			`{"source":"meter1","point":"voltage_l1","value":230.5,"unit":"V","quality":"good","time":"2026-11-21T10:00:00.123456789Z"},`+
			`{"source":"meter1","point":"current","quality":"bad","time":"2026-11-21T10:00:00.123456789Z","error":"timeout"},`+
			`{"source":"meter1","point":"n","value":18446744073709551615,"quality":"good","time":"2026-11-21T10:00:00.123456789Z"}]`,
			string(rc.bodies[0]))
		assert.Equal(t, httpsink.Stats{Sent: 3}, s.Stats())
	}
}

func TestBasicAuth(t *testing.T) {
	rc := newReceiver()
	srv := httptest.NewServer(rc)
	defer srv.Close()
	s := newSink(t, httpsink.Config{URL: srv.URL, Username: "bridge", Password: "s3cret"})
	require.NoError(t, s.Write(testCtx(t), []bridge.Sample{sample}))
	u, p, ok := rc.requests[0].BasicAuth()
	assert.True(t, ok)
	assert.Equal(t, "bridge", u)
	assert.Equal(t, "s3cret", p)
}

func TestStatusErrors(t *testing.T) {
	t.Run("InvalidAlone", func(t *testing.T) {
		rc := newReceiver()
		rc.status = func(int) int { return http.StatusUnprocessableEntity }
		srv := httptest.NewServer(rc)
		defer srv.Close()
		s := newSink(t, httpsink.Config{URL: srv.URL})
		err := s.Write(testCtx(t), []bridge.Sample{sample})
		var se *httpsink.StatusError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, http.StatusUnprocessableEntity, se.StatusCode)
		assert.Contains(t, se.Body, "refused by test")
		assert.True(t, bridge.IsPermanent(err))
		assert.Equal(t, 1, rc.count(), "no retry")
		assert.Equal(t, httpsink.Stats{Rejected: 1}, s.Stats())
	})
	t.Run("InvalidEach", func(t *testing.T) {
		rc := newReceiver()
		rc.status = func(int) int { return http.StatusBadRequest }
		srv := httptest.NewServer(rc)
		defer srv.Close()
		s := newSink(t, httpsink.Config{URL: srv.URL})
		err := s.Write(testCtx(t), []bridge.Sample{sample, sample})
		var be *bridge.BatchError
		require.ErrorAs(t, err, &be)
		assert.Equal(t, []int{0, 1}, be.Indexes())
		for _, e := range be.Failed {
			assert.True(t, bridge.IsPermanent(e))
		}
		assert.Equal(t, 3, rc.count(), "the batch, then each sample alone")
		assert.Equal(t, httpsink.Stats{Rejected: 2, Splits: 2}, s.Stats())
	})
	t.Run("RedirectToGetRefused", func(t *testing.T) {
		srv := httptest.NewServer(http.RedirectHandler("/elsewhere", http.StatusFound))
		defer srv.Close()
		s := newSink(t, httpsink.Config{URL: srv.URL})
		err := s.Write(testCtx(t), []bridge.Sample{sample})
		var se *httpsink.StatusError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, http.StatusFound, se.StatusCode)
		assert.True(t, bridge.IsRetriable(err), "a configuration problem, not bad data")
	})
	t.Run("CancelWhileWaiting", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		s := newSink(t, httpsink.Config{URL: srv.URL, Timeout: 10 * time.Minute})
		ctx, cancel := context.WithCancel(testCtx(t))
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		err := s.Write(ctx, []bridge.Sample{sample})
		assert.ErrorIs(t, err, context.Canceled)
		assert.Less(t, time.Since(start), 10*time.Second)
	})
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	s := newSink(t, httpsink.Config{URL: srv.URL, Timeout: 100 * time.Millisecond})
	start := time.Now()
	err := s.Write(testCtx(t), []bridge.Sample{sample})
	require.Error(t, err)
	assert.True(t, bridge.IsRetriable(err), "%v", err)
	assert.Less(t, time.Since(start), 5*time.Second)
}

// TestServerGoneAndBack stops the server, checks that writes fail with a
// retriable error, and starts it again on the same address.
func TestServerGoneAndBack(t *testing.T) {
	rc := newReceiver()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	serve := func(ln net.Listener) *http.Server {
		srv := &http.Server{Handler: rc, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		return srv
	}
	srv := serve(ln)
	s := newSink(t, httpsink.Config{URL: "http://" + addr})
	ctx := testCtx(t)
	mk := func(i int) []bridge.Sample {
		return []bridge.Sample{{Source: "m", Point: "p", Value: bridge.Int(int64(i)), Time: time.Unix(0, int64(i))}}
	}
	require.NoError(t, s.Write(ctx, mk(1)))
	require.NoError(t, srv.Close())

	err = s.Write(ctx, mk(2))
	require.Error(t, err)
	assert.True(t, bridge.IsRetriable(err), "%v", err)

	var ln2 net.Listener
	require.Eventually(t, func() bool { ln2, err = net.Listen("tcp", addr); return err == nil }, 10*time.Second, 20*time.Millisecond)
	srv2 := serve(ln2)
	defer srv2.Close()
	require.NoError(t, s.Write(ctx, mk(2)))
	got, err := rc.readback(ctx, 2)
	require.NoError(t, err)
	assert.Empty(t, bridgetest.Match(append(mk(1), mk(2)...), got))
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t)
	caFile := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(caFile, ca.CertPEM, 0o600))
	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	clientCert, clientKey := ca.Issue(t, "bridge-client", x509.ExtKeyUsageClientAuth)
	require.NoError(t, os.WriteFile(certFile, clientCert, 0o600))
	require.NoError(t, os.WriteFile(keyFile, clientKey, 0o600))
	serverCert, serverKey := ca.Issue(t, "127.0.0.1", x509.ExtKeyUsageServerAuth, "127.0.0.1")
	pair, err := tls.X509KeyPair(serverCert, serverKey)
	require.NoError(t, err)

	rc := newReceiver()
	srv := httptest.NewUnstartedServer(rc)
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs: ca.Pool, MinVersion: tls.VersionTLS12,
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes below
	srv.StartTLS()
	defer srv.Close()
	ctx := testCtx(t)

	s := newSink(t, httpsink.Config{URL: srv.URL, CAFile: caFile, CertFile: certFile, KeyFile: keyFile})
	require.NoError(t, s.Write(ctx, []bridge.Sample{sample}))
	got, err := rc.readback(ctx, 1)
	require.NoError(t, err)
	assert.Empty(t, bridgetest.Match([]bridge.Sample{sample}, got))
	assert.Equal(t, "bridge-client", rc.requests[0].TLS.PeerCertificates[0].Subject.CommonName)

	noCert := newSink(t, httpsink.Config{URL: srv.URL, CAFile: caFile})
	assert.Error(t, noCert.Write(ctx, []bridge.Sample{sample}), "the server wants a client certificate")
	untrusted := newSink(t, httpsink.Config{URL: srv.URL, CertFile: certFile, KeyFile: keyFile})
	assert.Error(t, untrusted.Write(ctx, []bridge.Sample{sample}), "the system roots do not trust the test CA")
	assert.Equal(t, 1, rc.count())
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
		cfg  httpsink.Config
		want []string // each field error's "path: msg (hint)", in order
	}{
		{"NoURL", httpsink.Config{}, []string{"url: required (e.g. https://example.com/ingest)"}},
		{"Unparsable", httpsink.Config{URL: "http://[::1"}, []string{`url: "http://[::1": missing ']' in host`}},
		{"Scheme", httpsink.Config{URL: "ftp://host/x"}, []string{`url: "ftp://host/x": scheme "ftp" is not http or https`}},
		{"NoHost", httpsink.Config{URL: "http:///path"}, []string{`url: "http:///path": no host`}},
		{"SecretInURL", httpsink.Config{URL: "ftp://u:S3CRET@h/?key=S3CRET"}, []string{`url: "ftp://u:xxxxx@h/?key=xxxxx": scheme "ftp" is not http or https`}},
		{"Headers", httpsink.Config{URL: "http://h", Headers: map[string]string{"Bad Name": "x", "Content-Length": "1", "X-A": "a\r\nb"}}, []string{
			`headers.Bad Name: "Bad Name" is not a valid header name`,
			"headers.Content-Length: set by the sink",
			"headers.X-A: the value holds a line break or NUL",
		}},
		{"TokenAndBasic", httpsink.Config{URL: "http://h", Token: "t", Username: "u", Password: "p"}, []string{
			"token: not allowed with username: username/password, token and an Authorization header exclude each other",
		}},
		{"TokenAndHeader", httpsink.Config{URL: "http://h", Token: "t", Headers: map[string]string{"authorization": "Basic x"}}, []string{
			"headers.authorization: not allowed with token: username/password, token and an Authorization header exclude each other",
		}},
		{"PasswordWithoutUser", httpsink.Config{URL: "http://h", Password: "p"}, []string{"password: given without username"}},
		{"Compression", httpsink.Config{URL: "http://h", Compression: "zstandard"}, []string{`compression: unknown compression "zstandard": want none, gzip or zstd`}},
		{"GzipAndZstd", httpsink.Config{URL: "http://h", Compression: "zstd", Gzip: true}, []string{`gzip: contradicts compression "zstd": give one of them`}},
		{"EmptyPassword", httpsink.Config{URL: "http://h", Username: "u"}, []string{"password: empty, but username is set (password_env or password_file must name a variable or file that holds the password; one that is set but empty gives an empty password)"}},
		{"CertWithoutKey", httpsink.Config{URL: "https://h", KeyFile: "k.pem"}, []string{"cert_file: required with key_file (give cert_file and key_file together, or neither)"}},
		{"TLSAndFiles", httpsink.Config{URL: "https://h", TLS: &tls.Config{MinVersion: tls.VersionTLS12}, InsecureSkipVerify: true}, []string{
			"insecure_skip_verify: not allowed with TLS set: give the TLS settings one way",
		}},
		{"Several", httpsink.Config{URL: "gopher://h", Timeout: -1, Username: "u", Headers: map[string]string{"Host": "x"}}, []string{
			`url: "gopher://h": scheme "gopher" is not http or https`,
			"headers.Host: set by the sink",
			"password: empty, but username is set (password_env or password_file must name a variable or file that holds the password; one that is set but empty gives an empty password)",
			"timeout: -1ns is outside 100ms to 10m0s",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			assert.Equal(t, tc.want, fieldErrs(err))
			s, nerr := httpsink.New(tc.cfg)
			require.Error(t, nerr)
			assert.Nil(t, s)
			assert.Equal(t, bridge.FieldErrors(err), bridge.FieldErrors(nerr), "New reports what Validate does")
			for _, line := range strings.Split(nerr.Error(), "\n") {
				assert.True(t, strings.HasPrefix(line, "httpsink: "), line)
			}
			assert.NotContains(t, nerr.Error(), "S3CRET")
		})
	}
}

// TestNewTLSFiles: what is wrong with the TLS files is found by New (it
// reads them), not by Validate, at the path of the setting.
func TestNewTLSFiles(t *testing.T) {
	cfg := httpsink.Config{URL: "https://h", CAFile: "/nonexistent/ca.pem"}
	require.NoError(t, cfg.Validate())
	_, err := httpsink.New(cfg)
	fes := bridge.FieldErrors(err)
	require.Len(t, fes, 1, "%v", err)
	assert.Equal(t, "ca_file", fes[0].Path)
}

func BenchmarkAppendBatch(b *testing.B) {
	batch := bridgetest.Samples("meter1", 5000, time.Now())
	buf := httpsink.AppendBatch(nil, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf = httpsink.AppendBatch(buf[:0], batch)
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkWrite posts batches of 5,000 samples to a local httptest server
// that reads and discards them.
func BenchmarkWrite(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	s, err := httpsink.New(httpsink.Config{URL: srv.URL})
	require.NoError(b, err)
	defer s.Close(context.Background())
	batch := bridgetest.Samples("meter1", 5000, time.Now())
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "samples/s")
}

func TestConfigYAML(t *testing.T) {
	var cfg httpsink.Config
	dec := yaml.NewDecoder(strings.NewReader(`
url: https://h/ingest
headers: {X-Api-Key: k}
username: u
password: p
token: t
gzip: true
timeout: 2s
retries: -1
retry_backoff: 50ms
ca_file: ca.pem
cert_file: c.pem
key_file: k.pem
insecure_skip_verify: true
`))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&cfg))
	assert.Equal(t, httpsink.Config{
		URL: "https://h/ingest", Headers: map[string]string{"X-Api-Key": "k"}, Username: "u", Password: "p", Token: "t",
		Gzip: true, Timeout: 2 * time.Second, Retries: -1, RetryBackoff: 50 * time.Millisecond,
		CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem", InsecureSkipVerify: true,
	}, cfg)
}

// TestOutageThroughBridge runs the sink under a Bridge while the server is
// down: the Bridge retries and nothing is lost.
func TestOutageThroughBridge(t *testing.T) {
	rc := newReceiver()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()

	s := newSink(t, httpsink.Config{URL: "http://" + addr, Timeout: time.Second})
	b := bridge.New(bridge.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, b.AddSink("http", s, bridge.SinkOptions{
		BatchSize: 50, Retry: bridge.Retry{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond},
	}))
	ctx := testCtx(t)
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- b.Run(runCtx) }()

	want := bridgetest.Samples("outage", 300, time.Now().Truncate(time.Microsecond))
	delivered := func() uint64 { return b.Stats().Sinks[0].Delivered }
	require.NoError(t, b.Emit(ctx, want[:100]))
	require.Eventually(t, func() bool { return delivered() == 100 }, 20*time.Second, 10*time.Millisecond)

	require.NoError(t, srv.Close())
	require.NoError(t, b.Emit(ctx, want[100:]))
	require.Eventually(t, func() bool { return b.Stats().Sinks[0].Errors > 0 }, 20*time.Second, 10*time.Millisecond)
	var ln2 net.Listener
	require.Eventually(t, func() bool { ln2, err = net.Listen("tcp", addr); return err == nil }, 10*time.Second, 20*time.Millisecond)
	srv2 := &http.Server{Handler: rc, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv2.Serve(ln2) }()
	defer srv2.Close()
	require.Eventually(t, func() bool { return delivered() == 300 }, 20*time.Second, 10*time.Millisecond)
	stop()
	require.NoError(t, <-ran)
	st := b.Stats().Sinks[0]
	assert.Zero(t, st.Rejected+st.Failed+st.Dropped+st.Left)
	got, err := rc.readback(ctx, 300)
	require.NoError(t, err)
	assert.Empty(t, bridgetest.Match(want, got))
}
