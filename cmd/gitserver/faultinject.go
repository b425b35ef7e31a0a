//go:build faultinject

package main

import (
	"context"
	"errors"
	"os"
	"time"

	"gitserver/hooks"
)

// Fault injection for the end-to-end tests, chosen by GITSERVER_FAULT.
// Compiled only with -tags faultinject.
func init() {
	injectFaults = func(f faultSite) {
		if fault := faults[os.Getenv("GITSERVER_FAULT")]; fault != nil {
			fault(f)
		}
	}
}

// faults by name.
var faults = map[string]func(faultSite){
	"crash-before-enqueue": func(f faultSite) {
		// The crash-reconcile test: die after git has updated the refs
		// and before the build is queued.
		crash := func() { f.Log.Warn("fault injection: exiting before enqueue"); os.Exit(3) }
		f.Socket.BeforeEnqueue = crash // the hook path
		f.Server.BeforeEnqueue = crash // the hook-free push
	},
	"slow-backstop": func(f faultSite) {
		// The shutdown test: the push's enqueue (post-receive's or the
		// hook-free push's) fails and the post-push backstop takes 2 s,
		// so a stop right after the push finds the backstop still
		// running.
		t := f.Trigger
		failing := &hooks.Trigger{Store: f.Store, RepoDir: f.Repos.Dir, Log: t.Log, OnQueued: t.OnQueued,
			Git: func(context.Context, string, ...string) (string, error) {
				return "", errors.New("fault injection: hook enqueue fails")
			}}
		slow := &hooks.Trigger{Store: f.Store, RepoDir: f.Repos.Dir, Log: t.Log, OnQueued: t.OnQueued,
			Git: func(ctx context.Context, dir string, args ...string) (string, error) {
				select {
				case <-time.After(2 * time.Second):
				case <-ctx.Done():
					return "", ctx.Err()
				}
				return f.Git.Output(ctx, dir, args...)
			}}
		f.Socket.Trigger, f.Server.Trigger, f.Server.Backstop = failing, failing, slow
	},
}
