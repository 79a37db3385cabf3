package influx_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/influx"
)

// TestCompression: compression sets the Content-Encoding and the body
// decodes with the reference decoder (klauspost/compress's zstd; gzip in
// fakeServer by compress/gzip); a contradiction or an unknown codec is
// refused at its key.
func TestCompression(t *testing.T) {
	samples := []bridge.Sample{
		{Source: "m", Point: "p", Value: bridge.Float(1.25), Unit: "A", Time: t0},
		{Source: "m", Point: "q", Value: bridge.Int(7), Time: t0},
	}
	const want = "m,point=p,unit=A value=1.25 1795255200123456789\nm,point=q value_int=7i 1795255200123456789\n"
	for _, codec := range []string{"gzip", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			var got []byte
			var ce string
			url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ce = r.Header.Get("Content-Encoding")
				body, _ := io.ReadAll(r.Body)
				switch ce {
				case "zstd":
					d, err := zstd.NewReader(nil)
					require.NoError(t, err)
					defer d.Close()
					got, err = d.DecodeAll(body, nil)
					require.NoError(t, err)
				default:
					f := &fakeServer{}
					r.Body = io.NopCloser(bytes.NewReader(body))
					f.ServeHTTP(w, r)
					got = []byte(f.bodies[0])
					return
				}
				w.WriteHeader(http.StatusNoContent)
			}))
			s := sinkFor(t, influx.Config{URL: url, Database: "db", Compression: codec})
			require.NoError(t, s.Write(ctxT(t), samples))
			assert.Equal(t, codec, ce)
			assert.Equal(t, want, string(got))
		})
	}
	assert.Equal(t, []string{`compression: unknown compression "brotli": want none, gzip or zstd`},
		fieldErrs(influx.Config{URL: "http://h", Database: "db", Compression: "brotli"}.Validate()))
	assert.Equal(t, []string{`gzip: contradicts compression "none": give one of them`},
		fieldErrs(influx.Config{URL: "http://h", Database: "db", Compression: "none", Gzip: true}.Validate()))
}

// TestInfluxdAcceptsGzip: InfluxDB 1.x takes a gzip body (Content-Encoding:
// gzip) and stores every sample of it.
func TestInfluxdAcceptsGzip(t *testing.T) {
	d := startInfluxd(t)
	db := d.newDB(t)
	s := newV1(t, d, db, func(c *influx.Config) { c.Compression = "gzip" })
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	var batch []bridge.Sample
	for i := range 200 {
		batch = append(batch, bridge.Sample{Source: "meter1", Point: "voltage_l1", Value: bridge.Float(230 + float64(i%7)/10), Unit: "V", Time: t0.Add(time.Duration(i) * time.Second)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, s.Write(ctx, batch))
	got, err := d.readAll(db)
	require.NoError(t, err)
	require.Len(t, got, len(batch))
	for i := range batch {
		assert.True(t, batch[i].Value.Equal(got[i].Value), "%d: %v", i, got[i].Value)
		assert.True(t, batch[i].Time.Equal(got[i].Time), "%d", i)
	}
}
