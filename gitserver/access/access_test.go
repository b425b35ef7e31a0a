package access

import (
	"strings"
	"testing"

	"gitserver/store"
)

// The world of the table: users owner, member, orgowner, plain and admin;
// the organisation org (member is a member, orgowner an owner); four
// repositories, public or restricted, owned by the user owner or by org;
// and another repository (999) that deploy keys and clone tokens may be
// for instead.
var (
	uOwner    = store.Account{ID: 1, Name: "owner", Kind: store.KindUser}
	uMember   = store.Account{ID: 2, Name: "member", Kind: store.KindUser}
	uOrgOwner = store.Account{ID: 3, Name: "orgowner", Kind: store.KindUser}
	uPlain    = store.Account{ID: 4, Name: "plain", Kind: store.KindUser}
	uAdmin    = store.Account{ID: 5, Name: "admin", Kind: store.KindUser, IsAdmin: true}
	org       = store.Account{ID: 10, Name: "org", Kind: store.KindOrg}

	orgRoles = map[int64]store.Role{uMember.ID: store.RoleMember, uOrgOwner.ID: store.RoleOwner}

	repos = map[string]store.Repo{
		"user/public":     {ID: 101, OwnerID: uOwner.ID, Owner: "owner", OwnerKind: store.KindUser, Name: "up", Visibility: store.Public},
		"user/restricted": {ID: 102, OwnerID: uOwner.ID, Owner: "owner", OwnerKind: store.KindUser, Name: "ur", Visibility: store.Restricted},
		"org/public":      {ID: 103, OwnerID: org.ID, Owner: "org", OwnerKind: store.KindOrg, Name: "op", Visibility: store.Public},
		"org/restricted":  {ID: 104, OwnerID: org.ID, Owner: "org", OwnerKind: store.KindOrg, Name: "or", Visibility: store.Restricted},
	}
)

const otherRepo = 999

func tok(u store.Account, scopes ...store.Scope) func(store.Repo) store.Principal {
	return func(store.Repo) store.Principal {
		return store.Principal{User: &u, Token: &store.Token{Scopes: scopes}}
	}
}

func user(u store.Account) func(store.Repo) store.Principal {
	return func(store.Repo) store.Principal { return store.Principal{User: &u} }
}

func deployKey(ro, this bool) func(store.Repo) store.Principal {
	return func(r store.Repo) store.Principal {
		id := int64(otherRepo)
		if this {
			id = r.ID
		}
		return store.Principal{DeployKey: &store.Key{RepoID: id, ReadOnly: ro, Fingerprint: "SHA256:x"}}
	}
}

func cloneToken(this bool) func(store.Repo) store.Principal {
	return func(r store.Repo) store.Principal {
		id := int64(otherRepo)
		if this {
			id = r.ID
		}
		return store.Principal{Build: &store.BuildGrant{BuildID: 7, RepoID: id}}
	}
}

var actors = map[string]struct {
	p        func(store.Repo) store.Principal
	anonRead bool
}{
	"anonymous":                {p: func(store.Repo) store.Principal { return store.Principal{} }},
	"anonymous+anonymous-read": {p: func(store.Repo) store.Principal { return store.Principal{} }, anonRead: true},
	"plain user":               {p: user(uPlain)},
	"owner":                    {p: user(uOwner)},
	"org member":               {p: user(uMember)},
	"org owner":                {p: user(uOrgOwner)},
	"admin password":           {p: user(uAdmin)},
	"admin token admin":        {p: tok(uAdmin, store.ScopeAdmin)},
	"admin token repo":         {p: tok(uAdmin, store.ScopeRepoRead, store.ScopeRepoWrite)},
	"owner token repo:read":    {p: tok(uOwner, store.ScopeRepoRead)},
	"admin token builds":       {p: tok(uAdmin, store.ScopeBuilds)},
	"plain token builds":       {p: tok(uPlain, store.ScopeBuilds)}, // not an admin (any more): carries nothing
	"deploy key ro":            {p: deployKey(true, true)},
	"deploy key rw":            {p: deployKey(false, true)},
	"deploy key ro other":      {p: deployKey(true, false)},
	"deploy key rw other":      {p: deployKey(false, false)},
	"clone token":              {p: cloneToken(true)},
	"clone token other":        {p: cloneToken(false)},
}

// expected is the policy as a table. Each row is an actor and a repository:
//
//	git: OpRead and OpWrite over HTTP git and SSH git (the same for both;
//	     every other operation over git is refused, checked separately);
//	api: every operation over the API, in the order of Ops() (spaces are
//	     for reading only): read write read-builds publish manage-keys
//	     delete-repo mirror-webhook | create-repo manage-org (of the repository's owner) |
//	     claim-builds manage-account create-token admin.
//
// '+' allowed, 'n' not found (existence hidden), 'f' forbidden,
// 's' forbidden for want of a token scope (insufficient_scope).
var expected = []struct{ actor, repo, git, api string }{
	{"anonymous", "user/public", "nn", "nnnnnnn ff ffff"},
	{"anonymous", "user/restricted", "nn", "nnnnnnn ff ffff"},
	{"anonymous", "org/public", "nn", "nnnnnnn ff ffff"},
	{"anonymous", "org/restricted", "nn", "nnnnnnn ff ffff"},
	{"anonymous+anonymous-read", "user/public", "+n", "+n+nnnn ff ffff"},
	{"anonymous+anonymous-read", "user/restricted", "nn", "nnnnnnn ff ffff"},
	{"anonymous+anonymous-read", "org/public", "+n", "+n+nnnn ff ffff"},
	{"anonymous+anonymous-read", "org/restricted", "nn", "nnnnnnn ff ffff"},

	{"plain user", "user/public", "+f", "+f+ffff fn s++f"},
	{"plain user", "user/restricted", "nn", "nnnnnnn fn s++f"},
	{"plain user", "org/public", "+f", "+f+ffff ff s++f"},
	{"plain user", "org/restricted", "nn", "nnnnnnn ff s++f"},
	{"owner", "user/public", "++", "+++++++ +n s++f"},
	{"owner", "user/restricted", "++", "+++++++ +n s++f"},
	{"owner", "org/public", "+f", "+f+ffff ff s++f"},
	{"owner", "org/restricted", "nn", "nnnnnnn ff s++f"},
	{"org member", "user/public", "+f", "+f+ffff fn s++f"},
	{"org member", "user/restricted", "nn", "nnnnnnn fn s++f"},
	{"org member", "org/public", "++", "+++++ff +f s++f"},
	{"org member", "org/restricted", "++", "+++++ff +f s++f"},
	{"org owner", "user/public", "+f", "+f+ffff fn s++f"},
	{"org owner", "user/restricted", "nn", "nnnnnnn fn s++f"},
	{"org owner", "org/public", "++", "+++++++ ++ s++f"},
	{"org owner", "org/restricted", "++", "+++++++ ++ s++f"},

	{"admin password", "user/public", "++", "+++++++ +n ++++"},
	{"admin password", "user/restricted", "++", "+++++++ +n ++++"},
	{"admin password", "org/public", "++", "+++++++ ++ ++++"},
	{"admin password", "org/restricted", "++", "+++++++ ++ ++++"},
	// The admin scope makes a token act as the admin everywhere.
	{"admin token admin", "user/public", "++", "+++++++ +n ++++"},
	{"admin token admin", "user/restricted", "++", "+++++++ +n ++++"},
	{"admin token admin", "org/public", "++", "+++++++ ++ ++++"},
	{"admin token admin", "org/restricted", "++", "+++++++ ++ ++++"},
	// Repo scopes reach every repository, but do not act as the admin
	// (organisations, other accounts' namespaces).
	{"admin token repo", "user/public", "++", "+++++++ fn s+ff"},
	{"admin token repo", "user/restricted", "++", "+++++++ fn s+ff"},
	{"admin token repo", "org/public", "++", "+++++ff ff s+ff"},
	{"admin token repo", "org/restricted", "++", "+++++ff ff s+ff"},
	{"owner token repo:read", "user/public", "+f", "+f+ffff ss ssff"},
	{"owner token repo:read", "user/restricted", "+f", "+f+ffff ss ssff"},
	{"owner token repo:read", "org/public", "+f", "+f+ffff ss ssff"},
	{"owner token repo:read", "org/restricted", "nn", "nnnnnnn ss ssff"},
	// The builds scope: the build queue and every build, no repository.
	{"admin token builds", "user/public", "nn", "nn+nnnn ss +sff"},
	{"admin token builds", "user/restricted", "nn", "nn+nnnn ss +sff"},
	{"admin token builds", "org/public", "nn", "nn+nnnn ss +sff"},
	{"admin token builds", "org/restricted", "nn", "nn+nnnn ss +sff"},
	{"plain token builds", "user/public", "nn", "nnnnnnn ss ssff"},
	{"plain token builds", "user/restricted", "nn", "nnnnnnn ss ssff"},
	{"plain token builds", "org/public", "nn", "nnnnnnn ss ssff"},
	{"plain token builds", "org/restricted", "nn", "nnnnnnn ss ssff"},

	{"deploy key ro", "user/public", "+f", "fffffff ff ffff"},
	{"deploy key ro", "user/restricted", "+f", "fffffff ff ffff"},
	{"deploy key ro", "org/public", "+f", "fffffff ff ffff"},
	{"deploy key ro", "org/restricted", "+f", "fffffff ff ffff"},
	{"deploy key rw", "user/public", "++", "fffffff ff ffff"},
	{"deploy key rw", "user/restricted", "++", "fffffff ff ffff"},
	{"deploy key rw", "org/public", "++", "fffffff ff ffff"},
	{"deploy key rw", "org/restricted", "++", "fffffff ff ffff"},
	{"deploy key ro other", "user/public", "nn", "fffffff ff ffff"},
	{"deploy key ro other", "user/restricted", "nn", "fffffff ff ffff"},
	{"deploy key ro other", "org/public", "nn", "fffffff ff ffff"},
	{"deploy key ro other", "org/restricted", "nn", "fffffff ff ffff"},
	{"deploy key rw other", "user/public", "nn", "fffffff ff ffff"},
	{"deploy key rw other", "user/restricted", "nn", "fffffff ff ffff"},
	{"deploy key rw other", "org/public", "nn", "fffffff ff ffff"},
	{"deploy key rw other", "org/restricted", "nn", "fffffff ff ffff"},
	{"clone token", "user/public", "+f", "fffffff ff ffff"},
	{"clone token", "user/restricted", "+f", "fffffff ff ffff"},
	{"clone token", "org/public", "+f", "fffffff ff ffff"},
	{"clone token", "org/restricted", "+f", "fffffff ff ffff"},
	{"clone token other", "user/public", "nn", "fffffff ff ffff"},
	{"clone token other", "user/restricted", "nn", "fffffff ff ffff"},
	{"clone token other", "org/public", "nn", "fffffff ff ffff"},
	{"clone token other", "org/restricted", "nn", "fffffff ff ffff"},
}

func cell(d Decision) byte {
	switch {
	case d.Outcome == Allow:
		return '+'
	case d.Outcome == NotFound:
		return 'n'
	case d.Code == "insufficient_scope":
		return 's'
	}
	return 'f'
}

// decideFor asks Decide as the API and the git transports do: the target
// is the repository, or its owner for create-repo and manage-org, with the
// facts looked up for the actor.
func decideFor(actor, repo string, op Op, t Transport) Decision {
	a := actors[actor]
	r := repos[repo]
	p := a.p(r)
	owner := uOwner
	if r.OwnerKind == store.KindOrg {
		owner = org
	}
	f := Facts{AnonymousRead: a.anonRead}
	if p.User != nil && r.OwnerKind == store.KindOrg {
		f.OrgRole = orgRoles[p.User.ID]
	}
	return Decide(p, op, t, Target{Repo: r, Owner: owner}, f)
}

func TestDecideTable(t *testing.T) {
	ops := Ops()
	seen := map[string]bool{}
	for _, row := range expected {
		if _, ok := actors[row.actor]; !ok {
			t.Fatalf("unknown actor %q", row.actor)
		}
		if _, ok := repos[row.repo]; !ok {
			t.Fatalf("unknown repo %q", row.repo)
		}
		seen[row.actor+" on "+row.repo] = true
		api := strings.ReplaceAll(row.api, " ", "")
		if len(api) != len(ops) || len(row.git) != 2 {
			t.Fatalf("%s on %s: the row has %d API and %d git cells, want %d and 2", row.actor, row.repo, len(api), len(row.git), len(ops))
		}
		for i, op := range ops {
			if got := cell(decideFor(row.actor, row.repo, op, API)); got != api[i] {
				d := decideFor(row.actor, row.repo, op, API)
				t.Errorf("%s, %s on %s over the API: %c (%s: %s), want %c", row.actor, op, row.repo, got, d.Code, d.Reason, api[i])
			}
			for _, tr := range []Transport{HTTPGit, SSHGit} {
				want := byte('f') // not a git operation
				if op == OpRead || op == OpWrite {
					want = row.git[op]
				}
				if got := cell(decideFor(row.actor, row.repo, op, tr)); got != want {
					t.Errorf("%s, %s on %s over %s: %c, want %c", row.actor, op, row.repo, tr, got, want)
				}
			}
		}
		// Git and the API agree on reading and writing for every account
		// and for anonymous requests (deploy keys and clone tokens are
		// git credentials only).
		p := actors[row.actor].p(repos[row.repo])
		if p.DeployKey == nil && p.Build == nil && api[:2] != row.git {
			t.Errorf("%s on %s: git says %s but the API %s", row.actor, row.repo, row.git, api[:2])
		}
	}
	for a := range actors {
		for r := range repos {
			if !seen[a+" on "+r] {
				t.Errorf("%s on %s has no row in the table", a, r)
			}
		}
	}
}

// TestRefusalsExplain checks that every refusal carries a code and a reason,
// and that a not-found never says more than that.
func TestRefusalsExplain(t *testing.T) {
	for a := range actors {
		for rn := range repos {
			for _, op := range Ops() {
				for _, tr := range []Transport{HTTPGit, SSHGit, API, Web} {
					d := decideFor(a, rn, op, tr)
					if d.OK() {
						if d.Code != "" || d.Reason != "" {
							t.Errorf("%s %s %s %s: allowed with %q %q", a, op, rn, tr, d.Code, d.Reason)
						}
						continue
					}
					if d.Code == "" || d.Reason == "" {
						t.Errorf("%s %s %s %s: refusal without code or reason: %+v", a, op, rn, tr, d)
					}
					if d.Outcome == NotFound && d.Code != "not_found" {
						t.Errorf("%s %s %s %s: not found with code %q", a, op, rn, tr, d.Code)
					}
				}
			}
		}
	}
}

// TestWebIsAPI: web pages (none yet) follow the API's rules.
func TestWebIsAPI(t *testing.T) {
	for a := range actors {
		for rn := range repos {
			for _, op := range Ops() {
				if w, api := decideFor(a, rn, op, Web), decideFor(a, rn, op, API); w != api {
					t.Errorf("%s %s %s: web %+v, API %+v", a, op, rn, w, api)
				}
			}
		}
	}
}

func TestScopesAndAdmin(t *testing.T) {
	admin, plain := uAdmin, uPlain
	for _, tc := range []struct {
		name    string
		p       store.Principal
		isAdmin bool
		scopes  string // of repo:read repo:write builds admin, in that order: 1 held
	}{
		{"anonymous", store.Principal{}, false, "0000"},
		{"user password", store.Principal{User: &plain}, false, "1100"},
		{"admin password", store.Principal{User: &admin}, true, "1111"},
		{"admin repo:write token", store.Principal{User: &admin, Token: &store.Token{Scopes: []store.Scope{store.ScopeRepoWrite}}}, false, "1100"},
		{"admin admin token", store.Principal{User: &admin, Token: &store.Token{Scopes: []store.Scope{store.ScopeAdmin}}}, true, "1111"},
		{"admin builds token", store.Principal{User: &admin, Token: &store.Token{Scopes: []store.Scope{store.ScopeBuilds}}}, false, "0010"},
		{"user admin token", store.Principal{User: &plain, Token: &store.Token{Scopes: []store.Scope{store.ScopeAdmin}}}, false, "0000"},
		{"user builds token", store.Principal{User: &plain, Token: &store.Token{Scopes: []store.Scope{store.ScopeBuilds}}}, false, "0000"},
		{"user repo:read token", store.Principal{User: &plain, Token: &store.Token{Scopes: []store.Scope{store.ScopeRepoRead}}}, false, "1000"},
		{"deploy key", store.Principal{DeployKey: &store.Key{RepoID: 1}}, false, "0000"},
		{"clone token", store.Principal{Build: &store.BuildGrant{RepoID: 1}}, false, "0000"},
	} {
		if got := IsAdmin(tc.p); got != tc.isAdmin {
			t.Errorf("%s: IsAdmin %v, want %v", tc.name, got, tc.isAdmin)
		}
		for i, sc := range []store.Scope{store.ScopeRepoRead, store.ScopeRepoWrite, store.ScopeBuilds, store.ScopeAdmin} {
			if got := HasScope(tc.p, sc); got != (tc.scopes[i] == '1') {
				t.Errorf("%s: HasScope(%s) %v", tc.name, sc, got)
			}
		}
	}
	if HasScope(store.Principal{User: &admin}, "nonsense") {
		t.Error("an unknown scope is held")
	}
}

func TestAdmit(t *testing.T) {
	ct := store.Principal{Build: &store.BuildGrant{RepoID: 1}}
	dk := store.Principal{DeployKey: &store.Key{RepoID: 1}}
	for _, tc := range []struct {
		p    store.Principal
		t    Transport
		want bool
	}{
		{ct, HTTPGit, true}, {ct, SSHGit, true}, {ct, API, false}, {ct, Web, false},
		{dk, HTTPGit, true}, {dk, SSHGit, true}, {dk, API, false}, {dk, Web, false},
		{store.Principal{}, API, true}, {store.Principal{User: &uPlain}, API, true},
	} {
		if got := Admit(tc.p, tc.t).OK(); got != tc.want {
			t.Errorf("Admit(%s, %s) = %v", tc.p.Name(), tc.t, got)
		}
	}
	if d := Admit(ct, API); d.Code != "forbidden" || !strings.Contains(d.Reason, "clone token") {
		t.Errorf("clone token on the API: %+v", d)
	}
}

func TestStrings(t *testing.T) {
	for _, op := range Ops() {
		if op.String() == "op?" {
			t.Errorf("op %d has no name", op)
		}
	}
	if Op(-1).String() != "op?" || Transport(9).String() != "transport?" || Allow.String() != "allow" ||
		NotFound.String() != "not-found" || Forbidden.String() != "forbidden" {
		t.Error("strings")
	}
}
