package influx_test

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
	"github.com/m2mbridge/m2mbridge/bridge/influx"
)

// TestConformance runs the bridgetest suite against an in-process server
// that parses line protocol like InfluxDB's /write and /api/v2/write, so it
// runs on a bare machine (TestInfluxdConformance needs influxd).
func TestConformance(t *testing.T) {
	for _, v2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "V1", true: "V2Gzip"}[v2], func(t *testing.T) {
			var mu sync.Mutex
			dbs := map[string]*lineDB{}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				name := r.URL.Query().Get("db") + r.URL.Query().Get("bucket")
				mu.Lock()
				db := dbs[name]
				mu.Unlock()
				if r.URL.Path == "/ping" {
					w.WriteHeader(http.StatusNoContent)
					return
				}
				if db == nil {
					http.Error(w, `{"error":"database not found"}`, http.StatusNotFound)
					return
				}
				db.ServeHTTP(w, r)
			}))
			defer srv.Close()
			bridgetest.TestSink(t, bridgetest.Harness{
				New: func(t *testing.T) (bridge.Sink, bridgetest.Readback) {
					db := &lineDB{arrived: make(chan struct{}, 1)}
					mu.Lock()
					name := "db" + strconv.Itoa(len(dbs))
					dbs[name] = db
					mu.Unlock()
					cfg := influx.Config{URL: srv.URL, Database: name}
					if v2 {
						cfg = influx.Config{URL: srv.URL, Bucket: name, Token: "t", Compression: "gzip"}
					}
					s, err := influx.New(cfg)
					require.NoError(t, err)
					return s, db.readback
				},
			})
		})
	}
}

// lineDB keeps the points written to it.
type lineDB struct {
	mu      sync.Mutex
	got     []bridge.Sample
	arrived chan struct{}
}

func (d *lineDB) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var rd io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rd = zr
	}
	body, err := io.ReadAll(rd)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var got []bridge.Sample
	for _, l := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
		s, err := parseLine(l)
		if err != nil {
			http.Error(w, fmt.Sprintf(`{"error":"unable to parse '%s': %v"}`, l, err), http.StatusBadRequest)
			return
		}
		got = append(got, s)
	}
	d.mu.Lock()
	d.got = append(d.got, got...)
	d.mu.Unlock()
	select {
	case d.arrived <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

func (d *lineDB) readback(ctx context.Context, want int) ([]bridge.Sample, error) {
	for {
		d.mu.Lock()
		got := append([]bridge.Sample(nil), d.got...)
		d.mu.Unlock()
		if len(got) >= want {
			return got, nil
		}
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-d.arrived:
		}
	}
}

// parseLine parses one line of the line protocol the sink writes:
// measurement,tag=v,... field=value timestamp, with backslash escapes and
// double-quoted strings.
func parseLine(l string) (bridge.Sample, error) {
	var s bridge.Sample
	parts := splitLine(l, ' ', true)
	if len(parts) != 3 {
		return s, fmt.Errorf("want 3 parts, got %d", len(parts))
	}
	key := splitLine(parts[0], ',', false)
	s.Source = unescape(key[0])
	for _, tag := range key[1:] {
		kv := splitLine(tag, '=', false)
		if len(kv) != 2 {
			return s, fmt.Errorf("tag %q", tag)
		}
		switch unescape(kv[0]) {
		case "point":
			s.Point = unescape(kv[1])
		case "unit":
			s.Unit = unescape(kv[1])
		}
	}
	kv := splitLine(parts[1], '=', true)
	if len(kv) != 2 {
		return s, fmt.Errorf("field %q", parts[1])
	}
	v := kv[1]
	switch {
	case strings.HasPrefix(v, `"`):
		s.Value = bridge.String(strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(v[1 : len(v)-1]))
	case strings.HasSuffix(v, "i"):
		n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
		if err != nil {
			return s, err
		}
		s.Value = bridge.Int(n)
	case strings.HasSuffix(v, "u"):
		n, err := strconv.ParseUint(v[:len(v)-1], 10, 64)
		if err != nil {
			return s, err
		}
		s.Value = bridge.Uint(n)
	case v == "true" || v == "false":
		s.Value = bridge.Bool(v == "true")
	default:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return s, err
		}
		s.Value = bridge.Float(f)
	}
	ns, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return s, err
	}
	s.Time = time.Unix(0, ns)
	return s, nil
}

// splitUnescaped splits s at sep where it is not escaped by a backslash
// (nor, with quotes, inside a double-quoted string).
func splitLine(s string, sep byte, quotes bool) []string {
	var out []string
	start, inQ := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			i++
		case c == '"' && quotes:
			inQ = !inQ
		case c == sep && !inQ:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
