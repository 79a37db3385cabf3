package modbus_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// mbapRequest is a request as a scripted server received it.
type mbapRequest struct {
	txn  uint16
	unit uint8
	pdu  []byte
}

// scriptedMBAP is a Modbus TCP server whose answers the test writes byte
// by byte: answer gets each request and the connection, and writes what it
// likes (or nothing). Connections are counted.
type scriptedMBAP struct {
	ln    net.Listener
	mu    sync.Mutex
	conns int
}

func newScriptedMBAP(t *testing.T, answer func(c net.Conn, req mbapRequest)) *scriptedMBAP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &scriptedMBAP{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				go func() { <-t.Context().Done(); _ = c.Close() }()
				for {
					var hdr [7]byte
					if _, err := io.ReadFull(c, hdr[:]); err != nil {
						return
					}
					pdu := make([]byte, int(binary.BigEndian.Uint16(hdr[4:]))-1)
					if _, err := io.ReadFull(c, pdu); err != nil {
						return
					}
					answer(c, mbapRequest{txn: binary.BigEndian.Uint16(hdr[:]), unit: hdr[6], pdu: pdu})
				}
			}()
		}
	}()
	return s
}

func (s *scriptedMBAP) url() string { return "tcp://" + s.ln.Addr().String() }

func (s *scriptedMBAP) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// mbapFrame is a frame with the given transaction id, protocol id, unit and
// PDU, its length field set right.
func mbapFrame(txn, proto uint16, unit uint8, pdu ...byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, txn)
	b = binary.BigEndian.AppendUint16(b, proto)
	b = binary.BigEndian.AppendUint16(b, uint16(len(pdu)+1))
	b = append(b, unit)
	return append(b, pdu...)
}

// registersReply is the PDU of a read reply (FC 03) with the registers
// addr, addr+1, ... as their own values, qty of them.
func registersReply(addr, qty uint16) []byte {
	b := []byte{3, byte(2 * qty)}
	for i := range qty {
		b = binary.BigEndian.AppendUint16(b, addr+i)
	}
	return b
}

func readAddr(req mbapRequest) (addr, qty uint16) {
	return binary.BigEndian.Uint16(req.pdu[1:]), binary.BigEndian.Uint16(req.pdu[3:])
}

// TestMBAPDiscardsOtherTransactions: frames with another transaction id
// (a late reply to an earlier request, carrying other values) or another
// protocol id arrive before the reply, even in the same segment; they are
// counted as discarded and never decoded, and the reply's values are
// returned. A reply split across segments is put together.
func TestMBAPDiscardsOtherTransactions(t *testing.T) {
	s := newScriptedMBAP(t, func(c net.Conn, req mbapRequest) {
		addr, qty := readAddr(req)
		var out []byte
		out = append(out, mbapFrame(req.txn-1, 0, req.unit, registersReply(addr+100, qty)...)...) // stale
		out = append(out, mbapFrame(req.txn, 7, req.unit, registersReply(addr+200, qty)...)...)   // not Modbus
		reply := mbapFrame(req.txn, 0, req.unit, registersReply(addr, qty)...)
		out = append(out, reply[:4]...)
		_, _ = c.Write(out)
		time.Sleep(5 * time.Millisecond) // the rest of the reply in a later segment
		_, _ = c.Write(reply[4:])
	})
	c := newClient(t, modbus.ClientConfig{URL: s.url()})
	for _, addr := range []uint16{10, 20, 30} {
		v, err := c.ReadRegisters(ctxT(t), 1, modbus.Holding, addr, 3)
		require.NoError(t, err)
		assert.Equal(t, []uint16{addr, addr + 1, addr + 2}, v)
	}
	st := c.Stats()
	assert.EqualValues(t, 6, st.Discarded, "two stray frames per request")
	assert.EqualValues(t, 0, st.Errors)
	assert.Equal(t, 1, s.connections())
}

// TestMBAPProtocolErrors: a frame the stream cannot go on from (an MBAP
// length of 0 or beyond the largest frame), or a reply with the request's
// transaction id that answers something else (another function, unit or
// byte count), fails the request with ErrProtocol and drops the connection;
// the next request reconnects and succeeds.
func TestMBAPProtocolErrors(t *testing.T) {
	cases := map[string]func(req mbapRequest) []byte{
		"zero length": func(req mbapRequest) []byte {
			b := mbapFrame(req.txn, 0, req.unit, 3, 2, 0, 1)
			binary.BigEndian.PutUint16(b[4:], 0)
			return b
		},
		"length beyond a frame": func(req mbapRequest) []byte {
			b := mbapFrame(req.txn, 0, req.unit, 3, 2, 0, 1)
			binary.BigEndian.PutUint16(b[4:], 300)
			return b
		},
		"other function": func(req mbapRequest) []byte {
			return mbapFrame(req.txn, 0, req.unit, 4, 2, 0, 1)
		},
		"other unit": func(req mbapRequest) []byte {
			return mbapFrame(req.txn, 0, req.unit+1, 3, 2, 0, 1)
		},
		"short data": func(req mbapRequest) []byte {
			return mbapFrame(req.txn, 0, req.unit, 3, 1, 0)
		},
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			n := 0
			s := newScriptedMBAP(t, func(c net.Conn, req mbapRequest) {
				mu.Lock()
				n++
				first := n == 1
				mu.Unlock()
				if first {
					_, _ = c.Write(bad(req))
					return
				}
				addr, qty := readAddr(req)
				_, _ = c.Write(mbapFrame(req.txn, 0, req.unit, registersReply(addr, qty)...))
			})
			c := newClient(t, modbus.ClientConfig{URL: s.url(), MinBackoff: time.Millisecond})
			_, err := c.ReadRegisters(ctxT(t), 1, modbus.Holding, 5, 1)
			require.ErrorIs(t, err, modbus.ErrProtocol)
			v, err := c.ReadRegisters(ctxT(t), 1, modbus.Holding, 5, 1)
			require.NoError(t, err)
			assert.Equal(t, []uint16{5}, v)
			assert.Equal(t, 2, s.connections(), "the connection was dropped")
		})
	}
}

// TestMBAPGatewayException: a gateway that cannot reach the unit may answer
// from its own unit id 255; the exception is the request's (as upstream
// accepted it). Data from unit 255 is not.
func TestMBAPGatewayException(t *testing.T) {
	s := newScriptedMBAP(t, func(c net.Conn, req mbapRequest) {
		_, _ = c.Write(mbapFrame(req.txn, 0, 0xFF, req.pdu[0]|0x80, 0x0B))
	})
	c := newClient(t, modbus.ClientConfig{URL: s.url()})
	_, err := c.ReadRegisters(ctxT(t), 7, modbus.Holding, 0, 1)
	require.ErrorIs(t, err, modbus.ErrGatewayTargetDeviceFailedToRespond)
	var ex *modbus.ExceptionError
	require.ErrorAs(t, err, &ex)
	assert.EqualValues(t, 7, ex.Unit)
}

// TestMBAPAbortOnContext: a request on the wire to a device that never
// answers is abandoned as soon as its context ends, although the request
// timeout is ten minutes: the call returns ctx's error at once, the
// connection is closed, and the next request, on a new connection, gets
// its answer. Close during such a request returns at once too.
func TestMBAPAbortOnContext(t *testing.T) {
	p := testProfile()
	s := newSim(t, p, modbustest.WithHook(modbustest.First(1, modbustest.NoReply())))
	require.NoError(t, s.Set("voltage", 231.5))
	c := newClient(t, modbus.ClientConfig{URL: s.URL(), Timeout: 10 * time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.ReadRegisters(ctx, 1, modbus.Input, 0, 2)
		errc <- err
	}()
	require.Eventually(t, func() bool { return len(s.Requests()) == 1 }, 5*time.Second, time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case err := <-errc:
		require.ErrorIs(t, err, context.Canceled)
		assert.Less(t, time.Since(start), time.Second)
	case <-time.After(5 * time.Second):
		t.Fatal("the request did not return when its context ended")
	}
	v, err := c.ReadRegisters(ctxT(t), 1, modbus.Input, 0, 2)
	require.NoError(t, err)
	assert.Len(t, v, 2)
	assert.EqualValues(t, 2, c.Stats().Connects)

	// Close aborts a request in progress.
	silent := newSim(t, p, modbustest.WithHook(modbustest.NoReply()))
	c2, err := modbus.NewClient(modbus.ClientConfig{URL: silent.URL(), Timeout: 10 * time.Minute})
	require.NoError(t, err)
	go func() {
		_, err := c2.ReadRegisters(context.Background(), 1, modbus.Input, 0, 2)
		errc <- err
	}()
	require.Eventually(t, func() bool { return len(silent.Requests()) == 1 }, 5*time.Second, time.Millisecond)
	start = time.Now()
	require.NoError(t, c2.Close())
	select {
	case err := <-errc:
		require.True(t, errors.Is(err, modbus.ErrClosed), "%v", err)
		assert.Less(t, time.Since(start), time.Second)
	case <-time.After(5 * time.Second):
		t.Fatal("the request did not return when the client closed")
	}
}

// TestAbandonedRequestIsNoTimeout: a request the caller gives up on (its
// context's deadline ends before the device's Timeout) fails with the
// context's error, not ErrTimeout: the device was not slow, the caller was
// short. It is not counted as a timeout, and on a serial-line link it does
// not count toward backing the unit off.
func TestAbandonedRequestIsNoTimeout(t *testing.T) {
	p := testProfile()
	for _, framing := range []modbustest.Framing{modbustest.TCP, modbustest.RTU} {
		s := newSim(t, p, modbustest.WithFraming(framing), modbustest.WithHook(modbustest.First(2, modbustest.NoReply())))
		c := newClient(t, modbus.ClientConfig{URL: s.URL(), Timeout: 10 * time.Second,
			LateReplyWait: 10 * time.Millisecond, MinBackoff: time.Hour, MaxBackoff: time.Hour})
		for range 2 {
			short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			_, err := c.ReadRegisters(short, 1, modbus.Input, 0, 2)
			cancel()
			require.ErrorIs(t, err, context.DeadlineExceeded, s.URL())
			assert.NotErrorIs(t, err, modbus.ErrTimeout, s.URL())
		}
		assert.EqualValues(t, 0, c.Stats().Timeouts, s.URL())
		_, err := c.ReadRegisters(ctxT(t), 1, modbus.Input, 0, 2)
		require.NoError(t, err, "%s: the unit was not backed off", s.URL())
	}
}
