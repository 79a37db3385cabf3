package mqtt

import (
	"sync"

	pmqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// copyStore is paho.mqtt.golang's in-memory store, except that it keeps
// and hands out copies of PUBLISH packets. After a reconnection paho resends
// the stored packets, setting their DUP flag, while a packet published in
// the meantime may be being written by its sending goroutine: with the
// stock MemoryStore both hold the same packet, and that is a data race
// (found by this package's tests under -race). Copies make it harmless.
type copyStore struct {
	mu sync.Mutex
	m  map[string]packets.ControlPacket
}

var _ pmqtt.Store = (*copyStore)(nil)

func newCopyStore() *copyStore { return &copyStore{m: make(map[string]packets.ControlPacket)} }

func clonePacket(p packets.ControlPacket) packets.ControlPacket {
	if pp, ok := p.(*packets.PublishPacket); ok {
		c := *pp
		return &c
	}
	return p
}

// Open does nothing: the store lives as long as the client.
func (s *copyStore) Open() {}

// Put stores a copy of the packet.
func (s *copyStore) Put(key string, p packets.ControlPacket) {
	c := clonePacket(p)
	s.mu.Lock()
	s.m[key] = c
	s.mu.Unlock()
}

// Get returns a copy of the stored packet, or nil.
func (s *copyStore) Get(key string) packets.ControlPacket {
	s.mu.Lock()
	p := s.m[key]
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	return clonePacket(p)
}

// All returns the keys of the stored packets.
func (s *copyStore) All() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	return keys
}

// Del removes a packet.
func (s *copyStore) Del(key string) {
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
}

// Close does nothing; see Open.
func (s *copyStore) Close() {}

// Reset removes every packet.
func (s *copyStore) Reset() {
	s.mu.Lock()
	clear(s.m)
	s.mu.Unlock()
}
