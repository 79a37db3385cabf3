//go:build !linux

package fieldtool

import "os"

// IsTerminal reports whether f is a terminal. Outside Linux it says no, and
// progress is printed as plain lines.
func IsTerminal(f *os.File) bool { return false }
