// Package history generates the long-history repositories the benchmarks
// read (bench's page section, cmd/gitserver's BenchmarkWebGit): a linear
// history of n commits written with `git fast-import`, deterministic, and
// cached under ~/.cache/gitserver-bench as gitserver's maintenance keeps a
// repository (one pack with a bitmap, packed refs, a commit-graph).
//
// Imports: none
package history
