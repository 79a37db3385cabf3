package testline

import (
	"math"

	"github.com/m2mbridge/m2mbridge/modbus"
)

// Settings are the character format of one end of a serial line.
type Settings struct {
	Speed    int           // baud
	Parity   modbus.Parity // none, even or odd
	StopBits int           // 1 or 2; 0 means 1
	// Data bits are always 8: a Linux pseudo-terminal forces CS8 whatever
	// the client asks (drivers/tty/pty.c, pty_set_termios), so the client's
	// choice cannot be seen.
}

func (s Settings) stop() int { return max(s.StopBits, 1) }

// charBits is the length of one character on the wire, in bits: start,
// 8 data, parity, stop.
func (s Settings) charBits() int {
	n := 1 + 8 + s.stop()
	if s.Parity == modbus.ParityEven || s.Parity == modbus.ParityOdd {
		n++
	}
	return n
}

// wave is the level of a line carrying a burst of characters sent back to
// back at settings s, from time 0; idle (1) before and after.
type wave struct {
	s     Settings
	data  []byte
	nbits int // bits in the burst
}

func newWave(s Settings, data []byte) wave {
	return wave{s: s, data: data, nbits: len(data) * s.charBits()}
}

// bit returns the level of the k-th bit cell of the burst.
func (w wave) bit(k int) uint8 {
	if k < 0 || k >= w.nbits {
		return 1
	}
	cb := w.s.charBits()
	c, j := w.data[k/cb], k%cb
	switch {
	case j == 0:
		return 0 // start bit
	case j <= 8:
		return (c >> (j - 1)) & 1 // data, least significant bit first
	case j == 9 && cb-8-1-w.s.stop() == 1:
		return parityBit(c, w.s.Parity)
	}
	return 1 // stop bits
}

// level is the line level at time t (seconds from the start of the burst).
func (w wave) level(t float64) uint8 {
	if t < 0 {
		return 1
	}
	return w.bit(int(math.Floor(t * float64(w.s.Speed))))
}

// parityBit is the parity bit a sender with parity p appends to c.
func parityBit(c byte, p modbus.Parity) uint8 {
	ones := 0
	for i := 0; i < 8; i++ {
		ones += int(c>>i) & 1
	}
	odd := uint8(ones & 1)
	if p == modbus.ParityOdd {
		return odd ^ 1
	}
	return odd
}

// Receive is what a UART set to rx reads from a burst sent at tx: it
// samples the line in the middle of each bit cell of its own, as a UART
// does, after each falling edge that starts a character. A character with
// a parity or framing error (a stop bit read as 0) is read as 0x00, which
// is what Linux gives a reader of a port with input parity checking (INPCK)
// and neither IGNPAR nor PARMRK (termios(3)). With rx == tx (stop bits
// aside) the bytes come through unchanged.
func Receive(tx, rx Settings, data []byte) []byte {
	out, _ := receive(tx, rx, data)
	return out
}

// receive is Receive, also counting the characters with a parity or
// framing error.
func receive(tx, rx Settings, data []byte) (out []byte, bad int) {
	if len(data) == 0 || rx.Speed <= 0 || tx.Speed <= 0 {
		return nil, 0
	}
	w := newWave(tx, data)
	txBit := 1 / float64(tx.Speed)
	rxBit := 1 / float64(rx.Speed)
	end := float64(w.nbits) * txBit
	parity := rx.Parity == modbus.ParityEven || rx.Parity == modbus.ParityOdd
	k := 0 // next sender bit cell to look at for a falling edge
	for {
		// The next falling edge: a cell at 0 after a cell at 1.
		for k < w.nbits && !(w.bit(k) == 0 && w.bit(k-1) == 1) {
			k++
		}
		if k >= w.nbits {
			return out, bad
		}
		edge := float64(k) * txBit
		sample := func(i float64) uint8 { return w.level(edge + (i+0.5)*rxBit) }
		if sample(0) != 0 {
			k++ // a glitch, not a start bit
			continue
		}
		var c byte
		for i := 0; i < 8; i++ {
			c |= sample(float64(1+i)) << i
		}
		ok := true
		pos := 9.0
		if parity {
			ok = sample(pos) == parityBit(c, rx.Parity)
			pos++
		}
		if sample(pos) != 1 {
			ok = false // framing error
		}
		if !ok {
			c = 0
			bad++
		}
		out = append(out, c)
		// The receiver looks for the next start bit after the middle of
		// its stop bit.
		next := edge + (pos+0.5)*rxBit
		if next >= end {
			return out, bad
		}
		k = max(k+1, int(math.Ceil(next*float64(tx.Speed))))
	}
}
