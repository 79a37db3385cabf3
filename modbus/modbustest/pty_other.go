//go:build !linux

package modbustest

import (
	"errors"
	"os"
)

// OpenPTY opens a pseudo-terminal pair; it is implemented on Linux only.
// Elsewhere it returns an error: use [SocatPTY].
func OpenPTY() (master *os.File, path string, close func() error, err error) {
	return nil, "", nil, errors.New("modbustest: OpenPTY is implemented on Linux only (use SocatPTY)")
}
