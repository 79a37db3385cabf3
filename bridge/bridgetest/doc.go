// Package bridgetest provides helpers for testing code built on package
// bridge, as net/http/httptest does for net/http: a [Recorder] that records
// the samples a Source emits or a pipeline delivers, and [TestSink], the
// conformance suite every [bridge.Sink] implementation runs.
//
// The helpers are safe for concurrent use.
package bridgetest
