package modbus

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLRC(t *testing.T) {
	// Modbus over Serial Line V1.02, 6.2.1: the two's complement of the
	// 8-bit sum. Read holding register 0 of unit 1: 01+03+00+00+00+01 = 05,
	// LRC FB; the sum of a message and its LRC is 0.
	assert.Equal(t, byte(0xFB), LRC([]byte{0x01, 0x03, 0x00, 0x00, 0x00, 0x01}))
	assert.Equal(t, byte(0xF2), LRC([]byte{0x01, 0x03, 0x00, 0x00, 0x00, 0x0A}))
	assert.Equal(t, byte(0x00), LRC(nil))
	assert.Equal(t, byte(0x01), LRC([]byte{0xFF})) // the sum wraps at 8 bits
	assert.Equal(t, byte(0x02), LRC([]byte{0x7F, 0x7F}))
	b := []byte{0x11, 0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0xAB, 0xCD, 0xEF, 0x01}
	var sum byte
	for _, c := range append(b, LRC(b)) {
		sum += c
	}
	assert.Zero(t, sum)
}

func TestAppendASCIIFrame(t *testing.T) {
	got := AppendASCIIFrame([]byte("x"), []byte{0x01, 0x03, 0x00, 0x00, 0x00, 0x01})
	assert.Equal(t, "x:010300000001FB\r\n", string(got))
	got = AppendASCIIFrame(nil, []byte{0xF7, 0x10, 0xAB, 0xCD})
	assert.Equal(t, ":F710ABCD"+fmt.Sprintf("%02X", LRC([]byte{0xF7, 0x10, 0xAB, 0xCD}))+"\r\n", string(got))
}

// framerOn returns an ASCII framer reading the far end of a pipe, and a
// function that sends chunks on it, each after the given pause.
func framerOn(t *testing.T, interChar time.Duration) (*asciiFramer, func(pause time.Duration, chunks ...string)) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	f := newASCIIFramer(&netPort{c: a, r: bufio.NewReaderSize(a, 512)}, interChar)
	send := func(pause time.Duration, chunks ...string) {
		go func() {
			for _, c := range chunks {
				if pause > 0 {
					time.Sleep(pause) // the gap between characters is what is tested
				}
				if _, err := b.Write([]byte(c)); err != nil {
					return
				}
			}
		}()
	}
	return f, send
}

// frames reads frames until the deadline, describing each: "01:0302ABCD"
// (unit and PDU in hex), "garbled", or "timeout" (the last).
func frames(f *asciiFramer, wait time.Duration) []string {
	var out []string
	deadline := time.Now().Add(wait)
	for {
		unit, pdu, err := f.readFrame(deadline)
		switch {
		case err == nil:
			out = append(out, fmt.Sprintf("%02X:%s", unit, strings.ToUpper(hex.EncodeToString(pdu))))
		case errors.Is(err, errGarbled):
			out = append(out, "garbled")
		case isTimeout(err):
			return append(out, "timeout")
		default:
			return append(out, err.Error())
		}
	}
}

// frame returns the ASCII frame of an address and PDU given in hex.
func frame(adu string) string {
	b, _ := hex.DecodeString(adu)
	return string(AppendASCIIFrame(nil, b))
}

func TestASCIIFramer(t *testing.T) {
	read := frame("0103021234")
	exc := frame("018302")
	echo := frame("0106000A0102")
	for _, tt := range []struct {
		name   string
		chunks []string
		want   []string
	}{
		{"one frame", []string{read}, []string{"01:03021234", "timeout"}},
		{"byte by byte", strings.Split(read, ""), []string{"01:03021234", "timeout"}},
		{"two frames in one chunk", []string{read + exc}, []string{"01:03021234", "01:8302", "timeout"}},
		{"write echo", []string{echo}, []string{"01:06000A0102", "timeout"}},
		{"lower-case hex", []string{strings.ToLower(read)}, []string{"01:03021234", "timeout"}},
		{"garbage between frames", []string{"\x00zz\r\n" + read + "noise" + exc}, []string{"garbled", "01:03021234", "garbled", "01:8302", "timeout"}},
		{"bad LRC", []string{":010302123400\r\n", read}, []string{"garbled", "01:03021234", "timeout"}},
		{"not hex", []string{":0103021G34B3\r\n", read}, []string{"garbled", "01:03021234", "timeout"}},
		{"odd number of digits", []string{":0103021234B\r\n", read}, []string{"garbled", "01:03021234", "timeout"}},
		{"missing LF", []string{strings.TrimSuffix(read, "\n") + read}, []string{"garbled", "01:03021234", "timeout"}},
		{"missing CR LF: a ':' starts anew", []string{strings.TrimSuffix(read, "\r\n") + read}, []string{"garbled", "01:03021234", "timeout"}},
		{"too short", []string{":01FF\r\n", read}, []string{"garbled", "01:03021234", "timeout"}},
		{"length its function does not allow", []string{frame("010302123456"), read}, []string{"garbled", "01:03021234", "timeout"}},
		{"oversize", []string{":" + strings.Repeat("00", 300) + "\r\n", read}, []string{"garbled", "01:03021234", "timeout"}},
		{"partial frame, then a whole one", []string{read[:7], read}, []string{"garbled", "01:03021234", "timeout"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, send := framerOn(t, time.Second)
			send(0, tt.chunks...)
			assert.Equal(t, tt.want, frames(f, 200*time.Millisecond))
		})
	}
}

func TestASCIIFramerInterCharTimeout(t *testing.T) {
	read := frame("0103021234")
	// A gap of 60 ms between characters is fine with a 1 s timeout...
	f, send := framerOn(t, time.Second)
	send(60*time.Millisecond, read[:5], read[5:9], read[9:])
	assert.Equal(t, []string{"01:03021234", "timeout"}, frames(f, 500*time.Millisecond))
	// ... and abandons the frame with 20 ms (Serial Line 2.5.2.1); the
	// rest of it is not counted again, and the next frame is read.
	f, send = framerOn(t, 20*time.Millisecond)
	send(60*time.Millisecond, read[:5], read[5:]+read)
	assert.Equal(t, []string{"garbled", "01:03021234", "timeout"}, frames(f, 500*time.Millisecond))
	// A gap between the CR and the LF counts too.
	f, send = framerOn(t, 20*time.Millisecond)
	send(60*time.Millisecond, strings.TrimSuffix(read, "\n"), "\n"+read)
	assert.Equal(t, []string{"garbled", "01:03021234", "timeout"}, frames(f, 500*time.Millisecond))
}

// TestASCIIFramerFrameAcrossDeadline: a frame still arriving at the
// request's deadline is kept and completed by the next read, so a late
// reply is recognised whole (and discarded by the caller as late).
func TestASCIIFramerFrameAcrossDeadline(t *testing.T) {
	read := frame("0103021234")
	for _, cut := range []int{5, len(read) - 1} { // in the digits; between CR and LF
		f, send := framerOn(t, time.Second)
		send(0, read[:cut])
		_, _, err := f.readFrame(time.Now().Add(50 * time.Millisecond))
		require.True(t, isTimeout(err), "%v", err)
		send(0, read[cut:])
		assert.Equal(t, []string{"01:03021234", "timeout"}, frames(f, 200*time.Millisecond), "cut at %d", cut)
	}
	// discardBuffered drops such a partial frame and says so.
	f, send := framerOn(t, time.Second)
	send(0, read[:5])
	_, _, err := f.readFrame(time.Now().Add(50 * time.Millisecond))
	require.True(t, isTimeout(err))
	assert.True(t, f.discardBuffered())
	assert.False(t, f.discardBuffered())
	send(0, read[5:], read)
	assert.Equal(t, []string{"01:03021234", "timeout"}, frames(f, 200*time.Millisecond))
}

func FuzzASCIIFramer(f *testing.F) {
	f.Add([]byte(frame("0103021234")))
	f.Add([]byte(":0103\r\n:01"))
	f.Add([]byte(":" + strings.Repeat("F", 600)))
	f.Fuzz(func(t *testing.T, in []byte) {
		a, b := net.Pipe()
		defer a.Close()
		go func() { _, _ = b.Write(in); b.Close() }()
		fr := newASCIIFramer(&netPort{c: a, r: bufio.NewReaderSize(a, 512)}, time.Second)
		deadline := time.Now().Add(time.Second)
		for range 1000 {
			unit, pdu, err := fr.readFrame(deadline)
			if err == nil {
				// Whatever is accepted is well formed: it re-encodes to a
				// frame found in the input.
				adu := append([]byte{unit}, pdu...)
				enc := AppendASCIIFrame(nil, adu)
				if !strings.Contains(strings.ToUpper(string(in)), string(enc[1:len(enc)-2])) {
					t.Fatalf("accepted %X, not in the input %q", adu, in)
				}
				continue
			}
			if !errors.Is(err, errGarbled) {
				return
			}
		}
	})
}
