package oidc

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestHasValue(t *testing.T) {
	for _, tc := range []struct {
		claim string // JSON
		want  string
		ok    bool
	}{
		{`"admins"`, "admins", true},
		{`"admins2"`, "admins", false},
		{`["dev", "admins"]`, "admins", true},
		{`["dev", "admins-x"]`, "admins", false},
		{`[["admins"]]`, "admins", false}, // no nested lists
		{`true`, "true", true},
		{`false`, "true", false},
		{`42`, "42", true},
		{`null`, "admins", false},
		{`{"admins": true}`, "admins", false},
		{`""`, "", true},
	} {
		var v any
		if err := json.Unmarshal([]byte(tc.claim), &v); err != nil {
			t.Fatal(err)
		}
		if got := HasValue(v, tc.want); got != tc.ok {
			t.Errorf("HasValue(%s, %q) = %v, want %v", tc.claim, tc.want, got, tc.ok)
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	good := Config{Issuer: "https://idp.example.test", ClientID: "c", RedirectURL: "https://git.example.test/oidc/callback"}
	c, err := New(good)
	if err != nil || c.cfg.UsernameClaim != DefaultUsernameClaim || c.cfg.GroupsClaim != DefaultGroupsClaim || strings.Join(c.cfg.Scopes, " ") != "openid profile email" {
		t.Fatalf("New(good) = %+v, %v", c, err)
	}
	withScopes := good
	withScopes.Scopes = []string{"profile", "groups"}
	if c, _ := New(withScopes); strings.Join(c.cfg.Scopes, " ") != "openid profile groups" {
		t.Errorf("openid not added: %v", c.cfg.Scopes)
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.Issuer = "idp.example.test" },
		func(c *Config) { c.Issuer = "" },
		func(c *Config) { c.ClientID = "" },
		func(c *Config) { c.RedirectURL = "" },
		func(c *Config) { c.AdminClaim = "groups" },
	} {
		cfg := good
		bad(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

func TestAdmit(t *testing.T) {
	c, err := New(Config{Issuer: "https://idp.example.test", ClientID: "c", RedirectURL: "https://x/cb",
		AllowedDomains: []string{"@Example.test"}, AllowedGroups: []string{"staff"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		claims map[string]any
		email  string
		ok     bool
	}{
		{map[string]any{"groups": []any{"staff"}}, "a@example.test", true},
		{map[string]any{"groups": []any{"staff"}}, "a@EXAMPLE.TEST", true},
		{map[string]any{"groups": []any{"staff"}, "email_verified": false}, "a@example.test", false},
		// Some providers (Amazon Cognito) send email_verified as a string.
		{map[string]any{"groups": []any{"staff"}, "email_verified": "false"}, "a@example.test", false},
		{map[string]any{"groups": []any{"staff"}, "email_verified": "False"}, "a@example.test", false},
		{map[string]any{"groups": []any{"staff"}, "email_verified": "true"}, "a@example.test", true},
		{map[string]any{"groups": []any{"staff"}}, "a@example.test.attacker.test", false},
		{map[string]any{"groups": []any{"staff"}}, "", false},
		{map[string]any{"groups": []any{"guests"}}, "a@example.test", false},
		{map[string]any{}, "a@example.test", false},
	} {
		err := c.admit(tc.claims, tc.email)
		var r *Refusal
		if (err == nil) != tc.ok || (err != nil && !errors.As(err, &r)) {
			t.Errorf("admit(%v, %q) = %v, want ok=%v", tc.claims, tc.email, err, tc.ok)
		}
	}
}

// TestUsername: the username claim names the account, else the e-mail's
// local part, but never an e-mail the provider says it has not verified
// (anyone could type it; with --oidc-allow-linking it would take over the
// local account of that name).
func TestUsername(t *testing.T) {
	c, err := New(Config{Issuer: "https://idp.example.test", ClientID: "c", RedirectURL: "https://x/cb"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		claims map[string]any
		email  string
		want   string
		ok     bool
	}{
		{map[string]any{"preferred_username": "alice"}, "bob@example.test", "alice", true},
		{map[string]any{"preferred_username": "alice@corp.example"}, "", "alice", true},
		{map[string]any{"preferred_username": " "}, "bob@example.test", "bob", true},
		{map[string]any{"email_verified": true}, "bob@example.test", "bob", true},
		{map[string]any{}, "bob@example.test", "bob", true}, // no email_verified claim (Entra)
		// The username claim does not depend on the e-mail's verification.
		{map[string]any{"preferred_username": "alice", "email_verified": false}, "bob@example.test", "alice", true},
		{map[string]any{"email_verified": false}, "bob@example.test", "", false},
		{map[string]any{"email_verified": "false"}, "bob@example.test", "", false},
	} {
		got, err := c.username(tc.claims, tc.email)
		var r *Refusal
		if got != tc.want || (err == nil) != tc.ok || (err != nil && !errors.As(err, &r)) {
			t.Errorf("username(%v, %q) = %q, %v; want %q, ok=%v", tc.claims, tc.email, got, err, tc.want, tc.ok)
		}
	}
}

func TestAuthorizedParty(t *testing.T) {
	for _, tc := range []struct {
		aud []string
		azp any
		ok  bool
	}{
		{[]string{"me"}, nil, true},
		{[]string{"me"}, "me", true},
		{[]string{"me", "other"}, "me", true},
		{[]string{"me", "other"}, nil, false},
		{[]string{"me"}, "other", false},
		{[]string{"me", "other"}, "other", false},
		{[]string{"me"}, 42.0, false},
		{[]string{"me"}, "", false},
	} {
		if err := authorizedParty(tc.aud, tc.azp, "me"); (err == nil) != tc.ok {
			t.Errorf("aud %v azp %v: %v, want ok %v", tc.aud, tc.azp, err, tc.ok)
		}
	}
}
