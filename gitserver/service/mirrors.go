package service

import (
	"context"
	"errors"

	"gitserver/gitserver/access"
	"gitserver/store"
)

// Mirrorer is what the mirror operations need of the sync engine
// (gitserver/mirror.Engine implements it; cmd passes it in).
type Mirrorer interface {
	// Prepare validates a mirror to create: the URL, the pasted private
	// key (or a new one when ""), the given host keys (or a scan of the
	// upstream's), the interval ("" for the default). Its refusals wrap
	// store.ErrInvalid with a client-safe message.
	Prepare(ctx context.Context, url, privateKey string, hostKeys []string, interval string) (store.NewMirror, error)
	// Trigger asks for a sync in the background (coalesced per
	// repository); pusher is who pushed upstream, "" when unknown.
	Trigger(repoID int64, pusher string)
}

// MirrorInput is the mirror part of a repository to create (docs/api.md §9).
type MirrorInput struct {
	URL        string
	PrivateKey string
	HostKeys   []string
	Interval   string
}

// CreateMirror creates a mirrored repository: the access checks of
// CreateRepo, then the mirror's validation (URL, keys, host keys pinned),
// then the repository and its mirror with their audit event in one
// transaction, then its directory (undone on failure), then the first sync
// in the background.
func (s *Service) CreateMirror(ctx context.Context, actor Actor, in NewRepoInput, mi MirrorInput) (store.Repo, store.Mirror, error) {
	if s.Mirrors == nil {
		return store.Repo{}, store.Mirror{}, refuse(store.ErrInvalid, "this server does not mirror repositories")
	}
	owner, err := s.createRepoOwner(ctx, actor, &in)
	if err != nil {
		return store.Repo{}, store.Mirror{}, err
	}
	nm, err := s.Mirrors.Prepare(ctx, mi.URL, mi.PrivateKey, mi.HostKeys, mi.Interval)
	if err != nil {
		return store.Repo{}, store.Mirror{}, err
	}
	full := owner.Name + "/" + in.Name
	rp, m, err := s.Store.CreateMirror(ctx, store.NewRepo{OwnerID: owner.ID, Name: in.Name, Visibility: store.Visibility(in.Visibility), DefaultBranch: in.DefaultBranch},
		nm, actor.audit("repo.create", full, in.Visibility+" mirror of "+nm.URL))
	if err != nil {
		return store.Repo{}, store.Mirror{}, err
	}
	if err := s.initOrUndo(ctx, rp); err != nil {
		return store.Repo{}, store.Mirror{}, err
	}
	s.Mirrors.Trigger(rp.ID, "")
	return rp, m, nil
}

// Mirror returns repository r's mirror, for who may read r.
func (s *Service) Mirror(ctx context.Context, actor Actor, r store.Repo) (store.Mirror, error) {
	if err := s.checkRepo(ctx, actor, access.OpRead, r); err != nil {
		return store.Mirror{}, err
	}
	return s.mirrorOf(ctx, r)
}

func (s *Service) mirrorOf(ctx context.Context, r store.Repo) (store.Mirror, error) {
	m, err := s.Store.MirrorByRepo(ctx, r.ID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Mirror{}, &Error{Kind: store.ErrNotFound, Msg: r.FullName() + " is not a mirror"}
	}
	return m, err
}

// SyncMirror asks for a sync of repository r now ("Fetch repository"), for
// who may write r. It returns the mirror as it is before the sync.
func (s *Service) SyncMirror(ctx context.Context, actor Actor, r store.Repo) (store.Mirror, error) {
	if err := s.checkRepo(ctx, actor, access.OpWrite, r); err != nil {
		return store.Mirror{}, err
	}
	m, err := s.mirrorOf(ctx, r)
	if err != nil {
		return store.Mirror{}, err
	}
	if s.Mirrors == nil {
		return store.Mirror{}, refuse(store.ErrInvalid, "this server does not mirror repositories")
	}
	s.Mirrors.Trigger(r.ID, "")
	return m, nil
}

// MirrorWebhook returns repository r's mirror with its webhook secret,
// for r's owners only (access.OpMirrorWebhook).
func (s *Service) MirrorWebhook(ctx context.Context, actor Actor, r store.Repo) (store.Mirror, error) {
	if err := s.checkRepo(ctx, actor, access.OpMirrorWebhook, r); err != nil {
		return store.Mirror{}, err
	}
	return s.mirrorOf(ctx, r)
}
