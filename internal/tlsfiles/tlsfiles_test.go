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
		want          []string
	}{
		{"MissingCA", missing, "", "", []string{"ca_file: ", "no such file"}},
		{"JunkCA", junk, "", "", []string{"ca_file " + junk + ": no PEM certificate found"}},
		{"CertWithoutKey", "", cert, "", []string{"cert_file and key_file must be given together"}},
		{"KeyWithoutCert", "", "", key, []string{"cert_file and key_file must be given together"}},
		{"JunkPair", "", junk, junk, []string{"cert_file " + junk + ", key_file " + junk + ": "}},
		{"EveryProblem", junk, cert, "", []string{"no PEM certificate found", "must be given together"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tlsfiles.Load(tc.ca, tc.cert, tc.key, false)
			require.Error(t, err)
			assert.Nil(t, c)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestLoadOrClone(t *testing.T) {
	given := &tls.Config{ServerName: "given", MinVersion: tls.VersionTLS13}

	c, err := tlsfiles.LoadOrClone(given, "tls", "", "", "", false)
	require.NoError(t, err)
	assert.Equal(t, "given", c.ServerName)
	assert.NotSame(t, given, c, "a clone, so the caller's value is never changed")

	_, err = tlsfiles.LoadOrClone(given, "TLSConfig", "", "", "", true)
	require.EqualError(t, err, "TLSConfig is set together with ca_file, cert_file, key_file or insecure_skip_verify")

	c, err = tlsfiles.LoadOrClone(nil, "tls", "", "", "", true)
	require.NoError(t, err)
	assert.True(t, c.InsecureSkipVerify)
}

func ExampleLoadOrClone() {
	_, err := tlsfiles.LoadOrClone(&tls.Config{MinVersion: tls.VersionTLS12}, "tls", "ca.pem", "", "", false)
	fmt.Println(err)
	// Output: tls is set together with ca_file, cert_file, key_file or insecure_skip_verify
}
