package main

import (
	"context"

	"gitserver/ui/web"
)

// adminStatus is cmd's part of the admin panel's system status: the
// versions, and the free space of the data directory's file system.
func adminStatus(version, gitVersion, dataDir string) func(context.Context) web.SystemStatus {
	return func(context.Context) web.SystemStatus {
		st := web.SystemStatus{Version: version, GitVersion: gitVersion}
		st.DiskFree, st.DiskTotal, st.DiskError = diskSpace(dataDir)
		return st
	}
}
