package service

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"gitserver/gitserver/access"
	"gitserver/store"
)

// user resolves the account an account operation acts on: for the
// operator, the user named name; for a principal, its own user (name must
// be empty or name it).
func (s *Service) user(ctx context.Context, actor Actor, name string) (store.Account, error) {
	if actor.IsOperator() {
		return s.Store.UserByName(ctx, name)
	}
	u := actor.Principal.User
	if u == nil {
		return store.Account{}, refuse(store.ErrForbidden, "not a user")
	}
	if name != "" && !strings.EqualFold(name, u.Name) {
		return store.Account{}, refuse(store.ErrForbidden, "you can only change your own account")
	}
	return *u, nil
}

// CreateUser creates a user account (the operator, or an admin).
func (s *Service) CreateUser(ctx context.Context, actor Actor, name, password string, admin bool) (store.Account, error) {
	if err := s.checkScoped(actor, access.OpAdmin); err != nil {
		return store.Account{}, err
	}
	return s.Store.CreateUser(ctx, name, password, admin, actor.audit("user.create", name, fmt.Sprintf("admin=%v", admin)))
}

// SetPassword replaces the password of user name (for a principal: its own
// account, "" naming it) and returns the account.
func (s *Service) SetPassword(ctx context.Context, actor Actor, name, password string) (store.Account, error) {
	if err := s.checkScoped(actor, access.OpManageAccount); err != nil {
		return store.Account{}, err
	}
	u, err := s.user(ctx, actor, name)
	if err != nil {
		return store.Account{}, err
	}
	if err := s.Store.SetPassword(ctx, u.Name, password, actor.audit("user.passwd", u.Name, "")); err != nil {
		return store.Account{}, err
	}
	return u, nil
}

// CreateToken creates a token for user name (for a principal: its own
// account, "" naming it) and returns its secret. Who may hold the builds
// and admin scopes is the store's rule (store.ErrForbidden).
func (s *Service) CreateToken(ctx context.Context, actor Actor, name, label string, scopes []string) (string, store.Token, store.Account, error) {
	if err := s.checkScoped(actor, access.OpCreateToken); err != nil {
		return "", store.Token{}, store.Account{}, err
	}
	u, err := s.user(ctx, actor, name)
	if err != nil {
		return "", store.Token{}, store.Account{}, err
	}
	typed := make([]store.Scope, len(scopes))
	for i, sc := range scopes {
		typed[i] = store.Scope(sc)
	}
	clean, err := store.CleanScopes(typed)
	if err != nil {
		return "", store.Token{}, store.Account{}, err
	}
	if label == "" {
		label = "token"
	}
	secret, tok, err := s.Store.CreateToken(ctx, u.ID, label, clean, actor.audit("token.create", u.Name, label+" "+store.JoinScopes(clean)))
	return secret, tok, u, err
}

// AddKey adds the SSH public key keyText (authorized_keys form) to user
// name (for a principal: its own account, "" naming it). An empty title is
// the key's comment.
func (s *Service) AddKey(ctx context.Context, actor Actor, name, title, keyText string) (store.Key, store.Account, error) {
	if err := s.checkScoped(actor, access.OpManageAccount); err != nil {
		return store.Key{}, store.Account{}, err
	}
	u, err := s.user(ctx, actor, name)
	if err != nil {
		return store.Key{}, store.Account{}, err
	}
	pk, err := store.ParseSSHKey(keyText)
	if err != nil {
		return store.Key{}, store.Account{}, err
	}
	if title == "" {
		title = pk.Comment
	}
	k, err := s.Store.AddKey(ctx, store.NewKey{UserID: u.ID, Title: title, Fingerprint: pk.Fingerprint, PublicKey: pk.PublicKey},
		actor.audit("key.add", u.Name, pk.Fingerprint))
	return k, u, err
}

// CreateOrg creates an organisation whose first owner is the acting user.
func (s *Service) CreateOrg(ctx context.Context, actor Actor, name string) (store.Account, error) {
	if actor.IsOperator() {
		return store.Account{}, refuse(store.ErrInvalid, "an organisation is created by a user, its first owner")
	}
	// Scoped refuses any principal without a user.
	if err := s.checkScoped(actor, access.OpManageAccount); err != nil {
		return store.Account{}, err
	}
	return s.Store.CreateOrg(ctx, name, actor.Principal.User.ID, actor.audit("org.create", name, ""))
}

// SetMember makes user userName a member of organisation orgName with role
// (store.RoleOwner, store.RoleMember), or changes their role, and returns
// both accounts.
func (s *Service) SetMember(ctx context.Context, actor Actor, orgName, userName, role string) (org, user store.Account, err error) {
	if err := s.checkScoped(actor, access.OpManageOrg); err != nil {
		return org, user, err
	}
	org, err = s.Store.AccountByName(ctx, orgName)
	if err != nil || org.Kind != store.KindOrg {
		return store.Account{}, user, refuse(store.ErrNotFound, "no organisation "+strconv.Quote(orgName))
	}
	if !actor.IsOperator() {
		f, err := s.Facts(ctx, actor.Principal, org.Kind, org.ID)
		if err != nil {
			return org, user, err
		}
		if d := access.Decide(actor.Principal, access.OpManageOrg, actor.Transport, access.Target{Owner: org}, f); !d.OK() {
			return org, user, denied(d)
		}
	}
	user, err = s.Store.UserByName(ctx, userName)
	if err != nil {
		return org, user, err
	}
	err = s.Store.SetMembership(ctx, org.ID, user.ID, store.Role(role), actor.audit("org.member", org.Name, user.Name+"="+role))
	return org, user, err
}

// Tokens lists the tokens of user name (for a principal: its own account,
// "" naming it), without secrets.
func (s *Service) Tokens(ctx context.Context, actor Actor, name string) ([]store.Token, store.Account, error) {
	// Any credential of the user may list (as it may list its SSH keys).
	u, err := s.user(ctx, actor, name)
	if err != nil {
		return nil, store.Account{}, err
	}
	toks, err := s.Store.Tokens(ctx, u.ID)
	return toks, u, err
}

// RevokeToken deletes token id of user name (for a principal: its own
// account, "" naming it); it stops working on the next request.
func (s *Service) RevokeToken(ctx context.Context, actor Actor, name string, id int64) (store.Account, error) {
	if err := s.checkScoped(actor, access.OpManageAccount); err != nil {
		return store.Account{}, err
	}
	u, err := s.user(ctx, actor, name)
	if err != nil {
		return store.Account{}, err
	}
	return u, s.Store.DeleteToken(ctx, u.ID, id, actor.audit("token.revoke", u.Name, strconv.FormatInt(id, 10)))
}

// DeleteKey deletes SSH key id of user name (for a principal: its own
// account, "" naming it).
func (s *Service) DeleteKey(ctx context.Context, actor Actor, name string, id int64) (store.Account, error) {
	if err := s.checkScoped(actor, access.OpManageAccount); err != nil {
		return store.Account{}, err
	}
	u, err := s.user(ctx, actor, name)
	if err != nil {
		return store.Account{}, err
	}
	return u, s.Store.DeleteUserKey(ctx, u.ID, id, actor.audit("key.delete", u.Name, strconv.FormatInt(id, 10)))
}

// SetDisabled disables (or re-enables) user name: the operator, or an
// admin. The last enabled admin cannot be disabled (store.ErrConflict).
func (s *Service) SetDisabled(ctx context.Context, actor Actor, name string, disabled bool) (store.Account, error) {
	if err := s.checkScoped(actor, access.OpAdmin); err != nil {
		return store.Account{}, err
	}
	action := "user.enable"
	if disabled {
		action = "user.disable"
	}
	u, err := s.Store.UserByName(ctx, name)
	if err != nil {
		return store.Account{}, err
	}
	return s.Store.SetDisabled(ctx, u.Name, disabled, actor.audit(action, u.Name, ""))
}

// RemoveMember removes user userName from organisation orgName: its owners
// and admins may, and a member may leave on their own. The only owner
// cannot leave (store.ErrConflict).
func (s *Service) RemoveMember(ctx context.Context, actor Actor, orgName, userName string) (org, user store.Account, err error) {
	if err := s.checkScoped(actor, access.OpManageAccount); err != nil {
		return org, user, err
	}
	org, err = s.Store.AccountByName(ctx, orgName)
	if err != nil || org.Kind != store.KindOrg {
		return store.Account{}, user, refuse(store.ErrNotFound, "no organisation "+strconv.Quote(orgName))
	}
	self := !actor.IsOperator() && actor.Principal.User != nil && strings.EqualFold(actor.Principal.User.Name, userName)
	if !actor.IsOperator() && !self {
		f, err := s.Facts(ctx, actor.Principal, org.Kind, org.ID)
		if err != nil {
			return org, user, err
		}
		if d := access.Decide(actor.Principal, access.OpManageOrg, actor.Transport, access.Target{Owner: org}, f); !d.OK() {
			return org, user, denied(d)
		}
	}
	user, err = s.Store.UserByName(ctx, userName)
	if err != nil {
		return org, user, err
	}
	err = s.Store.RemoveMember(ctx, org.ID, user.ID, actor.audit("org.member.remove", org.Name, user.Name))
	return org, user, err
}

// DeleteDeployKey deletes deploy key id of repository r (the caller
// checked access.OpManageKeys).
func (s *Service) DeleteDeployKey(ctx context.Context, actor Actor, r store.Repo, id int64) error {
	if err := s.checkRepo(ctx, actor, access.OpManageKeys, r); err != nil {
		return err
	}
	return s.Store.DeleteDeployKey(ctx, r.ID, id, actor.audit("deploy_key.delete", r.FullName(), strconv.FormatInt(id, 10)))
}
