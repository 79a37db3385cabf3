//go:build linux

package testline

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/m2mbridge/m2mbridge/modbus"
)

// Line is an emulated serial line: a client opens [Line.Path], a
// pseudo-terminal, with whatever speed and parity it likes; a device sits
// on the other end at fixed Settings. A relay between them reads the
// client's line settings from the pseudo-terminal and passes each burst of
// bytes through [Receive], both ways, so that the device sees what a UART
// at its settings would make of the client's bytes and the client sees what
// its own would make of the device's answer.
//
// How the client's settings are read: on Linux the two ends of a
// pseudo-terminal share one termios, and the master's TCGETS returns the
// slave's (drivers/tty/tty_ioctl.c, tty_mode_ioctl uses the linked tty). The
// kernel stores the speed (CBAUD), PARODD, CSTOPB and the input flags as
// set, but clears PARENB and forces CS8 (pty.c, pty_set_termios): so parity
// is read from INPCK, input parity checking, which a port set to even or
// odd parity turns on (goburrow/serial, the modbus package's serial
// driver, and pyserial do), and odd from PARODD; data bits cannot be seen
// and are taken as 8.
type Line struct {
	dev    Settings
	master *os.File // the client's pseudo-terminal, master side
	hold   *os.File // a slave descriptor kept open, so master reads never see a hang-up
	path   string
	device io.ReadWriteCloser

	closed   atomic.Bool
	wg       sync.WaitGroup
	passed   atomic.Uint64
	garbled  atomic.Uint64
	lastMu   sync.Mutex
	lastSeen Settings
}

// Open starts a Line whose device end is device (for instance one end of
// net.Pipe served by modbustest.NewRTUServer, or the pseudo-terminal a
// pymodbus server listens on), talking at dev. The Line owns device:
// Close closes it.
func Open(device io.ReadWriteCloser, dev Settings) (*Line, error) {
	m, path, err := OpenPTY()
	if err != nil {
		return nil, err
	}
	hold, err := OpenRaw(path)
	if err != nil {
		m.Close()
		return nil, err
	}
	if dev.Speed <= 0 {
		m.Close()
		hold.Close()
		return nil, fmt.Errorf("testline: device speed %d", dev.Speed)
	}
	l := &Line{dev: dev, master: m, hold: hold, path: path, device: device}
	l.wg.Add(2)
	go l.toDevice()
	go l.toClient()
	return l, nil
}

// OpenPTY opens a new pseudo-terminal and returns its master side and the
// path of its slave side (/dev/pts/N), which a program under test opens or
// gets as its stderr. The master is non-blocking underneath: its reads
// take deadlines and Close ends them.
func OpenPTY() (master *os.File, path string, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, "", fmt.Errorf("testline: %w", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, "", fmt.Errorf("testline: unlocking the pseudo-terminal: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, "", fmt.Errorf("testline: pseudo-terminal number: %w", err)
	}
	return m, fmt.Sprintf("/dev/pts/%d", n), nil
}

// OpenRaw opens a terminal device in raw mode (no echo, no line editing,
// no translation), as a serial driver would, without making it the
// controlling terminal; non-blocking underneath, so its reads take
// deadlines and Close ends a read in progress.
func OpenRaw(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("testline: %w", err)
	}
	t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err == nil {
		// cfmakeraw(3)
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB
		t.Cflag |= unix.CS8
		t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
		err = unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("testline: raw mode on %s: %w", path, err)
	}
	return f, nil
}

// Path is the serial device the client opens: rtu://<Path>?speed=...
func (l *Line) Path() string { return l.path }

// Passed counts the bursts that reached the other end unchanged, at
// matching settings.
func (l *Line) Passed() uint64 { return l.passed.Load() }

// Garbled counts the bursts a mismatch of settings changed (or dropped).
func (l *Line) Garbled() uint64 { return l.garbled.Load() }

// LastClientSettings returns the client's settings as last read from the
// pseudo-terminal.
func (l *Line) LastClientSettings() Settings {
	l.lastMu.Lock()
	defer l.lastMu.Unlock()
	return l.lastSeen
}

// Close stops the relay and closes the pseudo-terminal and the device end.
func (l *Line) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	err := l.master.Close()
	l.hold.Close()
	l.device.Close()
	l.wg.Wait()
	return err
}

// speeds maps termios CBAUD codes to baud rates.
var speeds = map[uint32]int{
	unix.B1200: 1200, unix.B2400: 2400, unix.B4800: 4800, unix.B9600: 9600, unix.B19200: 19200,
	unix.B38400: 38400, unix.B57600: 57600, unix.B115200: 115200, unix.B230400: 230400,
	unix.B460800: 460800, unix.B921600: 921600,
}

// client reads the client's settings from the shared termios.
func (l *Line) client() (Settings, error) {
	t, err := unix.IoctlGetTermios(int(l.master.Fd()), unix.TCGETS)
	if err != nil {
		return Settings{}, err
	}
	s := Settings{Speed: speeds[t.Cflag&unix.CBAUD], Parity: modbus.ParityNone, StopBits: 1}
	if t.Iflag&unix.INPCK != 0 || t.Cflag&unix.PARENB != 0 {
		s.Parity = modbus.ParityEven
		if t.Cflag&unix.PARODD != 0 {
			s.Parity = modbus.ParityOdd
		}
	}
	if t.Cflag&unix.CSTOPB != 0 {
		s.StopBits = 2
	}
	l.lastMu.Lock()
	l.lastSeen = s
	l.lastMu.Unlock()
	return s, nil
}

// same reports whether a and b frame characters alike. Stop bits do not
// matter: a receiver checks one stop bit, and a second is idle line.
func same(a, b Settings) bool { return a.Speed == b.Speed && a.Parity == b.Parity }

// burst reads one burst from r: what arrives until the line has been quiet
// for quiet. r must support read deadlines.
func burst(r interface {
	io.Reader
	SetReadDeadline(time.Time) error
}, buf []byte, quiet func() time.Duration) ([]byte, error) {
	if err := r.SetReadDeadline(time.Time{}); err != nil {
		return nil, err
	}
	n, err := r.Read(buf)
	if err != nil {
		return nil, err
	}
	for n < len(buf) {
		if err := r.SetReadDeadline(time.Now().Add(quiet())); err != nil {
			return nil, err
		}
		m, err := r.Read(buf[n:])
		n += m
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			return buf[:n], err
		}
	}
	return buf[:n], nil
}

// quiet is the silence that ends a burst: 3.5 characters at the client's
// speed (the RTU inter-frame gap, Serial Line V1.02 2.5.1.1), at least 3 ms
// (a pseudo-terminal hands over bytes in chunks, not at line speed).
func (l *Line) quiet() time.Duration {
	s := l.LastClientSettings()
	if s.Speed <= 0 {
		return 3 * time.Millisecond
	}
	return max(time.Duration(s.charBits())*time.Second*7/2/time.Duration(s.Speed), 3*time.Millisecond)
}

// frameOK reports whether b is an RTU frame with a good CRC (Serial Line
// V1.02 6.2.2).
func frameOK(b []byte) bool {
	if len(b) < 4 {
		return false
	}
	crc := uint16(0xFFFF)
	for _, c := range b[:len(b)-2] {
		crc ^= uint16(c)
		for i := 0; i < 8; i++ {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc == uint16(b[len(b)-2])|uint16(b[len(b)-1])<<8
}

type deadlineReader interface {
	io.Reader
	SetReadDeadline(time.Time) error
}

// toDevice relays the client's bursts to the device. A burst is what the
// client wrote before the line fell quiet, as a device's receiver delimits
// frames by silence; it reaches the device as the device's UART reads it,
// and only when that is a frame with no character error and a good CRC.
// A real device discards any other frame (Serial Line V1.02 2.5.1.1,
// "frame NOK"); the device behind a Line reads a byte stream without
// timing, so the Line does that discarding for it.
func (l *Line) toDevice() {
	defer l.wg.Done()
	buf := make([]byte, 512)
	for {
		b, err := burst(l.master, buf, l.quiet)
		if len(b) > 0 {
			c, cerr := l.client()
			switch {
			case cerr != nil:
			case same(c, l.dev):
				l.passed.Add(1)
				if _, err := l.device.Write(b); err != nil {
					return
				}
			default:
				l.garbled.Add(1)
				rx, bad := receive(c, l.dev, b)
				if bad == 0 && frameOK(rx) {
					if _, err := l.device.Write(rx); err != nil {
						return
					}
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// toClient relays the device's answers to the client as the client's UART
// reads them: unchanged at matching settings, else garbled, character
// errors as 0x00 (the client's own framing has timing, and sorts it out).
func (l *Line) toClient() {
	defer l.wg.Done()
	buf := make([]byte, 512)
	for {
		var b []byte
		var err error
		if dr, ok := l.device.(deadlineReader); ok {
			b, err = burst(dr, buf, l.quiet)
		} else {
			var n int
			n, err = l.device.Read(buf)
			b = buf[:n]
		}
		if len(b) > 0 && !l.closed.Load() {
			if c, cerr := l.client(); cerr == nil {
				out := b
				if same(c, l.dev) {
					l.passed.Add(1)
				} else {
					l.garbled.Add(1)
					out = Receive(l.dev, c, b)
				}
				if len(out) > 0 {
					if _, err := l.master.Write(out); err != nil {
						return
					}
				}
			}
		}
		if err != nil || l.closed.Load() {
			return
		}
	}
}
