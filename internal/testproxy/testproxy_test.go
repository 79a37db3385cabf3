package testproxy_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/internal/testproxy"
)

// echo starts a line echo server and returns its address.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

// roundTrip sends a line through c and reads the echo.
func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, line string) {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err := io.WriteString(c, line+"\n")
	require.NoError(t, err)
	got, err := r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, line+"\n", got)
}

func TestProxy(t *testing.T) {
	p := testproxy.New(t, echo(t))
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	r := bufio.NewReader(c)
	roundTrip(t, c, r, "one")

	// Held: the request goes through but the reply waits for Release.
	p.Hold()
	_, err = io.WriteString(c, "two\n")
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	_, err = r.ReadString('\n')
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "want a timeout while held, got %v", err)
	p.Release()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	got, err := r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "two\n", got)

	// Cut: the connection ends and new ones are refused until Restore.
	p.Cut()
	_, err = r.ReadString('\n')
	require.Error(t, err)
	c2, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err, "the listener still accepts, then closes")
	require.NoError(t, c2.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = c2.Read(make([]byte, 1))
	require.Error(t, err)
	c2.Close()

	p.Restore()
	c3, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c3.Close()
	roundTrip(t, c3, bufio.NewReader(c3), "three")
}

func TestPeerAddr(t *testing.T) {
	addr := echo(t)
	t.Setenv("M2MB_TESTPROXY_ADDR", addr)
	assert.Equal(t, addr, testproxy.PeerAddr(t, "M2MB_TESTPROXY_ADDR", "127.0.0.1:1", "echo server"))

	t.Setenv("M2MB_TESTPROXY_ADDR", "")
	assert.Equal(t, addr, testproxy.PeerAddr(t, "M2MB_TESTPROXY_ADDR", addr, "echo server"), "the default when the variable is empty")

	if os.Getenv("M2MB_INTEROP") != "1" {
		t.Run("Absent", func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			gone := ln.Addr().String()
			ln.Close()
			testproxy.PeerAddr(t, "M2MB_TESTPROXY_ADDR", gone, "echo server")
			t.Error("PeerAddr returned for a server that is not there")
		})
	}
}

func TestLookPeerAndFreePort(t *testing.T) {
	sh := testproxy.LookPeer(t, "sh")
	assert.FileExists(t, sh)

	port := testproxy.FreePort(t)
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	require.NoError(t, err, "the port is free")
	ln.Close()
}
