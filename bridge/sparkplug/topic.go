package sparkplug

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Namespace is the first element of every Sparkplug B topic (spec 4.1.1).
const Namespace = "spBv1.0"

// MessageType is the message_type element of a Sparkplug topic (spec 4.1.3).
type MessageType string

// The message types of an edge node and its devices (spec 4.2). STATE, the
// host application's message, has a topic of its own ([StateTopic]).
const (
	NBIRTH MessageType = "NBIRTH"
	NDEATH MessageType = "NDEATH"
	NDATA  MessageType = "NDATA"
	NCMD   MessageType = "NCMD"
	DBIRTH MessageType = "DBIRTH"
	DDEATH MessageType = "DDEATH"
	DDATA  MessageType = "DDATA"
	DCMD   MessageType = "DCMD"
)

// IsDevice reports whether t is a device message type, whose topic ends in a
// device_id (spec 4.1.5).
func (t MessageType) IsDevice() bool {
	switch t {
	case DBIRTH, DDEATH, DDATA, DCMD:
		return true
	}
	return false
}

func (t MessageType) valid() bool {
	switch t {
	case NBIRTH, NDEATH, NDATA, NCMD, DBIRTH, DDEATH, DDATA, DCMD:
		return true
	}
	return false
}

// Topic is the parsed form of an edge node or device topic,
// spBv1.0/{group_id}/{message_type}/{edge_node_id}[/{device_id}] (spec 4.1).
type Topic struct {
	GroupID    string
	Type       MessageType
	EdgeNodeID string
	DeviceID   string // empty for a node message type
}

// String returns the topic name. It does not check the IDs; see [CheckID].
func (t Topic) String() string {
	s := Namespace + "/" + t.GroupID + "/" + string(t.Type) + "/" + t.EdgeNodeID
	if t.DeviceID != "" {
		s += "/" + t.DeviceID
	}
	return s
}

// StateTopic returns the topic of a host application's STATE message,
// spBv1.0/STATE/{host_id} (spec 4.2.3.1.1).
func StateTopic(hostID string) string { return Namespace + "/STATE/" + hostID }

// ParseTopic parses an edge node or device topic. A STATE topic, another
// namespace, an unknown message type, a device type without a device_id (or
// a node type with one) and an ID that [CheckID] refuses are errors.
func ParseTopic(s string) (Topic, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 4 || len(parts) > 5 || parts[0] != Namespace {
		return Topic{}, fmt.Errorf("sparkplug: %q is not %s/{group_id}/{message_type}/{edge_node_id}[/{device_id}]", s, Namespace)
	}
	t := Topic{GroupID: parts[1], Type: MessageType(parts[2]), EdgeNodeID: parts[3]}
	if len(parts) == 5 {
		t.DeviceID = parts[4]
	}
	if !t.Type.valid() {
		return Topic{}, fmt.Errorf("sparkplug: %q: unknown message type %q", s, parts[2])
	}
	if t.Type.IsDevice() != (len(parts) == 5) {
		if len(parts) == 5 {
			return Topic{}, fmt.Errorf("sparkplug: %q: %s takes no device_id", s, t.Type)
		}
		return Topic{}, fmt.Errorf("sparkplug: %q: %s needs a device_id", s, t.Type)
	}
	for _, id := range []struct{ what, v string }{{"group_id", t.GroupID}, {"edge_node_id", t.EdgeNodeID}, {"device_id", t.DeviceID}} {
		if id.what == "device_id" && !t.Type.IsDevice() {
			continue
		}
		if err := CheckID(id.v); err != nil {
			return Topic{}, fmt.Errorf("sparkplug: %q: %s: %w", s, id.what, err)
		}
	}
	return t, nil
}

// CheckID reports whether s may be a group_id, edge_node_id or device_id:
// a non-empty valid UTF-8 string without the reserved characters + / and #
// (spec 4.1.2, 4.1.4, 4.1.5).
func CheckID(s string) error {
	switch {
	case s == "":
		return errors.New("empty")
	case !utf8.ValidString(s):
		return fmt.Errorf("%q is not valid UTF-8", s)
	case strings.ContainsAny(s, "+/#"):
		return fmt.Errorf("%q holds a reserved character (+ / #)", s)
	case strings.ContainsRune(s, 0):
		// MQTT forbids U+0000 in topic names (MQTT 3.1.1 section 1.5.3).
		return fmt.Errorf("%q holds U+0000", s)
	}
	return nil
}
