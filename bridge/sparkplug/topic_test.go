package sparkplug

import (
	"strings"
	"testing"
)

func TestTopicString(t *testing.T) {
	tests := []struct {
		name string
		in   Topic
		want string
	}{
		{"NBIRTH", Topic{GroupID: "plant1", Type: NBIRTH, EdgeNodeID: "gw1"}, "spBv1.0/plant1/NBIRTH/gw1"},
		{"NDEATH", Topic{GroupID: "plant1", Type: NDEATH, EdgeNodeID: "gw1"}, "spBv1.0/plant1/NDEATH/gw1"},
		{"NDATA", Topic{GroupID: "plant1", Type: NDATA, EdgeNodeID: "gw1"}, "spBv1.0/plant1/NDATA/gw1"},
		{"NCMD", Topic{GroupID: "plant1", Type: NCMD, EdgeNodeID: "gw1"}, "spBv1.0/plant1/NCMD/gw1"},
		{"DBIRTH", Topic{GroupID: "plant1", Type: DBIRTH, EdgeNodeID: "gw1", DeviceID: "meter1"}, "spBv1.0/plant1/DBIRTH/gw1/meter1"},
		{"DDEATH", Topic{GroupID: "plant1", Type: DDEATH, EdgeNodeID: "gw1", DeviceID: "meter1"}, "spBv1.0/plant1/DDEATH/gw1/meter1"},
		{"DDATA", Topic{GroupID: "plant1", Type: DDATA, EdgeNodeID: "gw1", DeviceID: "meter1"}, "spBv1.0/plant1/DDATA/gw1/meter1"},
		{"DCMD", Topic{GroupID: "plant1", Type: DCMD, EdgeNodeID: "gw1", DeviceID: "meter1"}, "spBv1.0/plant1/DCMD/gw1/meter1"},
		{"unicode", Topic{GroupID: "Ünit 1", Type: DDATA, EdgeNodeID: "gw-1", DeviceID: "°C sensor"}, "spBv1.0/Ünit 1/DDATA/gw-1/°C sensor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			back, err := ParseTopic(tt.want)
			if err != nil {
				t.Fatalf("ParseTopic(%q): %v", tt.want, err)
			}
			if back != tt.in {
				t.Errorf("ParseTopic(%q) = %+v, want %+v", tt.want, back, tt.in)
			}
		})
	}
	if got, want := StateTopic("scada"), "spBv1.0/STATE/scada"; got != want {
		t.Errorf("StateTopic = %q, want %q", got, want)
	}
}

func TestParseTopicErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"other namespace", "spAv1.0/g/NBIRTH/n", "is not spBv1.0/"},
		{"too short", "spBv1.0/g/NBIRTH", "is not spBv1.0/"},
		{"too long", "spBv1.0/g/DDATA/n/d/x", "is not spBv1.0/"},
		{"STATE", "spBv1.0/STATE/scada", "is not spBv1.0/"},
		{"unknown type", "spBv1.0/g/NFOO/n", "unknown message type"},
		{"lower-case type", "spBv1.0/g/nbirth/n", "unknown message type"},
		{"device type without device", "spBv1.0/g/DDATA/n", "needs a device_id"},
		{"node type with device", "spBv1.0/g/NDATA/n/d", "takes no device_id"},
		{"empty group", "spBv1.0//NDATA/n", "group_id: empty"},
		{"empty device", "spBv1.0/g/DDATA/n/", "device_id: empty"},
		{"wildcard", "spBv1.0/g/DDATA/+/d", "edge_node_id"},
		{"bad utf-8", "spBv1.0/g\xff/NDATA/n", "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTopic(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseTopic(%q) = %v, want an error containing %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestCheckID(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"gw1", true}, {"plant 1", true}, {"Zürich-Nord.2", true},
		{"", false}, {"a/b", false}, {"a+", false}, {"#", false}, {"\xc3", false}, {"a\x00b", false},
	}
	for _, tt := range tests {
		if err := CheckID(tt.in); (err == nil) != tt.ok {
			t.Errorf("CheckID(%q) = %v, want ok=%t", tt.in, err, tt.ok)
		}
	}
}

func FuzzParseTopic(f *testing.F) {
	f.Add("spBv1.0/plant1/DDATA/gw1/meter1")
	f.Add("spBv1.0/plant1/NCMD/gw1")
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := ParseTopic(s)
		if err != nil {
			return
		}
		if got := tp.String(); got != s {
			t.Errorf("ParseTopic(%q).String() = %q", s, got)
		}
	})
}
