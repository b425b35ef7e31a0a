package store

import (
	"encoding/json"
	"testing"
)

// TestTypedValues: each typed value accepts exactly its documented strings
// (docs/api.md, docs/openapi.yaml's enums) and is written to JSON as that
// plain string.
func TestTypedValues(t *testing.T) {
	type value interface{ Valid() bool }
	for _, tc := range []struct {
		name  string
		valid []value
		bad   []value
	}{
		{"BuildStatus",
			[]value{BuildQueued, BuildRunning, BuildSucceeded, BuildFailed, BuildSuperseded},
			[]value{BuildStatus(""), BuildStatus("QUEUED"), BuildStatus("done"), BuildStatus("queued ")}},
		{"Visibility",
			[]value{Public, Restricted},
			[]value{Visibility(""), Visibility("private"), Visibility("Public")}},
		{"Role",
			[]value{RoleOwner, RoleMember},
			[]value{Role(""), Role("admin"), Role("Owner")}},
		{"Scope",
			[]value{ScopeRepoRead, ScopeRepoWrite, ScopeBuilds, ScopeAdmin},
			[]value{Scope(""), Scope("repo"), Scope("ADMIN"), Scope("repo:delete")}},
		{"AccountKind",
			[]value{KindUser, KindOrg},
			[]value{AccountKind(""), AccountKind("organisation"), AccountKind("User")}},
	} {
		for _, v := range tc.valid {
			if !v.Valid() {
				t.Errorf("%s %q: not valid", tc.name, v)
			}
			b, err := json.Marshal(v)
			if err != nil || string(b) != `"`+toString(v)+`"` {
				t.Errorf("%s %q marshals to %s, %v", tc.name, v, b, err)
			}
		}
		for _, v := range tc.bad {
			if v.Valid() {
				t.Errorf("%s %q: valid", tc.name, v)
			}
		}
	}
	if got := JoinScopes([]Scope{ScopeRepoRead, ScopeBuilds}); got != "repo:read builds" {
		t.Errorf("JoinScopes = %q", got)
	}
	if got := JoinScopes(nil); got != "" {
		t.Errorf("JoinScopes(nil) = %q", got)
	}
}

func toString(v any) string {
	switch x := v.(type) {
	case BuildStatus:
		return string(x)
	case Visibility:
		return string(x)
	case Role:
		return string(x)
	case Scope:
		return string(x)
	case AccountKind:
		return string(x)
	}
	return "?"
}
