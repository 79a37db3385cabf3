package spool

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// TestRandomOperationsAgainstModel runs random Appends, Peeks, Acks (of what
// was peeked, less, or more) and reopenings, and checks the spool against a
// plain slice holding what should be there.
func TestRandomOperationsAgainstModel(t *testing.T) {
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 99))
		dir := t.TempDir()
		o := Options{MaxBytes: 64 << 20, SegmentBytes: MinSegmentBytes}
		if seed%2 == 1 {
			o.Sync = SyncInterval
		}
		s := mustOpen(t, dir, o)
		var model []uint64
		next := uint64(1)
		peeked := 0
		buf := make([]bridge.Sample, 300)
		for op := range 300 {
			switch r := rng.IntN(10); {
			case r < 4:
				n := rng.IntN(120)
				require.NoError(t, s.Append(context.Background(), samplesFrom(next, n)))
				for i := range n {
					model = append(model, next+uint64(i))
				}
				next += uint64(n)
			case r < 7:
				k, err := s.Peek(buf[:rng.IntN(len(buf))])
				require.NoError(t, err)
				for i := range k {
					require.Equal(t, model[i], buf[i].Seq, "seed %d op %d", seed, op)
					requireSame(t, sampleFor(model[i]), buf[i])
				}
				peeked = k
			case r < 9:
				var k int
				switch rng.IntN(3) {
				case 0:
					k = peeked
				case 1:
					k = rng.IntN(peeked + 1)
				default:
					k = rng.IntN(len(model) + 1)
				}
				require.NoError(t, s.Ack(k), "seed %d op %d", seed, op)
				model = model[k:]
				peeked = 0
			default:
				require.NoError(t, s.Close())
				s = mustOpen(t, dir, o)
				peeked = 0
			}
			require.EqualValues(t, len(model), s.Len(), "seed %d op %d", seed, op)
		}
		got := drain(t, s, 77)
		require.Len(t, got, len(model))
		for i := range got {
			require.Equal(t, model[i], got[i].Seq)
		}
		require.Zero(t, s.Dropped())
		require.NoError(t, s.Close())
		require.Len(t, segFiles(t, dir), 1)
	}
}
