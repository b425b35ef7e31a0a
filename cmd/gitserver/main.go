package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"gitserver/gitserver"
	"gitserver/gitserver/packcache"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `gitserver — a self-hosted git server

Usage:
  gitserver serve [flags]                       run the server
  gitserver admin user create NAME [--admin] [--password-stdin]
  gitserver admin user passwd NAME [--password-stdin]
  gitserver admin token create NAME [--scope SCOPE]... [--name LABEL]
  gitserver admin key add NAME --file KEY.pub
  gitserver version

Admin commands find the data directory from --data DIR or GITSERVER_DATA.
Run "gitserver serve --help" for the server's flags.
`

func main() {
	// git runs the hooks InstallHooks linked to this binary by their
	// names, without arguments.
	if name := filepath.Base(os.Args[0]); slices.Contains(gitserver.HookNames, name) {
		os.Exit(hook([]string{name}))
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		restrictUmask()
		return serve(args[1:])
	case "admin":
		restrictUmask()
		return admin(args[1:])
	case "hook":
		return hook(args[1:])
	case "git":
		// uploadpack.packObjectsHook run by git without a shell:
		// `gitserver git pack-objects ARGS...`, options in the env.
		if packcache.IsDirectHook(args, os.Getenv) {
			return packcache.MainEnv(args, os.Getenv, os.Stdin, os.Stdout, os.Stderr)
		}
	case "version", "--version":
		fmt.Println("gitserver", version)
		return 0
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "gitserver: unknown command %q\n\n%s", args[0], usage)
	return 2
}
