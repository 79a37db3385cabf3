package httpsink_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
	"github.com/m2mbridge/m2mbridge/bridge/httpsink"
)

// validator is an ingest endpoint that refuses, with 400, any request holding
// a sample whose point is "bad", and with 413 any request of more than max
// samples (when max > 0); it keeps the samples of the requests it takes.
type validator struct {
	max      int
	requests atomic.Int64
	mu       sync.Mutex
	got      map[string]int // by JSON object: how many times delivered
}

func (v *validator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v.requests.Add(1)
	var rd io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		rd = zr
	}
	body, _ := io.ReadAll(rd)
	var raw []json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	objs := make([]struct{ Point string }, len(raw))
	for i := range raw {
		_ = json.Unmarshal(raw[i], &objs[i])
	}
	if v.max > 0 && len(objs) > v.max {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		return
	}
	for _, o := range objs {
		if o.Point == "bad" {
			http.Error(w, `{"error":"invalid sample"}`, http.StatusBadRequest)
			return
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, o := range raw {
		v.got[string(o)]++
	}
	w.WriteHeader(http.StatusNoContent)
}

// batch returns n samples with points "p0", "p1", ..., and "bad" at the
// indexes in bad.
func batch(n int, bad ...int) []bridge.Sample {
	b := make([]bridge.Sample, n)
	for i := range b {
		b[i] = bridge.Sample{Source: "m", Point: "p" + strconv.Itoa(i), Value: bridge.Int(int64(i)), Time: sample.Time}
	}
	for _, i := range bad {
		b[i].Point = "bad"
	}
	return b
}

// TestOneBadSampleIn100 is issue 10 defect 2: a 400 for one invalid sample
// in a batch of 100 rejects that sample only, after splitting the batch,
// and delivers the other 99 exactly once.
func TestOneBadSampleIn100(t *testing.T) {
	for _, bad := range []int{0, 37, 99} {
		t.Run(strconv.Itoa(bad), func(t *testing.T) {
			v := &validator{got: map[string]int{}}
			srv := httptest.NewServer(v)
			defer srv.Close()
			s := newSink(t, httpsink.Config{URL: srv.URL})
			err := s.Write(testCtx(t), batch(100, bad))
			var be *bridge.BatchError
			require.ErrorAs(t, err, &be)
			assert.Equal(t, []int{bad}, be.Indexes())
			assert.True(t, bridge.IsPermanent(be.Failed[bad]))
			assert.Contains(t, be.Failed[bad].Error(), "invalid sample")
			assert.Len(t, v.got, 99)
			for p, n := range v.got {
				assert.Equal(t, 1, n, "%s delivered once", p)
			}
			// 1 + 2·⌈log2 100⌉, the documented bound.
			assert.LessOrEqual(t, v.requests.Load(), int64(1+2*7))
			st := s.Stats()
			assert.Equal(t, uint64(99), st.Sent)
			assert.Equal(t, uint64(1), st.Rejected)
		})
	}
}

func TestTwoBadSamples(t *testing.T) {
	v := &validator{got: map[string]int{}}
	srv := httptest.NewServer(v)
	defer srv.Close()
	s := newSink(t, httpsink.Config{URL: srv.URL, Gzip: true})
	err := s.Write(testCtx(t), batch(1000, 5, 900))
	var be *bridge.BatchError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, []int{5, 900}, be.Indexes())
	assert.Len(t, v.got, 998)
	assert.LessOrEqual(t, v.requests.Load(), int64(1+2*2*10))
}

// TestTooLargeSplits: a 413 for the batch splits it into requests the server
// takes; nothing is rejected.
func TestTooLargeSplits(t *testing.T) {
	v := &validator{max: 30, got: map[string]int{}}
	srv := httptest.NewServer(v)
	defer srv.Close()
	s := newSink(t, httpsink.Config{URL: srv.URL})
	require.NoError(t, s.Write(testCtx(t), batch(100)))
	assert.Len(t, v.got, 100)
	// 100 → 2×50 (413) → 4×25.
	assert.Equal(t, httpsink.Stats{Sent: 100, Splits: 6}, s.Stats())
}

// TestStatusNotBadData: answers that say nothing about the data keep the
// samples: a retriable error, one request, nothing rejected.
func TestStatusNotBadData(t *testing.T) {
	for _, code := range []int{401, 403, 404, 405, 407, 408, 409, 410, 413, 415, 429, 500, 502, 503, 504} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				http.Error(w, "no", code)
			}))
			defer srv.Close()
			s := newSink(t, httpsink.Config{URL: srv.URL})
			in := batch(1)
			if code != http.StatusRequestEntityTooLarge {
				in = batch(3)
			}
			err := s.Write(testCtx(t), in)
			require.Error(t, err)
			assert.False(t, bridge.IsPermanent(err), "%v", err)
			assert.True(t, bridge.IsRetriable(err))
			var se *httpsink.StatusError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, code, se.StatusCode)
			assert.Equal(t, int64(1), n.Load(), "no retry inside the sink: the bridge owns retries")
			assert.Zero(t, s.Stats().Rejected)
		})
	}
}

func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		code   int
		header string
		want   time.Duration
	}{
		{"429Seconds", 429, "7", 7 * time.Second},
		{"503Date", 503, time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat), 90 * time.Second},
		{"503Past", 503, "Mon, 02 Jan 2006 15:04:05 GMT", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", tc.header)
				w.WriteHeader(tc.code)
			}))
			defer srv.Close()
			s := newSink(t, httpsink.Config{URL: srv.URL})
			err := s.Write(testCtx(t), batch(2))
			require.True(t, bridge.IsRetriable(err))
			d, ok := bridge.RetryAfterDelay(err)
			require.True(t, ok, "%v", err)
			assert.InDelta(t, tc.want.Seconds(), d.Seconds(), 2)
		})
	}
}

// TestUnauthorizedKeepsSamples is issue 10 defect 2 through a Bridge: an
// endpoint that answers 401 for a while, then takes the samples: every
// sample is delivered, none rejected.
func TestUnauthorizedKeepsSamples(t *testing.T) {
	var authorised atomic.Bool
	var n401 atomic.Int64
	v := &validator{got: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !authorised.Load() {
			n401.Add(1)
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		v.ServeHTTP(w, r)
	}))
	defer srv.Close()
	s := newSink(t, httpsink.Config{URL: srv.URL})
	b := bridge.New(bridge.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, b.AddSink("http", s, bridge.SinkOptions{
		BatchSize: 10, Retry: bridge.Retry{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond},
	}))
	ctx := testCtx(t)
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- b.Run(runCtx) }()
	want := bridgetest.Samples("auth", 100, time.Now().Truncate(time.Microsecond))
	require.NoError(t, b.Emit(ctx, want))
	require.Eventually(t, func() bool { return n401.Load() >= 5 }, 20*time.Second, time.Millisecond)
	authorised.Store(true)
	require.Eventually(t, func() bool { return b.Stats().Sinks[0].Delivered == 100 }, 20*time.Second, 5*time.Millisecond)
	stop()
	require.NoError(t, <-ran)
	st := b.Stats().Sinks[0]
	assert.Zero(t, st.Rejected)
	assert.Zero(t, s.Stats().Rejected)
	v.mu.Lock()
	assert.Len(t, v.got, 100)
	v.mu.Unlock()
}

// TestErrorsHideSecrets is issue 10 defect 8: an error never prints the
// query values or the password of the URL.
func TestErrorsHideSecrets(t *testing.T) {
	ln := httptest.NewServer(http.NotFoundHandler())
	addr := ln.Listener.Addr().String()
	ln.Close() // nothing listens there now
	s := newSink(t, httpsink.Config{URL: "http://" + addr + "/x?api_key=S3CRET&site=7"})
	err := s.Write(testCtx(t), batch(1))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "S3CRET")
	assert.Contains(t, err.Error(), "api_key=xxxxx")
	assert.True(t, bridge.IsRetriable(err))
}

// TestTimeoutRange is issue 10 defect 6: a timeout that would hold a
// shutdown for hours is refused.
func TestTimeoutRange(t *testing.T) {
	_, err := httpsink.New(httpsink.Config{URL: "http://h", Timeout: 1000 * time.Hour})
	require.ErrorContains(t, err, "timeout: 1000h0m0s is outside 100ms to 10m0s")
}
