// Package template parses the name templates of the sinks (an MQTT topic,
// a NATS subject): literal text and the placeholders {source} and {point},
// which are replaced by a sample's source and point name. What a protocol
// forbids in the literal text and how it makes a name safe to put in are
// given by the caller in a [Syntax].
//
// A [Template] is immutable once parsed and may be used from any goroutine.
package template
