// Package storetest is the contract suite of store.Store: Run tests an
// implementation's behaviour and documented errors (accounts, credentials,
// organisations, repositories, the build queue, versions, audit) and its
// correctness under concurrent writers, through two Store values opened on
// one database (standing in for two processes or nodes).
//
// It imports only gitserver/store of this module, and is for tests:
// implementations call Run from their own _test.go files.
//
// Imports: gitserver/store
package storetest
