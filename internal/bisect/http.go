package bisect

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// HTTPVerdict maps an HTTP status to a verdict, for an endpoint that takes
// a batch of samples: 2xx Delivered; 400 and 422, the answers that say the
// data is invalid, Invalid; 413 TooLarge; everything else (401, 403, 404,
// 407, 408, 409, 429, 5xx, a redirect not followed) Failed, that is, not
// the data's fault: retriable.
func HTTPVerdict(code int) Verdict {
	switch {
	case code/100 == 2:
		return Delivered
	case code == http.StatusBadRequest, code == http.StatusUnprocessableEntity:
		return Invalid
	case code == http.StatusRequestEntityTooLarge:
		return TooLarge
	}
	return Failed
}

// RetryAfter returns the wait that a 429 or 503 answer asks for in its
// Retry-After header (RFC 9110 section 10.2.3: seconds or an HTTP date,
// taken relative to now), and whether it asks for one. A date in the past
// gives 0 and true.
func RetryAfter(resp *http.Response, now time.Time) (time.Duration, bool) {
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
		return 0, false
	}
	return ParseRetryAfter(resp.Header.Get("Retry-After"), now)
}

// ParseRetryAfter parses the value of a Retry-After header; see
// [RetryAfter]. A malformed or empty value gives false.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseUint(v, 10, 64); err == nil {
		const maxSec = uint64(math.MaxInt64 / int64(time.Second))
		return time.Duration(min(n, maxSec)) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}
