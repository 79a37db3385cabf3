package modbustest

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
)

var errBadFrame = errors.New("modbustest: bad frame")

// readMBAP reads one Modbus TCP request (Messaging on TCP/IP Implementation
// Guide 3.1.3: transaction id, protocol id 0, length, unit id, PDU). The
// PDU is returned in buf.
func readMBAP(r io.Reader, buf []byte) (txn uint16, unit uint8, pdu []byte, err error) {
	if _, err = io.ReadFull(r, buf[:7]); err != nil {
		return
	}
	txn = binary.BigEndian.Uint16(buf)
	proto := binary.BigEndian.Uint16(buf[2:])
	n := int(binary.BigEndian.Uint16(buf[4:]))
	unit = buf[6]
	if proto != 0 || n < 2 || n > 254 {
		err = errBadFrame
		return
	}
	if _, err = io.ReadFull(r, buf[:n-1]); err != nil {
		return
	}
	return txn, unit, buf[:n-1], nil
}

func writeMBAP(w io.Writer, txn uint16, unit uint8, pdu, buf []byte) error {
	b := buf[:0]
	b = binary.BigEndian.AppendUint16(b, txn)
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(pdu)+1))
	b = append(b, unit)
	b = append(b, pdu...)
	_, err := w.Write(b)
	return err
}

// readRTU reads one RTU request frame (Serial Line 2.5.1.1: address,
// function, data, CRC low byte first). Its length follows from the function
// code: 8 bytes for FC 01–06, 9 + byte count for FC 15 and 16.
func readRTU(r io.Reader, buf []byte) (unit uint8, pdu []byte, err error) {
	if _, err = io.ReadFull(r, buf[:2]); err != nil {
		return
	}
	n := 0
	switch buf[1] {
	case 0x01, 0x02, 0x03, 0x04, 0x05, 0x06:
		if _, err = io.ReadFull(r, buf[2:8]); err != nil {
			return
		}
		n = 8
	case 0x0F, 0x10:
		if _, err = io.ReadFull(r, buf[2:7]); err != nil {
			return
		}
		n = 9 + int(buf[6])
		if _, err = io.ReadFull(r, buf[7:n]); err != nil {
			return
		}
	default:
		return 0, nil, errBadFrame
	}
	if CRC(buf[:n-2]) != binary.LittleEndian.Uint16(buf[n-2:]) {
		return 0, nil, errBadFrame
	}
	return buf[0], buf[1 : n-2], nil
}

func writeRTU(w io.Writer, unit uint8, pdu, buf []byte, corrupt bool) error {
	b := append(buf[:0], unit)
	b = append(b, pdu...)
	crc := CRC(b)
	if corrupt {
		crc ^= 0x5A5A
	}
	b = binary.LittleEndian.AppendUint16(b, crc)
	_, err := w.Write(b)
	return err
}

// CRC returns the Modbus RTU CRC-16 of b (polynomial 0xA001 reflected,
// initial value 0xFFFF; Serial Line V1.02, 6.2.2). It is sent low byte first.
func CRC(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// Moving returns the simulated value of point p (the i-th of its profile)
// at t seconds: bools toggle every i%5+1 seconds; points in energy units
// (kWh, Wh, varh, kvarh, VAh, kVAh, m3, m³) and unscaled integers count up;
// other numbers follow a sine wave around a level chosen from the unit
// (230 V, 5 A, 50 Hz, 1000 W ...); strings are "SIM" followed by the point's
// name. The value fits the point's type and scale where the level allows.
func Moving(p modbus.Point, i int, t float64) bridge.Value {
	switch p.Type {
	case modbus.Bool:
		return bridge.Bool(int(t)/(i%5+1)%2 == 1)
	case modbus.String:
		s := "SIM " + p.Name
		if n := 2 * int(p.Length); len(s) > n {
			s = s[:n]
		}
		return bridge.String(s)
	}
	scale := p.Scale
	if scale == 0 {
		scale = 1
	}
	// The largest engineering value the type holds.
	var maxRaw float64
	switch p.Type {
	case modbus.Int16:
		maxRaw = math.MaxInt16
	case modbus.Uint16:
		maxRaw = math.MaxUint16
	case modbus.Int32:
		maxRaw = math.MaxInt32
	case modbus.Uint32:
		maxRaw = math.MaxUint32
	default:
		maxRaw = 1 << 50
	}
	limit := maxRaw*math.Abs(scale)*0.8 + p.Offset
	phase := float64(i) * 0.7
	integer := p.Type != modbus.Float32 && p.Type != modbus.Float64
	if isCounter(p.Unit) || (integer && scale == 1 && p.Offset == 0 && p.Unit == "") {
		// A counter: starts at a level depending on the point and rises.
		v := 1000 + float64(i)*100 + t*float64(i%7+1)
		if integer && scale == 1 && p.Offset == 0 {
			v = math.Floor(v)
		}
		if v > limit {
			v = math.Mod(v, limit)
		}
		return fitted(p, v)
	}
	level, amp := levelOf(p.Unit)
	if level+amp > limit {
		level, amp = limit/2, limit/10
	}
	v := level + amp*math.Sin(2*math.Pi*t/30+phase)
	return fitted(p, v)
}

// fitted returns v as the kind the point decodes to: an exact integer for
// an unscaled integer point, a float otherwise.
func fitted(p modbus.Point, v float64) bridge.Value {
	if p.Type != modbus.Float32 && p.Type != modbus.Float64 && (p.Scale == 0 || p.Scale == 1) && p.Offset == 0 {
		switch p.Type {
		case modbus.Int16, modbus.Int32, modbus.Int64:
			return bridge.Int(int64(math.Round(v)))
		default:
			return bridge.Uint(uint64(math.Max(0, math.Round(v))))
		}
	}
	return bridge.Float(v)
}

func isCounter(unit string) bool {
	switch strings.ToLower(unit) {
	case "kwh", "wh", "mwh", "varh", "kvarh", "vah", "kvah", "m3", "m³", "l", "count":
		return true
	}
	return false
}

func levelOf(unit string) (level, amp float64) {
	switch strings.ToLower(unit) {
	case "v":
		return 230, 5
	case "a":
		return 5, 2
	case "hz":
		return 50, 0.1
	case "w", "va", "var":
		return 1000, 300
	case "kw", "kva", "kvar":
		return 1, 0.3
	case "°c", "c", "degc":
		return 21, 2
	case "%":
		return 50, 20
	case "°", "deg":
		return 20, 10
	case "":
		return 0.9, 0.05 // power factors and other ratios
	}
	return 100, 10
}

// socatPTY starts socat with two linked pseudo-terminals whose links are
// made in dir, and waits until both exist.
func socatPTY(ctx context.Context, dir string) (a, b string, stop func(), err error) {
	bin, err := exec.LookPath("socat")
	if err != nil {
		return "", "", nil, fmt.Errorf("modbustest: socat not found: %w", err)
	}
	a, b = filepath.Join(dir, "pty-a"), filepath.Join(dir, "pty-b")
	cmd := exec.Command(bin, "-d", "-d",
		"pty,raw,echo=0,link="+a, "pty,raw,echo=0,link="+b)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", "", nil, fmt.Errorf("modbustest: starting socat: %w", err)
	}
	ready := make(chan struct{})
	go func() {
		var once sync.Once
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "starting data transfer loop") {
				once.Do(func() { close(ready) })
			}
		}
		once.Do(func() { close(ready) })
	}()
	stop = func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-ready:
	case <-ctx.Done():
		stop()
		return "", "", nil, ctx.Err()
	case <-t.C:
		stop()
		return "", "", nil, errors.New("modbustest: socat did not start within 5s")
	}
	for _, p := range []string{a, b} {
		if _, err := os.Stat(p); err != nil {
			stop()
			return "", "", nil, fmt.Errorf("modbustest: socat: %w", err)
		}
	}
	return a, b, stop, nil
}
