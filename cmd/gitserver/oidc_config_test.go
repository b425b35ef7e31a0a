package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfigOIDC: the single sign-on settings from flags, the environment
// and the config file; the client secret never from argv.
func TestConfigOIDC(t *testing.T) {
	clearServeEnv(t)
	c, err := loadConfig(nil, io.Discard)
	if err != nil || c.OIDC.Issuer != "" {
		t.Fatalf("default: %+v, %v", c.OIDC, err)
	}
	if sso, err := c.OIDC.sso(c.BaseURL); err != nil || sso != nil {
		t.Fatalf("without an issuer single sign-on is off: %v, %v", sso, err)
	}
	if c.OIDC.UsernameClaim != "preferred_username" || c.OIDC.RefreshInterval != 10*time.Minute || c.OIDC.AllowLinking {
		t.Fatalf("defaults: %+v", c.OIDC)
	}

	secretFile := filepath.Join(t.TempDir(), "oidc-secret")
	if err := os.WriteFile(secretFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"--oidc-issuer", "https://idp.example.test/realms/x", "--oidc-client-id", "gitserver"}

	c, err = loadConfig(append(base, "--oidc-client-secret-file", secretFile, "--oidc-admin-claim", "groups=admins",
		"--oidc-allowed-domains", "example.test, corp.example", "--oidc-provider-name", "Acme"), io.Discard)
	if err != nil || c.OIDC.Secret != "from-file" || c.OIDC.AdminClaim != "groups=admins" {
		t.Fatalf("secret file: %+v, %v", c.OIDC, err)
	}
	sso, err := c.OIDC.sso("https://git.example.test/")
	if err != nil || sso == nil || sso.ProviderName != "Acme" || sso.Client.Issuer() != "https://idp.example.test/realms/x" {
		t.Fatalf("sso: %+v, %v", sso, err)
	}

	t.Setenv("GITSERVER_OIDC_CLIENT_SECRET", "from-env")
	if c, err = loadConfig(base, io.Discard); err != nil || c.OIDC.Secret != "from-env" {
		t.Fatalf("secret from the environment: %+v, %v", c.OIDC, err)
	}
	if _, err = loadConfig(append(base, "--oidc-client-secret-file", secretFile), io.Discard); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("two secrets: %v", err)
	}
	os.Unsetenv("GITSERVER_OIDC_CLIENT_SECRET")

	file := writeConfig(t, "oidc-issuer = https://idp.example.test\noidc-client-id = gs\noidc-client-secret = from-config\noidc-allow-linking = true\n")
	if c, err = loadConfig([]string{"--config", file}, io.Discard); err != nil || c.OIDC.Secret != "from-config" || !c.OIDC.AllowLinking || c.OIDC.ClientID != "gs" {
		t.Fatalf("config file: %+v, %v", c.OIDC, err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{append(base, "--oidc-client-secret", "in-argv"), "not accepted on the command line"},
		{[]string{"--oidc-client-id", "x"}, "need --oidc-issuer"},
		{[]string{"--oidc-issuer", "https://idp.example.test"}, "needs --oidc-client-id"},
		{base, "needs the client secret"},
		{[]string{"--oidc-issuer", "idp.example.test", "--oidc-client-id", "x"}, "absolute http(s) URL"},
		{append(base, "--oidc-client-secret-file", secretFile, "--oidc-admin-claim", "groups"), "NAME=VALUE"},
		{append(base, "--oidc-client-secret-file", secretFile, "--oidc-admin-claim", "groups= "), "NAME=VALUE"},
		{append(base, "--oidc-client-secret-file", filepath.Join(t.TempDir(), "missing")), "--oidc-client-secret-file"},
	} {
		_, err := loadConfig(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error with %q", tc.args, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "in-argv") {
			t.Errorf("the error repeats the secret: %v", err)
		}
	}
}
