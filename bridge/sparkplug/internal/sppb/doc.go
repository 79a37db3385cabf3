// Package sppb holds the Go types of the Sparkplug B payload, generated from
// the Eclipse Tahu sparkplug_b.proto (proto2, package
// org.eclipse.tahu.protobuf).
//
// The .proto and the generated sparkplug_b.pb.go are under the Eclipse Public
// License 2.0 (the LICENSE file beside them); this file and the tests are
// MIT, like the rest of m2mbridge. The .proto was taken unchanged from
// github.com/eclipse/tahu, sparkplug_b/sparkplug_b.proto at commit
// 5736e404889d4b95910613040a99ba79589ffb13; it declares no go_package, so the
// Go import path is given to protoc-gen-go with an M mapping instead of an
// edit.
//
// The generated code is committed so that building needs no protoc. To
// regenerate it, put protoc (Debian: protobuf-compiler) and protoc-gen-go on
// PATH, the latter at the version of google.golang.org/protobuf in go.mod:
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go generate ./bridge/sparkplug/internal/sppb
//
// The types register the proto file "sparkplug_b.proto" and the names
// org.eclipse.tahu.protobuf.* in the protobuf global registry; a program that
// also links another Go copy of the same .proto gets a registration conflict
// (see https://protobuf.dev/reference/go/faq#namespace-conflict).
//
// Only the bridge/sparkplug package imports sppb, so the core bridge and the
// adapters do not link protobuf code.
package sppb

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go_opt=Msparkplug_b.proto=github.com/m2mbridge/m2mbridge/bridge/sparkplug/internal/sppb sparkplug_b.proto
