// Command gitserver is the single binary of the appliance: the server
// (`gitserver serve`), the admin CLI (`gitserver admin ...`) and the git
// hooks it installs for itself (`gitserver hook ...`).
//
// Package main only wires the other packages together: configuration,
// opening the store, binding listeners, starting servers and handling
// signals. Nothing imports it.
//
// Imports: gitserver/...
package main
