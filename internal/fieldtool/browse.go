package fieldtool

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/m2mbridge/m2mbridge/opcua"
)

// PrintTree writes the browsed tree to w for people: one node a line,
// indented by depth, objects ending in "/", variables with their data type
// (with [] for an array), unit, access (r, w, rw) and node id.
func PrintTree(w io.Writer, tree []*opcua.BrowseEntry) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%-40s %-20s %-8s %-6s %s\n", "NODE", "TYPE", "UNIT", "ACCESS", "ID")
	var walk func([]*opcua.BrowseEntry)
	walk = func(es []*opcua.BrowseEntry) {
		for _, e := range es {
			name := strings.Repeat("  ", e.Depth-1) + e.BrowseName
			if !e.Variable {
				fmt.Fprintf(&b, "%-40s %-20s %-8s %-6s %s\n", name+"/", "", "", "", e.NodeID)
			} else {
				fmt.Fprintf(&b, "%-40s %-20s %-8s %-6s %s\n", name, typeText(e), e.Unit, e.Access(), e.NodeID)
			}
			walk(e.Children)
		}
	}
	walk(tree)
	_, err := io.WriteString(w, b.String())
	return err
}

func typeText(e *opcua.BrowseEntry) string {
	if e.ValueRank >= 1 {
		return e.DataType + strings.Repeat("[]", int(e.ValueRank))
	}
	return e.DataType
}

// PrintTreeJSON writes one JSON object per node, depth first:
// {"path":"Objects.Temperature","node":"nsu=...;s=Temperature","class":"variable","depth":2,
// "data_type":"Double","value_rank":-1,"unit":"°C","access":"r"}.
func PrintTreeJSON(w io.Writer, tree []*opcua.BrowseEntry) error {
	type entry struct {
		Path      string `json:"path"`
		Browse    string `json:"browse_name"`
		Display   string `json:"display_name,omitempty"`
		Node      string `json:"node"`
		Class     string `json:"class"`
		Depth     int    `json:"depth"`
		DataType  string `json:"data_type,omitempty"`
		ValueRank *int32 `json:"value_rank,omitempty"`
		Unit      string `json:"unit,omitempty"`
		Access    string `json:"access,omitempty"`
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	var walk func([]*opcua.BrowseEntry) error
	walk = func(es []*opcua.BrowseEntry) error {
		for _, e := range es {
			j := entry{Path: e.Path, Browse: e.BrowseName, Display: e.DisplayName, Node: e.NodeID, Class: "object", Depth: e.Depth}
			if e.Variable {
				rank := e.ValueRank
				j.Class, j.DataType, j.ValueRank, j.Unit, j.Access = "variable", e.DataType, &rank, e.Unit, e.Access()
			}
			if err := enc.Encode(j); err != nil {
				return err
			}
			if err := walk(e.Children); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(tree); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// serverObject is the standard Server object under Objects (Part 5,
// 8.3.2), as BrowseTree writes its id.
const serverObject = "i=2253"

// readableTypes are the data types whose scalar values the opcua adapter
// turns into samples (opcua's toValue): the built-in scalars and the
// abstract number types, whose values are built-in scalars.
var readableTypes = map[string]bool{
	"Boolean": true, "SByte": true, "Byte": true, "Int16": true, "UInt16": true, "Int32": true, "UInt32": true,
	"Int64": true, "UInt64": true, "Float": true, "Double": true, "String": true, "DateTime": true,
	"LocalizedText": true, "Guid": true, "NodeId": true, "StatusCode": true, "ByteString": true,
	"UtcTime": true, "Duration": true, "Number": true, "Integer": true, "UInteger": true, "LocaleId": true,
}

// GatewayFile says what [GatewayYAML] writes.
type GatewayFile struct {
	Device   string        // the device's name (Sample.Source)
	Interval time.Duration // the device's interval; 0 leaves the default (1s)
	// OPCUA holds the connection keys to write (endpoint, mode, security,
	// user, pki ...); its Nodes are ignored. Password is never written:
	// only PasswordEnv or PasswordFile.
	OPCUA   opcua.Config
	Comment string // header comment
}

// GatewayYAML writes a whole gateway configuration: one OPC UA device with
// the variables of tree as its nodes, and a stdout sink. Variables the
// gateway cannot read as samples (not readable by this user, arrays,
// structures) are left out, each named in a comment and in skipped, and so
// is the standard Server object (i=2253) with its status and diagnostics
// variables when the tree holds it.
func GatewayYAML(f GatewayFile, tree []*opcua.BrowseEntry) (data []byte, nodes int, skipped []string, err error) {
	str := func(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }
	mapping := func(kv ...any) *yaml.Node {
		m := &yaml.Node{Kind: yaml.MappingNode}
		for i := 0; i+1 < len(kv); i += 2 {
			var v *yaml.Node
			switch x := kv[i+1].(type) {
			case *yaml.Node:
				v = x
			case string:
				if x == "" {
					continue
				}
				v = str(x)
			case bool:
				if !x {
					continue
				}
				v = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"}
			case time.Duration:
				if x == 0 {
					continue
				}
				v = str(x.String())
			}
			m.Content = append(m.Content, str(kv[i].(string)), v)
		}
		return m
	}
	c := f.OPCUA
	conn := mapping("endpoint", c.Endpoint, "mode", string(c.Mode), "timeout", c.Timeout,
		"security_policy", string(c.SecurityPolicy), "security_mode", string(c.SecurityMode),
		"auth", c.Auth, "username", c.Username, "password_env", c.PasswordEnv, "password_file", c.PasswordFile,
		"pki_dir", c.PKIDir, "certificate", c.Certificate, "private_key", c.PrivateKey,
		"server_certificate_sha256", c.ServerCertificateSHA256, "trust_dir", c.TrustDir,
		"insecure_skip_verify", c.InsecureSkipVerify)
	list := &yaml.Node{Kind: yaml.SequenceNode}
	var vars []*opcua.BrowseEntry
	for _, e := range tree {
		if e.NodeID == serverObject {
			if n := len(opcua.Variables([]*opcua.BrowseEntry{e})); n > 0 {
				skipped = append(skipped, fmt.Sprintf("%s (%s) and the %d variables under it: the server's own status and diagnostics, not process data", e.Path, e.NodeID, n))
			}
			continue
		}
		vars = append(vars, opcua.Variables([]*opcua.BrowseEntry{e})...)
	}
	for _, v := range vars {
		why := ""
		switch {
		case v.AccessKnown && !v.Readable():
			why = "not readable by this user"
		case v.ValueRank != -1:
			why = typeText(v) + ": arrays are not read as samples"
		case !readableTypes[v.DataType]:
			why = v.DataType + ": structures and server-defined types are not read as samples"
		}
		if why != "" {
			skipped = append(skipped, fmt.Sprintf("%s (%s): %s", v.Path, v.NodeID, why))
			continue
		}
		n := v.Node()
		item := mapping("name", n.Name, "node", n.Node, "unit", n.Unit)
		item.Style = yaml.FlowStyle
		item.Content[3].Style = yaml.DoubleQuotedStyle // node ids hold ';' and '='
		list.Content = append(list.Content, item)
	}
	if len(list.Content) == 0 {
		return nil, 0, skipped, fmt.Errorf("no variable to put in a gateway file (%d skipped); browse deeper (-depth) or from another -root", len(skipped))
	}
	dev := mapping("name", f.Device, "interval", f.Interval, "opcua", conn, "nodes", list)
	stdoutSink := mapping("stdout", &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle})
	root := mapping("devices", &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{dev}},
		"sinks", &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{stdoutSink}})
	var b bytes.Buffer
	for _, l := range strings.Split(strings.TrimRight(f.Comment, "\n"), "\n") {
		b.WriteString("# " + l + "\n")
	}
	if len(skipped) > 0 {
		b.WriteString("#\n# Left out:\n")
		for _, s := range skipped {
			b.WriteString("#   " + s + "\n")
		}
	}
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return nil, 0, nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, 0, nil, err
	}
	return b.Bytes(), len(list.Content), skipped, nil
}
