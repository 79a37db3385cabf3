package gateway

import (
	"net"
	"syscall"
)

// quickAck wraps a TCP connection so that every read turns delayed
// acknowledgements off again (TCP_QUICKACK, which Linux resets by itself):
// Mosquitto leaves Nagle's algorithm on, so a requester that waits for a
// reply after its own publish otherwise pays Linux's 40ms delayed ACK per
// command (see bridge/mqtt, quickAckConn).
func quickAck(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &quickAckConn{TCPConn: tc, rc: rc}
}

type quickAckConn struct {
	*net.TCPConn
	rc syscall.RawConn
}

func (c *quickAckConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	if n > 0 {
		_ = c.rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
		})
	}
	return n, err
}
