// Package influx is a [bridge.Sink] that writes samples to InfluxDB as line
// protocol over HTTP: the v1 write API (POST /write, InfluxDB 1.x and the
// 1.x compatibility endpoints of 2.x and 3.x) or the v2 one (POST
// /api/v2/write, InfluxDB 2.x, 3.x and 1.8+), always with nanosecond
// precision.
//
// # Samples as points
//
// One sample is one point ([Encoder]):
//
//	meter1,point=voltage_l1,unit=V value=230.5 1795255200123456789
//
// Its parts:
//   - measurement: the source;
//   - tags: the point under PointTag ("point"), and the unit under UnitTag
//     ("unit") when the sample has one (a unit is metadata of the series, so
//     it is a tag, not a field; unit_tag "-" leaves it out);
//   - field: the value, typed after its kind: a float as a plain number, an
//     int with the "i" suffix, a uint with "u" (v2) or "i" (v1, see below), a
//     bool as true/false, a string quoted with '"' and '\' escaped.
//     InfluxDB fixes each field's type per measurement, and the points of one
//     source often differ in kind, so by default (fields: by_kind) the field
//     key says the kind: "value" for floats, "value_int", "value_uint",
//     "value_bool" and "value_string" for the others. fields: single writes
//     everything to "value", for sources whose points are all of one kind;
//   - timestamp: the sample's time in Unix nanoseconds; none for the zero
//     time (InfluxDB then uses the time of arrival). InfluxDB stores times
//     from 1677 to 2262 only; others fail with [ErrTimeRange].
//
// The quality is not written: Bad samples are left out (below), Uncertain
// ones are written like Good ones.
//
// Measurement, tag keys, tag values and field keys are escaped as the line
// protocol reference says (comma and space; also '=' in tags and keys).
// InfluxDB 1.x stores no unsigned integers (it rejects the "u" suffix unless
// built with it), so under v1 a uint is written as an integer and one above
// math.MaxInt64 fails with [ErrUintRange]; uint: unsigned overrides this for
// servers that accept "u".
//
// Bad samples hold no reading: they are left out and counted
// (Stats.Skipped). Samples that line protocol cannot carry are reported,
// marked [bridge.Permanent], in a [*bridge.BatchError] and counted
// (Stats.Rejected): a NaN or infinite float ([ErrNotFinite]), a time out of
// range ([ErrTimeRange]), a Good sample
// without a value ([ErrNoValue]), an empty source or point, a source
// starting with '#' (a comment line), a line break in a source, point or
// unit, or a backslash the InfluxDB parser would take for an escape (before
// a space, comma, '=' or another backslash, or at the end) ([ErrName]).
//
// # Compression
//
// compression: gzip sends each body gzip-compressed (Content-Encoding:
// gzip), which InfluxDB 1.x and 2.x decode; line protocol of a poll cycle
// shrinks about fivefold to tenfold. zstd (RFC 8878) is for servers or
// proxies in front of InfluxDB that decode it: InfluxDB 1.x and 2.x take
// gzip or identity only and answer zstd with an error, so the samples stay
// queued and the sink is reported down. gzip: true, the older setting, is
// compression: gzip.
//
// # Settings
//
// [Config] holds them; in YAML (keys in the field tags):
//
//	url: http://127.0.0.1:8086   # http:// or https://; a path is kept as a prefix; required
//	api: v1                      # v1 | v2; default: v1 with database, v2 with bucket
//	database: telemetry          # v1: database (required), retention_policy,
//	retention_policy: ""         #     username and password (HTTP basic authentication;
//	username: bridge             #     the gateway resolves password_env/password_file)
//	password: ...
//	org: my-org                  # v2: org, bucket (required) and token
//	bucket: telemetry            #     ("Authorization: Token ..."; token_env/token_file)
//	token: ...
//	point_tag: point             # tag key of the point
//	unit_tag: unit               # tag key of the unit; "-" for none
//	field: value                 # field key (prefix) of the value
//	fields: by_kind              # by_kind | single
//	uint: integer                # integer (v1 default) | unsigned (v2 default)
//	compression: none            # none (default) | gzip | zstd: compress request bodies
//	timeout: 10s                 # per request
//	ca_file: ca.pem              # https: authorities to trust; empty: the system's
//	cert_file: client.pem        # client certificate and key
//	key_file: client-key.pem
//	insecure_skip_verify: false  # tests only
//
// [Config.Validate] checks every setting without I/O and reports all
// problems at once, each a *bridge.FieldError whose Path is the YAML key
// (an unparsable URL, a scheme other than http or https, v1 and v2
// settings mixed, each at its own key, a missing database or bucket, an
// unusable tag or field key, a misspelt api, fields or uint with a "did you
// mean" Hint; [API], [FieldMode] and [UintMode] also decode strictly from
// YAML). For v1, a username needs a non-empty password (an empty one is
// what a password_env naming a variable that is set but empty gives). [New]
// applies the same rules and reads the TLS files, reporting their problems
// at ca_file or cert_file; it does no network I/O. [Sink.Connect] checks
// that the server answers /ping.
//
// # Errors
//
// Write sends at most 5,000 lines per request (InfluxData's recommended
// batch) and each request once: the Bridge is the one owner of retries. A
// 2xx answer means the lines were written. Only an answer that says the
// data is invalid rejects samples: 400 (bad line protocol, a field type
// conflict) and 422. Every other answer is a configuration, capacity or
// transient problem and is returned as a retriable error, so the samples
// stay queued or spooled: 401 and 403 (the token or the password), 404 (no
// such database or bucket), 408, 429, 5xx, and network errors. A 429 or 503
// answer with Retry-After is wrapped with [bridge.RetryAfter].
//
// A "partial write" answer (400) means InfluxDB kept some lines: when it
// names the lines it refused (1.x quotes the lines it could not parse, 2.x
// and 3.x number them) those samples are rejected, marked
// [bridge.Permanent] in a [*bridge.BatchError], and the others count as
// written. Any other 400 or 422 (2.x writes nothing of a request with a bad
// line; 1.x names no line of a field type conflict) and a 413 Payload Too
// Large split the request (package internal/bisect): the first half is
// sent; when it is written, the second half holds the refused lines and is
// split in turn, else it is sent too; a sample is rejected only when
// InfluxDB refuses it sent alone. Sending a line again that a partial write
// had kept is harmless: a point with the same series and time replaces
// itself. Isolating one bad line in n costs at most 2·⌈log2 n⌉ requests
// after the first (14 for 100 lines); Write stops after 8·⌈log2 n⌉ + 2 and
// fails the lines not yet resolved retriably, for the Bridge to send later.
// A single line that is too large (413) fails retriably: the server's limit
// is a setting to fix. When a request of the split fails otherwise, the
// lines not yet written and the rest of the batch fail with that retriable
// error. All errors from the server are [*StatusError] values; errors print
// the server's URL with its password hidden.
//
// The tests run against Debian's influxd (1.x), which they start themselves
// on a free port with a temporary data directory; they skip when it is not
// installed (and fail under M2MB_INTEROP=1).
//
// # Ranges
//
// [Config.Validate] and [New] refuse a timeout outside 100ms to 10m (0 means the default 10s),
// so that a stalled server cannot hold a shutdown for hours.
//
// # Concurrency
//
// A Sink is safe for concurrent use; Writes are serialised.
package influx
