// Package bodycodec compresses the request bodies of the HTTP and InfluxDB
// sinks: the compression setting's names and check, and an encoder that
// reuses its buffers. An Encoder is used by one goroutine at a time.
package bodycodec

import (
	"bytes"
	"compress/gzip"
	"fmt"

	"github.com/klauspost/compress/zstd"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/cfgcheck"
)

// The names of the compression setting; "" is None.
const (
	None = "none"
	Gzip = "gzip"
	Zstd = "zstd"
)

// Check returns a field error at path when name is not a compression.
func Check(path, name string) *bridge.FieldError {
	switch name {
	case "", None, Gzip, Zstd:
		return nil
	}
	return cfgcheck.Enum(path, "compression", name, None, Gzip, Zstd)
}

// Choose checks a sink's compression setting beside its older gzip flag
// and returns the codec to use: compression's, or gzip when only the flag
// is set. It returns a field error when compression is not a codec or the
// two contradict each other.
func Choose(compression string, gzipFlag bool) (string, *bridge.FieldError) {
	if fe := Check("compression", compression); fe != nil {
		return compression, fe
	}
	if !gzipFlag {
		return compression, nil
	}
	if compression != "" && compression != Gzip {
		return compression, &bridge.FieldError{Path: "gzip", Msg: fmt.Sprintf("contradicts compression %q: give one of them", compression)}
	}
	return Gzip, nil
}

// Encoder compresses bodies with one codec.
type Encoder struct {
	name string
	buf  bytes.Buffer
	out  []byte // zstd's output, reused
	gz   *gzip.Writer
	zs   *zstd.Encoder
}

// New returns the encoder for a checked name, or nil for none.
func New(name string) *Encoder {
	e := &Encoder{name: name}
	switch name {
	case Gzip:
		// The fastest level: bodies are batches of JSON or line protocol
		// that compress well at any level; the CPU of a small gateway is
		// the scarcer resource.
		e.gz, _ = gzip.NewWriterLevel(&e.buf, gzip.BestSpeed)
	case Zstd:
		e.zs, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithZeroFrames(true))
	default:
		return nil
	}
	return e
}

// ContentEncoding is the value of the Content-Encoding header (RFC 9110
// section 8.4.1; "zstd" is RFC 8878 section 7.2).
func (e *Encoder) ContentEncoding() string { return e.name }

// Encode returns body compressed. The result is valid until the next call.
func (e *Encoder) Encode(body []byte) []byte {
	if e.zs != nil {
		e.out = e.zs.EncodeAll(body, e.out[:0])
		return e.out
	}
	e.buf.Reset()
	e.gz.Reset(&e.buf)
	_, _ = e.gz.Write(body)
	_ = e.gz.Close()
	return e.buf.Bytes()
}

// Close releases the encoder's resources.
func (e *Encoder) Close() {
	if e.zs != nil {
		_ = e.zs.Close()
	}
}
