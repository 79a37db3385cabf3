package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// serial numbers the certificates, so that no two of a run are alike.
var serial atomic.Int64

// CA is a certificate authority valid for an hour around its making.
type CA struct {
	Cert    *x509.Certificate // the CA's own certificate
	CertPEM []byte            // Cert as PEM
	Pool    *x509.CertPool    // holds Cert alone, for tls.Config.RootCAs or ClientCAs

	key *ecdsa.PrivateKey
}

// NewCA makes a CA with a fresh P-256 key.
func NewCA(tb testing.TB) *CA {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: "m2mbridge test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(tb, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(tb, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), Pool: pool, key: key}
}

// Issue returns a PEM certificate for commonName signed by ca, for usage
// (x509.ExtKeyUsageServerAuth or x509.ExtKeyUsageClientAuth), and its PEM
// key. hosts, IP addresses or DNS names, are the names a server
// certificate is valid for.
func (ca *CA) Issue(tb testing.TB, commonName string, usage x509.ExtKeyUsage, hosts ...string) (certPEM, keyPEM []byte) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: commonName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	require.NoError(tb, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(tb, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// WriteCA writes the CA certificate to dir/ca.pem and returns its path.
func (ca *CA) WriteCA(tb testing.TB, dir string) string {
	tb.Helper()
	f := filepath.Join(dir, "ca.pem")
	require.NoError(tb, os.WriteFile(f, ca.CertPEM, 0o600))
	return f
}

// IssueFiles is [CA.Issue] with commonName name, writing the certificate to
// dir/name.pem and the key to dir/name.key; it returns their paths.
func (ca *CA) IssueFiles(tb testing.TB, dir, name string, usage x509.ExtKeyUsage, hosts ...string) (certFile, keyFile string) {
	tb.Helper()
	certPEM, keyPEM := ca.Issue(tb, name, usage, hosts...)
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	require.NoError(tb, os.WriteFile(certFile, certPEM, 0o600))
	require.NoError(tb, os.WriteFile(keyFile, keyPEM, 0o600))
	return certFile, keyFile
}
