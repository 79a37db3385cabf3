//go:build !linux

package mqtt

import "net"

// withQuickAck returns c: TCP_QUICKACK exists on Linux only (see
// quickack_linux.go).
func withQuickAck(c net.Conn) net.Conn { return c }
