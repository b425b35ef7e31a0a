package hooks

import (
	"fmt"
	"strconv"
)

// Environment variable names of the hook contract.
const (
	EnvRepoID        = "GITSERVER_REPO_ID"
	EnvRepo          = "GITSERVER_REPO"
	EnvDefaultBranch = "GITSERVER_DEFAULT_BRANCH"
	EnvPusher        = "GITSERVER_PUSHER"
	EnvPusherID      = "GITSERVER_PUSHER_ID"
	EnvTransport     = "GITSERVER_TRANSPORT"
	EnvSocket        = "GITSERVER_HOOK_SOCKET"
	EnvSecret        = "GITSERVER_HOOK_SECRET"
	EnvRequestID     = "GITSERVER_REQUEST_ID"
	EnvPushID        = "GITSERVER_PUSH_ID"
	EnvMirror        = "GITSERVER_MIRROR"
)

// Env is what the daemon tells a hook process about the push it is part of.
type Env struct {
	RepoID        int64
	Repo          string // owner/name
	DefaultBranch string // branch name without refs/heads/
	Pusher        string // account name (or deploy-key:FINGERPRINT)
	PusherID      int64  // 0 for deploy keys
	Transport     string // "http" or "ssh"
	Socket        string // the daemon's hook socket
	Secret        string // per-daemon secret that authenticates the hook to the socket
	RequestID     string // correlates hook errors with the daemon's log
	// PushID names one receive-pack run (Trigger.TrackPush); post-receive
	// hands it back so the daemon learns that git updated refs.
	PushID string
	// Mirror is the upstream URL when the repository is a mirror: every
	// push is refused, naming it (docs/api.md §9).
	Mirror string
}

// Environ renders e as KEY=VALUE pairs for exec.Cmd.Env.
func (e Env) Environ() []string {
	return []string{
		EnvRepoID + "=" + strconv.FormatInt(e.RepoID, 10),
		EnvRepo + "=" + e.Repo,
		EnvDefaultBranch + "=" + e.DefaultBranch,
		EnvPusher + "=" + e.Pusher,
		EnvPusherID + "=" + strconv.FormatInt(e.PusherID, 10),
		EnvTransport + "=" + e.Transport,
		EnvSocket + "=" + e.Socket,
		EnvSecret + "=" + e.Secret,
		EnvRequestID + "=" + e.RequestID,
		EnvPushID + "=" + e.PushID,
		EnvMirror + "=" + e.Mirror,
	}
}

// EnvFrom reads the contract from getenv (os.Getenv in a hook process).
func EnvFrom(getenv func(string) string) (Env, error) {
	e := Env{
		Repo:          getenv(EnvRepo),
		DefaultBranch: getenv(EnvDefaultBranch),
		Pusher:        getenv(EnvPusher),
		Transport:     getenv(EnvTransport),
		Socket:        getenv(EnvSocket),
		Secret:        getenv(EnvSecret),
		RequestID:     getenv(EnvRequestID),
		PushID:        getenv(EnvPushID),
		Mirror:        getenv(EnvMirror),
	}
	var err error
	if e.RepoID, err = strconv.ParseInt(getenv(EnvRepoID), 10, 64); err != nil || e.RepoID <= 0 {
		return Env{}, fmt.Errorf("hooks: %s missing or invalid: not run by gitserver?", EnvRepoID)
	}
	if e.PusherID, err = strconv.ParseInt(getenv(EnvPusherID), 10, 64); err != nil {
		return Env{}, fmt.Errorf("hooks: %s invalid", EnvPusherID)
	}
	if e.DefaultBranch == "" || e.Pusher == "" {
		return Env{}, fmt.Errorf("hooks: %s or %s missing", EnvDefaultBranch, EnvPusher)
	}
	return e, nil
}
