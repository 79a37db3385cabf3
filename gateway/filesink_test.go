package gateway

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
)

// TestFileSinkConformance runs the Sink conformance suite on the file
// sink, reading back what reached the file.
func TestFileSinkConformance(t *testing.T) {
	bridgetest.TestSink(t, bridgetest.Harness{
		New: func(t *testing.T) (bridge.Sink, bridgetest.Readback) {
			path := filepath.Join(t.TempDir(), "out.jsonl")
			return &lazyFile{path: path}, func(ctx context.Context, want int) ([]bridge.Sample, error) {
				for {
					var got []bridge.Sample
					if b, err := os.ReadFile(path); err == nil {
						for _, line := range splitLines(b) {
							s, err := bridge.DecodeJSON(line)
							if err != nil {
								return got, err
							}
							got = append(got, s)
						}
					}
					if len(got) >= want {
						return got, nil
					}
					select {
					case <-ctx.Done():
						return got, ctx.Err()
					case <-time.After(5 * time.Millisecond): // poll the file
					}
				}
			}
		},
	})
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		if i > 0 {
			out = append(out, b[:i])
		}
		if i == len(b) {
			break
		}
		b = b[i+1:]
	}
	return out
}
