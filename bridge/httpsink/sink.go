package httpsink

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// maxBackoff caps the wait between retries.
const maxBackoff = 5 * time.Second

// Sink POSTs each batch to a URL as one JSON array of samples. See the
// package documentation for the request and the error mapping.
type Sink struct {
	s      *settings
	client *http.Client
	tr     *http.Transport
	header http.Header

	closed atomic.Bool
	mu     sync.Mutex // serialises Write; guards the buffers
	body   []byte
	zbuf   bytes.Buffer
	gz     *gzip.Writer

	sent, retried, rejected atomic.Uint64
}

var _ bridge.Sink = (*Sink)(nil)

// Stats counts what a Sink did.
type Stats struct {
	// Sent counts samples in batches the server accepted (2xx).
	Sent uint64
	// Retried counts requests sent again after a retriable failure.
	Retried uint64
	// Rejected counts samples in batches the server refused with a 4xx
	// answer (other than 408 and 429): not retried, reported Permanent.
	Rejected uint64
}

// StatusError is an answer other than 2xx.
type StatusError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Body is the start of the answer's body, for the log.
	Body string
}

// Error says what the server answered.
func (e *StatusError) Error() string {
	msg := "httpsink: server answered " + strconv.Itoa(e.StatusCode) + " " + http.StatusText(e.StatusCode)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Retriable reports whether the answer is worth sending the request again
// for: 5xx, 408 Request Timeout and 429 Too Many Requests.
func (e *StatusError) Retriable() bool {
	return e.StatusCode >= 500 || e.StatusCode == http.StatusRequestTimeout || e.StatusCode == http.StatusTooManyRequests
}

// New checks cfg and returns a Sink; it reports every problem of cfg at once.
// It does no network I/O (it reads the TLS files cfg names).
func New(cfg Config) (*Sink, error) {
	s, err := cfg.check()
	if err != nil {
		return nil, err
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
	if s.Gzip {
		h.Set("Content-Encoding", "gzip")
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
				return fmt.Errorf("httpsink: stopped after %d redirects", len(via))
			}
			return nil
		},
	}
	k := &Sink{s: s, client: client, tr: tr, header: h}
	if s.Gzip {
		k.gz, _ = gzip.NewWriterLevel(&k.zbuf, gzip.BestSpeed)
	}
	return k, nil
}

// Stats returns the counters of k. It is safe to call at any time.
func (k *Sink) Stats() Stats {
	return Stats{Sent: k.sent.Load(), Retried: k.retried.Load(), Rejected: k.rejected.Load()}
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

// Write POSTs batch as one JSON array. A failure worth retrying (a 5xx, 408
// or 429 answer, a network error, a timeout) is retried up to Retries times
// with exponential backoff and jitter; then Write returns it, for the Bridge
// to retry later. A 4xx answer is returned at once, marked
// [bridge.Permanent].
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
	k.body = AppendBatch(k.body[:0], batch)
	body := k.body
	if k.gz != nil {
		k.zbuf.Reset()
		k.gz.Reset(&k.zbuf)
		_, _ = k.gz.Write(body)
		_ = k.gz.Close()
		body = k.zbuf.Bytes()
	}
	backoff := k.s.RetryBackoff
	for attempt := 0; ; attempt++ {
		err := k.post(ctx, body)
		if err == nil {
			k.sent.Add(uint64(len(batch)))
			return nil
		}
		if bridge.IsPermanent(err) {
			k.rejected.Add(uint64(len(batch)))
			return err
		}
		if ctx.Err() != nil || attempt >= k.s.Retries {
			return err
		}
		// Full backoff plus up to half again of jitter, so that many
		// bridges do not retry in step.
		wait := backoff + rand.N(backoff/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("httpsink: write: %w (while waiting to retry after: %w)", ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
		k.retried.Add(1)
	}
}

// post sends one request.
func (k *Sink) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, k.s.URL, bytes.NewReader(body))
	if err != nil {
		return bridge.Permanent(fmt.Errorf("httpsink: write: %w", err))
	}
	req.Header = k.header.Clone()
	resp, err := k.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("httpsink: write: %w", ctx.Err())
		}
		return fmt.Errorf("httpsink: write: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	se := &StatusError{StatusCode: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	if se.Retriable() {
		return se
	}
	return bridge.Permanent(se)
}

// Close releases the Sink's idle connections. Every later call returns an
// error wrapping [bridge.ErrClosed]. Write sends everything before it
// returns, so Close has nothing to flush.
func (k *Sink) Close(context.Context) error {
	if k.closed.Swap(true) {
		return fmt.Errorf("httpsink: close: %w", bridge.ErrClosed)
	}
	k.tr.CloseIdleConnections()
	return nil
}
