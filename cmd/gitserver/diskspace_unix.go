//go:build unix

package main

import "syscall"

// diskSpace is the space available to this user and the size of the file
// system holding dir ("" or why they are unknown, without the path).
func diskSpace(dir string) (free, total uint64, problem string) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, "statfs failed"
	}
	bs := uint64(st.Bsize)
	return uint64(st.Bavail) * bs, uint64(st.Blocks) * bs, ""
}
