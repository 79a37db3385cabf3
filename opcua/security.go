package opcua

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/gopcua/opcua/ua"
)

// ErrUntrustedServer is wrapped by the error of a connection attempt whose
// server certificate matches neither the pinned thumbprint nor a certificate
// of the trust directory.
var ErrUntrustedServer = errors.New("opcua: server certificate not trusted")

// Paths of the client certificate and key inside Config.PKIDir.
const (
	PKICertFile = "own/cert.der"
	PKIKeyFile  = "own/private/key.pem"
)

// clientCert loads the client certificate and key from Certificate and
// PrivateKey, or from PKIDir, generating them there on first use.
func (st *settings) clientCert() ([]byte, *rsa.PrivateKey, error) {
	if st.Certificate != "" {
		cert, err := loadCert(st.Certificate)
		if err != nil {
			return nil, nil, fmt.Errorf("certificate: %w", err)
		}
		key, err := loadKey(st.PrivateKey)
		if err != nil {
			return nil, nil, fmt.Errorf("private_key: %w", err)
		}
		return cert, key, nil
	}
	if st.PKIDir == "" {
		return nil, nil, nil
	}
	certPath := filepath.Join(st.PKIDir, filepath.FromSlash(PKICertFile))
	keyPath := filepath.Join(st.PKIDir, filepath.FromSlash(PKIKeyFile))
	cert, cerr := loadCert(certPath)
	key, kerr := loadKey(keyPath)
	if cerr == nil && kerr == nil {
		return cert, key, nil
	}
	if !errors.Is(cerr, os.ErrNotExist) || !errors.Is(kerr, os.ErrNotExist) {
		// One is there but broken or alone: do not overwrite what an
		// operator may have installed.
		return nil, nil, fmt.Errorf("pki_dir %s: %w", st.PKIDir, errors.Join(cerr, kerr))
	}
	cert, key, err := GenerateCertificate(st.ApplicationURI, "m2mbridge "+st.Name, 10*365*24*time.Hour)
	if err != nil {
		return nil, nil, fmt.Errorf("pki_dir: generate: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(keyPath), 0o700); err != nil {
		return nil, nil, fmt.Errorf("pki_dir: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return nil, nil, fmt.Errorf("pki_dir: %w", err)
	}
	if err := os.WriteFile(certPath, cert, 0o644); err != nil {
		return nil, nil, fmt.Errorf("pki_dir: %w", err)
	}
	return cert, key, nil
}

// GenerateCertificate makes a self-signed RSA-2048 application instance
// certificate for an OPC UA client (Part 6, 6.2.2): the application URI as
// the URI subject alternative name, localhost and this host's name as DNS
// names, and the key usages OPC UA asks for. It returns the DER bytes and
// the key.
func GenerateCertificate(applicationURI, commonName string, validity time.Duration) ([]byte, *rsa.PrivateKey, error) {
	uri, err := url.Parse(applicationURI)
	if err != nil || uri.Scheme == "" {
		return nil, nil, fmt.Errorf("application URI %q is not a URI", applicationURI)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, nil, err
	}
	dns := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "localhost" {
		dns = append(dns, h)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: commonName, Organization: []string{"m2mbridge"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(validity),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment |
			x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              dns,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		URIs:                  []*url.URL{uri},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	return der, key, nil
}

// loadCert reads a DER or PEM certificate.
func loadCert(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	if _, err := x509.ParseCertificate(b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// loadKey reads an RSA key, PEM (PKCS#1 or PKCS#8) or DER.
func loadKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	if k, err := x509.ParsePKCS1PrivateKey(b); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: not an RSA private key", path)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: %T is not an RSA key", path, k)
	}
	return rk, nil
}

// Thumbprint returns the hex SHA-256 of a DER certificate, the form
// Config.ServerCertificateSHA256 takes.
func Thumbprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// verifyServer checks the server certificate against the pin or the trust
// directory. With neither (only allowed with policy None or
// InsecureSkipVerify) any certificate passes.
func (st *settings) verifyServer(der []byte) error {
	if st.pin == nil && st.TrustDir == "" {
		return nil
	}
	if st.pin != nil {
		sum := sha256.Sum256(der)
		if bytes.Equal(sum[:], st.pin) {
			return nil
		}
		if st.TrustDir == "" {
			return fmt.Errorf("%w: its SHA-256 is %s, pinned %x", ErrUntrustedServer, Thumbprint(der), st.pin)
		}
	}
	if len(der) == 0 {
		return fmt.Errorf("%w: the endpoint has no certificate", ErrUntrustedServer)
	}
	entries, err := os.ReadDir(st.TrustDir)
	if err != nil {
		return fmt.Errorf("trust_dir: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		c, err := loadCert(filepath.Join(st.TrustDir, e.Name()))
		if err == nil && bytes.Equal(c, der) {
			return nil
		}
	}
	return fmt.Errorf("%w: SHA-256 %s is not in trust_dir %s", ErrUntrustedServer, Thumbprint(der), st.TrustDir)
}

// selectEndpoint picks the endpoint with the configured policy and mode and
// the highest security level, and checks that it offers the configured
// user token type.
func (st *settings) selectEndpoint(eps []*ua.EndpointDescription) (*ua.EndpointDescription, error) {
	var best *ua.EndpointDescription
	for _, ep := range eps {
		if ep.SecurityPolicyURI != st.policyURI || ep.SecurityMode != st.mode {
			continue
		}
		if best == nil || ep.SecurityLevel > best.SecurityLevel {
			best = ep
		}
	}
	if best == nil {
		offered := make([]string, 0, len(eps))
		for _, ep := range eps {
			offered = append(offered, policyName(ep.SecurityPolicyURI)+"/"+modeName(ep.SecurityMode))
		}
		return nil, fmt.Errorf("no endpoint with security %s/%s (the server offers %v)", policyName(st.policyURI), modeName(st.mode), offered)
	}
	for _, t := range best.UserIdentityTokens {
		if t.TokenType == st.auth {
			return best, nil
		}
	}
	return nil, fmt.Errorf("the %s/%s endpoint does not accept %s authentication", policyName(st.policyURI), modeName(st.mode), authName(st.auth))
}

func policyName(uri string) string {
	if len(uri) > len(ua.SecurityPolicyURIPrefix) && uri[:len(ua.SecurityPolicyURIPrefix)] == ua.SecurityPolicyURIPrefix {
		return uri[len(ua.SecurityPolicyURIPrefix):]
	}
	return uri
}

func modeName(m ua.MessageSecurityMode) string {
	switch m {
	case ua.MessageSecurityModeNone:
		return "None"
	case ua.MessageSecurityModeSign:
		return "Sign"
	case ua.MessageSecurityModeSignAndEncrypt:
		return "SignAndEncrypt"
	}
	return m.String()
}

func authName(t ua.UserTokenType) string {
	switch t {
	case ua.UserTokenTypeAnonymous:
		return "anonymous"
	case ua.UserTokenTypeUserName:
		return "username"
	case ua.UserTokenTypeCertificate:
		return "certificate"
	}
	return t.String()
}
