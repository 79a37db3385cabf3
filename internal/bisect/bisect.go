// Package bisect finds the samples a server refuses by splitting a refused
// request into halves, as the HTTP and InfluxDB sinks do when a whole batch
// is answered "invalid" (HTTP 400/422) or "too large" (413).
//
// # Bound on requests
//
// A refused range is split in two and the left half is sent. When it is
// delivered, the right half must hold what the server refused, so it is
// split further without being sent on its own (a single sample is always
// sent alone before it is rejected). When the left half is refused, the
// right half is sent too. Isolating one invalid sample in n thus costs at
// most 2·⌈log2 n⌉ requests after the first, and k invalid samples at most
// k·2·⌈log2 n⌉. [Budget] allows enough for four invalid samples per batch
// (8·⌈log2 n⌉ + 2); what is left unresolved when the budget is spent fails
// with a retriable error wrapping [ErrBudget], so that the caller (the
// Bridge) retries exactly those samples later, and the next Write goes on
// splitting them. Nothing is rejected without having been refused alone.
//
// The functions run in the caller's goroutine.
package bisect

import (
	"errors"
	"fmt"
	"math/bits"
)

// Verdict is what a server's answer to one request means for its samples.
type Verdict uint8

// The verdicts.
const (
	// Delivered: the server took every sample of the request.
	Delivered Verdict = iota
	// Invalid: the server refuses the data (HTTP 400, 422): split; a
	// single sample so refused is rejected.
	Invalid
	// TooLarge: the request is too large (HTTP 413): split; a single
	// sample so refused fails retriably (the server's limit is a setting).
	TooLarge
	// Failed: anything else (the server is down, refuses the credentials,
	// the context ended): stop; every sample not yet delivered fails with
	// the error, retriably or not as the error says.
	Failed
)

// ErrBudget is wrapped by the error of the samples left unresolved when
// [Budget] requests were spent.
var ErrBudget = errors.New("bisect: request budget for splitting a refused batch spent")

// Budget returns the most requests [Split] sends for n samples:
// 8·⌈log2 n⌉ + 2, enough to isolate four invalid samples.
func Budget(n int) int {
	if n <= 1 {
		return 2
	}
	return 8*bits.Len(uint(n-1)) + 2
}

// Result is the outcome of [Split].
type Result struct {
	// Rejected holds the indexes the server refused alone with an Invalid
	// verdict, each with the server's error (not yet marked permanent).
	Rejected map[int]error
	// Failed holds the indexes that were not delivered for another reason
	// (TooLarge alone, Failed, the budget spent), each with its error.
	Failed map[int]error
	// Delivered counts the samples delivered.
	Delivered int
	// Requests counts the requests sent.
	Requests int
}

// Split resolves the samples [lo, hi) whose request was answered err, with
// verdict v (Invalid or TooLarge). send sends the samples [a, b) in one
// request; classify tells what its answer means. At most budget requests
// are sent.
func Split(lo, hi int, err error, v Verdict, send func(a, b int) error, classify func(error) Verdict, budget int) Result {
	r := Result{Rejected: map[int]error{}, Failed: map[int]error{}}
	var stop error // set when a request Failed: everything unresolved fails with it
	try := func(a, b int) (error, Verdict) {
		if stop != nil {
			return stop, Failed
		}
		if r.Requests >= budget {
			return fmt.Errorf("%w (%d requests): %w", ErrBudget, r.Requests, err), Failed
		}
		r.Requests++
		e := send(a, b)
		if e == nil {
			return nil, Delivered
		}
		ve := classify(e)
		if ve == Failed {
			stop = e
		}
		return e, ve
	}
	var refused func(a, b int, e error, v Verdict)
	settle := func(a, b int, e error, v Verdict) {
		switch v {
		case Delivered:
			r.Delivered += b - a
		case Invalid, TooLarge:
			refused(a, b, e, v)
		default:
			for i := a; i < b; i++ {
				r.Failed[i] = e
			}
		}
	}
	// refused resolves [a, b), which was sent alone and answered e (v).
	refused = func(a, b int, e error, v Verdict) {
		if b-a == 1 {
			if v == Invalid {
				r.Rejected[a] = e
			} else {
				r.Failed[a] = e
			}
			return
		}
		mid := a + (b-a)/2
		le, lv := try(a, mid)
		settle(a, mid, le, lv)
		if lv == Delivered && v == Invalid && b-mid > 1 {
			// The refusal was for something in the right half.
			refused(mid, b, e, v)
			return
		}
		re, rv := try(mid, b)
		settle(mid, b, re, rv)
	}
	refused(lo, hi, err, v)
	return r
}
