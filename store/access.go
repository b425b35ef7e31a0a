package store

import "strconv"

// Principal is who is making a request: a user (signed in with a password,
// a token or an SSH key), a deploy key, a build's clone token, or nobody
// (anonymous).
type Principal struct {
	User      *Account    // nil for anonymous, deploy keys and clone tokens
	Token     *Token      // set when the user authenticated with a token
	DeployKey *Key        // set when a deploy key authenticated
	Build     *BuildGrant // set when a build's clone token authenticated
}

// BuildGrant is what a clone token (handed out by ClaimBuild) stands for:
// read access to the one repository of one running build.
type BuildGrant struct {
	BuildID int64
	RepoID  int64
}

// Anonymous reports whether no credential was given.
func (p Principal) Anonymous() bool { return p.User == nil && p.DeployKey == nil && p.Build == nil }

// Name is a display name for logs, audit and hooks.
func (p Principal) Name() string {
	switch {
	case p.User != nil:
		return p.User.Name
	case p.DeployKey != nil:
		return "deploy-key:" + p.DeployKey.Fingerprint
	case p.Build != nil:
		return "build:" + strconv.FormatInt(p.Build.BuildID, 10)
	}
	return "anonymous"
}
