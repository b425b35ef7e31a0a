package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gitserver/store/postgres"
	"gitserver/store/postgres/pgtest"
)

// TestConfigDatabaseURL: --database-url comes from the flag, the
// environment or the config file; on the command line, with a password,
// it draws a warning; a malformed one is refused without showing its
// password.
func TestConfigDatabaseURL(t *testing.T) {
	clearServeEnv(t)
	const url = "postgres://gs:Hunter2-secret@db.example:5432/gitserver"
	c, err := loadConfig([]string{"--database-url", url, "--database-max-conns", "25"}, io.Discard)
	if err != nil || c.DatabaseURL != url || c.DatabaseMaxConns != 25 {
		t.Fatalf("flag: %+v %v", c, err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "GITSERVER_DATABASE_URL") || strings.Contains(c.Warnings[0], "Hunter2") {
		t.Fatalf("flag with a password: warnings %q", c.Warnings)
	}
	if c, err := loadConfig([]string{"--database-url", "postgres://gs@db.example/gitserver"}, io.Discard); err != nil || len(c.Warnings) != 0 {
		t.Fatalf("flag without a password: %v %q", err, c.Warnings)
	}
	t.Setenv("GITSERVER_DATABASE_URL", url)
	if c, err := loadConfig(nil, io.Discard); err != nil || c.DatabaseURL != url || len(c.Warnings) != 0 || c.DatabaseMaxConns != 10 {
		t.Fatalf("environment: %+v %v", c, err)
	}
	os.Unsetenv("GITSERVER_DATABASE_URL")
	file := writeConfig(t, "database-url = \""+url+"\"\nrepos-dir = /shared/repos\n")
	if c, err := loadConfig([]string{"--config", file}, io.Discard); err != nil || c.DatabaseURL != url || c.ReposDir != "/shared/repos" {
		t.Fatalf("config file: %+v %v", c, err)
	}
	for _, bad := range [][]string{
		{"--database-url", "mysql://gs:Hunter2-secret@db/x"},
		{"--database-url", url, "--database-max-conns", "0"},
	} {
		_, err := loadConfig(bad, io.Discard)
		if err == nil || strings.Contains(err.Error(), "Hunter2") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if c, err := loadConfig(nil, io.Discard); err != nil || c.DatabaseURL != "" {
		t.Fatalf("default: SQLite, got %q %v", c.DatabaseURL, err)
	}
}

// TestAdminOnPostgres: the admin CLI finds the database in the server's
// config file (GITSERVER_CONFIG), and works on PostgreSQL; its errors never
// show the URL's password.
func TestAdminOnPostgres(t *testing.T) {
	clearServeEnv(t)
	url := pgtest.Start(t)
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o750); err != nil {
		t.Fatal(err)
	}
	conf := writeConfig(t, "data = "+data+"\ndatabase-url = "+url+"\n")
	run := func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		err := adminRun(args, strings.NewReader(stdin), &out)
		return out.String(), err
	}
	if out, err := run("alice-password\n", "--config", conf, "user", "create", "alice", "--password-stdin"); err != nil || !strings.Contains(out, "created user alice") {
		t.Fatalf("user create: %q %v", out, err)
	}
	t.Setenv("GITSERVER_CONFIG", conf)
	secret, err := run("", "token", "create", "alice")
	if err != nil {
		t.Fatalf("token create via GITSERVER_CONFIG: %v", err)
	}
	s, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if a, _, err := s.CheckToken(context.Background(), "alice", strings.TrimSpace(secret)); err != nil || a.Name != "alice" {
		t.Fatalf("the CLI's token in PostgreSQL: %+v %v", a, err)
	}
	// A database that does not answer: an error without the password.
	down := strings.Replace(url, "127.0.0.1:", "127.0.0.1:1", 1)
	_, err = run("", "--database-url", down, "token", "list", "alice")
	if err == nil || strings.Contains(err.Error(), pgtest.Password) {
		t.Fatalf("unreachable database: %v", err)
	}
}
