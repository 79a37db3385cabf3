package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// Check returns the problems with the TLS file settings that need no I/O,
// each a *bridge.FieldError at the key it is about: cert_file without
// key_file or the reverse, and, when given is set (a *tls.Config set in Go,
// called name in the message), any file setting beside it. A Validate
// method calls it; [Load] and [LoadOrClone] report the same problems.
func Check(given *tls.Config, name, caFile, certFile, keyFile string, insecure bool) error {
	var errs []error
	if given != nil {
		for _, k := range []struct {
			key string
			set bool
		}{{"ca_file", caFile != ""}, {"cert_file", certFile != ""}, {"key_file", keyFile != ""}, {"insecure_skip_verify", insecure}} {
			if k.set {
				errs = append(errs, &bridge.FieldError{Path: k.key, Msg: "not allowed with " + name + " set: give the TLS settings one way"})
			}
		}
		return errors.Join(errs...)
	}
	switch {
	case certFile != "" && keyFile == "":
		errs = append(errs, &bridge.FieldError{Path: "key_file", Msg: "required with cert_file", Hint: "give cert_file and key_file together, or neither"})
	case certFile == "" && keyFile != "":
		errs = append(errs, &bridge.FieldError{Path: "cert_file", Msg: "required with key_file", Hint: "give cert_file and key_file together, or neither"})
	}
	return errors.Join(errs...)
}

// Load returns a client TLS configuration (TLS 1.2 or later) that trusts
// the certificate authorities in the PEM file caFile (the system's when
// empty) and presents the client certificate in certFile with its key in
// keyFile (none when both are empty). insecure turns off verification of
// the server's certificate, for tests. Every problem is reported at once,
// joined, each a *bridge.FieldError at the key of the setting it is about
// (ca_file, cert_file, key_file); the configuration is nil then.
func Load(caFile, certFile, keyFile string, insecure bool) (*tls.Config, error) {
	t := &tls.Config{InsecureSkipVerify: insecure, MinVersion: tls.VersionTLS12} //nolint:gosec // opt-in, for tests
	var errs []error
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			errs = append(errs, &bridge.FieldError{Path: "ca_file", Msg: err.Error()})
		} else {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				errs = append(errs, &bridge.FieldError{Path: "ca_file", Msg: caFile + ": no PEM certificate found"})
			}
			t.RootCAs = pool
		}
	}
	if err := Check(nil, "", caFile, certFile, keyFile, insecure); err != nil {
		errs = append(errs, err)
	} else if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			errs = append(errs, &bridge.FieldError{Path: "cert_file", Msg: fmt.Sprintf("%s with key_file %s: %v", certFile, keyFile, err)})
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
// setting is the error [Check] reports, calling given by name, the name the
// user knows it by (a Go field).
func LoadOrClone(given *tls.Config, name, caFile, certFile, keyFile string, insecure bool) (*tls.Config, error) {
	if given == nil {
		return Load(caFile, certFile, keyFile, insecure)
	}
	if err := Check(given, name, caFile, certFile, keyFile, insecure); err != nil {
		return nil, err
	}
	return given.Clone(), nil
}
