package access

import (
	"strconv"

	"gitserver/store"
)

// Op is what a principal wants to do.
type Op int

// Operations. The repository operations (OpRead … OpMirrorWebhook) act on
// Target.Repo (OpRead … OpMirrorWebhook); OpCreateRepo and OpManageOrg on Target.Owner; the others on
// no particular target.
const (
	// OpRead: clone or fetch (git), read a repository's metadata and
	// versions (API).
	OpRead Op = iota
	// OpWrite: push (git).
	OpWrite
	// OpReadBuilds: list a repository's builds, read one build.
	OpReadBuilds
	// OpPublish: publish a succeeded build as a version.
	OpPublish
	// OpManageKeys: add, list and delete a repository's deploy keys.
	OpManageKeys
	// OpDeleteRepo: delete a repository.
	OpDeleteRepo
	// OpMirrorWebhook: see a mirror's inbound webhook URL and secret
	// (docs/api.md §9): the owners, as for OpDeleteRepo.
	OpMirrorWebhook
	// OpCreateRepo: create a repository under Target.Owner.
	OpCreateRepo
	// OpManageOrg: change the members of the organisation Target.Owner.
	OpManageOrg
	// OpClaimBuilds: claim, heartbeat and complete builds (the build
	// system).
	OpClaimBuilds
	// OpManageAccount: change one's own account: SSH keys, new
	// organisations.
	OpManageAccount
	// OpCreateToken: create an API token for one's own account.
	OpCreateToken
	// OpAdmin: act as the site admin.
	OpAdmin

	numOps
)

// Ops lists every operation, in order.
func Ops() []Op {
	ops := make([]Op, numOps)
	for i := range ops {
		ops[i] = Op(i)
	}
	return ops
}

var opNames = [...]string{"read", "write", "read-builds", "publish", "manage-keys", "delete-repo", "mirror-webhook",
	"create-repo", "manage-org", "claim-builds", "manage-account", "create-token", "admin"}

func (o Op) String() string {
	if o >= 0 && o < numOps {
		return opNames[o]
	}
	return "op?"
}

// repoOp reports whether o acts on a repository (whose existence a refusal
// must not reveal).
func (o Op) repoOp() bool { return o <= OpMirrorWebhook }

// Transport is how the request arrived.
type Transport int

// Transports.
const (
	HTTPGit Transport = iota // smart HTTP git (/git/...)
	SSHGit                   // git over SSH
	API                      // the JSON API (/api/v1)
	Web                      // web pages (ui/web; treated as API)
)

func (t Transport) String() string {
	switch t {
	case HTTPGit:
		return "http-git"
	case SSHGit:
		return "ssh-git"
	case API:
		return "api"
	case Web:
		return "web"
	}
	return "transport?"
}

func (t Transport) git() bool { return t == HTTPGit || t == SSHGit }

// Target is what the operation acts on.
type Target struct {
	// Repo, for OpRead … OpMirrorWebhook.
	Repo store.Repo
	// Owner, for OpCreateRepo (the account that will own the repository)
	// and OpManageOrg (the organisation).
	Owner store.Account
}

// Facts are what a decision needs beyond the principal and the target;
// callers look them up.
type Facts struct {
	// OrgRole is the principal's user's role (store.RoleOwner,
	// store.RoleMember, or "") in the organisation that owns Target.Repo,
	// or that is Target.Owner. Empty when the owner is a user.
	OrgRole store.Role
	// AnonymousRead is the server's --anonymous-read setting.
	AnonymousRead bool
}

// Outcome is the kind of a decision.
type Outcome int

// Outcomes. The zero value refuses.
const (
	// NotFound: refused, and the target's existence is not revealed (404;
	// to an anonymous client, 401 with a challenge).
	NotFound Outcome = iota
	// Forbidden: refused; the principal may know the target exists (403).
	Forbidden
	// Allow: go ahead.
	Allow
)

func (o Outcome) String() string {
	switch o {
	case Allow:
		return "allow"
	case Forbidden:
		return "forbidden"
	}
	return "not-found"
}

// Decision is Decide's answer.
type Decision struct {
	Outcome Outcome
	// Code is the API error code of a refusal: "not_found", "forbidden" or
	// "insufficient_scope".
	Code string
	// Reason is a message for the client (it never reveals more than the
	// outcome does).
	Reason string
}

// OK reports whether the operation is allowed.
func (d Decision) OK() bool { return d.Outcome == Allow }

var allow = Decision{Outcome: Allow}

func notFound(reason string) Decision {
	return Decision{Outcome: NotFound, Code: "not_found", Reason: reason}
}

func forbidden(reason string) Decision {
	return Decision{Outcome: Forbidden, Code: "forbidden", Reason: reason}
}

func noScope(scope store.Scope) Decision {
	return Decision{Outcome: Forbidden, Code: "insufficient_scope", Reason: "this credential lacks the " + string(scope) + " scope"}
}

const (
	cloneTokenAPI = "a build's clone token only grants git read access to its repository, not the API"
	deployKeyAPI  = "a deploy key only grants git access over SSH to its repository, not the API"
	notGit        = "not a git operation"
	repoNotFound  = "repository not found"
)

// Admit decides whether a principal's kind of credential may use transport
// t at all, before any operation is known: a build's clone token is a
// credential for git only, a deploy key for SSH git only.
func Admit(p store.Principal, t Transport) Decision {
	switch {
	case p.Build != nil && !t.git():
		return forbidden(cloneTokenAPI)
	case p.DeployKey != nil && !t.git():
		return forbidden(deployKeyAPI)
	}
	return allow
}

// IsAdmin reports whether p acts as the site admin: an admin signed in with
// a password or an SSH key, or with a token that carries the admin scope.
func IsAdmin(p store.Principal) bool {
	if p.User == nil || !p.User.IsAdmin {
		return false
	}
	return p.Token == nil || p.Token.HasScope(store.ScopeAdmin)
}

// scopes is what a user's credential allows, whatever the target.
type scopes struct {
	admin  bool // acts as the site admin (IsAdmin)
	read   bool // repo:read: read repositories, their builds and versions
	write  bool // repo:write: everything a user does but claiming builds
	builds bool // builds: the build queue, and reading every build
}

// scopesOf returns what p's user credential carries. A password or SSH key
// carries every scope its account may hold; a token its scopes, where the
// admin and builds scopes count only while the account is an admin, and the
// admin scope (of an admin) implies every other.
func scopesOf(p store.Principal) scopes {
	if p.User == nil {
		return scopes{}
	}
	adm := p.User.IsAdmin
	if p.Token == nil {
		return scopes{admin: adm, read: true, write: true, builds: adm}
	}
	if adm && p.Token.HasScope(store.ScopeAdmin) {
		return scopes{admin: true, read: true, write: true, builds: true}
	}
	s := scopes{
		write:  p.Token.HasScope(store.ScopeRepoWrite),
		builds: adm && p.Token.HasScope(store.ScopeBuilds),
	}
	s.read = s.write || p.Token.HasScope(store.ScopeRepoRead)
	return s
}

// HasScope reports whether p's credential carries scope sc (see scopesOf).
// Deploy keys, clone tokens and anonymous requests carry none.
func HasScope(p store.Principal, sc store.Scope) bool {
	s := scopesOf(p)
	switch sc {
	case store.ScopeAdmin:
		return s.admin
	case store.ScopeRepoRead:
		return s.read
	case store.ScopeRepoWrite:
		return s.write
	case store.ScopeBuilds:
		return s.builds
	}
	return false
}

// Scoped decides what can be decided from the credential alone, before the
// target is looked up: whether it may use the transport, and whether it
// carries the scope op needs (insufficient_scope otherwise). Decide applies
// it first; handlers call it early to refuse before any lookup.
func Scoped(p store.Principal, op Op, t Transport) Decision {
	if d := Admit(p, t); !d.OK() {
		return d
	}
	if t.git() && op != OpRead && op != OpWrite {
		return forbidden(notGit)
	}
	if op.repoOp() {
		// Whether a repository operation needs more than the credential
		// holds is told only once the principal may know the repository
		// exists (Decide).
		return allow
	}
	if p.User == nil {
		if p.Anonymous() {
			return forbidden("sign in first")
		}
		return forbidden("this credential only grants git access to one repository")
	}
	s := scopesOf(p)
	switch op {
	case OpCreateRepo, OpManageOrg, OpManageAccount:
		if !s.write {
			return noScope(store.ScopeRepoWrite)
		}
	case OpClaimBuilds:
		if !s.builds {
			return noScope(store.ScopeBuilds)
		}
	case OpCreateToken:
		if p.Token != nil && !p.Token.HasScope(store.ScopeAdmin) {
			return forbidden("tokens can only be created with a password, or with a token that has the admin scope")
		}
	case OpAdmin:
		if !s.admin {
			return forbidden("only an admin (with a password, an SSH key or an admin-scope token) may do this")
		}
	}
	return allow
}

// Decide is the access policy (docs/api.md §4 and §5):
//
//   - an admin acting as admin (password, SSH key, or a token with the admin
//     scope) may do everything everywhere;
//   - the owning user, or the members of the owning organisation, read and
//     write a repository (publish, manage its deploy keys); only the owning
//     user and the organisation's owners delete it or manage the
//     organisation; members may create the organisation's repositories;
//   - any signed-in account reads public repositories;
//   - anonymous requests read public repositories only with
//     --anonymous-read;
//   - a deploy key reads (or, if created read-write, writes) its one
//     repository over SSH git;
//   - a build's clone token reads its build's repository through git, and
//     nothing else;
//   - a token limits its user to its scopes: repo:read reads, repo:write
//     also writes; builds (held by an admin) claims, heartbeats and
//     completes builds and reads every build, but never a repository's code
//     or metadata; admin (held by an admin) acts as the admin.
//
// A repository operation the principal may not even read the repository
// for is NotFound (its existence is not revealed); one it may read the
// repository for but not do is Forbidden.
func Decide(p store.Principal, op Op, t Transport, target Target, f Facts) Decision {
	if d := Scoped(p, op, t); !d.OK() {
		return d
	}
	if !op.repoOp() {
		return decideAccount(p, op, target, f)
	}
	r := target.Repo
	switch {
	case p.Build != nil:
		if p.Build.RepoID != r.ID {
			return notFound(repoNotFound)
		}
		if op == OpRead {
			return allow
		}
		return forbidden("a build's clone token only grants read access")
	case p.DeployKey != nil:
		if p.DeployKey.RepoID != r.ID {
			return notFound(repoNotFound)
		}
		if op == OpRead || op == OpWrite && !p.DeployKey.ReadOnly {
			return allow
		}
		return forbidden("this deploy key is read-only")
	case p.User == nil:
		if f.AnonymousRead && r.Visibility == store.Public && (op == OpRead || op == OpReadBuilds) {
			return allow
		}
		return notFound(repoNotFound)
	}
	return decideUser(p, op, r, f)
}

// level is what a user's account may do to a repository, before its
// credential's scopes.
type level int

const (
	none   level = iota
	reader       // public repository
	writer       // owning user, organisation member, admin
)

func accountLevel(u *store.Account, r store.Repo, f Facts) level {
	switch {
	case u.IsAdmin:
		return writer
	case r.OwnerKind == store.KindUser && r.OwnerID == u.ID:
		return writer
	case r.OwnerKind == store.KindOrg && f.OrgRole != "":
		return writer
	case r.Visibility == store.Public:
		return reader
	}
	return none
}

func decideUser(p store.Principal, op Op, r store.Repo, f Facts) Decision {
	s := scopesOf(p)
	lvl := accountLevel(p.User, r, f)
	if op == OpReadBuilds && s.builds {
		// The build system reads every build (it is an admin's).
		return allow
	}
	if lvl == none || !s.read {
		return notFound(repoNotFound)
	}
	if op == OpRead || op == OpReadBuilds {
		return allow
	}
	if lvl < writer || !s.write {
		return forbidden("you need write access to " + r.FullName())
	}
	if op == OpDeleteRepo && r.OwnerKind == store.KindOrg && !s.admin && f.OrgRole != store.RoleOwner {
		return forbidden("only owners of " + r.Owner + " can delete its repositories")
	}
	if op == OpMirrorWebhook && r.OwnerKind == store.KindOrg && !s.admin && f.OrgRole != store.RoleOwner {
		return forbidden("only owners of " + r.Owner + " can see its mirrors' webhook secrets")
	}
	return allow
}

// decideAccount decides the operations that act on no repository; Scoped
// has checked the credential.
func decideAccount(p store.Principal, op Op, target Target, f Facts) Decision {
	admin := scopesOf(p).admin
	switch op {
	case OpCreateRepo:
		o := target.Owner
		if admin || o.ID == p.User.ID || o.Kind == store.KindOrg && f.OrgRole != "" {
			return allow
		}
		return forbidden("you cannot create repositories for " + o.Name)
	case OpManageOrg:
		o := target.Owner
		if o.Kind != store.KindOrg {
			return notFound("no organisation " + strconv.Quote(o.Name))
		}
		if admin || f.OrgRole == store.RoleOwner {
			return allow
		}
		return forbidden("only owners of " + o.Name + " can change its members")
	}
	return allow
}
