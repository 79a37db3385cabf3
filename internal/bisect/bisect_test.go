package bisect

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	errInvalid = errors.New("400")
	errLarge   = errors.New("413")
	errDown    = errors.New("503")
)

func classify(err error) Verdict {
	switch err {
	case errInvalid:
		return Invalid
	case errLarge:
		return TooLarge
	}
	return Failed
}

// server refuses a request holding any bad index, or more than max samples.
type server struct {
	bad       map[int]bool
	max       int
	downAfter int // fail every request after this many; 0: never
	n         int
	got       map[int]int
}

func (s *server) send(a, b int) error {
	s.n++
	if s.downAfter > 0 && s.n > s.downAfter {
		return errDown
	}
	if s.max > 0 && b-a > s.max {
		return errLarge
	}
	for i := a; i < b; i++ {
		if s.bad[i] {
			return errInvalid
		}
	}
	for i := a; i < b; i++ {
		s.got[i]++
	}
	return nil
}

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		bad  []int
	}{
		{"OneOfTwo", 2, []int{1}},
		{"FirstOf100", 100, []int{0}},
		{"LastOf100", 100, []int{99}},
		{"MiddleOf100", 100, []int{57}},
		{"TwoOf100", 100, []int{3, 80}},
		{"FourOf5000", 5000, []int{0, 1, 2500, 4999}},
		{"AllOf4", 4, []int{0, 1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &server{bad: map[int]bool{}, got: map[int]int{}}
			for _, b := range tc.bad {
				s.bad[b] = true
			}
			r := Split(0, tc.n, errInvalid, Invalid, s.send, classify, Budget(tc.n))
			assert.Len(t, r.Rejected, len(tc.bad))
			for _, b := range tc.bad {
				assert.Equal(t, errInvalid, r.Rejected[b])
			}
			assert.Empty(t, r.Failed)
			assert.Equal(t, tc.n-len(tc.bad), r.Delivered)
			assert.Len(t, s.got, tc.n-len(tc.bad), "each good sample delivered")
			for i, c := range s.got {
				assert.Equal(t, 1, c, "sample %d delivered once", i)
			}
			assert.Equal(t, r.Requests, s.n)
			logn := 0
			for 1<<logn < tc.n {
				logn++
			}
			assert.LessOrEqual(t, r.Requests, len(tc.bad)*2*logn, "the documented bound")
		})
	}
}

// TestSplitRandom checks, for random positions of one bad sample, the bound
// of 2·⌈log2 n⌉ requests.
func TestSplitRandom(t *testing.T) {
	for range 500 {
		n := 2 + rand.IntN(6000)
		bad := rand.IntN(n)
		s := &server{bad: map[int]bool{bad: true}, got: map[int]int{}}
		r := Split(0, n, errInvalid, Invalid, s.send, classify, Budget(n))
		require.Len(t, r.Rejected, 1)
		require.Contains(t, r.Rejected, bad)
		require.Equal(t, n-1, r.Delivered)
		logn := 0
		for 1<<logn < n {
			logn++
		}
		require.LessOrEqual(t, r.Requests, 2*logn, "n=%d bad=%d", n, bad)
	}
}

func TestSplitTooLarge(t *testing.T) {
	s := &server{bad: map[int]bool{}, max: 300, got: map[int]int{}}
	r := Split(0, 1000, errLarge, TooLarge, s.send, classify, Budget(1000))
	assert.Empty(t, r.Rejected)
	assert.Empty(t, r.Failed)
	assert.Equal(t, 1000, r.Delivered)
	assert.Len(t, s.got, 1000)

	// A single sample too large fails retriably, never rejected.
	one := func(a, b int) error { return errLarge }
	r = Split(0, 2, errLarge, TooLarge, one, classify, Budget(2))
	assert.Empty(t, r.Rejected)
	assert.Len(t, r.Failed, 2)
}

func TestSplitServerFails(t *testing.T) {
	s := &server{bad: map[int]bool{10: true}, downAfter: 2, got: map[int]int{}}
	r := Split(0, 100, errInvalid, Invalid, s.send, classify, Budget(100))
	assert.Empty(t, r.Rejected, "nothing rejected that was not refused alone")
	assert.Equal(t, 100, r.Delivered+len(r.Failed))
	for _, err := range r.Failed {
		assert.Equal(t, errDown, err)
	}
	assert.Equal(t, 3, r.Requests, "no request after the server failed")
}

func TestSplitBudget(t *testing.T) {
	bad := map[int]bool{}
	for i := range 100 {
		bad[i] = true
	}
	s := &server{bad: bad, got: map[int]int{}}
	r := Split(0, 100, errInvalid, Invalid, s.send, classify, Budget(100))
	assert.Equal(t, Budget(100), r.Requests)
	assert.Equal(t, 100, len(r.Rejected)+len(r.Failed))
	assert.NotEmpty(t, r.Rejected)
	for _, err := range r.Failed {
		assert.ErrorIs(t, err, ErrBudget)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"7", 7 * time.Second, true},
		{" 0 ", 0, true},
		{now.Add(time.Minute).Format(http.TimeFormat), time.Minute, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"99999999999999999999", 0, false},
		{"soon", 0, false},
		{"", 0, false},
		{"-5", 0, false},
	} {
		d, ok := ParseRetryAfter(tc.in, now)
		assert.Equal(t, tc.ok, ok, tc.in)
		assert.Equal(t, tc.want, d, tc.in)
	}
	assert.Equal(t, Invalid, HTTPVerdict(422))
	assert.Equal(t, Failed, HTTPVerdict(401))
	assert.Equal(t, TooLarge, HTTPVerdict(413))
	assert.Equal(t, Delivered, HTTPVerdict(204))
}
