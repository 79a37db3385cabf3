package testpki_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/internal/testpki"
)

// TestHandshake checks that the certificates do what they are for: a real
// mutual-TLS handshake over 127.0.0.1.
func TestHandshake(t *testing.T) {
	ca := testpki.NewCA(t)
	dir := t.TempDir()
	srvCert, srvKey := ca.IssueFiles(t, dir, "server", x509.ExtKeyUsageServerAuth, "127.0.0.1", "localhost")
	cliPEM, cliKeyPEM := ca.Issue(t, "client", x509.ExtKeyUsageClientAuth)

	srvPair, err := tls.LoadX509KeyPair(srvCert, srvKey)
	require.NoError(t, err)
	cliPair, err := tls.X509KeyPair(cliPEM, cliKeyPEM)
	require.NoError(t, err)

	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{srvPair}, ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs: ca.Pool, MinVersion: tls.VersionTLS12,
	})
	require.NoError(t, err)
	defer ln.Close()
	peer := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			peer <- err.Error()
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			peer <- err.Error()
			return
		}
		peer <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
	}()

	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
		RootCAs: ca.Pool, Certificates: []tls.Certificate{cliPair}, MinVersion: tls.VersionTLS12,
	})
	require.NoError(t, err, "the server certificate is valid for 127.0.0.1")
	require.NoError(t, c.Handshake())
	defer c.Close()
	assert.Equal(t, "client", <-peer)

	cert, err := x509.ParseCertificate(srvPair.Certificate[0])
	require.NoError(t, err)
	assert.Equal(t, []string{"localhost"}, cert.DNSNames)
	assert.True(t, cert.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)))
	assert.FileExists(t, ca.WriteCA(t, dir))
}
