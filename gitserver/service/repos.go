package service

import (
	"context"
	"errors"
	"fmt"

	"gitserver/gitserver/access"
	"gitserver/store"
)

// NewRepoInput is a repository to create.
type NewRepoInput struct {
	// Owner is the owning account's name; empty means the acting user.
	Owner         string
	Name          string
	Visibility    string // store.Public or store.Restricted
	DefaultBranch string // empty: store.DefaultBranch
}

// ErrNotDeleted is returned (wrapped) by DeleteRepo when the repository's
// directory could not be moved aside: nothing was deleted. It is not a
// client's mistake (a server error), so it wraps no store sentinel.
var ErrNotDeleted = errors.New("the repository's files could not be moved aside for deletion; nothing was deleted")

// CreateRepo creates a repository: its row and audit event in one
// transaction, then its directory. If the directory cannot be created, the
// row is deleted again (with a repo.delete audit event saying why) and the
// directory's error is returned.
func (s *Service) CreateRepo(ctx context.Context, actor Actor, in NewRepoInput) (store.Repo, error) {
	owner, err := s.createRepoOwner(ctx, actor, &in)
	if err != nil {
		return store.Repo{}, err
	}
	full := owner.Name + "/" + in.Name
	rp, err := s.Store.CreateRepo(ctx, store.NewRepo{OwnerID: owner.ID, Name: in.Name, Visibility: store.Visibility(in.Visibility), DefaultBranch: in.DefaultBranch},
		actor.audit("repo.create", full, in.Visibility))
	if err != nil {
		return store.Repo{}, err
	}
	if err := s.initOrUndo(ctx, rp); err != nil {
		return store.Repo{}, err
	}
	return rp, nil
}

// createRepoOwner checks that actor may create in's repository and
// returns its owner (in.Owner defaults to the acting user).
func (s *Service) createRepoOwner(ctx context.Context, actor Actor, in *NewRepoInput) (store.Account, error) {
	if err := s.checkScoped(actor, access.OpCreateRepo); err != nil {
		return store.Account{}, err
	}
	if in.Owner == "" && actor.Principal.User != nil && !actor.IsOperator() {
		in.Owner = actor.Principal.User.Name
	}
	if !store.ValidName(in.Owner) {
		return store.Account{}, refuse(store.ErrInvalid, "owner name must match [A-Za-z0-9][A-Za-z0-9_.-]{0,99} and not end in .git")
	}
	if !store.ValidName(in.Name) {
		return store.Account{}, refuse(store.ErrInvalid, "repository name must match [A-Za-z0-9][A-Za-z0-9_.-]{0,99} and not end in .git")
	}
	owner, err := s.Store.AccountByName(ctx, in.Owner)
	if err != nil {
		return store.Account{}, err
	}
	if !actor.IsOperator() {
		f, err := s.Facts(ctx, actor.Principal, owner.Kind, owner.ID)
		if err != nil {
			return store.Account{}, err
		}
		if d := access.Decide(actor.Principal, access.OpCreateRepo, actor.Transport, access.Target{Owner: owner}, f); !d.OK() {
			return store.Account{}, denied(d)
		}
	}
	return owner, nil
}

// initOrUndo creates rp's directory after its row committed (its path is
// the row's id, and no transaction waits for git); a failure deletes the
// row again, with a repo.delete audit event saying why.
func (s *Service) initOrUndo(ctx context.Context, rp store.Repo) error {
	if err := s.Repos.Init(ctx, rp); err != nil {
		undo := store.AuditEntry{Actor: "system", Action: "repo.delete", Target: rp.FullName(), Detail: "undo repo.create: its directory could not be created"}
		if derr := s.Store.DeleteRepo(context.WithoutCancel(ctx), rp.ID, undo); derr != nil {
			s.log().Error("undo repo create", "repo", rp.FullName(), "err", derr)
		}
		return err
	}
	return nil
}

// DeleteRepo deletes repository r: its directory goes to the trash, then
// its rows are deleted with their audit event, then the trash entry is
// removed. An error wrapping ErrNotDeleted means nothing was deleted.
func (s *Service) DeleteRepo(ctx context.Context, actor Actor, r store.Repo) error {
	if err := s.checkRepo(ctx, actor, access.OpDeleteRepo, r); err != nil {
		return err
	}
	// A provider-hosted repository's webhook and deploy key are removed
	// upstream after the deletion (best effort); never the remote
	// repository.
	m, merr := s.Store.MirrorByRepo(ctx, r.ID)
	var rowsErr error
	err := s.Repos.Delete(ctx, r, func(ctx context.Context) error {
		rowsErr = s.Store.DeleteRepo(ctx, r.ID, actor.audit("repo.delete", r.FullName(), ""))
		return rowsErr
	})
	switch {
	case rowsErr != nil:
		return rowsErr
	case err != nil:
		return fmt.Errorf("%w: %w", ErrNotDeleted, err)
	}
	if merr == nil {
		s.cleanupUpstream(ctx, actor, r, m)
	}
	return nil
}

// Publish publishes succeeded build buildID of repository r as its next
// version (bump: store.BumpMajor, BumpMinor, BumpPatch): the commit is
// pinned first, so that a version never names an unpinned commit, then the
// version and its audit event are recorded in one transaction.
func (s *Service) Publish(ctx context.Context, actor Actor, r store.Repo, buildID int64, bump, notes string) (store.Version, error) {
	if err := s.checkRepo(ctx, actor, access.OpPublish, r); err != nil {
		return store.Version{}, err
	}
	if _, _, _, err := store.NextVersion(0, 0, 0, bump); err != nil {
		return store.Version{}, err
	}
	b, err := s.Store.BuildByID(ctx, buildID)
	if err != nil || b.RepoID != r.ID {
		return store.Version{}, refuse(store.ErrNotFound, "no such build in "+r.FullName())
	}
	if b.Status != store.BuildSucceeded {
		return store.Version{}, refuse(store.ErrConflict, "only a succeeded build can be published; this one is "+string(b.Status))
	}
	if err := s.Repos.Pin(ctx, r, b.Commit); err != nil {
		return store.Version{}, err
	}
	return s.Store.Publish(ctx, r.ID, b.ID, bump, notes, actor.Name(), actor.audit("version.publish", r.FullName(), ""))
}
