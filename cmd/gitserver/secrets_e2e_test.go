package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var keyIDRE = regexp.MustCompile(`msg="secret key" id=([0-9a-f]{16})`)

func keyIDOf(t *testing.T, s *TestServer) string {
	t.Helper()
	m := keyIDRE.FindStringSubmatch(s.Output())
	if m == nil {
		t.Fatalf("no secret key in the start-up log:\n%s", s.Output())
	}
	return m[1]
}

// TestSecretsRotate: the first start creates <data>/secret.key (0600);
// `admin secrets rotate` refuses to run beside the server, replaces the
// key once it is stopped, drops the previous key, and the server starts
// again with the new key.
func TestSecretsRotate(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	keyPath := filepath.Join(s.Data, "secret.key")
	fi, err := os.Stat(keyPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file after the first start: %v %v", fi, err)
	}
	before, _ := os.ReadFile(keyPath)
	id1 := keyIDOf(t, s)
	if strings.Contains(s.Output(), strings.Split(string(before), "\n")[1]) {
		t.Fatal("the key is in the server's log")
	}
	// Other admin commands load the key and work beside the server.
	s.CreateUser("carol", false)

	if out, err := s.Admin("", "secrets", "rotate"); err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("rotate beside a running server: %q, %v", out, err)
	}
	if b, _ := os.ReadFile(keyPath); string(b) != string(before) {
		t.Fatal("a refused rotation changed the key file")
	}
	if err, exited := s.Signal(syscall.SIGTERM, 40*time.Second); !exited || err != nil {
		t.Fatalf("stop: %v (exited %v)", err, exited)
	}
	out, err := s.Admin("", "secrets", "rotate")
	if err != nil || out != "rotated the secret key; re-sealed 0 secrets\n" {
		t.Fatalf("rotate: %q, %v", out, err)
	}
	after, _ := os.ReadFile(keyPath)
	if string(after) == string(before) {
		t.Fatal("rotate left the key file unchanged")
	}
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file after the rotation: %v %v", fi, err)
	}
	if _, err := os.Stat(keyPath + ".previous"); !os.IsNotExist(err) {
		t.Fatalf("previous key kept after a finished rotation: %v", err)
	}
	s.Restart()
	if id2 := keyIDOf(t, s); id2 == id1 {
		t.Fatalf("the server still uses key %s", id1)
	}
	if strings.Contains(s.Output(), "did not finish") {
		t.Fatalf("the server reports an unfinished rotation:\n%s", s.Output())
	}
	s.CreateUser("dave", false)
}

// TestSecretKeyFileFlag: --secret-key-file (or GITSERVER_SECRET_KEY_FILE)
// puts the key outside the data directory, e.g. a systemd credential.
func TestSecretKeyFileFlag(t *testing.T) {
	t.Parallel()
	keyPath := filepath.Join(t.TempDir(), "creds", "secret-key")
	os.MkdirAll(filepath.Dir(keyPath), 0o700)
	s := StartServer(t, WithEnv("GITSERVER_SECRET_KEY_FILE="+keyPath))
	if _, err := os.Stat(keyPath); err != nil {
		t.Fatalf("key file not created where the flag says: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Data, "secret.key")); !os.IsNotExist(err) {
		t.Fatalf("key file also created in the data directory: %v", err)
	}
	s.Kill()
	before, _ := os.ReadFile(keyPath)
	if out, err := s.Admin("", "secrets", "rotate", "--secret-key-file", keyPath); err != nil || !strings.HasPrefix(out, "rotated the secret key") {
		t.Fatalf("rotate: %q, %v", out, err)
	}
	if after, _ := os.ReadFile(keyPath); string(after) == string(before) {
		t.Fatal("key file unchanged")
	}
	if _, err := os.Stat(filepath.Join(s.Data, "secret.key")); !os.IsNotExist(err) {
		t.Fatalf("rotate created a key in the data directory: %v", err)
	}
}

// TestSecretKeyFileRefused: a key file readable by others stops both the
// server and the admin commands, with the fix in the message, and nothing
// of the key in it.
func TestSecretKeyFileRefused(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	s.Kill()
	keyPath := filepath.Join(s.Data, "secret.key")
	key, _ := os.ReadFile(keyPath)
	os.Chmod(keyPath, 0o644)
	_, stderr, code := runBin(t, t.TempDir(), nil, "serve", "--data", s.Data, "--http-addr", "127.0.0.1:0", "--ssh-addr", "")
	if code != 1 || !strings.Contains(stderr, "chmod 600 "+keyPath) {
		t.Fatalf("serve with a 0644 key file: exit %d\n%s", code, stderr)
	}
	_, err := s.Admin("", "user", "create", "erin")
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("admin with a 0644 key file: %v", err)
	}
	keyLine := strings.Split(string(key), "\n")[1]
	if strings.Contains(stderr, keyLine) || strings.Contains(err.Error(), keyLine) {
		t.Fatal("an error shows the key")
	}
	// Malformed: refused without showing the content.
	os.WriteFile(keyPath, []byte("gitserver secret key v1\n"+keyLine[:20]+"\n"), 0o600)
	os.Chmod(keyPath, 0o600)
	_, stderr, code = runBin(t, t.TempDir(), nil, "serve", "--data", s.Data, "--http-addr", "127.0.0.1:0", "--ssh-addr", "")
	if code != 1 || !strings.Contains(stderr, "malformed") || strings.Contains(stderr, keyLine[:20]) {
		t.Fatalf("serve with a malformed key file: exit %d\n%s", code, stderr)
	}
}
