package modbustest

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// OpenPTY opens a pseudo-terminal pair without socat: the returned
// master file is the device's end (serve it with [NewRTUServer] or
// [NewASCIIServer]), path is the serial device a client opens
// (/dev/pts/N). The line is raw (no echo, no CR/LF translation). The
// pair lives until close is called, after the server is closed; it holds
// the client's end open itself, so that a client may close and reopen it
// without the master seeing a hang-up. Linux only; elsewhere it returns an
// error (use [SocatPTY]).
func OpenPTY() (master *os.File, path string, close func() error, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, "", nil, fmt.Errorf("modbustest: open /dev/ptmx: %w", err)
	}
	fail := func(err error) (*os.File, string, func() error, error) {
		m.Close()
		return nil, "", nil, fmt.Errorf("modbustest: pseudo-terminal: %w", err)
	}
	rc, err := m.SyscallConn()
	if err != nil {
		return fail(err)
	}
	var n uint32
	var ioErr error
	err = rc.Control(func(fd uintptr) {
		var unlock int32
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
			ioErr = fmt.Errorf("unlock: %w", e)
			return
		}
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
			ioErr = fmt.Errorf("pty number: %w", e)
		}
	})
	if err == nil {
		err = ioErr
	}
	if err != nil {
		return fail(err)
	}
	path = fmt.Sprintf("/dev/pts/%d", n)
	s, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return fail(err)
	}
	if err := makeRaw(s); err != nil {
		s.Close()
		return fail(err)
	}
	return m, path, func() error {
		err := s.Close()
		if e := m.Close(); e != nil && err == nil {
			err = e
		}
		return err
	}, nil
}

// makeRaw turns off the line discipline's processing of f (as cfmakeraw
// does, but keeping the character size and parity, which a pseudo-terminal
// may refuse to change).
func makeRaw(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	err = rc.Control(func(fd uintptr) {
		var t syscall.Termios
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCGETS, uintptr(unsafe.Pointer(&t))); e != 0 {
			ioErr = fmt.Errorf("tcgetattr: %w", e)
			return
		}
		t.Iflag &^= syscall.IGNBRK | syscall.BRKINT | syscall.PARMRK | syscall.ISTRIP | syscall.INLCR |
			syscall.IGNCR | syscall.ICRNL | syscall.IXON
		t.Oflag &^= syscall.OPOST
		t.Lflag &^= syscall.ECHO | syscall.ECHONL | syscall.ICANON | syscall.ISIG | syscall.IEXTEN
		t.Cc[syscall.VMIN], t.Cc[syscall.VTIME] = 1, 0
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCSETS, uintptr(unsafe.Pointer(&t))); e != 0 {
			ioErr = fmt.Errorf("tcsetattr: %w", e)
		}
	})
	if err == nil {
		err = ioErr
	}
	return err
}
