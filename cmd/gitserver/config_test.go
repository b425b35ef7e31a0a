package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gitserver/store"
	"gitserver/store/sqlite"
)

// clearServeEnv unsets every GITSERVER_* variable the serve flags read, so
// the test's own environment cannot leak in.
func clearServeEnv(t *testing.T) {
	var c config
	fs := serveFlags(&c)
	names := []string{"GITSERVER_CONFIG"}
	fs.VisitAll(func(f *flag.Flag) { names = append(names, envName(f.Name)) })
	for _, n := range names {
		t.Setenv(n, "") // restores the old value at cleanup
		os.Unsetenv(n)
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gitserver.conf")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigDefaults(t *testing.T) {
	clearServeEnv(t)
	c, err := loadConfig(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Data != "./gitserver-data" || c.HTTPAddr != ":8080" || c.SSHAddr != ":2222" ||
		c.BaseURL != "http://localhost:8080" || c.AnonymousRead || c.MaxPushMB != 4096 || c.HTTPBodyTimeout != time.Minute {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestConfigPrecedence(t *testing.T) {
	clearServeEnv(t)
	file := writeConfig(t, `# comment line
data = /from/file
http-addr = "127.0.0.1:1"
ssh-addr = 127.0.0.1:2
base-url = https://file.example
anonymous-read = true

   log-level=debug
`)
	// File only.
	c, err := loadConfig([]string{"--config", file}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Data != "/from/file" || c.HTTPAddr != "127.0.0.1:1" || c.SSHAddr != "127.0.0.1:2" ||
		c.BaseURL != "https://file.example" || !c.AnonymousRead || c.LogLevel != "debug" {
		t.Fatalf("file values: %+v", c)
	}
	// Env beats file; an env var set to "" is a value (disables SSH).
	t.Setenv("GITSERVER_DATA", "/from/env")
	t.Setenv("GITSERVER_SSH_ADDR", "")
	t.Setenv("GITSERVER_ANONYMOUS_READ", "false")
	c, err = loadConfig([]string{"--config", file}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Data != "/from/env" || c.SSHAddr != "" || c.AnonymousRead || c.HTTPAddr != "127.0.0.1:1" {
		t.Fatalf("env over file: %+v", c)
	}
	// Flags beat env and file, whatever their position.
	c, err = loadConfig([]string{"--data", "/from/flag", "--config", file, "--ssh-addr=127.0.0.1:3", "--anonymous-read"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Data != "/from/flag" || c.SSHAddr != "127.0.0.1:3" || !c.AnonymousRead || c.BaseURL != "https://file.example" {
		t.Fatalf("flag over env: %+v", c)
	}
	// The config file can also come from GITSERVER_CONFIG.
	os.Unsetenv("GITSERVER_DATA")
	t.Setenv("GITSERVER_CONFIG", file)
	c, err = loadConfig(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Data != "/from/file" {
		t.Fatalf("GITSERVER_CONFIG not read: %+v", c)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		file string // config file body; "" means no file
		env  map[string]string
		args []string
		want string // substring of the error
	}{
		{name: "line without =", file: "data /x\n", want: ":1: want"},
		{name: "unknown setting", file: "# ok\n\ndatta = /x\n", want: `:3: unknown setting "datta"`},
		{name: "config inside config", file: "config = /other\n", want: "unknown setting"},
		{name: "bad bool in file", file: "anonymous-read = maybe\n", want: "anonymous-read"},
		{name: "bad number in file", file: "max-push-mb = lots\n", want: "max-push-mb"},
		{name: "bad bool in env", env: map[string]string{"GITSERVER_ANONYMOUS_READ": "maybe"}, want: "GITSERVER_ANONYMOUS_READ"},
		{name: "missing file", args: []string{"--config", "/nonexistent/gitserver.conf"}, want: "config file"},
		{name: "unknown flag", args: []string{"--nope"}, want: "nope"},
		{name: "positional", args: []string{"extra"}, want: "no arguments"},
		{name: "bad base url", args: []string{"--base-url", "localhost:8080"}, want: "--base-url"},
		{name: "empty data", args: []string{"--data", ""}, want: "--data"},
		{name: "empty http addr", args: []string{"--http-addr="}, want: "--http-addr"},
		{name: "bad log level", args: []string{"--log-level", "loud"}, want: "--log-level"},
		{name: "webhook without secret", args: []string{"--build-webhook", "http://ci.example/hook"}, want: "secret"},
		{name: "max push zero", args: []string{"--max-push-mb", "0"}, want: "--max-push-mb"},
		{name: "body timeout zero", args: []string{"--http-body-timeout", "0s"}, want: "--http-body-timeout"},
		{name: "trusted proxy by name", args: []string{"--trusted-proxies", "10.0.0.1,proxy.example.com"}, want: `--trusted-proxies: "proxy.example.com" is not an IP address or a CIDR prefix`},
		{name: "trusted proxies from the environment", env: map[string]string{"GITSERVER_TRUSTED_PROXIES": "10.0.0.0/33"}, want: "--trusted-proxies"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearServeEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config", writeConfig(t, tc.file)}, args...)
			}
			_, err := loadConfig(args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("loadConfig(%q) = %v, want an error containing %q", args, err, tc.want)
			}
		})
	}
}

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantPos []string
		data    string
		scopes  []string
	}{
		{[]string{"token", "create", "alice"}, []string{"token", "create", "alice"}, "", nil},
		{[]string{"--data", "/d", "token", "create", "alice"}, []string{"token", "create", "alice"}, "/d", nil},
		{[]string{"token", "--scope", "builds", "create", "alice", "--data=/d", "--scope", "admin"}, []string{"token", "create", "alice"}, "/d", []string{"builds", "admin"}},
		{[]string{"token", "create", "--", "--data"}, []string{"token", "create", "--data"}, "", nil},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		data := fs.String("data", "", "")
		var scopes multiFlag
		fs.Var(&scopes, "scope", "")
		pos, err := parseInterspersed(fs, tc.args)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if !slices.Equal(pos, tc.wantPos) || !slices.Equal(fs.Args(), tc.wantPos) || *data != tc.data || !slices.Equal(scopes, tc.scopes) {
			t.Errorf("%q: pos=%q args=%q data=%q scopes=%q", tc.args, pos, fs.Args(), *data, scopes)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := parseInterspersed(fs, []string{"a", "--unknown"}); err == nil {
		t.Error("unknown flag after a positional accepted")
	}
}

// TestAdminRunInterspersed drives the admin command in-process against a
// real data directory, with flags before and after the positionals.
func TestAdminRunInterspersed(t *testing.T) {
	t.Setenv("GITSERVER_DATA", "")
	data := filepath.Join(t.TempDir(), "data")
	// A server's data directory: admin commands never create one.
	if err := os.Mkdir(data, 0o750); err != nil {
		t.Fatal(err)
	}
	if s, err := sqlite.Open(context.Background(), filepath.Join(data, "gitserver.db"), sqlite.Options{}); err != nil {
		t.Fatal(err)
	} else {
		s.Close()
	}
	run := func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		err := adminRun(args, strings.NewReader(stdin), &out)
		return out.String(), err
	}
	if out, err := run("alice-password\n", "--password-stdin", "user", "--data", data, "create", "alice", "--admin"); err != nil || !strings.Contains(out, "created user alice") {
		t.Fatalf("user create: %q, %v", out, err)
	}
	out, err := run("", "token", "create", "alice", "--scope", "builds", "--data", data, "--scope=repo:read", "--name", "ci")
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	secret := strings.TrimSpace(out)
	s, err := sqlite.Open(context.Background(), filepath.Join(data, "gitserver.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	acct, tok, err := s.CheckToken(context.Background(), "", secret)
	if err != nil || acct.Name != "alice" || !acct.IsAdmin || tok.Name != "ci" || !slices.Equal(tok.Scopes, []store.Scope{"builds", "repo:read"}) {
		t.Fatalf("token %q: %+v %+v %v", secret, acct, tok, err)
	}
	// GITSERVER_DATA is used when --data is absent.
	t.Setenv("GITSERVER_DATA", data)
	if _, err := run("", "token", "create", "alice"); err != nil {
		t.Fatalf("token create via GITSERVER_DATA: %v", err)
	}
	for _, tc := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{"token", "create"}, true, "missing arguments"},
		{[]string{"token", "create", "alice", "extra"}, true, "unexpected argument"},
		{[]string{"user", "delete", "alice"}, true, "unknown command"},
		{[]string{"token", "create", "alice", "--bogus"}, true, "bogus"},
		{[]string{"key", "add", "alice"}, true, "--file"},
		{[]string{"token", "create", "alice", "--scope", "repo:delete"}, false, `unknown scope "repo:delete"`},
		{[]string{"token", "create", "nobody"}, false, "nobody"},
		{[]string{"user", "create", "alice", "--password-stdin"}, false, "password"},
		{[]string{"user", "create", "bad/name"}, false, "name"},
		{[]string{"user", "passwd", "alice", "--data", filepath.Join(t.TempDir(), "missing")}, false, "not found"},
	} {
		_, err := run("", tc.args...)
		var ue usageError
		if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.usage != (isUsage(err, &ue))) {
			t.Errorf("admin %q = %v (usage %v), want error containing %q (usage %v)", tc.args, err, isUsage(err, &ue), tc.want, tc.usage)
		}
		if err != nil && strings.Contains(err.Error(), data) && !strings.Contains(strings.Join(tc.args, " "), "missing") {
			t.Errorf("admin %q error leaks the data path: %v", tc.args, err)
		}
	}
}

func isUsage(err error, ue *usageError) bool {
	u, ok := err.(usageError)
	if ok {
		*ue = u
	}
	return ok
}

// TestConfigWebhookSecret: the webhook secret comes from the environment,
// the config file or a file named by --build-webhook-secret-file without a
// warning; as a flag (visible in ps) it is still accepted, with one.
func TestConfigWebhookSecret(t *testing.T) {
	const hook = "http://ci.example/hook"
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(emptyFile, []byte("\n"), 0o600)
	for _, tc := range []struct {
		name    string
		env     map[string]string
		file    string
		args    []string
		secret  string
		warning bool
		err     string
	}{
		{name: "env", env: map[string]string{"GITSERVER_BUILD_WEBHOOK_SECRET": "from-env"}, secret: "from-env"},
		{name: "config file", file: "build-webhook-secret = from-config\n", secret: "from-config"},
		{name: "secret file", args: []string{"--build-webhook-secret-file", secretFile}, secret: "from-file"},
		{name: "secret file from env", env: map[string]string{"GITSERVER_BUILD_WEBHOOK_SECRET_FILE": secretFile}, secret: "from-file"},
		{name: "flag", args: []string{"--build-webhook-secret", "from-flag"}, secret: "from-flag", warning: true},
		{name: "both", args: []string{"--build-webhook-secret-file", secretFile}, env: map[string]string{"GITSERVER_BUILD_WEBHOOK_SECRET": "x"}, err: "not both"},
		{name: "missing file", args: []string{"--build-webhook-secret-file", secretFile + ".nope"}, err: "--build-webhook-secret-file"},
		{name: "empty file", args: []string{"--build-webhook-secret-file", emptyFile}, err: "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearServeEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := append([]string{"--build-webhook", hook}, tc.args...)
			if tc.file != "" {
				args = append(args, "--config", writeConfig(t, tc.file))
			}
			c, err := loadConfig(args, io.Discard)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("loadConfig = %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.BuildWebhookSecret != tc.secret {
				t.Errorf("secret %q, want %q", c.BuildWebhookSecret, tc.secret)
			}
			warned := strings.Contains(strings.Join(c.Warnings, "\n"), "--build-webhook-secret on the command line")
			if warned != tc.warning {
				t.Errorf("warnings %q, want a warning about the flag: %v", c.Warnings, tc.warning)
			}
			if strings.Contains(strings.Join(c.Warnings, "\n"), tc.secret) {
				t.Errorf("warnings %q contain the secret", c.Warnings)
			}
		})
	}
}
