// Package testpki is a throw-away certificate authority for tests: a [CA]
// made on the spot issues server and client certificates, as PEM bytes or
// as files, for the TLS tests of the sinks.
//
// It is imported by tests only. A CA may issue from several goroutines at
// once.
package testpki
