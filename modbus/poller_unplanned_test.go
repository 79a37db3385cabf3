package modbus

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// regServer is a minimal Modbus TCP server for this package's own tests
// (modbustest imports modbus): it answers FC 03 from regs and Illegal Data
// Address beyond them.
func regServer(t *testing.T, regs []uint16) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				go func() { <-t.Context().Done(); c.Close() }()
				hdr := make([]byte, 7)
				for {
					if _, err := io.ReadFull(c, hdr); err != nil {
						return
					}
					pdu := make([]byte, binary.BigEndian.Uint16(hdr[4:])-1)
					if _, err := io.ReadFull(c, pdu); err != nil {
						return
					}
					addr, qty := int(binary.BigEndian.Uint16(pdu[1:])), int(binary.BigEndian.Uint16(pdu[3:]))
					var rep []byte
					if pdu[0] != fcReadHolding || addr+qty > len(regs) {
						rep = []byte{pdu[0] | 0x80, byte(IllegalDataAddress)}
					} else {
						rep = []byte{pdu[0], byte(2 * qty)}
						for _, w := range regs[addr : addr+qty] {
							rep = binary.BigEndian.AppendUint16(rep, w)
						}
					}
					out := append(hdr[:4:4], 0, 0, hdr[6])
					binary.BigEndian.PutUint16(out[4:], uint16(len(rep)+1))
					if _, err := c.Write(append(out, rep...)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "tcp://" + ln.Addr().String()
}

func pollOnceMap(t *testing.T, d *Device) map[string]bridge.Sample {
	t.Helper()
	got := map[string]bridge.Sample{}
	require.NoError(t, d.PollOnce(context.Background(), bridge.EmitterFunc(func(_ context.Context, b []bridge.Sample) error {
		for _, s := range b {
			got[s.Point] = s
		}
		return nil
	})))
	return got
}

func unplannedDevice(t *testing.T) *Device {
	t.Helper()
	regs := make([]uint16, 8)
	regs[0], regs[2], regs[5] = 2301, 7, 0xFFFF // w, v, w_sf = -1
	d, err := NewDevice(DeviceConfig{Name: "d", Conn: ClientConfig{URL: regServer(t, regs)}, Unit: 1, Points: []Point{
		{Name: "w", Table: Holding, Address: 0, Type: Int16, ScaleFactor: "w_sf"},
		{Name: "v", Table: Holding, Address: 2, Type: Uint16},
		{Name: "w_sf", Table: Holding, Address: 5, Type: Int16},
	}})
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

// TestSoloScaleFactorKeepsItsPoints: once a scale factor is read on its
// own (it answered Illegal Data Address in a request of its own), its
// points are read on their own with it, not left out of every request
// (they were: planned without their factor, they were never read).
func TestSoloScaleFactorKeepsItsPoints(t *testing.T) {
	d := unplannedDevice(t)
	d.solo[2] = true // w_sf
	got := pollOnceMap(t, d)
	require.Contains(t, got, "w")
	assert.Equal(t, bridge.Good, got["w"].Quality)
	assert.Equal(t, 230.1, got["w"].Value.Float())
	assert.Equal(t, bridge.Good, got["v"].Quality)
	assert.Empty(t, d.Plan().Unplanned)
}

// TestUnplannedPointIsBad: a point no request may read (here its span to
// its scale factor crosses a learned hole) yields a Bad sample with the
// reason each cycle, not silence.
func TestUnplannedPointIsBad(t *testing.T) {
	d := unplannedDevice(t)
	d.planner.Forbid(Holding, 3, 3)
	for range 2 {
		got := pollOnceMap(t, d)
		require.Contains(t, got, "w")
		assert.Equal(t, bridge.Bad, got["w"].Quality)
		assert.Equal(t, ErrUnplanned.Error(), got["w"].Reason)
		assert.Equal(t, bridge.Good, got["v"].Quality)
		assert.Equal(t, bridge.Good, got["w_sf"].Quality)
	}
}
