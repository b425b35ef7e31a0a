// Command gitserver is the single binary of the appliance: the server
// (`gitserver serve`), the admin CLI (`gitserver admin ...`) and the git
// hooks it installs for itself (`gitserver hook ...`).
//
// Package main only wires the other packages together: configuration,
// opening the store, binding listeners, starting servers (Main, which tests
// also start in-process) and handling signals. Nothing imports it. Fault
// injection for the end-to-end tests (GITSERVER_FAULT) is compiled only
// with -tags faultinject.
//
// Imports: gitserver/...
package main
