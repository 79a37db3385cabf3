// Package tlsfiles builds client TLS settings from the PEM file settings
// (ca_file, cert_file, key_file, insecure_skip_verify) that the sinks share,
// so that every sink reports the same problems in the same words, as
// *bridge.FieldError values at the keys of those settings: [Check] for what
// a Validate method can see without I/O, [Load] and [LoadOrClone] for a
// constructor, which reads the files.
//
// Its functions keep no state and may be called from any goroutine.
package tlsfiles
