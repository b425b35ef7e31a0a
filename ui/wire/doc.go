// Package wire is the JSON form of the API's objects (docs/api.md §5, §7,
// §8; docs/openapi.yaml's components): one struct per object, and the
// constructors that fill them from the store's types. Everything that sends
// one of these objects uses it, so an object has one form wherever it goes:
// the JSON API (package ui) and the outbound build notice (hooks), whose
// build is exactly the one GET /api/v1/builds/{id} returns.
//
// The fields of each struct are declared in the alphabetical order of their
// JSON keys: encoding/json writes a map's keys sorted, and the API wrote
// maps before these structs existed, so the bytes did not change.
//
// wire is a leaf: it imports only store, and holds no behaviour beyond
// formatting (no access decisions, no I/O).
//
// Imports: gitserver/store
package wire
