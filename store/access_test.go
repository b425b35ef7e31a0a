package store

import "testing"

func TestDecide(t *testing.T) {
	owner := &Account{ID: 1, Name: "owner", Kind: KindUser}
	other := &Account{ID: 2, Name: "other", Kind: KindUser}
	admin := &Account{ID: 3, Name: "root", Kind: KindUser, IsAdmin: true}
	const orgID = 10

	userRestricted := Repo{ID: 100, OwnerID: owner.ID, OwnerKind: KindUser, Visibility: Restricted}
	userPublic := Repo{ID: 101, OwnerID: owner.ID, OwnerKind: KindUser, Visibility: Public}
	orgRestricted := Repo{ID: 102, OwnerID: orgID, OwnerKind: KindOrg, Visibility: Restricted}
	orgPublic := Repo{ID: 103, OwnerID: orgID, OwnerKind: KindOrg, Visibility: Public}
	// A user whose id equals an org's id must not own the org's repos.
	orgSameID := Repo{ID: 104, OwnerID: other.ID, OwnerKind: KindOrg, Visibility: Restricted}

	tok := func(scopes ...string) *Token { return &Token{Scopes: scopes} }
	user := func(a *Account) Principal { return Principal{User: a} }
	withTok := func(a *Account, t *Token) Principal { return Principal{User: a, Token: t} }
	deploy := func(repoID int64, ro bool) Principal {
		return Principal{DeployKey: &Key{ID: 9, RepoID: repoID, ReadOnly: ro, Fingerprint: "SHA256:x"}}
	}
	cloneTok := func(repoID int64) Principal { return Principal{Build: &BuildGrant{BuildID: 7, RepoID: repoID}} }
	none, read, write := NoAccess, ReadAccess, WriteAccess

	for _, tc := range []struct {
		name string
		p    Principal
		r    Repo
		f    Facts
		want Access
	}{
		// restricted, user-owned
		{"owner restricted", user(owner), userRestricted, Facts{}, write},
		{"other restricted", user(other), userRestricted, Facts{}, none},
		{"admin restricted", user(admin), userRestricted, Facts{}, write},
		{"anon restricted", Principal{}, userRestricted, Facts{}, none},
		{"anon restricted, anonymous-read", Principal{}, userRestricted, Facts{AnonymousRead: true}, none},
		// public, user-owned
		{"owner public", user(owner), userPublic, Facts{}, write},
		{"other public", user(other), userPublic, Facts{}, read},
		{"admin public", user(admin), userPublic, Facts{}, write},
		{"anon public", Principal{}, userPublic, Facts{}, none},
		{"anon public, anonymous-read", Principal{}, userPublic, Facts{AnonymousRead: true}, read},
		// org-owned
		{"member org restricted", user(other), orgRestricted, Facts{Member: true}, write},
		{"non-member org restricted", user(other), orgRestricted, Facts{}, none},
		{"member org public", user(other), orgPublic, Facts{Member: true}, write},
		{"non-member org public", user(other), orgPublic, Facts{}, read},
		{"admin org restricted", user(admin), orgRestricted, Facts{}, write},
		{"anon org public, anonymous-read", Principal{}, orgPublic, Facts{AnonymousRead: true}, read},
		{"user id equal to org id", user(other), orgSameID, Facts{}, none},
		// tokens limit to their scopes
		{"owner read token", withTok(owner, tok(ScopeRepoRead)), userRestricted, Facts{}, read},
		{"owner write token", withTok(owner, tok(ScopeRepoWrite)), userRestricted, Facts{}, write},
		{"owner default token", withTok(owner, tok(DefaultScopes...)), userRestricted, Facts{}, write},
		{"owner builds token", withTok(owner, tok(ScopeBuilds)), userRestricted, Facts{}, none},
		{"owner no-scope token", withTok(owner, tok()), userRestricted, Facts{}, none},
		{"other write token on public", withTok(other, tok(ScopeRepoWrite)), userPublic, Facts{}, read},
		{"other write token on restricted", withTok(other, tok(ScopeRepoWrite, ScopeRepoRead)), userRestricted, Facts{}, none},
		{"member read token", withTok(other, tok(ScopeRepoRead)), orgRestricted, Facts{Member: true}, read},
		{"admin read token", withTok(admin, tok(ScopeRepoRead)), userRestricted, Facts{}, read},
		{"admin admin-scope token", withTok(admin, tok(ScopeAdmin, ScopeRepoWrite)), userRestricted, Facts{}, write},
		// deploy keys: their one repo only
		{"read-only deploy key", deploy(userRestricted.ID, true), userRestricted, Facts{}, read},
		{"read-write deploy key", deploy(userRestricted.ID, false), userRestricted, Facts{}, write},
		{"deploy key other repo", deploy(userRestricted.ID, false), userPublic, Facts{}, none},
		{"deploy key other public repo, anonymous-read", deploy(userRestricted.ID, false), userPublic, Facts{AnonymousRead: true}, none},
		// a build's clone token: read on its one repo, never write, nothing else
		{"clone token own repo", cloneTok(userRestricted.ID), userRestricted, Facts{}, read},
		{"clone token own org repo, member facts", cloneTok(orgRestricted.ID), orgRestricted, Facts{Member: true}, read},
		{"clone token other repo", cloneTok(userRestricted.ID), orgRestricted, Facts{}, none},
		{"clone token other public repo", cloneTok(userRestricted.ID), userPublic, Facts{}, none},
		{"clone token other public repo, anonymous-read", cloneTok(userRestricted.ID), userPublic, Facts{AnonymousRead: true}, none},
	} {
		if got := Decide(tc.p, tc.r, tc.f); got != tc.want {
			t.Errorf("%s: Decide = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPrincipal(t *testing.T) {
	admin := &Account{ID: 1, Name: "root", IsAdmin: true}
	user := &Account{ID: 2, Name: "bob"}
	if !(Principal{}).Anonymous() || (Principal{}).Name() != "anonymous" {
		t.Error("zero principal is not anonymous")
	}
	dk := Principal{DeployKey: &Key{Fingerprint: "SHA256:abc"}}
	if dk.Anonymous() || dk.Name() != "deploy-key:SHA256:abc" || dk.IsAdmin() || dk.HasScope(ScopeRepoRead) {
		t.Errorf("deploy key principal: anon=%v name=%q", dk.Anonymous(), dk.Name())
	}
	if !(Principal{User: admin}).IsAdmin() {
		t.Error("admin with password is not admin")
	}
	if (Principal{User: admin, Token: &Token{Scopes: []string{ScopeRepoWrite}}}).IsAdmin() {
		t.Error("admin token without admin scope acts as admin")
	}
	if !(Principal{User: admin, Token: &Token{Scopes: []string{ScopeAdmin}}}).IsAdmin() {
		t.Error("admin token with admin scope is not admin")
	}
	if (Principal{User: user, Token: &Token{Scopes: []string{ScopeAdmin}}}).IsAdmin() {
		t.Error("non-admin with an admin-scope token acts as admin")
	}
	// Scopes.
	if (Principal{User: user}).HasScope(ScopeBuilds) {
		t.Error("password session of a non-admin has the builds scope")
	}
	if !(Principal{User: user}).HasScope(ScopeRepoWrite) {
		t.Error("password session lacks repo:write")
	}
	if !(Principal{User: admin}).HasScope(ScopeBuilds) {
		t.Error("admin password session lacks builds")
	}
	bt := Principal{User: admin, Token: &Token{Scopes: []string{ScopeBuilds}}}
	if !bt.HasScope(ScopeBuilds) || bt.HasScope(ScopeRepoRead) {
		t.Error("builds token scopes wrong")
	}
	// Only admins hold builds tokens; one left over from before that rule
	// (or whose owner is no admin any more) carries nothing of it.
	if (Principal{User: user, Token: &Token{Scopes: []string{ScopeBuilds}}}).HasScope(ScopeBuilds) {
		t.Error("a non-admin's builds token has the builds scope")
	}
	// A clone token is no user: no scope, no admin, not anonymous.
	ct := Principal{Build: &BuildGrant{BuildID: 42, RepoID: 5}}
	for _, sc := range []string{ScopeRepoRead, ScopeRepoWrite, ScopeBuilds, ScopeAdmin} {
		if ct.HasScope(sc) {
			t.Errorf("clone token has scope %s", sc)
		}
	}
	if ct.IsAdmin() || ct.Anonymous() || ct.Name() != "build:42" {
		t.Errorf("clone token principal: admin %v anonymous %v name %q", ct.IsAdmin(), ct.Anonymous(), ct.Name())
	}
	if (Principal{User: user, Token: &Token{Scopes: []string{ScopeAdmin}}}).HasScope(ScopeBuilds) {
		t.Error("admin scope on a non-admin's token grants builds")
	}
	if !(Principal{User: admin, Token: &Token{Scopes: []string{ScopeAdmin}}}).HasScope(ScopeBuilds) {
		t.Error("admin-scope token of an admin lacks builds")
	}
}

// TestAccessTo checks that membership facts come from the database.
