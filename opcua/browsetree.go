package opcua

import (
	"context"
	"fmt"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// BrowseEntry is one node of the address space as [BrowseTree] found it.
type BrowseEntry struct {
	// Path is the node's browse names joined with "." from below the root,
	// made unique with a "_2" suffix where needed: the Node name [Browse]
	// gives the same variable.
	Path        string
	BrowseName  string
	DisplayName string
	// NodeID is the node's id, written with nsu=<namespace URI> (as
	// [Browse] writes it), so it survives a change of namespace index.
	NodeID string
	// Variable is true for a variable, false for an object (a folder).
	Variable bool
	Depth    int // 1 for the root's children
	// For variables: the data type's name ("Double", "Int32", or the
	// browse name of a server-defined type), the value rank (-1 scalar, 1
	// one-dimensional array, ...), the engineering unit (the DisplayName
	// of the EngineeringUnits property, "" without one) and the access
	// level for this session's user (Part 3, 5.6.2 and 8.57: bit 0
	// CurrentRead, bit 1 CurrentWrite) — the AccessLevel attribute where
	// the server has no UserAccessLevel; AccessKnown is false when it has
	// neither.
	DataType    string
	ValueRank   int32
	Unit        string
	AccessLevel byte
	AccessKnown bool
	Children    []*BrowseEntry
}

// Readable reports the access level's CurrentRead bit (Part 3, 8.57
// AccessLevelType).
func (e *BrowseEntry) Readable() bool { return e.AccessLevel&byte(ua.AccessLevelTypeCurrentRead) != 0 }

// Writable reports the access level's CurrentWrite bit.
func (e *BrowseEntry) Writable() bool { return e.AccessLevel&byte(ua.AccessLevelTypeCurrentWrite) != 0 }

// Access is "r", "w", "rw", "-" (neither), or "?" when the server did not
// say.
func (e *BrowseEntry) Access() string {
	if !e.AccessKnown {
		return "?"
	}
	s := ""
	if e.Readable() {
		s += "r"
	}
	if e.Writable() {
		s += "w"
	}
	if s == "" {
		return "-"
	}
	return s
}

// Node is the entry as a node of [Config.Nodes]: Path as its name, the id,
// the unit. Writable is left false: writes are denied by default, and a
// person decides which nodes take commands.
func (e *BrowseEntry) Node() Node { return Node{Name: e.Path, Node: e.NodeID, Unit: e.Unit} }

// Variables returns the variables of the trees, depth first in browse
// order.
func Variables(tree []*BrowseEntry) []*BrowseEntry {
	var out []*BrowseEntry
	var walk func([]*BrowseEntry)
	walk = func(es []*BrowseEntry) {
		for _, e := range es {
			if e.Variable {
				out = append(out, e)
			}
			walk(e.Children)
		}
	}
	walk(tree)
	return out
}

// BrowseTree connects as [Browse] does (cfg's endpoint, security and
// authentication; cfg.Nodes ignored) and returns the objects and variables
// under root as a tree, following Organizes and HasComponent references at
// most maxDepth levels deep (0 means 1); a node reached twice is listed
// once. Each variable carries its data type, value rank, engineering unit
// and the access level of the session's user, read in as few requests as
// the server's MaxNodesPerRead allows.
func BrowseTree(ctx context.Context, cfg Config, root string, maxDepth int) ([]*BrowseEntry, error) {
	cfg.Nodes = []Node{{Name: "root", Node: root}}
	if cfg.Name == "" {
		cfg.Name = "browse"
	}
	cfg.Mode, cfg.Buffer = Poll, 0
	src, err := New(cfg)
	if err != nil {
		return nil, err
	}
	defer src.closeGuard()
	sess, err := src.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("opcua: browse: %w", err)
	}
	defer src.closeSession(sess)
	if sess.nodes[0].id == nil {
		return nil, fmt.Errorf("opcua: browse: %s: %w", root, sess.nodes[0].err)
	}
	if maxDepth <= 0 {
		maxDepth = 1
	}
	// A root the server does not know would browse as empty: say so.
	rootClass, err := src.readChunked(ctx, sess, []*ua.ReadValueID{{NodeID: sess.nodes[0].id, AttributeID: ua.AttributeIDNodeClass}})
	if err != nil {
		return nil, fmt.Errorf("opcua: browse: %s: %w", root, err)
	}
	if len(rootClass) != 1 || rootClass[0] == nil || quality(rootClass[0].Status) == 2 {
		st := ua.StatusBadNodeIDUnknown
		if len(rootClass) == 1 && rootClass[0] != nil {
			st = rootClass[0].Status
		}
		return nil, fmt.Errorf("opcua: browse: root %s: %s", root, StatusName(st))
	}
	type item struct {
		id    *ua.NodeID
		entry *BrowseEntry
	}
	ns := sess.c.Namespaces()
	var top []*BrowseEntry
	level := []item{{id: sess.nodes[0].id}}
	seen := map[string]bool{sess.nodes[0].id.String(): true}
	var vars []item
	used := map[string]int{}
	for depth := 1; depth <= maxDepth && len(level) > 0; depth++ {
		var next []item
		parents := make([]*ua.NodeID, len(level))
		for i, it := range level {
			parents[i] = it.id
		}
		err := browseChildren(ctx, sess.c, parents, seen, func(k int, r *ua.ReferenceDescription) {
			nid := r.NodeID.NodeID
			e := &BrowseEntry{NodeID: withURI(nid, ns), Variable: r.NodeClass == ua.NodeClassVariable, Depth: depth, ValueRank: -1}
			if r.BrowseName != nil {
				e.BrowseName = r.BrowseName.Name
			}
			if r.DisplayName != nil {
				e.DisplayName = r.DisplayName.Text
			}
			e.Path = e.BrowseName
			if parent := level[k].entry; parent != nil {
				e.Path = parent.Path + "." + e.BrowseName
				parent.Children = append(parent.Children, e)
			} else {
				top = append(top, e)
			}
			it := item{id: nid, entry: e}
			if e.Variable {
				vars = append(vars, it)
			}
			next = append(next, it)
		})
		if err != nil {
			return nil, err
		}
		level = next
	}
	// Unique paths, in browse order, as Browse names its nodes.
	for _, v := range vars {
		v.entry.Path = uniqueName(used, v.entry.Path)
	}
	if len(vars) == 0 {
		return top, nil
	}
	ids := make([]*ua.NodeID, len(vars))
	for i, v := range vars {
		ids[i] = v.id
	}
	read := func(req []*ua.ReadValueID) ([]*ua.DataValue, error) { return src.readChunked(ctx, sess, req) }
	units, err := engineeringUnits(ctx, sess.c, ids, 200, read)
	if err != nil {
		return nil, fmt.Errorf("opcua: browse: engineering units: %w", err)
	}
	attrs := []ua.AttributeID{ua.AttributeIDDataType, ua.AttributeIDValueRank, ua.AttributeIDUserAccessLevel, ua.AttributeIDAccessLevel}
	req := make([]*ua.ReadValueID, 0, len(vars)*len(attrs))
	for _, v := range vars {
		for _, a := range attrs {
			req = append(req, &ua.ReadValueID{NodeID: v.id, AttributeID: a})
		}
	}
	dvs, err := read(req)
	if err != nil {
		return nil, fmt.Errorf("opcua: browse: attributes: %w", err)
	}
	if len(dvs) != len(req) {
		return nil, fmt.Errorf("opcua: browse: attributes: %d results for %d reads", len(dvs), len(req))
	}
	// Data types outside namespace 0 are named by their browse name.
	var custom []*ua.NodeID
	customOf := map[string][]*BrowseEntry{}
	for i, v := range vars {
		e := v.entry
		e.Unit = units[i]
		k := len(attrs) * i
		dt, rank, userAccess, access := dvs[k], dvs[k+1], dvs[k+2], dvs[k+3]
		nid := attrValue[*ua.NodeID](dt)
		if x := attrValue[*ua.ExpandedNodeID](dt); nid == nil && x != nil {
			nid = x.NodeID // the type of the attribute is NodeId; some servers send it expanded
		}
		if nid != nil {
			if nid.Namespace() == 0 && nid.Type() != ua.NodeIDTypeString && id.Name(nid.IntID()) != "" {
				e.DataType = id.Name(nid.IntID())
			} else {
				key := nid.String()
				if customOf[key] == nil {
					custom = append(custom, nid)
				}
				customOf[key] = append(customOf[key], e)
				e.DataType = key
			}
		}
		if r, ok := attrScalar[int32](rank); ok {
			e.ValueRank = r
		}
		if a, ok := attrScalar[uint8](userAccess); ok {
			e.AccessLevel, e.AccessKnown = a, true
		} else if a, ok := attrScalar[uint8](access); ok {
			e.AccessLevel, e.AccessKnown = a, true
		}
	}
	if len(custom) > 0 {
		req := make([]*ua.ReadValueID, len(custom))
		for i, nid := range custom {
			req[i] = &ua.ReadValueID{NodeID: nid, AttributeID: ua.AttributeIDBrowseName}
		}
		names, err := read(req)
		if err == nil && len(names) == len(custom) {
			for i, nid := range custom {
				if qn := attrValue[*ua.QualifiedName](names[i]); qn != nil && qn.Name != "" {
					for _, e := range customOf[nid.String()] {
						e.DataType = qn.Name
					}
				}
			}
		}
	}
	return top, nil
}

// attrValue returns a Good data value's value as a T, or the zero T.
func attrValue[T any](dv *ua.DataValue) T {
	var zero T
	if dv == nil || dv.Value == nil || quality(dv.Status) == 2 {
		return zero
	}
	v, _ := dv.Value.Value().(T)
	return v
}

// attrScalar returns a Good data value's value as a T and whether it was
// one.
func attrScalar[T any](dv *ua.DataValue) (T, bool) {
	var zero T
	if dv == nil || dv.Value == nil || quality(dv.Status) == 2 {
		return zero, false
	}
	v, ok := dv.Value.Value().(T)
	return v, ok
}
