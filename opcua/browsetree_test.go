package opcua_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/opcua"
	"github.com/m2mbridge/m2mbridge/opcua/opcuatest"
)

func TestBrowseTree(t *testing.T) {
	srv := newServer(t, opcuatest.Options{Interval: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// From the Objects folder: the simulator's folder, its variables below.
	tree, err := opcua.BrowseTree(ctx, opcua.Config{Endpoint: srv.URL()}, "i=85", 3)
	require.NoError(t, err)
	var folder *opcua.BrowseEntry
	for _, e := range tree {
		if e.NodeID == "nsu="+opcuatest.NamespaceURI+";i=85" {
			folder = e
		}
	}
	require.NotNil(t, folder, "the simulator's folder under Objects: %v", tree)
	assert.False(t, folder.Variable)
	assert.Equal(t, 1, folder.Depth)

	byName := map[string]*opcua.BrowseEntry{}
	for _, v := range opcua.Variables(tree) {
		byName[v.BrowseName] = v
	}
	temp := byName[opcuatest.Temperature]
	require.NotNil(t, temp, "variables: %v", byName)
	assert.Equal(t, "Double", temp.DataType)
	assert.Equal(t, opcuatest.TemperatureUnit, temp.Unit)
	assert.Equal(t, int32(-1), temp.ValueRank)
	assert.Equal(t, "r", temp.Access())
	assert.Equal(t, 2, temp.Depth)
	assert.Equal(t, folder.Path+"."+opcuatest.Temperature, temp.Path)
	assert.Contains(t, folder.Children, temp)

	for name, want := range map[string][3]string{
		opcuatest.Counter:  {"UInt32", "r", ""},
		opcuatest.Toggle:   {"Boolean", "r", ""},
		opcuatest.Text:     {"String", "r", ""},
		opcuatest.Stamp:    {"DateTime", "r", ""},
		opcuatest.Setpoint: {"Double", "rw", ""},
		opcuatest.Mode:     {"Int32", "rw", ""},
	} {
		e := byName[name]
		require.NotNil(t, e, name)
		assert.Equal(t, want[0], e.DataType, name)
		assert.Equal(t, want[1], e.Access(), name)
		assert.Equal(t, want[2], e.Unit, name)
	}
	assert.Equal(t, int32(1), byName[opcuatest.Vector].ValueRank)
	assert.NotContains(t, byName, "EngineeringUnits", "properties are not listed")

	// The variables' nodes are what Browse gives for the same root and
	// depth, names and all.
	nodes, err := opcua.Browse(ctx, opcua.Config{Endpoint: srv.URL()}, opcuatest.FolderNodeID, 2)
	require.NoError(t, err)
	tree2, err := opcua.BrowseTree(ctx, opcua.Config{Endpoint: srv.URL()}, opcuatest.FolderNodeID, 2)
	require.NoError(t, err)
	var fromTree []opcua.Node
	for _, v := range opcua.Variables(tree2) {
		fromTree = append(fromTree, v.Node())
	}
	assert.Equal(t, nodes, fromTree)

	// Depth 1 from Objects: the folder, not its variables.
	tree, err = opcua.BrowseTree(ctx, opcua.Config{Endpoint: srv.URL()}, "i=85", 1)
	require.NoError(t, err)
	assert.Empty(t, opcua.Variables(tree))

	// An unknown root is an error naming it.
	_, err = opcua.BrowseTree(ctx, opcua.Config{Endpoint: srv.URL()}, "ns=1;s=NoSuchNode", 1)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "root ns=1;s=NoSuchNode: BadNodeIDUnknown")
}
