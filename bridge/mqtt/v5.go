package mqtt

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
)

// v5 publishes with MQTT 5 through paho.golang's autopaho, whose publishes
// block until acknowledged: Write runs up to MaxInFlight of them at once.
type v5 struct {
	set *settings

	mu     sync.Mutex
	cm     *autopaho.ConnectionManager
	cancel context.CancelFunc

	recvMax atomic.Int32  // the broker's Receive Maximum, from the last CONNACK
	gen     atomic.Uint64 // connections made

	upOnce sync.Once
	up     chan struct{} // closed on the first connection
	errs   chan error    // the latest failed connection attempt
}

func newV5(set *settings) *v5 {
	return &v5{set: set, up: make(chan struct{}), errs: make(chan error, 1)}
}

func (c *v5) start() error {
	cfg := v5Config(c.set, func(_ *autopaho.ConnectionManager, ack *paho.Connack) {
		recvMax := int32(65535) // MQTT 5 section 3.2.2.3.3: absent means 65,535
		if ack != nil && ack.Properties != nil && ack.Properties.ReceiveMaximum != nil {
			recvMax = int32(*ack.Properties.ReceiveMaximum)
		}
		c.recvMax.Store(recvMax)
		c.gen.Add(1)
		c.upOnce.Do(func() { close(c.up) })
	}, func(err error) {
		// Keep only the latest error for Connect to report.
		select {
		case <-c.errs:
		default:
		}
		select {
		case c.errs <- err:
		default:
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	cm, err := autopaho.NewConnection(ctx, cfg)
	if err != nil {
		cancel()
		return err
	}
	c.cm, c.cancel = cm, cancel
	return nil
}

// v5Config is the autopaho configuration of set, shared by the sink and
// the command source: onUp is called on every connection (after which the
// birth is queued, when StatusTopic is set), onErr with every failed
// attempt.
func v5Config(set *settings, onUp func(*autopaho.ConnectionManager, *paho.Connack), onErr func(error)) autopaho.ClientConfig {
	cfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{set.url},
		TlsCfg:                        set.tls,
		KeepAlive:                     uint16(set.KeepAlive / time.Second),
		CleanStartOnInitialConnection: !set.PersistentSession,
		ConnectTimeout:                set.ConnectTimeout,
		ReconnectBackoff:              backoff(set.MaxReconnectInterval),
		ConnectUsername:               set.Username,
		OnConnectionUp: func(cm *autopaho.ConnectionManager, ack *paho.Connack) {
			onUp(cm, ack)
			if set.StatusTopic != "" {
				// Runs in autopaho's connection goroutine, so queue the
				// birth rather than wait for its acknowledgement here.
				_ = cm.PublishViaQueue(context.Background(), &autopaho.QueuePublish{Publish: &paho.Publish{
					Topic: set.StatusTopic, QoS: 1, Retain: true, Payload: []byte(statusOnline),
				}})
			}
		},
		OnConnectError: onErr,
		ClientConfig: paho.ClientConfig{
			ClientID:      set.ClientID,
			PacketTimeout: set.AckTimeout,
		},
	}
	if !isWebSocket(set.url) {
		cfg.AttemptConnection = func(ctx context.Context, _ autopaho.ClientConfig, u *url.URL) (net.Conn, error) {
			return dial(ctx, u, set.tls, set.ConnectTimeout)
		}
	}
	if set.PersistentSession {
		cfg.SessionExpiryInterval = uint32(set.SessionExpiry / time.Second)
	}
	if set.Password != "" {
		cfg.ConnectPassword = []byte(set.Password)
	}
	if set.StatusTopic != "" {
		cfg.WillMessage = &paho.WillMessage{Topic: set.StatusTopic, QoS: 1, Retain: true, Payload: []byte(statusOffline)}
	}
	return cfg
}

// connect starts the connection manager once and waits for the first
// connection or the latest failed attempt. The manager goes on trying in the
// background after a failure.
func (c *v5) connect(ctx context.Context) error {
	select {
	case <-c.up:
		return nil
	default:
	}
	c.mu.Lock()
	if c.cm == nil {
		if err := c.start(); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	c.mu.Unlock()
	select {
	case <-c.up:
		return nil
	case err := <-c.errs:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *v5) publishBatch(ctx context.Context, items []item, fail func(int, error)) {
	// More publishers than the broker's Receive Maximum would only wait
	// for a packet identifier.
	workers := min(c.set.MaxInFlight, len(items))
	if rm := int(c.recvMax.Load()); rm > 0 {
		workers = min(workers, rm)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	wg.Add(workers)
	for range workers {
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1) - 1)
				if k >= len(items) {
					return
				}
				it := &items[k]
				if err := ctx.Err(); err != nil {
					fail(it.idx, err)
					continue
				}
				if err := c.publish(ctx, it); err != nil {
					fail(it.idx, err)
				}
			}
		}()
	}
	wg.Wait()
}

func (c *v5) publish(ctx context.Context, it *item) error {
	pctx, cancel := context.WithTimeout(ctx, c.set.AckTimeout)
	defer cancel()
	p := &paho.Publish{
		Topic:   it.topic,
		QoS:     byte(c.set.QoS),
		Retain:  c.set.Retain || it.retain,
		Payload: it.payload,
	}
	if it.contentType != "" {
		p.Properties = &paho.PublishProperties{ContentType: it.contentType}
	}
	pr, err := c.cm.Publish(pctx, p)
	switch {
	case errors.Is(err, autopaho.ConnectionDownError):
		return ErrNotConnected
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		return ErrAckTimeout
	case err != nil:
		return fmt.Errorf("mqtt: publish to %q: %w", it.topic, err)
	case pr != nil && pr.ReasonCode >= 0x80:
		// A QoS 2 PUBREC may carry a failure reason without an error
		// (MQTT 5 section 3.5.2.1).
		return fmt.Errorf("mqtt: publish to %q: broker refused with reason code 0x%02x", it.topic, pr.ReasonCode)
	}
	return nil
}

func (c *v5) generation() uint64 { return c.gen.Load() }

func (c *v5) close(ctx context.Context) error {
	c.mu.Lock()
	cm, cancel := c.cm, c.cancel
	c.mu.Unlock()
	if cm == nil {
		return nil
	}
	defer cancel()
	if c.set.StatusTopic != "" {
		// A clean DISCONNECT keeps the broker from sending the will, so
		// say "offline" ourselves first.
		pctx, pcancel := context.WithTimeout(ctx, c.set.AckTimeout)
		_, _ = cm.Publish(pctx, &paho.Publish{Topic: c.set.StatusTopic, QoS: 1, Retain: true, Payload: []byte(statusOffline)})
		pcancel()
	}
	return cm.Disconnect(ctx)
}

// backoff waits before reconnection attempt n (n = 0 is the first attempt):
// nothing, then 100ms doubling up to maxDelay, each with up to 25% jitter.
func backoff(maxDelay time.Duration) autopaho.Backoff {
	return func(n int) time.Duration {
		if n <= 0 {
			return 0
		}
		d := maxDelay
		if n < 30 {
			d = min(100*time.Millisecond<<(n-1), maxDelay)
		}
		return d - time.Duration(rand.Int64N(int64(d)/4+1))
	}
}
