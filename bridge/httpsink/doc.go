// Package httpsink is a [bridge.Sink] that POSTs batches of samples to an HTTP
// endpoint as JSON: each Write sends one request whose body is a JSON array of
// the samples' [bridge.AppendJSON] objects ([AppendBatch]):
//
//	[{"source":"meter1","point":"voltage_l1","value":230.5,"unit":"V","quality":"good","time":"2026-11-21T10:00:00.123456789Z"}, ...]
//
// with Content-Type application/json (unless the headers set another), and
// the body compressed with gzip or zstd (RFC 8878), with that
// Content-Encoding, when Compression is set (Gzip is compression: gzip,
// as written before there was a choice). A JSON batch of samples shrinks
// about tenfold with either; zstd takes less CPU for the same size. Bad
// samples are sent too, with their "error".
//
// # Settings
//
// [Config] holds them; in YAML (keys in the field tags):
//
//	url: https://ingest.example.com/v1/samples   # http:// or https://; required
//	headers: {X-Api-Key: "..."}                 # added to every request
//	username: bridge                            # HTTP basic authentication; the gateway
//	password: ...                               #   resolves password_env/password_file
//	token: ...                                  # or "Authorization: Bearer <token>" (token_env/token_file)
//	compression: none                           # none (default) | gzip | zstd: compress request bodies
//	timeout: 10s                                # per request
//	ca_file: ca.pem                             # authorities to trust for https; empty: the system's
//	cert_file: client.pem                       # client certificate and key (mutual TLS)
//	key_file: client-key.pem
//	insecure_skip_verify: false                 # tests only
//
// [Config.Validate] checks every setting without I/O and reports all
// problems at once, each a *bridge.FieldError whose Path is the YAML key
// (an unparsable URL at "url", an invalid header at "headers.<name>", a
// second way of authenticating at its key). A username needs a non-empty
// password (an empty one is what a password_env naming a variable that is
// set but empty gives); for a server that takes a key as the user name with
// an empty password, set the Authorization header. [New] applies the same
// rules and reads the TLS files, reporting their problems at ca_file or
// cert_file; it does no network I/O.
//
// # Errors and retries
//
// Write sends each request once: the Bridge is the one owner of retries
// (its Retry, with backoff and jitter; the sink is reported down meanwhile).
// The deprecated settings retries and retry_backoff are accepted and
// ignored; [Config.Deprecations] reports them.
//
// A 2xx answer delivers the whole batch. Only an answer that says the data
// is invalid rejects samples: 400 Bad Request and 422 Unprocessable Content.
// Every other answer is a configuration, capacity or transient problem and
// returns a retriable [*StatusError], so the samples stay queued or spooled:
// 401, 403 and 407 (credentials), 404, 405, 409, 410, 415 and any other
// 4xx, a 301/302/303 redirect (which would turn the POST into a GET; 307 and
// 308 are followed), 408, 429 and every 5xx, as well as network errors and
// timeouts. A 429 or 503 answer with a Retry-After header (seconds or an
// HTTP date) is wrapped with [bridge.RetryAfter], so the Bridge waits at
// least that long.
//
// On 400 or 422 for a batch of more than one sample, Write splits the batch
// to find the samples the server refuses (package internal/bisect): it
// sends the first half; when that is taken, the second half holds the
// refused data and is split in turn, else it is sent too. A sample is
// rejected only when the server refuses it sent alone. Write then returns a
// [*bridge.BatchError] naming exactly the rejected samples, each marked
// [bridge.Permanent] (the Bridge keeps them in its dead-letter file); the
// other samples were delivered, each once. Isolating one invalid sample in n
// costs at most 2·⌈log2 n⌉ requests after the first (14 for 100 samples),
// k invalid samples at most k times that; Write stops after 8·⌈log2 n⌉ + 2
// requests, failing the samples not yet resolved with a retriable error, so
// that the Bridge sends them again later. A 413 Payload Too Large answer
// splits the batch the same way (each half is sent); a single sample the
// server finds too large fails retriably, since the server's limit is a
// setting to fix. When a request of the split fails otherwise (the server
// goes away, 401, a timeout), the samples not yet delivered fail with that
// retriable error. [Sink.Stats] counts the requests of the splits and the
// rejected samples.
//
// Errors print the URL with its password and query values hidden
// ("?api_key=xxxxx").
//
// # Ranges
//
// [Config.Validate] and [New] refuse a timeout outside 100ms to 10m (0 means the default 10s),
// so that a stalled server cannot hold a shutdown for hours.
//
// # Concurrency
//
// A Sink is safe for concurrent use; Writes are serialised.
package httpsink
