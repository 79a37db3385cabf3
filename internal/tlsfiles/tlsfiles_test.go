package tlsfiles_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/testpki"
	"github.com/m2mbridge/m2mbridge/internal/tlsfiles"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t)
	cert, key := ca.IssueFiles(t, dir, "client", x509.ExtKeyUsageClientAuth)
	junk := filepath.Join(dir, "junk.pem")
	require.NoError(t, os.WriteFile(junk, []byte("not pem"), 0o600))
	missing := filepath.Join(dir, "nope.pem")

	t.Run("Empty", func(t *testing.T) {
		c, err := tlsfiles.Load("", "", "", false)
		require.NoError(t, err)
		assert.Nil(t, c.RootCAs)
		assert.Empty(t, c.Certificates)
		assert.Equal(t, uint16(tls.VersionTLS12), c.MinVersion)
		assert.False(t, c.InsecureSkipVerify)
	})
	t.Run("All", func(t *testing.T) {
		c, err := tlsfiles.Load(ca.WriteCA(t, dir), cert, key, true)
		require.NoError(t, err)
		assert.NotNil(t, c.RootCAs)
		assert.Len(t, c.Certificates, 1)
		assert.True(t, c.InsecureSkipVerify)
	})

	for _, tc := range []struct {
		name          string
		ca, cert, key string
		want          []string // "path: msg" of each field error
	}{
		{"MissingCA", missing, "", "", []string{"ca_file: open " + missing + ": no such file or directory"}},
		{"JunkCA", junk, "", "", []string{"ca_file: " + junk + ": no PEM certificate found"}},
		{"CertWithoutKey", "", cert, "", []string{"key_file: required with cert_file"}},
		{"KeyWithoutCert", "", "", key, []string{"cert_file: required with key_file"}},
		{"EveryProblem", junk, cert, "", []string{"ca_file: " + junk + ": no PEM certificate found", "key_file: required with cert_file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tlsfiles.Load(tc.ca, tc.cert, tc.key, false)
			require.Error(t, err)
			assert.Nil(t, c)
			assert.Equal(t, tc.want, fieldErrors(err))
		})
	}
	t.Run("JunkPair", func(t *testing.T) {
		_, err := tlsfiles.Load("", junk, junk, false)
		fes := bridge.FieldErrors(err)
		require.Len(t, fes, 1)
		assert.Equal(t, "cert_file", fes[0].Path)
		assert.Contains(t, fes[0].Msg, junk+" with key_file "+junk+": ")
	})
}

// fieldErrors returns each field error of err as "path: msg".
func fieldErrors(err error) []string {
	var out []string
	for _, fe := range bridge.FieldErrors(err) {
		out = append(out, fe.Path+": "+fe.Msg)
	}
	return out
}

func TestCheck(t *testing.T) {
	require.NoError(t, tlsfiles.Check(nil, "", "ca.pem", "c.pem", "k.pem", true), "Check reads no file")
	assert.Equal(t, []string{"key_file: required with cert_file"}, fieldErrors(tlsfiles.Check(nil, "", "", "c.pem", "", false)))
	assert.Equal(t, []string{
		"ca_file: not allowed with TLS set: give the TLS settings one way",
		"insecure_skip_verify: not allowed with TLS set: give the TLS settings one way",
	}, fieldErrors(tlsfiles.Check(&tls.Config{MinVersion: tls.VersionTLS12}, "TLS", "ca.pem", "", "", true)))
}

func TestLoadOrClone(t *testing.T) {
	given := &tls.Config{ServerName: "given", MinVersion: tls.VersionTLS13}

	c, err := tlsfiles.LoadOrClone(given, "tls", "", "", "", false)
	require.NoError(t, err)
	assert.Equal(t, "given", c.ServerName)
	assert.NotSame(t, given, c, "a clone, so the caller's value is never changed")

	_, err = tlsfiles.LoadOrClone(given, "TLSConfig", "", "", "", true)
	require.EqualError(t, err, "insecure_skip_verify: not allowed with TLSConfig set: give the TLS settings one way")

	c, err = tlsfiles.LoadOrClone(nil, "tls", "", "", "", true)
	require.NoError(t, err)
	assert.True(t, c.InsecureSkipVerify)
}

func ExampleLoadOrClone() {
	_, err := tlsfiles.LoadOrClone(&tls.Config{MinVersion: tls.VersionTLS12}, "TLS", "ca.pem", "", "", false)
	fmt.Println(err)
	// Output: ca_file: not allowed with TLS set: give the TLS settings one way
}
