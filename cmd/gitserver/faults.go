package main

import (
	"log/slog"

	"gitserver/gitserver"
	"gitserver/hooks"
	"gitserver/store"
)

// injectFaults, when set, may replace parts of a starting server to
// simulate failures. Only a binary built with -tags faultinject sets it
// (faultinject.go, for the end-to-end tests); the production binary has no
// fault injection at all.
var injectFaults func(faultSite)

// faultSite is what fault injection may change, before the server serves.
type faultSite struct {
	Log     *slog.Logger
	Store   store.Store
	Git     *gitserver.Git
	Repos   *gitserver.Repos
	Trigger *hooks.Trigger
	Socket  *hooks.SocketServer
	Server  *gitserver.Server
}
