package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Load returns a client TLS configuration (TLS 1.2 or later) that trusts
// the certificate authorities in the PEM file caFile (the system's when
// empty) and presents the client certificate in certFile with its key in
// keyFile (none when both are empty). insecure turns off verification of
// the server's certificate, for tests. Every problem is reported at once,
// joined, each naming the setting it is about; the configuration is nil
// then.
func Load(caFile, certFile, keyFile string, insecure bool) (*tls.Config, error) {
	t := &tls.Config{InsecureSkipVerify: insecure, MinVersion: tls.VersionTLS12} //nolint:gosec // opt-in, for tests
	var errs []error
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("ca_file: %w", err))
		} else {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				errs = append(errs, fmt.Errorf("ca_file %s: no PEM certificate found", caFile))
			}
			t.RootCAs = pool
		}
	}
	if (certFile == "") != (keyFile == "") {
		errs = append(errs, errors.New("cert_file and key_file must be given together"))
	} else if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("cert_file %s, key_file %s: %w", certFile, keyFile, err))
		} else {
			t.Certificates = []tls.Certificate{cert}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// LoadOrClone returns a clone of given when it is set, and otherwise what
// [Load] returns for the files. Setting given together with any file
// setting is an error that calls given by name, the name the user knows it
// by (a YAML key or a Go field).
func LoadOrClone(given *tls.Config, name, caFile, certFile, keyFile string, insecure bool) (*tls.Config, error) {
	if given == nil {
		return Load(caFile, certFile, keyFile, insecure)
	}
	if caFile != "" || certFile != "" || keyFile != "" || insecure {
		return nil, fmt.Errorf("%s is set together with ca_file, cert_file, key_file or insecure_skip_verify", name)
	}
	return given.Clone(), nil
}
