package service

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"gitserver/gitserver/access"
	"gitserver/store"
)

// RepoFS is what the operations need done to repository directories
// (gitserver.Repos implements it).
type RepoFS interface {
	// Init creates r's directory (idempotent).
	Init(ctx context.Context, r store.Repo) error
	// Delete moves r's directory aside, runs deleteRows, then removes the
	// directory (later, if it cannot now). If the directory cannot be
	// moved aside, deleteRows is not run and nothing is deleted; if
	// deleteRows fails, the directory is moved back.
	Delete(ctx context.Context, r store.Repo, deleteRows func(context.Context) error) error
	// Pin keeps commit reachable in r forever.
	Pin(ctx context.Context, r store.Repo, commit string) error
	// SetHead points r's HEAD at refs/heads/branch; a branch r does not
	// have (when it has any) is refused with ErrInvalid.
	SetHead(ctx context.Context, r store.Repo, branch string) error
}

// Service performs the operations. Fields are set by the edge that builds
// it; it holds no state of its own, so building one per request is cheap.
type Service struct {
	Store store.Store
	// Repos is the repository directories; operations on repositories
	// need it, account operations do not.
	Repos RepoFS
	// Mirrors is the sync engine of mirrored repositories; mirror
	// operations need it.
	Mirrors Mirrorer
	// SCM builds the provider of an SCM configuration; nil: this build
	// has no adapters (the SCM operations answer ErrNoSCM).
	SCM SCMFactory
	// HostKeys pins the SSH host keys of SCM configurations.
	HostKeys HostKeyScanner
	// HTTPClient talks to the providers' OAuth endpoints
	// (http.DefaultClient when nil).
	HTTPClient *http.Client
	// BaseURL is the server's --base-url (the OAuth callback is under it).
	BaseURL string
	// Committer writes Web IDE commits; CommitFiles needs it.
	Committer Committer
	// AnonymousRead is the server's --anonymous-read.
	AnonymousRead bool
	// Log receives failures that are not returned (an undo that failed);
	// slog's default when nil.
	Log *slog.Logger
}

// Actor is who performs an operation: a principal that arrived through a
// transport, whom the access policy limits, or the operator of the machine
// (the admin CLI, the server's first start), whom it does not.
type Actor struct {
	Principal store.Principal
	Transport access.Transport
	operator  string
}

// As is the principal p acting through transport t.
func As(p store.Principal, t access.Transport) Actor { return Actor{Principal: p, Transport: t} }

// Operator is the operator of the machine, named name in the audit log
// ("cli", "system"): someone with the data directory in hand, beyond the
// access policy.
func Operator(name string) Actor { return Actor{operator: name} }

// IsOperator reports whether a is the machine's operator.
func (a Actor) IsOperator() bool { return a.operator != "" }

// Name is the actor's name in the audit log and on versions.
func (a Actor) Name() string {
	if a.operator != "" {
		return a.operator
	}
	return a.Principal.Name()
}

func (a Actor) audit(action, target, detail string) store.AuditEntry {
	return store.AuditEntry{Actor: a.Name(), Action: action, Target: target, Detail: detail}
}

// Error is a refusal with a message for the client. It wraps Kind (a store
// sentinel), so errors.Is(err, store.ErrNotFound) and the like work; an
// access refusal also carries the policy's Decision (its API code, and
// whether the target's existence is hidden).
type Error struct {
	Kind     error
	Msg      string
	Decision *access.Decision
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Kind }

func refuse(kind error, msg string) error { return &Error{Kind: kind, Msg: msg} }

// denied turns a refusal of the access policy into an *Error: NotFound
// wraps store.ErrNotFound, Forbidden store.ErrForbidden.
func denied(d access.Decision) error {
	kind := store.ErrForbidden
	if d.Outcome == access.NotFound {
		kind = store.ErrNotFound
	}
	return &Error{Kind: kind, Msg: d.Reason, Decision: &d}
}

// Denied returns the access policy's decision behind err, if err is an
// access refusal.
func Denied(err error) (access.Decision, bool) {
	var e *Error
	if errors.As(err, &e) && e.Decision != nil {
		return *e.Decision, true
	}
	return access.Decision{}, false
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// Facts looks up what the access policy needs to know about p and the
// account ownerID (of kind ownerKind).
func (s *Service) Facts(ctx context.Context, p store.Principal, ownerKind store.AccountKind, ownerID int64) (access.Facts, error) {
	f := access.Facts{AnonymousRead: s.AnonymousRead}
	if p.User == nil || ownerKind != store.KindOrg {
		return f, nil
	}
	var err error
	f.OrgRole, err = s.Store.Role(ctx, ownerID, p.User.ID)
	return f, err
}

// check asks the access policy whether actor may do op; the operator may do
// everything.
func (s *Service) check(actor Actor, d func() access.Decision) error {
	if actor.IsOperator() {
		return nil
	}
	if dd := d(); !dd.OK() {
		return denied(dd)
	}
	return nil
}

// checkScoped is check for what the credential alone decides.
func (s *Service) checkScoped(actor Actor, op access.Op) error {
	return s.check(actor, func() access.Decision { return access.Scoped(actor.Principal, op, actor.Transport) })
}

// checkRepo asks whether actor may do op to repository r.
func (s *Service) checkRepo(ctx context.Context, actor Actor, op access.Op, r store.Repo) error {
	if actor.IsOperator() {
		return nil
	}
	f, err := s.Facts(ctx, actor.Principal, r.OwnerKind, r.OwnerID)
	if err != nil {
		return err
	}
	return s.check(actor, func() access.Decision {
		return access.Decide(actor.Principal, op, actor.Transport, access.Target{Repo: r}, f)
	})
}
