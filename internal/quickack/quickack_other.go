//go:build !linux

package quickack

import "net"

// Wrap returns c: TCP_QUICKACK exists on Linux only (see
// quickack_linux.go).
func Wrap(c net.Conn) net.Conn { return c }
