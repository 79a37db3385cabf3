package bodycodec

import (
	"bytes"
	"compress/gzip"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Each codec's output is read back by its reference decoder, twice in a
// row (the buffers are reused).
func TestEncodeDecodesWithTheReferenceDecoder(t *testing.T) {
	bodies := [][]byte{[]byte(strings.Repeat(`{"source":"meter1","point":"voltage_l1","value":230.5}`, 100)), []byte("short"), {}}
	for _, name := range []string{Gzip, Zstd} {
		t.Run(name, func(t *testing.T) {
			e := New(name)
			require.NotNil(t, e)
			defer e.Close()
			assert.Equal(t, name, e.ContentEncoding())
			for _, body := range bodies {
				enc := bytes.Clone(e.Encode(body))
				var got []byte
				switch name {
				case Gzip:
					r, err := gzip.NewReader(bytes.NewReader(enc))
					require.NoError(t, err)
					got, err = io.ReadAll(r)
					require.NoError(t, err)
				case Zstd:
					d, err := zstd.NewReader(nil)
					require.NoError(t, err)
					got, err = d.DecodeAll(enc, nil)
					d.Close()
					require.NoError(t, err)
				}
				assert.Equal(t, string(body), string(got))
				if len(body) > 1000 {
					assert.Less(t, len(enc), len(body)/5, "compressed")
				}
			}
		})
	}
	assert.Nil(t, New(None))
	assert.Nil(t, New(""))
}

func TestCheck(t *testing.T) {
	for _, ok := range []string{"", None, Gzip, Zstd} {
		assert.Nil(t, Check("compression", ok))
	}
	fe := Check("compression", "gzipp")
	require.NotNil(t, fe)
	assert.Equal(t, "compression", fe.Path)
	assert.Equal(t, `unknown compression "gzipp": want none, gzip or zstd`, fe.Msg)
	assert.Equal(t, `did you mean "gzip"?`, fe.Hint)
}
