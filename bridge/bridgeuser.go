package bridge

// BridgeUser is implemented by sinks that act on the bridge that feeds
// them, beyond taking its samples: a Sparkplug edge node
// (bridge/sparkplug) reads its sources' health from [Bridge.Stats] to
// announce a device's death and rebirth, finds its own queue depth there,
// and sends the writes its host application asks for through
// [Bridge.Write]. The bridge stays free of any protocol: it only hands
// itself over.
//
// [Bridge.AddSink] calls UseBridge once, after the sink was added, with the
// bridge and the sink's name, and without holding any lock of the bridge.
// UseBridge must not block; the sink may call the bridge's methods from
// then on, from any goroutine (they are safe for concurrent use), but
// Bridge.Write only while the bridge runs: once its shutdown has begun,
// Write refuses with [ErrShuttingDown] and nothing reaches a device.
type BridgeUser interface {
	UseBridge(b *Bridge, name string)
}

// Source returns the source added under name, nil when there is none: for
// a BridgeUser that asks a source what it knows of its points (the
// declared type of a Modbus point, which a Sparkplug birth announces).
// It is safe for concurrent use.
func (b *Bridge) Source(name string) Source {
	if r := b.source(name); r != nil {
		return r.src
	}
	return nil
}
