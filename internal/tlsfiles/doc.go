// Package tlsfiles builds client TLS settings from the PEM file settings
// (ca_file, cert_file, key_file, insecure_skip_verify) that the sinks share,
// so that every sink reports the same problems in the same words.
//
// Its functions keep no state and may be called from any goroutine.
package tlsfiles
