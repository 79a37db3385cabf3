// Package httpsink is a [bridge.Sink] that POSTs batches of samples to an HTTP
// endpoint as JSON: each Write sends one request whose body is a JSON array of
// the samples' [bridge.AppendJSON] objects ([AppendBatch]):
//
//	[{"source":"meter1","point":"voltage_l1","value":230.5,"unit":"V","quality":"good","time":"2026-11-21T10:00:00.123456789Z"}, ...]
//
// with Content-Type application/json (unless the headers set another), and
// Content-Encoding gzip when Gzip is set. Bad samples are sent too, with
// their "error".
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
//	gzip: false                                 # compress request bodies
//	timeout: 10s                                # per request
//	retries: 2                                  # resends of a request that failed retriably; -1: none
//	retry_backoff: 200ms                        # first wait, doubled each time up to 5s, plus jitter
//	ca_file: ca.pem                             # authorities to trust for https; empty: the system's
//	cert_file: client.pem                       # client certificate and key (mutual TLS)
//	key_file: client-key.pem
//	insecure_skip_verify: false                 # tests only
//
// [New] checks every setting and reports all problems at once (an unparsable
// URL, a scheme other than http or https, an invalid header, two ways of
// authenticating, unreadable TLS files); it does no network I/O.
//
// # Errors and retries
//
// A 2xx answer delivers the whole batch. A 5xx, 408 or 429 answer, a network
// error or a timeout is retried within Write up to Retries times, with
// exponential backoff and jitter, and then returned as a retriable error for
// the Bridge to retry later. Any other answer (4xx, or a 301/302/303
// redirect, which would turn the POST into a GET; 307 and 308 are followed)
// is returned at once as a [*StatusError] marked [bridge.Permanent]: the
// Bridge counts the batch as rejected, and so does [Sink.Stats].
//
// A Sink is safe for concurrent use; Writes are serialised.
package httpsink
