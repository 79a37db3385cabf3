package httpsink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/bisect"
	"github.com/m2mbridge/m2mbridge/internal/bodycodec"
	"github.com/m2mbridge/m2mbridge/internal/cfgcheck"
	"github.com/m2mbridge/m2mbridge/internal/redact"
)

// Sink POSTs each batch to a URL as one JSON array of samples. See the
// package documentation for the request and the error mapping.
type Sink struct {
	s      *settings
	name   string // the URL, redacted, for errors
	client *http.Client
	tr     *http.Transport
	header http.Header

	closed atomic.Bool
	mu     sync.Mutex // serialises Write; guards the buffers
	body   []byte
	enc    *bodycodec.Encoder // nil without compression

	sent, splits, rejected atomic.Uint64
}

var _ bridge.Sink = (*Sink)(nil)

// Stats counts what a Sink did.
type Stats struct {
	// Sent counts samples in batches the server accepted (2xx).
	Sent uint64
	// Splits counts the requests sent to split a batch the server refused
	// as invalid (400, 422) or too large (413), to find the samples it
	// refuses (see the package documentation).
	Splits uint64
	// Rejected counts samples the server refused as invalid (400 or 422)
	// when sent alone: reported [bridge.Permanent].
	Rejected uint64
}

// StatusError is an answer other than 2xx.
type StatusError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Body is the start of the answer's body, for the log.
	Body string
	// RetryAfter is the wait a 429 or 503 answer asked for with its
	// Retry-After header; 0 when it asked for none.
	RetryAfter time.Duration
}

// Error says what the server answered.
func (e *StatusError) Error() string {
	msg := "httpsink: server answered " + strconv.Itoa(e.StatusCode) + " " + http.StatusText(e.StatusCode)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	if e.RetryAfter > 0 {
		msg += " (retry after " + e.RetryAfter.String() + ")"
	}
	return msg
}

// Invalid reports whether the answer says the data is invalid: 400 Bad
// Request or 422 Unprocessable Content, the only answers after which a
// sample, sent alone, is rejected.
func (e *StatusError) Invalid() bool { return bisect.HTTPVerdict(e.StatusCode) == bisect.Invalid }

// Retriable reports whether the answer leaves the samples to be sent again
// later: every answer but 400 and 422 ([StatusError.Invalid]). 401, 403,
// 404, 405, 407, 409 and the other 4xx answers are configuration problems,
// 408, 413, 429 and 5xx capacity or transient ones; none says the data is
// bad.
func (e *StatusError) Retriable() bool { return !e.Invalid() }

// New checks cfg and returns a Sink; it reports every problem of cfg at
// once: what [Config.Validate] reports and what is wrong with the TLS files,
// each a *bridge.FieldError ([bridge.FieldErrors] walks them) in an error
// whose text puts "httpsink: " before each. It does no network I/O (it
// reads the TLS files cfg names).
func New(cfg Config) (*Sink, error) {
	s, err := cfg.build()
	if err != nil {
		return nil, cfgcheck.Wrap("httpsink", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = s.tls
	tr.DisableCompression = true
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	for k, v := range s.Headers {
		h.Set(k, v)
	}
	switch {
	case s.Token != "":
		h.Set("Authorization", "Bearer "+s.Token)
	case s.Username != "":
		r := http.Request{Header: http.Header{}}
		r.SetBasicAuth(s.Username, s.Password)
		h.Set("Authorization", r.Header.Get("Authorization"))
	}
	enc := bodycodec.New(s.Compression)
	if enc != nil {
		h.Set("Content-Encoding", enc.ContentEncoding())
	}
	client := &http.Client{
		Transport: tr,
		Timeout:   s.Timeout,
		// 307 and 308 keep the method and body and are followed; 301,
		// 302 and 303 would turn the POST into a GET without the batch,
		// so they end the request as an error instead.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.Method != http.MethodPost {
				return http.ErrUseLastResponse
			}
			if len(via) >= 5 {
				return fmt.Errorf("httpsink: stopped after %d redirects (to %s)", len(via), redact.URL(req.URL.String()))
			}
			return nil
		},
	}
	return &Sink{s: s, name: redact.URL(s.URL), client: client, tr: tr, header: h, enc: enc}, nil
}

// Stats returns the counters of k. It is safe to call at any time.
func (k *Sink) Stats() Stats {
	return Stats{Sent: k.sent.Load(), Splits: k.splits.Load(), Rejected: k.rejected.Load()}
}

// AppendBatch appends the request body for batch to dst: a JSON array of the
// samples' [bridge.AppendJSON] encodings.
func AppendBatch(dst []byte, batch []bridge.Sample) []byte {
	dst = append(dst, '[')
	for i := range batch {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = bridge.AppendJSON(dst, &batch[i])
	}
	return append(dst, ']')
}

// Write POSTs batch as one JSON array and maps the answer (see the package
// documentation): nil for a 2xx answer; a retriable error (with
// [bridge.RetryAfter] when a 429 or 503 answer says when) for a network
// error, a timeout and every answer but 400 and 422; for 400 or 422 (and
// 413) it splits the batch to find the samples the server refuses alone,
// and returns a [*bridge.BatchError] that names them, marked
// [bridge.Permanent]. Write never retries a request itself: the Bridge owns
// retries.
func (k *Sink) Write(ctx context.Context, batch []bridge.Sample) error {
	if k.closed.Load() {
		return fmt.Errorf("httpsink: write: %w", bridge.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("httpsink: write: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed.Load() {
		return fmt.Errorf("httpsink: write: %w", bridge.ErrClosed)
	}
	if len(batch) == 0 {
		return nil
	}
	err := k.send(ctx, batch)
	if err == nil {
		k.sent.Add(uint64(len(batch)))
		return nil
	}
	v := verdict(err)
	switch {
	case v == bisect.Failed:
		return err
	case len(batch) == 1 && v == bisect.Invalid:
		k.rejected.Add(1)
		return bridge.Permanent(err)
	case len(batch) == 1:
		return err
	}
	r := bisect.Split(0, len(batch), err, v, func(a, b int) error { return k.send(ctx, batch[a:b]) }, verdict, bisect.Budget(len(batch)))
	k.splits.Add(uint64(r.Requests))
	k.sent.Add(uint64(r.Delivered))
	k.rejected.Add(uint64(len(r.Rejected)))
	if len(r.Rejected)+len(r.Failed) == 0 {
		return nil // a 413 batch delivered in parts
	}
	be := bridge.NewBatchError()
	for i, e := range r.Rejected {
		be.Fail(i, bridge.Permanent(fmt.Errorf("httpsink: sample %d (%s/%s) refused on its own: %w", i, batch[i].Source, batch[i].Point, e)))
	}
	for i, e := range r.Failed {
		be.Fail(i, e)
	}
	return be
}

// verdict says what the error of one request means for its samples.
func verdict(err error) bisect.Verdict {
	var se *StatusError
	if !errors.As(err, &se) {
		return bisect.Failed
	}
	return bisect.HTTPVerdict(se.StatusCode)
}

// send encodes batch and POSTs it.
func (k *Sink) send(ctx context.Context, batch []bridge.Sample) error {
	k.body = AppendBatch(k.body[:0], batch)
	body := k.body
	if k.enc != nil {
		body = k.enc.Encode(body)
	}
	return k.post(ctx, body)
}

// post sends one request.
func (k *Sink) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, k.s.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("httpsink: write %s: %w", k.name, err)
	}
	req.Header = k.header.Clone()
	resp, err := k.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("httpsink: write %s: %w", k.name, ctx.Err())
		}
		return fmt.Errorf("httpsink: write: %w", redact.Error(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	se := &StatusError{StatusCode: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	if d, ok := bisect.RetryAfter(resp, time.Now()); ok {
		se.RetryAfter = d
		return bridge.RetryAfter(se, d)
	}
	return se
}

// Close releases the Sink's idle connections. Every later call returns an
// error wrapping [bridge.ErrClosed]. Write sends everything before it
// returns, so Close has nothing to flush.
func (k *Sink) Close(context.Context) error {
	if k.closed.Swap(true) {
		return fmt.Errorf("httpsink: close: %w", bridge.ErrClosed)
	}
	k.tr.CloseIdleConnections()
	if k.enc != nil {
		k.mu.Lock()
		k.enc.Close()
		k.mu.Unlock()
	}
	return nil
}
