package store

import "strconv"

// Access is what a principal may do to a repository.
type Access int

// Access levels, ordered.
const (
	NoAccess Access = iota
	ReadAccess
	WriteAccess
)

func (a Access) String() string {
	switch a {
	case ReadAccess:
		return "read"
	case WriteAccess:
		return "write"
	}
	return "none"
}

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

// IsAdmin reports whether the principal is a site admin acting with admin
// rights: signed in with a password or SSH key, or with a token that carries
// the admin scope.
func (p Principal) IsAdmin() bool {
	if p.User == nil || !p.User.IsAdmin {
		return false
	}
	return p.Token == nil || p.Token.HasScope(ScopeAdmin)
}

// HasScope reports whether the principal may act within scope sc. Password
// and SSH-key sessions carry every scope but "builds" (which is only for
// build-system tokens, or admins). Only admins hold builds tokens
// (CreateToken refuses others); a builds token whose owner is not an admin
// (any more) carries nothing of it. Deploy keys and clone tokens carry no
// scope.
func (p Principal) HasScope(sc string) bool {
	if p.User == nil {
		return false
	}
	if p.Token != nil {
		if sc == ScopeBuilds && !p.User.IsAdmin {
			return false
		}
		return p.Token.HasScope(sc) || p.Token.HasScope(ScopeAdmin) && p.User.IsAdmin
	}
	return sc != ScopeBuilds || p.User.IsAdmin
}

// Facts are what the access rule needs to know beyond the principal and repo.
type Facts struct {
	// Member is true when the principal's user owns the repo's organisation
	// or is a member of it.
	Member bool
	// AnonymousRead is the server's --anonymous-read setting.
	AnonymousRead bool
}

// Decide is the access matrix of contract §4, as a pure function:
//
//   - admins: write everywhere;
//   - the owning user, or members of the owning org: write;
//   - any other signed-in account: read on public repos;
//   - anonymous: read on public repos only with --anonymous-read;
//   - a deploy key: its one repo, read or read-write as created;
//   - a build's clone token: read on its build's repo, nothing else.
//
// A token further limits the result to its scopes (repo:read, repo:write).
func Decide(p Principal, r Repo, f Facts) Access {
	if p.Build != nil {
		if p.Build.RepoID == r.ID {
			return ReadAccess
		}
		return NoAccess
	}
	if p.DeployKey != nil {
		if p.DeployKey.RepoID != r.ID {
			return NoAccess
		}
		if p.DeployKey.ReadOnly {
			return ReadAccess
		}
		return WriteAccess
	}
	if p.User == nil {
		if f.AnonymousRead && r.Visibility == Public {
			return ReadAccess
		}
		return NoAccess
	}
	acc := NoAccess
	switch {
	case p.User.IsAdmin:
		acc = WriteAccess
	case r.OwnerKind == KindUser && r.OwnerID == p.User.ID:
		acc = WriteAccess
	case r.OwnerKind == KindOrg && f.Member:
		acc = WriteAccess
	case r.Visibility == Public:
		acc = ReadAccess
	}
	if p.Token != nil {
		limit := NoAccess
		if p.Token.HasScope(ScopeRepoRead) {
			limit = ReadAccess
		}
		if p.Token.HasScope(ScopeRepoWrite) {
			limit = WriteAccess
		}
		acc = min(acc, limit)
	}
	return acc
}
