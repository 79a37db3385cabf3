package modbustest_test

import (
	"bufio"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// asciiPeer dials an ASCII-over-TCP server and returns a function that
// sends raw text and one that reads one reply line (up to LF), or "" when
// none comes within wait.
func asciiPeer(t *testing.T, addr string) (send func(string), reply func(wait time.Duration) string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	r := bufio.NewReader(c)
	return func(s string) {
			_, err := c.Write([]byte(s))
			require.NoError(t, err)
		}, func(wait time.Duration) string {
			require.NoError(t, c.SetReadDeadline(time.Now().Add(wait)))
			line, err := r.ReadString('\n')
			if err != nil {
				return ""
			}
			return line
		}
}

// TestASCIIServerFrames: the ASCII server answers well-formed frames in hex
// with an LRC, drops malformed ones (bad LRC, not hex, no LF, a frame cut
// by a ':' or by a gap longer than the inter-character timeout) without an
// answer, and answers the next good frame.
func TestASCIIServerFrames(t *testing.T) {
	s, err := modbustest.NewServer(profile(), modbustest.WithFraming(modbustest.ASCII),
		modbustest.WithInterCharTimeout(50*time.Millisecond))
	require.NoError(t, err)
	defer s.Close()
	require.True(t, strings.HasPrefix(s.URL(), "asciiovertcp://"), s.URL())
	require.NoError(t, s.Set("mode", 0x1234))
	// Read holding 10, quantity 1, unit 1: 01 03 000A 0001, LRC F1.
	req := string(modbus.AppendASCIIFrame(nil, []byte{0x01, 0x03, 0x00, 0x0A, 0x00, 0x01}))
	require.Equal(t, ":0103000A0001F1\r\n", req)
	want := string(modbus.AppendASCIIFrame(nil, []byte{0x01, 0x03, 0x02, 0x12, 0x34}))
	send, reply := asciiPeer(t, s.Addr())

	send(req)
	assert.Equal(t, want, reply(2*time.Second))
	for name, bad := range map[string]string{
		"bad LRC":         ":0103000A0001F2\r\n",
		"not hex":         ":0103000X0001F1\r\n",
		"CR without LF":   ":0103000A0001F1\r\r",
		"cut by a colon":  ":0103000A",
		"odd digit count": ":0103000A0001F\r\n",
		"too short":       ":01FF\r\n",
	} {
		send(bad)
		assert.Empty(t, reply(100*time.Millisecond), name)
		send(req)
		assert.Equal(t, want, reply(2*time.Second), "the frame after %s", name)
	}
	// A gap longer than the inter-character timeout drops the frame.
	send(req[:6])
	time.Sleep(150 * time.Millisecond) // the gap under test
	send(req[6:])
	assert.Empty(t, reply(100*time.Millisecond))
	send(req)
	assert.Equal(t, want, reply(2*time.Second))
	// Lower-case hex is read; an exception is framed too.
	send(strings.ToLower(req))
	assert.Equal(t, want, reply(2*time.Second))
	send(string(modbus.AppendASCIIFrame(nil, []byte{0x01, 0x03, 0x01, 0x00, 0x00, 0x01})))
	assert.Equal(t, string(modbus.AppendASCIIFrame(nil, []byte{0x01, 0x83, 0x02})), reply(2*time.Second))
	// The corrupt fault spoils the LRC of the answer.
	s.SetHook(modbustest.First(1, func(modbustest.Request) modbustest.Fault { return modbustest.Fault{Corrupt: true} }))
	send(req)
	got := reply(2 * time.Second)
	require.Len(t, got, len(want))
	assert.Equal(t, want[:len(want)-4], got[:len(got)-4], "same frame ...")
	assert.NotEqual(t, want, got, "... with another LRC")
}

// TestASCIIServerOnPTY: NewASCIIServer on the master end of OpenPTY,
// written and read by hand on the device end.
func TestASCIIServerOnPTY(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("OpenPTY is Linux only")
	}
	m, path, closePTY, err := modbustest.OpenPTY()
	require.NoError(t, err)
	s, err := modbustest.NewASCIIServer(profile(), m)
	require.NoError(t, err)
	defer func() {
		require.NoError(t, s.Close())
		closePTY()
	}()
	require.NoError(t, s.Set("relay", true))
	ep, err := modbus.ParseURL("ascii://" + path + "?data_bits=8&parity=none&stop_bits=1")
	require.NoError(t, err)
	port, err := modbustest.OpenSerial(ep)
	require.NoError(t, err)
	defer port.Close()
	_, err = port.Write(modbus.AppendASCIIFrame(nil, []byte{0x05, 0x01, 0x00, 0x03, 0x00, 0x01}))
	require.NoError(t, err)
	want := string(modbus.AppendASCIIFrame(nil, []byte{0x05, 0x01, 0x01, 0x01}))
	got := make([]byte, 0, 64)
	buf := make([]byte, 64)
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < len(want) && time.Now().Before(deadline) {
		n, err := port.Read(buf)
		require.NoError(t, err)
		got = append(got, buf[:n]...)
	}
	assert.Equal(t, want, string(got))
	assert.Equal(t, uint64(1), s.RequestCount())
}
