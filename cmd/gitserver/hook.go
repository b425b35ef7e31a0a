package main

import (
	"context"
	"fmt"
	"os"

	"gitserver/gitserver/mirror"
	"gitserver/gitserver/packcache"
	"gitserver/hooks"
)

// hook runs inside git's hook process. stderr is the pusher's terminal:
// only deliberate lines go there.
func hook(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: gitserver hook pre-receive|post-receive")
		return 2
	}
	if args[0] == "ssh-relay" {
		// GIT_SSH_COMMAND of a mirror sync: bounds what the upstream sends.
		return mirror.RelayMain(args[1:], os.Stdin, os.Stdout, os.Stderr)
	}
	if args[0] == "pack-objects" {
		// uploadpack.packObjectsHook: runs for clones and fetches.
		return packcache.Main(args[1:], os.Stdin, os.Stdout, os.Stderr)
	}
	env, err := hooks.EnvFrom(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gitserver: hook invoked outside a gitserver push; refusing")
		return 1
	}
	ctx := context.Background()
	switch args[0] {
	case "pre-receive":
		return hooks.PreReceive(ctx, env, "git", os.Stdin, os.Stderr)
	case "post-receive":
		return hooks.PostReceive(ctx, env, os.Stdin, os.Stderr)
	}
	fmt.Fprintf(os.Stderr, "gitserver: unknown hook %q\n", args[0])
	return 2
}
