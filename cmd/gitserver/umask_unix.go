//go:build unix

package main

import "syscall"

// restrictUmask makes everything serve and admin create owner-only (files
// 0600, directories 0700, whatever the umask they were started with): the
// database, the secrets, and the repositories, which git creates under this
// umask too. Files that must be owner-only also get that mode explicitly
// (the database, for instance, in sqlite.Open), so this is the second line.
func restrictUmask() {
	old := syscall.Umask(0o077)
	syscall.Umask(old | 0o077)
}
