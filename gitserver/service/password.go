package service

import (
	"context"

	"gitserver/gitserver/access"
	"gitserver/store"
)

// GeneratePassword is a new random password (128 bits, 32 hex digits), as
// "Regenerate Account Password" makes.
func GeneratePassword() string { return store.RandomHex(16) }

// RegeneratePassword replaces the password of user name (for a principal:
// its own account, "" naming it) with a generated one and returns it, to be
// shown once. The old password stops working at once and the user's web
// sessions end (store.SetPassword). As a password creates tokens, minting
// one needs what creating a token needs: a password (or web) session, or a
// token with the admin scope. It is how an account created by single
// sign-on gets a password for git over HTTP.
func (s *Service) RegeneratePassword(ctx context.Context, actor Actor, name string) (string, store.Account, error) {
	if err := s.checkScoped(actor, access.OpCreateToken); err != nil {
		return "", store.Account{}, err
	}
	u, err := s.user(ctx, actor, name)
	if err != nil {
		return "", store.Account{}, err
	}
	pw := GeneratePassword()
	if err := s.Store.SetPassword(ctx, u.Name, pw, actor.audit("user.passwd", u.Name, "regenerated")); err != nil {
		return "", store.Account{}, err
	}
	return pw, u, nil
}
