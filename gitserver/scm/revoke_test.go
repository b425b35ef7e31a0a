package scm_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"gitserver/gitserver/scm"
)

// TestRevoke: what each adapter sends to revoke a connection (the fakes
// check the method, path, client credentials and that the token is in the
// body, never in the URL), and that the kinds without a revocation API
// send nothing and say where the user revokes by hand.
func TestRevoke(t *testing.T) {
	ctx := context.Background()

	t.Run("github", func(t *testing.T) {
		f, p := fakeProvider(t, scm.GitHub, "", nil)
		if err := p.Revoke(ctx, fakeToken, "refresh-ignored"); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(f.revoked, []string{fakeToken}) {
			t.Fatalf("revoked %q, want the grant of the access token", f.revoked)
		}
		if err := p.Revoke(ctx, fakeToken, ""); err != nil {
			t.Fatalf("revoking a revoked grant: %v", err)
		}
		if err := p.Revoke(ctx, "", ""); err != nil || len(f.revoked) != 1 {
			t.Fatalf("revoking nothing: %v, %q", err, f.revoked)
		}
		_, wrong := fakeProvider(t, scm.GitHub, "", func(c *scm.Config) { c.ClientSecret = "wrong" })
		err := wrong.Revoke(ctx, fakeToken, "")
		if !errors.Is(err, scm.ErrUnauthorized) || strings.Contains(err.Error(), fakeToken) {
			t.Fatalf("wrong client secret: %v", err)
		}
	})

	t.Run("gitlab", func(t *testing.T) {
		f, p := fakeProvider(t, scm.GitLab, "", nil)
		if err := p.Revoke(ctx, fakeToken, "refresh-1"); err != nil {
			t.Fatal(err)
		}
		if want := []string{"refresh_token:refresh-1", "access_token:" + fakeToken, fakeToken}; !slices.Equal(f.revoked, want) {
			t.Fatalf("revoked %q, want %q", f.revoked, want)
		}
		_, wrong := fakeProvider(t, scm.GitLab, "", func(c *scm.Config) { c.ClientSecret = "wrong" })
		err := wrong.Revoke(ctx, fakeToken, "refresh-1")
		if !errors.Is(err, scm.ErrForbidden) || !strings.Contains(err.Error(), "not authorized to revoke") ||
			strings.Contains(err.Error(), fakeToken) || strings.Contains(err.Error(), "refresh-1") {
			t.Fatalf("wrong client secret: %v", err)
		}
	})

	for kind, page := range map[scm.Kind]string{
		scm.BitbucketCloud:  "App authorizations",
		scm.BitbucketServer: "HTTP access tokens",
		scm.Gitea:           "/user/settings/applications",
	} {
		t.Run(string(kind), func(t *testing.T) {
			f, p := fakeProvider(t, kind, "", nil)
			err := p.Revoke(ctx, fakeToken, "refresh-1")
			if !errors.Is(err, scm.ErrNotSupported) || !strings.Contains(err.Error(), page) || strings.Contains(err.Error(), fakeToken) {
				t.Fatalf("Revoke: %v, want ErrNotSupported naming %q", err, page)
			}
			if len(f.revoked) != 0 {
				t.Fatalf("revoked %q", f.revoked)
			}
		})
	}
}
