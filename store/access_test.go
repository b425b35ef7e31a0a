package store

import "testing"

// TestPrincipalNames checks who a principal is and how it is named in logs,
// audit and hooks. What it may do is gitserver/access's (its tests cover
// admin rights and scopes).
func TestPrincipalNames(t *testing.T) {
	if !(Principal{}).Anonymous() || (Principal{}).Name() != "anonymous" {
		t.Error("zero principal is not anonymous")
	}
	dk := Principal{DeployKey: &Key{Fingerprint: "SHA256:abc"}}
	if dk.Anonymous() || dk.Name() != "deploy-key:SHA256:abc" {
		t.Errorf("deploy key principal: anon=%v name=%q", dk.Anonymous(), dk.Name())
	}
	u := Principal{User: &Account{ID: 2, Name: "bob"}, Token: &Token{Scopes: []Scope{ScopeRepoRead}}}
	if u.Anonymous() || u.Name() != "bob" {
		t.Errorf("user principal: anon=%v name=%q", u.Anonymous(), u.Name())
	}
	ct := Principal{Build: &BuildGrant{BuildID: 42, RepoID: 5}}
	if ct.Anonymous() || ct.Name() != "build:42" {
		t.Errorf("clone token principal: anonymous %v name %q", ct.Anonymous(), ct.Name())
	}
}
