// Package opcuatest provides an in-process OPC UA server for tests, like
// net/http/httptest does for HTTP: [New] starts it on 127.0.0.1 with an
// OS-chosen port, [Server.URL] gives the endpoint, and [Server.Close] stops it.
//
// The server is the gopcua server package (github.com/gopcua/opcua/server)
// behind a small TCP proxy that this package owns. The proxy is what makes
// fault injection possible: [Server.DropConnections] cuts every client
// connection, [Server.Blackhole] keeps them open but silently discards every
// byte (a connection that is alive but says nothing), and [Server.Stop],
// [Server.Start] and [Server.Restart] take the server down and up on the same
// address: connections are refused meanwhile and every subscription is lost,
// as with a real restart (sessions survive; see Stop).
//
// It serves a fixed set of variables in its own namespace ([NamespaceURI])
// whose values move on every tick (a counter, a ramp, a sine wave, a toggling
// bool, a string, a DateTime), one whose status is always Bad
// (BadSensorFailure), one with an EngineeringUnits property, a writable
// setpoint, an array (ValueRank 1), and optionally many extra float
// variables for benchmarks. Read and Write requests are counted.
//
// Limits of the upstream server package that this package works around or
// documents:
//   - values are pushed to subscriptions only when ChangeNotification is
//     called, so every tick notifies every variable that changed; sampling
//     intervals, queue sizes and deadband filters are ignored (test those
//     against node-opcua);
//   - it sends no SourceTimestamp unless the DataValue's mask says so: the
//     values served here always carry one;
//   - it has no Addr(): the inner server's port is reserved before it
//     starts, and clients talk to the proxy's address anyway;
//   - Close can take ten seconds while a client is connected: the proxy
//     drops the clients and the server's subscriptions are deleted first,
//     so Close is quick and bounded by its context;
//   - building the upstream server parses the whole standard node set (about
//     0.5s, 5s under the race detector), and it cannot be started again
//     after Close: so one is built per Server and kept for its lifetime;
//   - DeleteMonitoredItems with an unknown id panics upstream: this server
//     answers BadMonitoredItemIdInvalid instead;
//   - it announces no operation limits: this server announces and enforces
//     Options.MaxNodesPerRead and Options.MaxMonitoredItemsPerCall;
//   - BrowseNext, RegisterNodes, ModifySubscription, Republish and
//     TransferSubscriptions answer BadServiceUnsupported, and the server does
//     not check user names or passwords.
//
// A Server is safe for concurrent use.
package opcuatest
