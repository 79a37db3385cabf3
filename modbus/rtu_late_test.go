package modbus_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// slowConverter is a fake RTU-over-TCP converter in front of one slow meter,
// as found in the field: requests reach the meter in order over its serial
// line, the meter answers each one after a delay of its own (decided by
// delay, by request number from 1), one at a time, and the converter
// forwards every answer to its newest TCP connection — also an answer to a
// request sent on an older connection. Holding register a holds 1000+a.
type slowConverter struct {
	ln    net.Listener
	delay func(seq int) time.Duration

	mu     sync.Mutex
	newest net.Conn
	seq    int
	conns  []net.Conn

	reqs chan []byte
	done chan struct{}
	wg   sync.WaitGroup
}

func newSlowConverter(t *testing.T, delay func(seq int) time.Duration) *slowConverter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := &slowConverter{ln: ln, delay: delay, reqs: make(chan []byte, 64), done: make(chan struct{})}
	g.wg.Add(2)
	go g.accept()
	go g.meter()
	t.Cleanup(func() {
		ln.Close()
		close(g.done)
		g.mu.Lock()
		for _, c := range g.conns {
			c.Close()
		}
		g.mu.Unlock()
		g.wg.Wait()
	})
	return g
}

func (g *slowConverter) URL() string { return "rtuovertcp://" + g.ln.Addr().String() }

func (g *slowConverter) accept() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		g.newest = c
		g.conns = append(g.conns, c)
		g.mu.Unlock()
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			for {
				req := make([]byte, 8) // FC 03 read request frames only
				if _, err := io.ReadFull(c, req); err != nil {
					return
				}
				select {
				case g.reqs <- req:
				case <-g.done:
					return
				}
			}
		}()
	}
}

// meter answers the requests one at a time, in order.
func (g *slowConverter) meter() {
	defer g.wg.Done()
	for {
		var req []byte
		select {
		case req = <-g.reqs:
		case <-g.done:
			return
		}
		g.mu.Lock()
		g.seq++
		d := g.delay(g.seq)
		g.mu.Unlock()
		if d > 0 {
			select {
			case <-time.After(d):
			case <-g.done:
				return
			}
		}
		addr := binary.BigEndian.Uint16(req[2:])
		qty := binary.BigEndian.Uint16(req[4:])
		resp := []byte{req[0], req[1], byte(2 * qty)}
		for i := range qty {
			resp = binary.BigEndian.AppendUint16(resp, 1000+addr+i)
		}
		resp = binary.LittleEndian.AppendUint16(resp, modbustest.CRC(resp))
		g.mu.Lock()
		to := g.newest
		g.mu.Unlock()
		if to != nil {
			_, _ = to.Write(resp)
		}
	}
}

// TestRTULateRepliesNeverGiveWrongValues: the meter answers a request 0.3,
// 0.5, 1 or 2 timeouts after the client gave up on it; the next request
// reads the same or another address with the same quantity (so the byte
// counts match and only timing tells the replies apart) and is answered on
// time or late too. Every read that succeeds must return its own
// registers; the late replies are discarded and counted.
func TestRTULateRepliesNeverGiveWrongValues(t *testing.T) {
	const timeout = 100 * time.Millisecond
	for _, x := range []float64{0.3, 0.5, 1, 2} {
		for _, sameAddr := range []bool{true, false} {
			for _, nextLate := range []bool{false, true} {
				name := fmt.Sprintf("late%.1fT/same=%v/nextLate=%v", x, sameAddr, nextLate)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					lateBy := timeout + time.Duration(x*float64(timeout))
					g := newSlowConverter(t, func(seq int) time.Duration {
						if seq == 1 || (seq == 2 && nextLate) {
							return lateBy
						}
						return 0
					})
					c, err := modbus.NewClient(modbus.ClientConfig{URL: g.URL(), Timeout: timeout, MinBackoff: time.Millisecond})
					require.NoError(t, err)
					t.Cleanup(func() { c.Close() })
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					addrs := []uint16{0, 100, 0, 100, 0}
					if sameAddr {
						addrs = []uint16{0, 0, 100, 0, 100}
					}
					good := 0
					for i, a := range addrs {
						v, err := c.ReadRegisters(ctx, 1, modbus.Holding, a, 2)
						for errors.Is(err, modbus.ErrBackoff) && ctx.Err() == nil {
							// A unit that timed out twice is backed off for
							// MinBackoff; ask again, as the next poll would.
							v, err = c.ReadRegisters(ctx, 1, modbus.Holding, a, 2)
						}
						if err != nil {
							assert.ErrorIs(t, err, modbus.ErrTimeout, "read %d", i)
							continue
						}
						good++
						assert.Equal(t, []uint16{1000 + a, 1001 + a}, v, "read %d of holding %d got another request's registers", i, a)
					}
					assert.GreaterOrEqual(t, good, len(addrs)-2, "the client recovers after the late replies")
					assert.NotZero(t, c.Stats().Discarded, "the late reply was discarded and counted")
				})
			}
		}
	}
}

// TestDeviceLateRTUReplyIsNotGood is the field report: through an
// RTU-over-TCP converter with timeout 200ms and a meter that answers after
// 0.5s, holding 100 was published Good with the value of holding 0.
func TestDeviceLateRTUReplyIsNotGood(t *testing.T) {
	g := newSlowConverter(t, func(seq int) time.Duration {
		if seq%3 == 1 {
			return 500 * time.Millisecond
		}
		return 0
	})
	d, err := modbus.NewDevice(modbus.DeviceConfig{
		Name: "meter", Conn: modbus.ClientConfig{URL: g.URL(), Timeout: 200 * time.Millisecond, MinBackoff: time.Millisecond},
		Unit: 1, Interval: 10 * time.Millisecond,
		Points: []modbus.Point{
			{Name: "h0", Table: modbus.Holding, Address: 0, Type: modbus.Uint32},
			{Name: "h100", Table: modbus.Holding, Address: 100, Type: modbus.Uint32},
		},
		Limits: modbus.Limits{Forbidden: []modbus.AddressRange{{Table: modbus.Holding, First: 2, Last: 99}}},
	})
	require.NoError(t, err)
	defer d.Close()
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, rec) }()
	require.Eventually(t, func() bool { return rec.count(bridge.Good) >= 8 && rec.count(bridge.Bad) >= 2 },
		15*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	want := map[string]uint64{"h0": 1000<<16 | 1001, "h100": 1100<<16 | 1101}
	for _, s := range rec.all() {
		if s.Quality == bridge.Good {
			u, _ := s.Value.Uint()
			assert.Equal(t, want[s.Point], u, "%s published Good with another register's value", s.Point)
		}
	}
	assert.NotZero(t, d.Client().Stats().Discarded)
}

type recorder struct {
	mu      sync.Mutex
	samples []bridge.Sample
}

func (r *recorder) Emit(_ context.Context, batch []bridge.Sample) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, batch...)
	return nil
}

func (r *recorder) count(q bridge.Quality) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.samples {
		if s.Quality == q {
			n++
		}
	}
	return n
}

func (r *recorder) all() []bridge.Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bridge.Sample(nil), r.samples...)
}
