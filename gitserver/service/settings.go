package service

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gitserver/gitserver/access"
	"gitserver/store"
)

// RepoUpdate is a change to a repository's settings (docs/api.md §5,
// PATCH /api/v1/repos/{owner}/{name}); nil fields are left as they are.
type RepoUpdate struct {
	Visibility    *string
	DefaultBranch *string
}

// UpdateRepo changes repository r's visibility and default branch, for
// those who may delete it (its owning user, the owners of its
// organisation, admins: access.OpDeleteRepo), and returns it. The default
// branch must be one of r's branches (any valid name while r is empty);
// HEAD is moved first, then the row and its audit event are written in one
// transaction (HEAD is moved back if that fails). A mirror's default branch
// follows its upstream's and cannot be changed here.
func (s *Service) UpdateRepo(ctx context.Context, actor Actor, r store.Repo, in RepoUpdate) (store.Repo, error) {
	if err := s.checkRepo(ctx, actor, access.OpDeleteRepo, r); err != nil {
		return store.Repo{}, err
	}
	var u store.RepoUpdate
	var changes []string
	if in.Visibility != nil {
		v := store.Visibility(strings.TrimSpace(*in.Visibility))
		if !v.Valid() {
			return store.Repo{}, invalidf("visibility must be \"public\" or \"restricted\"")
		}
		if v != r.Visibility {
			u.Visibility = &v
			changes = append(changes, "visibility "+string(r.Visibility)+" → "+string(v))
		}
	}
	if in.DefaultBranch != nil {
		b := strings.TrimSpace(*in.DefaultBranch)
		if p := store.BranchNameProblem(b); p != "" {
			return store.Repo{}, invalidf("default_branch %q is not a valid branch name: %s", store.Truncate(b, 100), p)
		}
		if b != r.DefaultBranch {
			if _, err := s.Store.MirrorByRepo(ctx, r.ID); err == nil {
				return store.Repo{}, refuse(store.ErrConflict, r.FullName()+" is a mirror: its default branch follows the upstream's")
			} else if !errors.Is(err, store.ErrNotFound) {
				return store.Repo{}, err
			}
			u.DefaultBranch = &b
			changes = append(changes, "default branch "+r.DefaultBranch+" → "+b)
		}
	}
	if len(changes) == 0 {
		return r, nil
	}
	if u.DefaultBranch != nil {
		if err := s.Repos.SetHead(ctx, r, *u.DefaultBranch); err != nil {
			return store.Repo{}, err
		}
	}
	nr, err := s.Store.UpdateRepo(ctx, r.ID, u, actor.audit("repo.update", r.FullName(), strings.Join(changes, ", ")))
	if err != nil {
		if u.DefaultBranch != nil {
			if herr := s.Repos.SetHead(context.WithoutCancel(ctx), r, r.DefaultBranch); herr != nil {
				s.log().Error("undo set HEAD", "repo", r.FullName(), "err", herr)
			}
		}
		return store.Repo{}, err
	}
	return nr, nil
}

// AddDeployKey adds an SSH deploy key to repository r (access.OpManageKeys):
// read-only unless readOnly is false. An empty title is the key's comment.
func (s *Service) AddDeployKey(ctx context.Context, actor Actor, r store.Repo, title, keyText string, readOnly bool) (store.Key, error) {
	if err := s.checkRepo(ctx, actor, access.OpManageKeys, r); err != nil {
		return store.Key{}, err
	}
	pk, err := store.ParseSSHKey(keyText)
	if err != nil {
		return store.Key{}, err
	}
	if title == "" {
		title = pk.Comment
	}
	return s.Store.AddKey(ctx, store.NewKey{RepoID: r.ID, Title: title, Fingerprint: pk.Fingerprint, PublicKey: pk.PublicKey, ReadOnly: readOnly},
		actor.audit("deploy_key.add", r.FullName(), fmt.Sprintf("%s read_only=%v", pk.Fingerprint, readOnly)))
}

// DeployKeys lists repository r's deploy keys (access.OpManageKeys).
func (s *Service) DeployKeys(ctx context.Context, actor Actor, r store.Repo) ([]store.Key, error) {
	if err := s.checkRepo(ctx, actor, access.OpManageKeys, r); err != nil {
		return nil, err
	}
	return s.Store.DeployKeys(ctx, r.ID)
}

// CreatableOwners are the accounts actor may create repositories under:
// the user, then the organisations the user belongs to (every one the
// access policy allows for OpCreateRepo), by name.
func (s *Service) CreatableOwners(ctx context.Context, actor Actor) ([]store.Account, error) {
	u, err := s.signedIn(actor)
	if err != nil {
		return nil, err
	}
	if err := s.checkScoped(actor, access.OpCreateRepo); err != nil {
		return nil, err
	}
	out := []store.Account{u}
	orgs, err := s.Store.UserOrgs(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	for _, o := range orgs {
		f, err := s.Facts(ctx, actor.Principal, o.Kind, o.ID)
		if err != nil {
			return nil, err
		}
		if access.Decide(actor.Principal, access.OpCreateRepo, actor.Transport, access.Target{Owner: o}, f).OK() {
			out = append(out, o)
		}
	}
	return out, nil
}
