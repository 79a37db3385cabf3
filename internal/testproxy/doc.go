// Package testproxy holds what the tests of the broker sinks (mqtt, nats)
// share about their third-party peers: [PeerAddr] finds the shared broker
// a test talks to, [LookPeer], [FreePort] and [StartServer] run a broker of
// the test's own, and a [Proxy] sits between the sink and a broker so that
// a test can cut the connections abruptly, refuse new ones, or stall the
// broker's replies, which it cannot do to a broker it does not own.
//
// It is imported by tests only. A Proxy's methods may be called from any
// goroutine.
package testproxy
