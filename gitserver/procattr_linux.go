package gitserver

import "syscall"

// procAttr puts a git child in its own process group (so cancellation kills
// upload-pack together with the pack-objects it forks) and kills it if the
// server dies: a receive-pack outliving a killed server could move a ref
// after the next server's start-up reconciliation, with no daemon left to
// queue its build.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
