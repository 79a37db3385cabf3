package kafka_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.yaml.in/yaml/v3"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
	"github.com/m2mbridge/m2mbridge/bridge/kafka"
	"github.com/m2mbridge/m2mbridge/internal/testpki"
)

// newCluster starts an in-process kfake cluster that creates topics on
// first use.
func newCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3)}, opts...)
	c, err := kfake.NewCluster(opts...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

var topicSeq atomic.Int64

func uniqueTopic(prefix string) string {
	return prefix + "-" + strconv.FormatInt(topicSeq.Add(1), 10)
}

func newSink(t *testing.T, cfg kafka.Config) *kafka.Sink {
	t.Helper()
	if cfg.DeliveryTimeout == 0 {
		cfg.DeliveryTimeout = 10 * time.Second
	}
	s, err := kafka.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// consume reads the topics from the start until want records arrived or ctx
// ended.
func consume(ctx context.Context, addrs []string, want int, topics ...string) ([]*kgo.Record, error) {
	return consumeUntil(ctx, addrs, func(recs []*kgo.Record) bool { return len(recs) >= want }, topics...)
}

// consumeUntil reads the topics from the start until done holds for what
// arrived or ctx ended.
func consumeUntil(ctx context.Context, addrs []string, done func([]*kgo.Record) bool, topics ...string) ([]*kgo.Record, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.ConsumeRegex())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []*kgo.Record
	for !done(out) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.Canceled) && !errors.Is(e.Err, kerr.UnknownTopicOrPartition) {
				return out, e.Err
			}
		}
		out = append(out, fs.Records()...)
	}
	return out, nil
}

// arrived returns a condition for consumeUntil: every sample of want is
// among the records (which, at least once, may hold duplicates).
func arrived(t testing.TB, want []bridge.Sample) func([]*kgo.Record) bool {
	return func(recs []*kgo.Record) bool {
		return len(recs) >= len(want) && bridgetest.Match(want, decode(t, recs)) == ""
	}
}

func decode(t testing.TB, recs []*kgo.Record) []bridge.Sample {
	t.Helper()
	out := make([]bridge.Sample, 0, len(recs))
	for _, r := range recs {
		s, err := bridge.DecodeJSON(r.Value)
		require.NoError(t, err, "record %s", r.Value)
		out = append(out, s)
	}
	return out
}

func readback(addrs []string, topics ...string) bridgetest.Readback {
	return func(ctx context.Context, want int) ([]bridge.Sample, error) {
		recs, err := consume(ctx, addrs, want, topics...)
		out := make([]bridge.Sample, 0, len(recs))
		for _, r := range recs {
			s, derr := bridge.DecodeJSON(r.Value)
			if derr != nil {
				return out, derr
			}
			out = append(out, s)
		}
		return out, err
	}
}

func TestConformance(t *testing.T) {
	// The cluster runs in a child process: the goroutine leak check must
	// see only the sink's goroutines.
	addrs := []string{childCluster(t)}
	bridgetest.TestSink(t, bridgetest.Harness{
		New: func(t *testing.T) (bridge.Sink, bridgetest.Readback) {
			topic := uniqueTopic("conformance")
			s := newSink(t, kafka.Config{Brokers: addrs, Topic: topic, AutoCreateTopics: true})
			return s, readback(addrs, topic)
		},
	})
}

func TestRoundTrip(t *testing.T) {
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			c := newCluster(t)
			prefix := uniqueTopic("rt")
			s := newSink(t, kafka.Config{
				Brokers: c.ListenAddrs(), Topic: prefix + ".{source}.{point}",
				Compression: kafka.Compression(codec), AutoCreateTopics: true, MaxBufferedRecords: 50,
			})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			require.NoError(t, s.Connect(ctx))

			// 4 sources x 5 points, 30 readings each, in batches of 100:
			// more records than MaxBufferedRecords, so Write waits for room.
			t0 := time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC)
			var want []bridge.Sample
			for n := 0; n < 30; n++ {
				for src := 0; src < 4; src++ {
					for p := 0; p < 5; p++ {
						sm := bridge.Sample{
							Source: fmt.Sprintf("meter %d", src), Point: fmt.Sprintf("p/%d", p),
							Time: t0.Add(time.Duration(n) * time.Millisecond), Unit: "kWh",
						}
						switch p {
						case 0:
							sm.Value = bridge.Float(float64(n) + 0.5)
						case 1:
							sm.Value = bridge.Int(math.MinInt64 + int64(n))
						case 2:
							sm.Value = bridge.Uint(math.MaxUint64 - uint64(n))
						case 3:
							sm.Value = bridge.Bool(n%2 == 0)
						case 4:
							sm.Value = bridge.String(fmt.Sprintf("\"text\" %d é\n", n))
						}
						want = append(want, sm)
					}
				}
			}
			for off := 0; off < len(want); off += 100 {
				require.NoError(t, s.Write(ctx, want[off:off+100]))
			}
			assert.Equal(t, kafka.Stats{Produced: uint64(len(want))}, s.Stats())

			recs, err := consume(ctx, c.ListenAddrs(), len(want), "^"+strings.ReplaceAll(prefix, ".", `\.`)+`\..*`)
			require.NoError(t, err)
			require.Len(t, recs, len(want))
			got := decode(t, recs)
			assert.Empty(t, bridgetest.Match(want, got))

			// Topic, key, timestamp and per-point order.
			last := map[string]time.Time{}
			for i, r := range recs {
				g := got[i]
				assert.Equal(t, g.Source+"/"+g.Point, string(r.Key))
				wantTopic, err := kafka.Topic(prefix+".{source}.{point}", g.Source, g.Point)
				require.NoError(t, err)
				assert.Equal(t, wantTopic, r.Topic)
				assert.WithinDuration(t, time.Now(), r.Timestamp, time.Minute, "the record timestamp is the time of production")
				if prev, ok := last[string(r.Key)]; ok {
					assert.True(t, g.Time.After(prev), "key %s out of order", r.Key)
				}
				last[string(r.Key)] = g.Time
			}
			assert.Len(t, last, 20)
		})
	}
}

func TestOrderPerPoint(t *testing.T) {
	// One topic of several partitions: records of one point share a key,
	// hence a partition, hence their order.
	c := newCluster(t)
	topic := uniqueTopic("order")
	s := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), Topic: topic, AutoCreateTopics: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var want []bridge.Sample
	for n := 0; n < 200; n++ {
		want = append(want, bridge.Sample{Source: "m", Point: "p" + strconv.Itoa(n%9), Value: bridge.Int(int64(n)), Time: time.Unix(0, int64(n))})
	}
	for off := 0; off < len(want); off += 25 {
		require.NoError(t, s.Write(ctx, want[off:off+25]))
	}
	recs, err := consume(ctx, c.ListenAddrs(), len(want), topic)
	require.NoError(t, err)
	partitions := map[string]int32{}
	last := map[string]int64{}
	for _, sm := range decode(t, recs) {
		i, _ := sm.Value.Int()
		if prev, ok := last[sm.Point]; ok {
			assert.Greater(t, i, prev, "point %s out of order", sm.Point)
		}
		last[sm.Point] = i
	}
	for _, r := range recs {
		if p, ok := partitions[string(r.Key)]; ok {
			assert.Equal(t, p, r.Partition, "key %s in two partitions", r.Key)
		}
		partitions[string(r.Key)] = r.Partition
	}
	assert.Len(t, last, 9)
}

func TestPartialFailure(t *testing.T) {
	c := newCluster(t)
	topic := uniqueTopic("partial")
	s := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), Topic: topic + "{point}", AutoCreateTopics: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := time.Now()
	batch := []bridge.Sample{
		{Source: "m", Point: "", Value: bridge.Int(1), Time: now},
		{Source: "m", Point: "", Value: bridge.String(strings.Repeat("x", 2<<20)), Time: now}, // above the 1 MB batch limit
		{Source: "m", Point: strings.Repeat("p", 300), Value: bridge.Int(2), Time: now},       // topic too long
		{Source: "m", Point: "", Value: bridge.Int(3), Time: now},
	}
	err := s.Write(ctx, batch)
	var be *bridge.BatchError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, []int{1, 2}, be.Indexes())
	assert.ErrorIs(t, be.Failed[1], kerr.MessageTooLarge)
	assert.ErrorIs(t, be.Failed[2], kafka.ErrTopic)
	for _, e := range be.Failed {
		assert.True(t, bridge.IsPermanent(e), "%v", e)
	}
	assert.Equal(t, kafka.Stats{Produced: 2, Rejected: 2}, s.Stats())
	recs, err := consume(ctx, c.ListenAddrs(), 2, topic)
	require.NoError(t, err)
	assert.Empty(t, bridgetest.Match([]bridge.Sample{batch[0], batch[3]}, decode(t, recs)))
}

// restartable is a one-broker kfake cluster that goes away and comes back on
// the same address.
type restartable struct {
	opts  []kfake.Opt
	addrs []string
	port  int
	c     *kfake.Cluster
}

// outages are the ways a cluster comes back after an outage.
var outages = []struct {
	name string
	keep bool
}{
	// A restarted broker keeps its logs, so each topic keeps its ID.
	{"Restarted", true},
	// A cluster rebuilt without its data (a broker whose volume was lost)
	// creates the topic anew, under a new ID: to the client, the topic was
	// deleted and recreated.
	{"Rebuilt", false},
}

// newRestartable starts a cluster that keeps its data across a restart when
// keep is set (kfake.DataDir) and comes back empty otherwise.
func newRestartable(t *testing.T, keep bool) *restartable {
	t.Helper()
	r := &restartable{opts: []kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation()}}
	if keep {
		r.opts = append(r.opts, kfake.DataDir(t.TempDir()))
	}
	c, err := kfake.NewCluster(r.opts...)
	require.NoError(t, err)
	r.c = c
	r.addrs = c.ListenAddrs()
	_, portText, err := net.SplitHostPort(r.addrs[0])
	require.NoError(t, err)
	r.port, err = strconv.Atoi(portText)
	require.NoError(t, err)
	t.Cleanup(r.stop)
	return r
}

// stop takes the cluster away.
func (r *restartable) stop() {
	if r.c != nil {
		r.c.Close()
		r.c = nil
	}
}

// start brings the cluster back on its address, retrying until the port is
// free again.
func (r *restartable) start(t *testing.T) {
	t.Helper()
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		c, err := kfake.NewCluster(append(r.opts, kfake.Ports(r.port))...)
		if assert.NoError(ct, err, "restart kfake on port %d", r.port) {
			r.c = c
		}
	}, 10*time.Second, 50*time.Millisecond)
}

func TestClusterGoneAndBack(t *testing.T) {
	for _, oc := range outages {
		t.Run(oc.name, func(t *testing.T) {
			r := newRestartable(t, oc.keep)
			topic := uniqueTopic("outage")
			s := newSink(t, kafka.Config{Brokers: r.addrs, Topic: topic, AutoCreateTopics: true, DeliveryTimeout: 2 * time.Second})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			batch := func(from int) []bridge.Sample {
				var b []bridge.Sample
				for i := from; i < from+10; i++ {
					b = append(b, bridge.Sample{Source: "m", Point: "p", Value: bridge.Int(int64(i)), Time: time.Unix(0, int64(i))})
				}
				return b
			}
			require.NoError(t, s.Write(ctx, batch(0)))

			r.stop() // the cluster goes away: writes fail, worth retrying
			err := s.Write(ctx, batch(10))
			require.ErrorIs(t, err, kafka.ErrDeliveryTimeout)
			assert.True(t, bridge.IsRetriable(err), "%v", err)

			r.start(t)
			// Retried as the Bridge would, the write succeeds once the
			// cluster is back; every failure on the way is retriable.
			require.EventuallyWithT(t, func(ct *assert.CollectT) {
				err := s.Write(ctx, batch(10))
				assert.False(t, bridge.IsPermanent(err), "%v", err)
				assert.NoError(ct, err, "write after the cluster came back")
			}, 30*time.Second, 100*time.Millisecond)
			require.NoError(t, s.Write(ctx, batch(20)))
			want := append(batch(10), batch(20)...)
			if oc.keep {
				want = append(batch(0), want...)
			}
			wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
			defer wcancel()
			recs, err := consumeUntil(wctx, r.addrs, arrived(t, want), topic)
			assert.NoError(t, err)
			assert.Empty(t, bridgetest.Match(want, decode(t, recs)))
		})
	}
}

func TestSASL(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			c := newCluster(t, kfake.EnableSASL(), kfake.Superuser(mech, "bridge", "s3cret"))
			topic := uniqueTopic("sasl")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), Topic: topic, AutoCreateTopics: true,
				SASLMechanism: kafka.SASLMechanism(mech), Username: "bridge", Password: "s3cret"})
			sm := []bridge.Sample{{Source: "m", Point: "p", Value: bridge.Float(1.5), Time: time.Now()}}
			require.NoError(t, s.Write(ctx, sm))

			wrong := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), Topic: topic, AutoCreateTopics: true,
				SASLMechanism: kafka.SASLMechanism(mech), Username: "bridge", Password: "wrong", DeliveryTimeout: time.Second})
			assert.Error(t, wrong.Connect(ctx))
		})
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t)
	caFile := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(caFile, ca.CertPEM, 0o600))
	serverCert, serverKey := ca.Issue(t, "127.0.0.1", x509.ExtKeyUsageServerAuth, "127.0.0.1")
	pair, err := tls.X509KeyPair(serverCert, serverKey)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sm := []bridge.Sample{{Source: "m", Point: "p", Value: bridge.Float(1.5), Time: time.Now()}}

	t.Run("ServerCertificate", func(t *testing.T) {
		c := newCluster(t, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}))
		topic := uniqueTopic("tls")
		s := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), Topic: topic, AutoCreateTopics: true, CAFile: caFile})
		require.NoError(t, s.Write(ctx, sm))
		untrusted := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), Topic: topic, TLS: true, DeliveryTimeout: time.Second})
		assert.Error(t, untrusted.Connect(ctx), "the system roots do not trust the test CA")
	})
	t.Run("ClientCertificate", func(t *testing.T) {
		c := newCluster(t, kfake.TLS(&tls.Config{
			Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert,
			ClientCAs: ca.Pool, MinVersion: tls.VersionTLS12,
		}))
		certPEM, keyPEM := ca.Issue(t, "bridge", x509.ExtKeyUsageClientAuth)
		certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
		require.NoError(t, os.WriteFile(certFile, certPEM, 0o600))
		require.NoError(t, os.WriteFile(keyFile, keyPEM, 0o600))
		topic := uniqueTopic("mtls")
		s := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), Topic: topic, AutoCreateTopics: true,
			CAFile: caFile, CertFile: certFile, KeyFile: keyFile})
		require.NoError(t, s.Write(ctx, sm))
		noCert := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), Topic: topic, CAFile: caFile, DeliveryTimeout: time.Second})
		assert.Error(t, noCert.Connect(ctx), "the cluster wants a client certificate")
	})
}

// fieldErrs returns the field errors of err as "path: msg (hint)".
func fieldErrs(err error) []string {
	var out []string
	for _, fe := range bridge.FieldErrors(err) {
		out = append(out, fe.Error())
	}
	return out
}

// TestValidate checks the path of every problem Validate reports, several
// at once, and that New reports the same field errors.
func TestValidate(t *testing.T) {
	b := []string{"h:9092"}
	for _, tc := range []struct {
		name string
		cfg  kafka.Config
		want []string // each field error's "path: msg (hint)", in order
	}{
		{"NoBrokers", kafka.Config{}, []string{"brokers: at least one host:port is required"}},
		{"Brokers", kafka.Config{Brokers: []string{"localhost", "h:x", ":9092"}}, []string{
			`brokers[0]: "localhost": address localhost: missing port in address`,
			`brokers[1]: "h:x": port "x" is not a number from 1 to 65535`,
			`brokers[2]: ":9092": no host`,
		}},
		{"Credentials", kafka.Config{Brokers: []string{"u:S3CRET@h:9092"}}, []string{`brokers[0]: "u:xxxxx@h:9092": holds credentials (put them in username and password_env (with sasl_mechanism), not in the address)`}},
		{"Placeholder", kafka.Config{Brokers: b, Topic: "m2m.{device}"}, []string{`topic: "m2m.{device}": unknown placeholder {device} (want {source} or {point})`}},
		{"Unclosed", kafka.Config{Brokers: b, Topic: "m2m.{source"}, []string{`topic: "m2m.{source": unclosed {`}},
		{"IllegalLiteral", kafka.Config{Brokers: b, Topic: "m2m/{source}"}, []string{`topic: "m2m/{source}": '/' is not allowed in a topic name (only a-z A-Z 0-9 . _ -)`}},
		{"Compression", kafka.Config{Brokers: b, Compression: "gzp"}, []string{`compression: unknown compression "gzp": want none, gzip, snappy, lz4 or zstd (did you mean "gzip"?)`}},
		{"CompressionFar", kafka.Config{Brokers: b, Compression: "brotli"}, []string{`compression: unknown compression "brotli": want none, gzip, snappy, lz4 or zstd`}},
		{"SASL", kafka.Config{Brokers: b, SASLMechanism: "SCRAM-SHA256", Username: "u", Password: "p"}, []string{`sasl_mechanism: unknown SASL mechanism "SCRAM-SHA256": want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (did you mean "SCRAM-SHA-256"?)`}},
		{"SASLNoCredentials", kafka.Config{Brokers: b, SASLMechanism: "plain"}, []string{
			"username: required with sasl_mechanism PLAIN",
			"password: empty, but sasl_mechanism is set (password_env or password_file must name a variable or file that holds the password; one that is set but empty gives an empty password)",
		}},
		{"EmptyPassword", kafka.Config{Brokers: b, SASLMechanism: "SCRAM-SHA-512", Username: "u"}, []string{
			"password: empty, but sasl_mechanism is set (password_env or password_file must name a variable or file that holds the password; one that is set but empty gives an empty password)",
		}},
		{"CredentialsWithoutSASL", kafka.Config{Brokers: b, Username: "u", Password: "p"}, []string{
			"username: needs sasl_mechanism (set sasl_mechanism to PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, or remove username)",
			"password: needs sasl_mechanism (set sasl_mechanism to PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, or remove password)",
		}},
		{"CertWithoutKey", kafka.Config{Brokers: b, CertFile: "c.pem"}, []string{"key_file: required with cert_file (give cert_file and key_file together, or neither)"}},
		{"TLSConfigAndFiles", kafka.Config{Brokers: b, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}, CAFile: "ca.pem"}, []string{"ca_file: not allowed with TLSConfig set: give the TLS settings one way"}},
		{"Several", kafka.Config{Topic: "{x}", Compression: "x", MaxBufferedRecords: -1, MaxMessageBytes: 10, DeliveryTimeout: -1}, []string{
			"brokers: at least one host:port is required",
			`topic: "{x}": unknown placeholder {x} (want {source} or {point})`,
			`compression: unknown compression "x": want none, gzip, snappy, lz4 or zstd`,
			"max_buffered_records: -1 is outside 1 to 10000000",
			"max_message_bytes: 10 is outside 1024 to 104857600",
			"delivery_timeout: -1ns is outside 1s to 1h0m0s",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			assert.Equal(t, tc.want, fieldErrs(err))
			s, nerr := kafka.New(tc.cfg)
			require.Error(t, nerr)
			assert.Nil(t, s)
			assert.Equal(t, bridge.FieldErrors(err), bridge.FieldErrors(nerr), "New reports what Validate does")
			for _, line := range strings.Split(nerr.Error(), "\n") {
				assert.True(t, strings.HasPrefix(line, "kafka: "), line)
			}
			assert.NotContains(t, nerr.Error(), "S3CRET")
		})
	}
}

// TestNewTLSFiles: what is wrong with the TLS files is found by New (it
// reads them), not by Validate, at the path of the setting.
func TestNewTLSFiles(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	require.NoError(t, os.WriteFile(junk, []byte("not pem"), 0o600))
	cfg := kafka.Config{Brokers: []string{"h:9092"}, CAFile: filepath.Join(dir, "nope.pem"), CertFile: junk, KeyFile: junk}
	require.NoError(t, cfg.Validate())
	_, err := kafka.New(cfg)
	var paths []string
	for _, fe := range bridge.FieldErrors(err) {
		paths = append(paths, fe.Path)
	}
	assert.Equal(t, []string{"ca_file", "cert_file"}, paths, "%v", err)
}

func TestEnumYAML(t *testing.T) {
	var cfg kafka.Config
	require.NoError(t, yaml.Unmarshal([]byte("compression: ZSTD\nsasl_mechanism: scram-sha-256\n"), &cfg))
	assert.Equal(t, kafka.CompressionZstd, cfg.Compression)
	assert.Equal(t, kafka.SASLScramSHA256, cfg.SASLMechanism)
	err := yaml.Unmarshal([]byte("compression: snapy\n"), &cfg)
	var fe *bridge.FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, `did you mean "snappy"?`, fe.Hint)
}

func TestTopic(t *testing.T) {
	for _, tc := range []struct{ tmpl, source, point, want string }{
		{"m2m", "meter1", "v", "m2m"},
		{"m2m.{source}.{point}", "meter1", "voltage_l1", "m2m.meter1.voltage_l1"},
		{"m2m.{source}.{point}", "plc 1/hall", "temp°C", "m2m.plc_1_hall.temp__C"},
		{"{source}-{source}", "a.b", "", "a.b-a.b"},
	} {
		got, err := kafka.Topic(tc.tmpl, tc.source, tc.point)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, "%s with %q/%q", tc.tmpl, tc.source, tc.point)
	}
}

func TestConfigYAML(t *testing.T) {
	var cfg kafka.Config
	dec := yaml.NewDecoder(strings.NewReader(`
brokers: ["127.0.0.1:9092", "127.0.0.2:9092"]
topic: m2m.{source}
client_id: gw1
compression: zstd
max_buffered_records: 500
delivery_timeout: 5s
auto_create_topics: true
sasl_mechanism: SCRAM-SHA-512
username: bridge
password: pw
tls: true
ca_file: ca.pem
cert_file: c.pem
key_file: k.pem
insecure_skip_verify: false
`))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&cfg))
	assert.Equal(t, kafka.Config{
		Brokers: []string{"127.0.0.1:9092", "127.0.0.2:9092"}, Topic: "m2m.{source}", ClientID: "gw1",
		Compression: "zstd", MaxBufferedRecords: 500, DeliveryTimeout: 5 * time.Second, AutoCreateTopics: true,
		SASLMechanism: "SCRAM-SHA-512", Username: "bridge", Password: "pw",
		TLS: true, CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem",
	}, cfg)
}

// BenchmarkWrite produces batches of 5,000 samples to an in-process kfake
// cluster (which, not Kafka, bounds the rate).
func BenchmarkWrite(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "bench"))
	require.NoError(b, err)
	defer c.Close()
	s, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs(), Topic: "bench", Compression: "lz4"})
	require.NoError(b, err)
	defer s.Close(context.Background())
	batch := bridgetest.Samples("meter1", 5000, time.Now())
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "samples/s")
}

// TestOutageThroughBridge runs the sink under a Bridge while the cluster
// goes away and comes back: the Bridge retries and every sample emitted
// during the outage reaches the cluster that came back.
func TestOutageThroughBridge(t *testing.T) {
	for _, oc := range outages {
		t.Run(oc.name, func(t *testing.T) {
			r := newRestartable(t, oc.keep)
			topic := uniqueTopic("bridge")
			s := newSink(t, kafka.Config{Brokers: r.addrs, Topic: topic, AutoCreateTopics: true, DeliveryTimeout: time.Second})
			b := bridge.New(bridge.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			require.NoError(t, b.AddSink("kafka", s, bridge.SinkOptions{
				BatchSize: 50, Retry: bridge.Retry{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond},
			}))
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			runCtx, stop := context.WithCancel(ctx)
			ran := make(chan error, 1)
			go func() { ran <- b.Run(runCtx) }()

			want := bridgetest.Samples("outage", 300, time.Now().Truncate(time.Microsecond))
			delivered := func() uint64 { return b.Stats().Sinks[0].Delivered }
			require.NoError(t, b.Emit(ctx, want[:100]))
			require.Eventually(t, func() bool { return delivered() == 100 }, 20*time.Second, 10*time.Millisecond)

			r.stop()
			require.NoError(t, b.Emit(ctx, want[100:]))
			require.Eventually(t, func() bool { return b.Stats().Sinks[0].Errors > 0 }, 20*time.Second, 10*time.Millisecond)
			r.start(t)
			require.Eventually(t, func() bool { return delivered() == 300 }, 30*time.Second, 10*time.Millisecond)
			stop()
			require.NoError(t, <-ran)
			st := b.Stats().Sinks[0]
			assert.Zero(t, st.Rejected+st.Failed+st.Dropped+st.Left)
			check := want[100:]
			if oc.keep {
				check = want
			}
			wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
			defer wcancel()
			recs, err := consumeUntil(wctx, r.addrs, arrived(t, check), topic)
			assert.NoError(t, err)
			assert.Empty(t, bridgetest.Match(check, decode(t, recs)))
		})
	}
}

// TestAuthorizationFailureKeepsSamples is issue 10 defect 2 for Kafka: a
// broker that refuses the producer's authorisation (a non-retriable Kafka
// error) does not reject the samples; they are delivered once it accepts.
func TestAuthorizationFailureKeepsSamples(t *testing.T) {
	c := newCluster(t)
	var refuse atomic.Bool
	refuse.Store(true)
	c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !refuse.Load() {
			return nil, nil, false
		}
		req := kr.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			st.TopicID = rt.TopicID // Produce v13+ names topics by ID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	topic := uniqueTopic("auth")
	s := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), Topic: topic, AutoCreateTopics: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	batch := bridgetest.Samples("auth", 10, time.Now())
	err := s.Write(ctx, batch)
	require.Error(t, err)
	assert.ErrorIs(t, err, kerr.TopicAuthorizationFailed)
	assert.False(t, bridge.IsPermanent(err), "%v", err)
	assert.Zero(t, s.Stats().Rejected)
	refuse.Store(false)
	require.NoError(t, s.Write(ctx, batch))
	recs, err := consume(ctx, c.ListenAddrs(), 10, topic)
	require.NoError(t, err)
	assert.Empty(t, bridgetest.Match(batch, decode(t, recs)))
}

func TestMaxMessageBytes(t *testing.T) {
	c := newCluster(t)
	topic := uniqueTopic("size")
	s := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), Topic: topic, AutoCreateTopics: true, MaxMessageBytes: 2048})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := time.Now()
	batch := []bridge.Sample{
		{Source: "m", Point: "a", Value: bridge.Int(1), Time: now},
		{Source: "m", Point: "b", Value: bridge.String(strings.Repeat("x", 3000)), Time: now},
	}
	err := s.Write(ctx, batch)
	var be *bridge.BatchError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, []int{1}, be.Indexes())
	assert.True(t, bridge.IsPermanent(be.Failed[1]))
	assert.ErrorIs(t, be.Failed[1], kerr.MessageTooLarge)
	assert.Contains(t, be.Failed[1].Error(), "max_message_bytes (2048)")
	_, err = kafka.New(kafka.Config{Brokers: []string{"h:1"}, MaxMessageBytes: 10})
	assert.ErrorContains(t, err, "max_message_bytes: 10 is outside 1024")
}

// TestConfigRanges is issue 10 defect 6.
func TestConfigRanges(t *testing.T) {
	b := []string{"h:9092"}
	for _, tc := range []struct {
		name string
		cfg  kafka.Config
		want string
	}{
		{"HugeTopic", kafka.Config{Brokers: b, Topic: strings.Repeat("t", 70000) + "{point}"}, "topic: 70007 bytes, longer than 1024"},
		{"DeliveryTimeout", kafka.Config{Brokers: b, DeliveryTimeout: 1000 * time.Hour}, "delivery_timeout: 1000h0m0s is outside 1s to 1h0m0s"},
		{"Buffered", kafka.Config{Brokers: b, MaxBufferedRecords: 1 << 40}, "max_buffered_records: 1099511627776 is outside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := kafka.New(tc.cfg)
			require.ErrorContains(t, err, tc.want)
			assert.Less(t, len(err.Error()), 300)
		})
	}
}
