// Package faultsuite holds the project's end-to-end fault tests: the
// gateway, configured from YAML as a user configures it, run in-process
// against a hostile environment on 127.0.0.1 only: an HTTP endpoint that
// answers 401, 429, 503 or refuses one bad sample, a broker behind a proxy
// that is cut and restored, a spool on a file-size-limited process.
//
// Each test asserts the figures, not just the absence of errors: the
// samples every source produced (recorded by a reference sink that never
// fails) against those the sink under attack delivered, by source, point
// and seq; duplicates only with an equal seq and equal contents; counters
// that add up at every scrape (bridge.SinkStats); the time to recover.
//
// The tests are bounded (seconds each) and run with `go test ./...`. The
// same scenarios run as a soak for release checks, for as long as you ask,
// with faults switched on and off in cycles:
//
//	M2MB_SOAK=10m go test -run Soak -timeout 0 -v ./internal/faultsuite
//
// The package has no non-test code.
package faultsuite
