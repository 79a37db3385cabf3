package influx_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/influx"
)

// lineServer answers like InfluxDB: a request holding a line of the point
// "bad" is refused with 400, the whole request (2.x: "no points written") or,
// with partial, the other lines written and the refused ones not named
// (1.x field type conflict); more than max lines gives 413.
type lineServer struct {
	partial bool
	max     int
	mu      sync.Mutex
	n       int
	got     map[string]int // line → times written
}

func (s *lineServer) answer(_ int, body string) (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	if s.max > 0 && len(lines) > s.max {
		return 413, `{"code":"request too large","message":"too large"}`
	}
	bad := 0
	for _, l := range lines {
		if strings.Contains(l, "point=bad ") {
			bad++
		} else if s.partial {
			s.got[l]++
		}
	}
	switch {
	case bad > 0 && s.partial:
		return 400, `{"error":"partial write: field type conflict: input field \"value\" on measurement \"m\" is type integer, already exists as type float dropped=` + strconv.Itoa(bad) + `"}`
	case bad > 0:
		return 400, `{"code":"invalid","message":"failed to parse line protocol: errors encountered on line(s): unable to parse points"}`
	}
	if !s.partial {
		for _, l := range lines {
			s.got[l]++
		}
	}
	return 204, ""
}

func samples(n int, bad ...int) []bridge.Sample {
	b := make([]bridge.Sample, n)
	for i := range b {
		b[i] = bridge.Sample{Source: "m", Point: "p" + strconv.Itoa(i), Value: bridge.Float(float64(i)), Time: t0}
	}
	for _, i := range bad {
		b[i].Point = "bad"
	}
	return b
}

// TestOneBadLineIn100 is issue 10 defect 2 for InfluxDB: a 400 for one bad
// line in 100 rejects that sample only, found by splitting the request.
func TestOneBadLineIn100(t *testing.T) {
	for _, partial := range []bool{false, true} {
		t.Run("partial="+strconv.FormatBool(partial), func(t *testing.T) {
			ls := &lineServer{partial: partial, got: map[string]int{}}
			f := &fakeServer{answer: ls.answer}
			s := sinkFor(t, influx.Config{URL: serve(t, f), Bucket: "b"})
			err := s.Write(ctxT(t), samples(100, 42))
			var be *bridge.BatchError
			require.ErrorAs(t, err, &be)
			assert.Equal(t, []int{42}, be.Indexes())
			assert.True(t, bridge.IsPermanent(be.Failed[42]))
			assert.Len(t, ls.got, 99, "every good line written")
			if !partial {
				for l, n := range ls.got {
					assert.Equal(t, 1, n, "%s written once", l)
				}
			}
			assert.LessOrEqual(t, ls.n, 1+2*7)
			st := s.Stats()
			assert.Equal(t, uint64(1), st.Rejected)
			assert.Equal(t, uint64(ls.n-1), st.Splits)
		})
	}
}

// TestTooLargeSplits: 413 splits the request instead of rejecting it.
func TestTooLargeSplits(t *testing.T) {
	ls := &lineServer{max: 40, got: map[string]int{}}
	f := &fakeServer{answer: ls.answer}
	s := sinkFor(t, influx.Config{URL: serve(t, f), Database: "db"})
	require.NoError(t, s.Write(ctxT(t), samples(100)))
	assert.Len(t, ls.got, 100)
	assert.Equal(t, influx.Stats{Written: 100, Splits: 6}, s.Stats())

	// A single line too large fails retriably.
	f.answer = func(int, string) (int, string) { return 413, "too large" }
	err := s.Write(ctxT(t), samples(1))
	assert.True(t, bridge.IsRetriable(err), "%v", err)
}

// TestServerFailsWhileSplitting: when the server goes away during a split,
// the samples not yet written fail retriably; none is rejected.
func TestServerFailsWhileSplitting(t *testing.T) {
	ls := &lineServer{got: map[string]int{}}
	f := &fakeServer{answer: func(n int, body string) (int, string) {
		if n >= 2 {
			return 503, "down"
		}
		return ls.answer(n, body)
	}}
	s := sinkFor(t, influx.Config{URL: serve(t, f), Bucket: "b"})
	batch := samples(6000, 10) // two chunks: 5,000 and 1,000
	err := s.Write(ctxT(t), batch)
	var be *bridge.BatchError
	require.ErrorAs(t, err, &be)
	assert.Zero(t, s.Stats().Rejected)
	assert.Equal(t, 6000, len(be.Failed)+len(ls.got))
	for _, e := range be.Failed {
		assert.True(t, bridge.IsRetriable(e), "%v", e)
	}
}

func TestRetryAfter(t *testing.T) {
	f := &fakeServer{}
	f.answer = func(int, string) (int, string) { return 429, `{"code":"too many requests"}` }
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3")
		f.ServeHTTP(w, r)
	}))
	s := sinkFor(t, influx.Config{URL: srv, Bucket: "b"})
	err := s.Write(ctxT(t), samples(3))
	require.True(t, bridge.IsRetriable(err))
	d, ok := bridge.RetryAfterDelay(err)
	require.True(t, ok)
	assert.Equal(t, 3*time.Second, d)
}

func TestErrorsHideSecrets(t *testing.T) {
	f := &fakeServer{}
	u := serve(t, f)
	s := sinkFor(t, influx.Config{URL: strings.Replace(u, "http://", "http://bridge:S3CRET@", 1), Database: "db"})
	f.answer = func(int, string) (int, string) { return 500, "" }
	require.Error(t, s.Write(ctxT(t), samples(1)))
	// A network error quotes the URL.
	s2 := sinkFor(t, influx.Config{URL: "http://bridge:S3CRET@127.0.0.1:1", Database: "db"})
	err := s2.Write(ctxT(t), samples(1))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "S3CRET")
	assert.NotContains(t, s2.Connect(ctxT(t)).Error(), "S3CRET")
}

// TestTimeoutRange is issue 10 defect 6.
func TestTimeoutRange(t *testing.T) {
	_, err := influx.New(influx.Config{URL: "http://h", Database: "d", Timeout: 1000 * time.Hour})
	require.ErrorContains(t, err, "timeout: 1000h0m0s is outside 100ms to 10m0s")
}
