package modbus_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	upstream "github.com/simonvetter/modbus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// TestClientUDP reads the simulator over udp:// (MBAP frames in datagrams)
// and rtuoverudp:// (RTU frames in datagrams).
func TestClientUDP(t *testing.T) {
	for _, framing := range []modbustest.Framing{modbustest.TCP, modbustest.RTU} {
		p := testProfile()
		s := newSim(t, p, modbustest.WithUDP(), modbustest.WithFraming(framing))
		require.NoError(t, s.Set("voltage", 232.5))
		d := newDevice(t, modbus.DeviceConfig{Conn: modbus.ClientConfig{URL: s.URL()}, Unit: 1, Profile: p, Interval: time.Hour})
		t.Run(strings.SplitN(s.URL(), ":", 2)[0], func(t *testing.T) {
			rec := runDevice(t, d)
			v := waitFor(t, rec, point("voltage"))
			assert.Equal(t, bridge.Good, v.Quality, v.Reason)
			assert.Equal(t, 232.5, v.Value.Float())
			require.NoError(t, d.WritePoint(ctxT(t), "setpoint", 19.5))
			got, err := s.Value("setpoint")
			require.NoError(t, err)
			assert.InDelta(t, 19.5, got.Float(), 1e-9)
		})
	}
}

// holdingEcho is an upstream server handler whose holding register n holds n.
type holdingEcho struct{}

func (holdingEcho) HandleCoils(*upstream.CoilsRequest) ([]bool, error) {
	return nil, upstream.ErrIllegalFunction
}
func (holdingEcho) HandleDiscreteInputs(*upstream.DiscreteInputsRequest) ([]bool, error) {
	return nil, upstream.ErrIllegalFunction
}
func (holdingEcho) HandleInputRegisters(*upstream.InputRegistersRequest) ([]uint16, error) {
	return nil, upstream.ErrIllegalDataAddress
}
func (holdingEcho) HandleHoldingRegisters(r *upstream.HoldingRegistersRequest) ([]uint16, error) {
	out := make([]uint16, r.Quantity)
	for i := range out {
		out[i] = r.Addr + uint16(i)
	}
	return out, nil
}

type testPKI struct {
	caPEM                  []byte
	serverCert, clientCert tls.Certificate
	clientCertPEM, keyPEM  []byte
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	leaf := func(serial int64, usage x509.ExtKeyUsage) (tls.Certificate, []byte, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		kder, err := x509.MarshalECPrivateKey(key)
		require.NoError(t, err)
		certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		require.NoError(t, err)
		return c, certPEM, keyPEM
	}
	var pki testPKI
	pki.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	pki.serverCert, _, _ = leaf(2, x509.ExtKeyUsageServerAuth)
	pki.clientCert, pki.clientCertPEM, pki.keyPEM = leaf(3, x509.ExtKeyUsageClientAuth)
	return pki
}

// TestClientTLS reads upstream's Modbus/TCP Security server with a client
// certificate given as files, as the gateway configuration would.
func TestClientTLS(t *testing.T) {
	pki := newTestPKI(t)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pki.caPEM))
	// Upstream's server does not expose the port it listens on: take a free
	// one (the upstream server has no way to listen on :0 and tell).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	srv, err := upstream.NewServer(&upstream.ServerConfiguration{URL: "tcp+tls://" + addr, TLSServerCert: &pki.serverCert,
		TLSClientCAs: pool, Logger: discardLogger(), MaxClients: 100}, holdingEcho{})
	require.NoError(t, err)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Stop() })

	dir := t.TempDir()
	files := map[string][]byte{"ca.pem": pki.caPEM, "client.pem": pki.clientCertPEM, "client.key": pki.keyPEM}
	for name, b := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o600))
	}
	c := newClient(t, modbus.ClientConfig{URL: "tcp+tls://" + addr, TLSCertFile: filepath.Join(dir, "client.pem"),
		TLSKeyFile: filepath.Join(dir, "client.key"), TLSCAFile: filepath.Join(dir, "ca.pem")})
	regs, err := c.ReadRegisters(ctxT(t), 1, modbus.Holding, 40, 3)
	require.NoError(t, err)
	assert.Equal(t, []uint16{40, 41, 42}, regs)

	// A client certificate from a CA the server does not trust is refused.
	other := newTestPKI(t) // a CA the server does not trust
	bad := newClient(t, modbus.ClientConfig{URL: "tcp+tls://" + addr, TLSCertificate: &other.clientCert, TLSRootCAs: pool})
	_, err = bad.ReadRegisters(ctxT(t), 1, modbus.Holding, 40, 3)
	require.Error(t, err)
}
