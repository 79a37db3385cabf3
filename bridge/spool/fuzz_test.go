package spool

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// FuzzDecodeRecord feeds arbitrary bytes to the payload decoder and, as the
// body of a segment, to the record reader with its resynchronisation: no
// input may panic or loop, a decoded sample must round-trip, and the reader
// must only return records that pass their checksum.
func FuzzDecodeRecord(f *testing.F) {
	var seg []byte
	for seq := range uint64(8) {
		var err error
		seg, err = appendRecord(seg, new(sampleFor(seq)))
		require.NoError(f, err)
	}
	f.Add(seg)
	one, _ := appendRecord(nil, new(sampleFor(4)))
	f.Add(one[headerLen:])
	damaged := bytes.Clone(seg)
	damaged[len(one)+20] ^= 0x10
	f.Add(damaged)
	f.Add(seg[:len(seg)-3])
	f.Add(append(bytes.Repeat(recordMagic[:], 8), seg...))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		var s bridge.Sample
		if err := decodePayload(data, &s, &interner{}); err == nil {
			rec, err := appendRecord(nil, &s)
			if err == nil {
				var again bridge.Sample
				require.NoError(t, decodePayload(rec[headerLen:], &again, nil))
				requireSame(t, s, again)
			}
		}

		r := segReader{}
		r.reset(nil, 1, 0)
		r.src = bytes.NewReader(data)
		limit := int64(len(data))
		prev := int64(-1)
		for i := 0; ; i++ {
			require.Less(t, i, len(data)/headerLen+2, "more records than bytes allow")
			p, err := r.next(limit)
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			end := r.pos()
			require.Greater(t, end, prev)
			require.LessOrEqual(t, end, limit)
			start := end - int64(len(p)) - headerLen
			require.True(t, checkRecord(data[start:end]))
			_ = decodePayload(p, &s, &interner{})
			prev = end
		}
		require.LessOrEqual(t, r.pos(), limit)
	})
}
