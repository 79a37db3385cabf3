//go:build !linux

package gateway

import "net"

// quickAck returns c: TCP_QUICKACK exists on Linux only.
func quickAck(c net.Conn) net.Conn { return c }
