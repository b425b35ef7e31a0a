//go:build !linux

package gitserver

import "syscall"

// procAttr puts a git child in its own process group.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
