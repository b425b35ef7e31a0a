package service

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"gitserver/gitserver/access"
	"gitserver/store"
)

// Users lists every user account (admins).
func (s *Service) Users(ctx context.Context, actor Actor) ([]store.Account, error) {
	if err := s.checkScoped(actor, access.OpAdmin); err != nil {
		return nil, err
	}
	return s.Store.ListAccounts(ctx, store.KindUser)
}

// Orgs lists every organisation (admins).
func (s *Service) Orgs(ctx context.Context, actor Actor) ([]store.Account, error) {
	if err := s.checkScoped(actor, access.OpAdmin); err != nil {
		return nil, err
	}
	return s.Store.ListAccounts(ctx, store.KindOrg)
}

// Members lists the members of organisation orgName and their roles: its
// members and admins may; to anyone else the organisation's membership is
// as unknown as a missing organisation (ErrNotFound).
func (s *Service) Members(ctx context.Context, actor Actor, orgName string) (store.Account, []store.Member, error) {
	notFound := refuse(store.ErrNotFound, "no organisation "+strconv.Quote(store.Truncate(orgName, 100)))
	org, err := s.Store.AccountByName(ctx, orgName)
	if err != nil || org.Kind != store.KindOrg {
		return store.Account{}, nil, notFound
	}
	if !actor.IsOperator() {
		if d := access.Scoped(actor.Principal, access.OpManageOrg, actor.Transport); !d.OK() {
			return store.Account{}, nil, denied(d)
		}
		if !access.IsAdmin(actor.Principal) {
			role, err := s.Store.Role(ctx, org.ID, actor.Principal.User.ID)
			if err != nil {
				return store.Account{}, nil, err
			}
			if role == "" {
				return store.Account{}, nil, notFound
			}
		}
	}
	ms, err := s.Store.Members(ctx, org.ID)
	return org, ms, err
}

// SetAdmin makes user name a site admin, or no longer one (the operator,
// or an admin). Demoting the last enabled admin is refused
// (store.ErrConflict).
func (s *Service) SetAdmin(ctx context.Context, actor Actor, name string, admin bool) (store.Account, error) {
	if err := s.checkScoped(actor, access.OpAdmin); err != nil {
		return store.Account{}, err
	}
	u, err := s.Store.UserByName(ctx, name)
	if err != nil {
		return store.Account{}, err
	}
	action := "user.admin"
	if !admin {
		action = "user.unadmin"
	}
	return s.Store.SetAdmin(ctx, u.Name, admin, actor.audit(action, u.Name, ""))
}

// SCMTestResult is what testing a configuration found: the provider's
// API (and, but for Bitbucket Server, its OAuth application) answered as
// configured, and whether the SSH host keys still match the pinned ones.
type SCMTestResult struct {
	Config store.SCMConfig
	// HostKeysMatch: the keys scanned now are the pinned ones (a key the
	// host added since is fine; a pinned key it no longer offers is
	// not). HostKeys says what was found, for the admin.
	HostKeysMatch bool
	HostKeys      string
}

// TestSCMConfig checks a stored configuration against its provider again
// (admins): the same check as on creation (scm.Provider.Check: the API
// answers, the OAuth application or the access token is accepted), then a
// fresh scan of the ssh_url's host keys compared with the pinned ones.
// The provider's refusal is a *ProviderError; nothing is changed.
func (s *Service) TestSCMConfig(ctx context.Context, actor Actor, id int64) (SCMTestResult, error) {
	if err := s.checkScoped(actor, access.OpAdmin); err != nil {
		return SCMTestResult{}, err
	}
	c, err := s.Store.SCMConfigByID(ctx, id)
	if err != nil {
		return SCMTestResult{}, err
	}
	res := SCMTestResult{Config: c}
	p, err := s.provider(c)
	if err != nil {
		return res, err
	}
	if err := p.Check(ctx); err != nil {
		return res, &ProviderError{Op: "checking the configuration", Err: err}
	}
	if s.HostKeys == nil {
		res.HostKeys = "this server cannot scan SSH host keys"
		return res, nil
	}
	_, fps, err := s.HostKeys.ScanHostKeys(ctx, c.SSHURL)
	if err != nil {
		res.HostKeys = "scanning " + c.SSHURL + " failed: " + store.Truncate(err.Error(), 300)
		return res, nil
	}
	var missing []string
	for _, fp := range c.HostKeyFingerprints {
		if !slices.Contains(fps, fp) {
			missing = append(missing, fp)
		}
	}
	res.HostKeysMatch = len(missing) == 0 && len(c.HostKeyFingerprints) > 0
	switch {
	case res.HostKeysMatch:
		res.HostKeys = "the SSH host keys match the pinned ones"
	case len(c.HostKeyFingerprints) == 0:
		res.HostKeys = "no SSH host key is pinned"
	default:
		res.HostKeys = "the host no longer offers the pinned key(s) " + strings.Join(missing, ", ") + "; it offers " + strings.Join(fps, ", ")
	}
	return res, nil
}
