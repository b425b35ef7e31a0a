// Package pgtest starts a throwaway PostgreSQL 15 cluster for tests: one per
// test binary (Shared, stopped by Main or, should the binary die, by a
// watchdog), with a fresh database per test (Start). The cluster runs as the
// postgres user (initdb refuses root) on a free 127.0.0.1 port, in a
// directory under os.TempDir. Start skips a test when PostgreSQL is not
// installed, and fails it instead when CI=true.
//
// Imports: none
package pgtest
