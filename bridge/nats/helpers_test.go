package nats

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
	"github.com/m2mbridge/m2mbridge/internal/testproxy"
)

// serverAddr returns the address of the nats-server the tests use
// (M2MB_NATS_ADDR, default 127.0.0.1:4222), skipping the test when nothing
// listens there, unless M2MB_INTEROP=1.
func serverAddr(tb testing.TB) string {
	tb.Helper()
	return testproxy.PeerAddr(tb, "M2MB_NATS_ADDR", "127.0.0.1:4222", "nats-server")
}

// uniq returns a name no other test run uses, usable as a subject token and
// a stream name.
func uniq() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "m2mtest" + hex.EncodeToString(b[:])
}

func testCtx(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// withJS runs f with a short-lived JetStream connection of the test's own.
func withJS(tb testing.TB, addr string, f func(context.Context, jetstream.JetStream) error) error {
	tb.Helper()
	nc, err := nats.Connect("nats://"+addr, nats.Name("m2mtest"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return f(ctx, js)
}

// makeStream creates a stream on subjects and deletes it when the test ends.
func makeStream(tb testing.TB, addr, name string, subjects ...string) {
	tb.Helper()
	require.NoError(tb, withJS(tb, addr, func(ctx context.Context, js jetstream.JetStream) error {
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: subjects, Storage: jetstream.MemoryStorage})
		return err
	}))
	deleteStreamAtEnd(tb, addr, name)
}

func deleteStreamAtEnd(tb testing.TB, addr, name string) {
	tb.Cleanup(func() {
		err := withJS(tb, addr, func(ctx context.Context, js jetstream.JetStream) error {
			return js.DeleteStream(ctx, name)
		})
		if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			tb.Errorf("delete stream %s: %v", name, err)
		}
	})
}

// stored is one message read back from a stream.
type stored struct {
	subject string
	sample  bridge.Sample
}

// consume reads the stream from the start until it has at least want
// messages or ctx ends. It holds no goroutine between calls.
func consume(ctx context.Context, addr, stream string, want int) ([]stored, error) {
	return consumeWith(ctx, addr, stream, want, nil)
}

// consumeWith is consume with the messages decoded by decode (nil: one
// JSON sample each); want counts samples.
func consumeWith(ctx context.Context, addr, stream string, want int, decode func([]byte) ([]bridge.Sample, error)) ([]stored, error) {
	nc, err := nats.Connect("nats://"+addr, nats.Name("m2mtest-reader"))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	var out []stored
	for len(out) < want {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		batch, err := cons.Fetch(max(min(want-len(out), 500), 1), jetstream.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			return out, err
		}
		for m := range batch.Messages() {
			if decode != nil {
				ss, err := decode(m.Data())
				if err != nil {
					return out, err
				}
				for _, smp := range ss {
					out = append(out, stored{subject: m.Subject(), sample: smp})
				}
				continue
			}
			smp, err := bridge.DecodeJSON(m.Data())
			if err != nil {
				return out, err
			}
			out = append(out, stored{subject: m.Subject(), sample: smp})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return out, err
		}
	}
	return out, nil
}

// readback is a bridgetest.Readback over a stream.
func readback(addr, stream string) bridgetest.Readback {
	return func(ctx context.Context, want int) ([]bridge.Sample, error) {
		got, err := consume(ctx, addr, stream, want)
		out := make([]bridge.Sample, len(got))
		for i, g := range got {
			out[i] = g.sample
		}
		return out, err
	}
}
