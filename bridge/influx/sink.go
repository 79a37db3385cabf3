package influx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
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

// maxLines is the most lines sent in one request, the batch size InfluxData
// recommends; a larger batch is sent in several requests.
const maxLines = 5000

// Sink writes samples to InfluxDB over HTTP. See the package documentation
// for the mapping of samples to points and of server answers to errors.
type Sink struct {
	s        *settings
	enc      *Encoder
	client   *http.Client
	tr       *http.Transport
	writeURL string
	name     string // the server's URL, redacted, for errors
	pingURL  string

	closed atomic.Bool
	mu     sync.Mutex // serialises Write; guards the buffers below
	buf    []byte
	ends   []int              // ends[k] is the end offset in buf of line k
	idx    []int              // idx[k] is the batch index of line k
	codec  *bodycodec.Encoder // nil without compression

	written, skipped, rejected, splits atomic.Uint64
}

var (
	_ bridge.Sink      = (*Sink)(nil)
	_ bridge.Connector = (*Sink)(nil)
)

// Stats counts what a Sink did with the samples it was given.
type Stats struct {
	// Written counts samples the server accepted.
	Written uint64
	// Skipped counts Bad samples, left out because they hold no reading.
	Skipped uint64
	// Rejected counts samples reported as permanently failed: those line
	// protocol cannot carry (see [ErrName] and the other errors) and those
	// the server refused sent alone (400, 422) or named in a partial write.
	Rejected uint64
	// Splits counts the requests sent to split a request InfluxDB refused
	// (400, 422, 413) to find the lines it refuses.
	Splits uint64
}

// StatusError is an answer from InfluxDB other than success.
type StatusError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is the server's explanation, from the "error" (1.x) or
	// "message" (2.x, 3.x) member of its JSON answer, else its body.
	Message string
	// RetryAfter is the wait a 429 or 503 answer asked for with its
	// Retry-After header; 0 when it asked for none.
	RetryAfter time.Duration
}

// Error says what the server answered.
func (e *StatusError) Error() string {
	return "influx: server answered " + strconv.Itoa(e.StatusCode) + " " + http.StatusText(e.StatusCode) + ": " + e.Message
}

// New checks cfg and returns a Sink; it reports every problem of cfg at
// once: what [Config.Validate] reports and what is wrong with the TLS files,
// each a *bridge.FieldError ([bridge.FieldErrors] walks them) in an error
// whose text puts "influx: " before each. It does no network I/O (it reads
// the TLS files cfg names): the first Write, or Connect, reaches the server.
func New(cfg Config) (*Sink, error) {
	s, err := cfg.build()
	if err != nil {
		return nil, cfgcheck.Wrap("influx", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = s.tls
	tr.MaxIdleConnsPerHost = 4
	// Bodies are sent compressed by us or not at all; never ask for gzip
	// answers to decode.
	tr.DisableCompression = true
	k := &Sink{
		s:      s,
		enc:    NewEncoder(Format{PointTag: s.PointTag, UnitTag: s.UnitTag, Field: s.Field, ByKind: s.byKind, NoUint: s.noUint}),
		client: &http.Client{Transport: tr, Timeout: s.Timeout},
		tr:     tr,
	}
	base := strings.TrimSuffix(s.base.String(), "/")
	q := url.Values{}
	q.Set("precision", "ns")
	if s.v2 {
		if s.Org != "" {
			q.Set("org", s.Org)
		}
		q.Set("bucket", s.Bucket)
		k.writeURL = base + "/api/v2/write?" + q.Encode()
	} else {
		q.Set("db", s.Database)
		if s.RetentionPolicy != "" {
			q.Set("rp", s.RetentionPolicy)
		}
		k.writeURL = base + "/write?" + q.Encode()
	}
	k.pingURL = base + "/ping"
	k.name = redact.URL(base)
	k.codec = bodycodec.New(s.Compression)
	return k, nil
}

// Stats returns the counters of s. It is safe to call at any time.
func (k *Sink) Stats() Stats {
	return Stats{Written: k.written.Load(), Skipped: k.skipped.Load(), Rejected: k.rejected.Load(), Splits: k.splits.Load()}
}

// Connect checks that the server answers its /ping endpoint.
func (k *Sink) Connect(ctx context.Context) error {
	if k.closed.Load() {
		return fmt.Errorf("influx: connect: %w", bridge.ErrClosed)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.pingURL, nil)
	if err != nil {
		return fmt.Errorf("influx: connect: %w", err)
	}
	k.authorize(req)
	resp, err := k.client.Do(req)
	if err != nil {
		return fmt.Errorf("influx: connect %s: %w", k.name, unwrapURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return k.statusError(resp)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	return nil
}

// Write sends batch as line protocol, in requests of at most 5,000 lines.
// Bad samples are left out and counted (Stats.Skipped). Samples that line
// protocol cannot carry are reported, marked [bridge.Permanent], in a
// [*bridge.BatchError], as are the lines a "partial write" answer names;
// the other samples were written.
func (k *Sink) Write(ctx context.Context, batch []bridge.Sample) error {
	if k.closed.Load() {
		return fmt.Errorf("influx: write: %w", bridge.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("influx: write: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed.Load() {
		return fmt.Errorf("influx: write: %w", bridge.ErrClosed)
	}

	var be *bridge.BatchError
	fail := func(i int, err error) {
		if be == nil {
			be = bridge.NewBatchError()
		}
		be.Fail(i, err)
	}
	for start := 0; start < len(batch); {
		// Encode up to maxLines lines.
		k.buf, k.ends, k.idx = k.buf[:0], k.ends[:0], k.idx[:0]
		i := start
		for ; i < len(batch) && len(k.idx) < maxLines; i++ {
			var err error
			if k.buf, err = k.enc.Append(k.buf, &batch[i]); err != nil {
				if err == ErrBadSample {
					k.skipped.Add(1)
					continue
				}
				k.rejected.Add(1)
				fail(i, bridge.Permanent(fmt.Errorf("influx: sample %d (%s/%s): %w", i, batch[i].Source, batch[i].Point, err)))
				continue
			}
			k.ends = append(k.ends, len(k.buf))
			k.idx = append(k.idx, i)
		}
		end := i
		if len(k.idx) == 0 {
			start = end
			continue
		}
		err := k.post(ctx, k.buf)
		if err == nil {
			k.written.Add(uint64(len(k.idx)))
			start = end
			continue
		}
		var se *StatusError
		if errors.As(err, &se) && se.StatusCode == http.StatusBadRequest && strings.Contains(se.Message, "partial write") {
			if lines := k.partial(se.Message); lines != nil {
				// InfluxDB kept the other lines.
				for _, l := range lines {
					fail(k.idx[l], bridge.Permanent(fmt.Errorf("influx: sample %d (%s/%s): %w", k.idx[l], batch[k.idx[l]].Source, batch[k.idx[l]].Point, err)))
				}
				k.rejected.Add(uint64(len(lines)))
				k.written.Add(uint64(len(k.idx) - len(lines)))
				start = end
				continue
			}
		}
		if v := verdict(err); v != bisect.Failed {
			// Find the lines InfluxDB refuses by splitting the request.
			// Sending a line again that was written (a partial write that
			// names no line) is harmless: a point with the same series
			// and time replaces itself.
			r := bisect.Split(0, len(k.idx), err, v, k.postLines(ctx), verdict, bisect.Budget(len(k.idx)))
			k.splits.Add(uint64(r.Requests))
			k.written.Add(uint64(r.Delivered))
			k.rejected.Add(uint64(len(r.Rejected)))
			for l, e := range r.Rejected {
				j := k.idx[l]
				fail(j, bridge.Permanent(fmt.Errorf("influx: sample %d (%s/%s) refused on its own: %w", j, batch[j].Source, batch[j].Point, e)))
			}
			var stop error
			for l, e := range r.Failed {
				fail(k.idx[l], e)
				if !errors.Is(e, bisect.ErrBudget) && verdict(e) == bisect.Failed {
					stop = e
				}
			}
			start = end
			if stop == nil {
				continue
			}
			err = stop // the server failed: the rest is not sent
		} else if start == 0 && end == len(batch) && be == nil {
			// Nothing of the batch was written: a plain error.
			return err
		} else {
			for _, j := range k.idx {
				fail(j, err)
			}
			start = end
		}
		// Fail everything after the chunk: the server is unreachable or
		// failing.
		for j := start; j < len(batch); j++ {
			if batch[j].Quality != bridge.Bad {
				fail(j, err)
			}
		}
		return be
	}
	if be != nil {
		return be
	}
	return nil
}

// postLines returns a function that sends lines [a, b) of k.buf.
func (k *Sink) postLines(ctx context.Context) func(a, b int) error {
	return func(a, b int) error {
		from := 0
		if a > 0 {
			from = k.ends[a-1]
		}
		return k.post(ctx, k.buf[from:k.ends[b-1]])
	}
}

// unwrapURL returns the cause of a *url.Error, whose text holds the URL
// (with its user information): the sink prints its redacted name instead.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// verdict says what the error of one request means for its lines.
func verdict(err error) bisect.Verdict {
	var se *StatusError
	if !errors.As(err, &se) {
		return bisect.Failed
	}
	return bisect.HTTPVerdict(se.StatusCode)
}

// post sends body to the write endpoint.
func (k *Sink) post(ctx context.Context, body []byte) error {
	if k.codec != nil {
		body = k.codec.Encode(body)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, k.writeURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("influx: write: %w", err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if k.codec != nil {
		req.Header.Set("Content-Encoding", k.codec.ContentEncoding())
	}
	k.authorize(req)
	resp, err := k.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("influx: write: %w", ctx.Err())
		}
		return fmt.Errorf("influx: write %s: %w", k.name, unwrapURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil
	}
	return k.statusError(resp)
}

func (k *Sink) authorize(req *http.Request) {
	if k.s.v2 {
		if k.s.Token != "" {
			req.Header.Set("Authorization", "Token "+k.s.Token)
		}
	} else if k.s.Username != "" {
		req.SetBasicAuth(k.s.Username, k.s.Password)
	}
}

// statusError turns a failed answer into a *StatusError. None is
// permanent: Write rejects a sample only when InfluxDB refuses it alone
// (400, 422); other answers are configuration, capacity or transient
// problems. A 429 or 503 answer's Retry-After is passed on with
// [bridge.RetryAfter].
func (k *Sink) statusError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	msg := strings.TrimSpace(string(body))
	var j struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &j) == nil {
		if j.Error != "" {
			msg = j.Error
		} else if j.Message != "" {
			msg = j.Message
		}
	}
	err := &StatusError{StatusCode: resp.StatusCode, Message: msg}
	if d, ok := bisect.RetryAfter(resp, time.Now()); ok {
		err.RetryAfter = d
		return bridge.RetryAfter(err, d)
	}
	return err
}

var (
	droppedRe = regexp.MustCompile(`dropped=(\d+)`)
	lineNoRe  = regexp.MustCompile(`(?m)\bline (\d+):`)
)

// partial finds the lines of the last request that a "partial write" answer
// names, as indexes into k.idx: InfluxDB 1.x quotes each line it could not
// parse ("unable to parse '<line>': ..."), 2.x numbers them ("line 3:"
// counting from 1). It returns nil when it cannot tell which lines were
// dropped (a field type conflict names none): when none is named or when
// the answer says it dropped other lines too ("dropped=N" with N > 0).
func (k *Sink) partial(msg string) []int {
	var lines []int
	seen := map[int]bool{}
	const marker = "unable to parse '"
	if strings.Contains(msg, marker) {
		byText := make(map[string]int, len(k.ends))
		from := 0
		for l, e := range k.ends {
			byText[string(k.buf[from:e-1])] = l
			from = e
		}
		rest := msg
		for {
			i := strings.Index(rest, marker)
			if i < 0 {
				break
			}
			rest = rest[i+len(marker):]
			j := strings.Index(rest, "': ")
			if j < 0 {
				break
			}
			if l, ok := byText[rest[:j]]; ok && !seen[l] {
				seen[l] = true
				lines = append(lines, l)
			}
			rest = rest[j:]
		}
	} else {
		for _, m := range lineNoRe.FindAllStringSubmatch(msg, -1) {
			n, err := strconv.Atoi(m[1])
			if err == nil && n >= 1 && n <= len(k.idx) && !seen[n-1] {
				seen[n-1] = true
				lines = append(lines, n-1)
			}
		}
	}
	if len(lines) == 0 {
		return nil
	}
	// InfluxDB 1.x counts in dropped=N the points it dropped for other
	// reasons than parsing (type conflicts), which it does not name.
	if m := droppedRe.FindStringSubmatch(msg); m != nil && m[1] != "0" {
		return nil
	}
	return lines
}

// Close releases the Sink's idle connections. Every later call returns an
// error wrapping [bridge.ErrClosed]. Write sends everything before it
// returns, so Close has nothing to flush.
func (k *Sink) Close(ctx context.Context) error {
	if k.closed.Swap(true) {
		return fmt.Errorf("influx: close: %w", bridge.ErrClosed)
	}
	k.tr.CloseIdleConnections()
	return nil
}
