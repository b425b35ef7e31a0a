package main

// Stopping, starting and the admin CLI (issue 8, item 4), end to end with
// the real binary, git and OpenSSH.

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runBin runs the gitserver binary in dir with env and returns its stdout,
// stderr and exit code.
func runBin(t *testing.T, dir string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Dir = dir
	cmd.Env = append(append([]string{}, os.Environ()...), env...)
	cmd.Stdin = strings.NewReader("some-password\n")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("gitserver %q did not finish in 60s\n%s\n%s", args, out.String(), errb.String())
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("gitserver %q: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// TestFailedStartLeavesNoState: a start that cannot bind its ports creates
// no data directory, no admin account and prints no password.
func TestFailedStartLeavesNoState(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct{ name, httpAddr, sshAddr, want string }{
		{"http port in use", busy.Addr().String(), "127.0.0.1:0", "http"},
		{"ssh port in use", "127.0.0.1:0", busy.Addr().String(), "ssh"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "new-data")
			stdout, stderr, code := runBin(t, t.TempDir(), nil, "serve", "--data", data,
				"--http-addr", tc.httpAddr, "--ssh-addr", tc.sshAddr)
			if code == 0 {
				t.Fatalf("serve with a busy port exited 0\n%s\n%s", stdout, stderr)
			}
			if !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "address already in use") {
				t.Errorf("no clear error naming the %s listener:\n%s", tc.want, stderr)
			}
			if strings.Contains(stdout+stderr, "password") {
				t.Errorf("a failed start printed an admin password:\n%s\n%s", stdout, stderr)
			}
			if entries, err := os.ReadDir(data); !os.IsNotExist(err) {
				t.Errorf("a failed start left the data directory behind: %v (err %v)", entries, err)
			}
		})
	}
}

// TestAdminRefusesMissingDataDir: every admin command refuses a data
// directory that does not exist (or holds no database), whether it comes
// from --data, GITSERVER_DATA or the default, exits non-zero with a message
// naming both, and creates nothing.
func TestAdminRefusesMissingDataDir(t *testing.T) {
	t.Parallel()
	key := newSSHKey(t, "k")
	commands := [][]string{
		{"user", "create", "alice"},
		{"user", "create", "alice", "--admin", "--password-stdin"},
		{"user", "passwd", "admin"},
		{"token", "create", "admin", "--scope", "builds"},
		{"key", "add", "admin", "--file", key.Pub},
	}
	for _, args := range commands {
		cwd := t.TempDir()
		parent := t.TempDir()
		empty := filepath.Join(t.TempDir(), "empty") // exists, but no server ever ran there
		os.Mkdir(empty, 0o750)
		for _, how := range []struct {
			name string
			env  []string
			args []string
			dir  string
		}{
			{"--data", nil, []string{"--data", filepath.Join(parent, "missing")}, filepath.Join(parent, "missing")},
			{"GITSERVER_DATA", []string{"GITSERVER_DATA=" + filepath.Join(parent, "env")}, nil, filepath.Join(parent, "env")},
			{"default", []string{"GITSERVER_DATA="}, nil, filepath.Join(cwd, "gitserver-data")},
			{"empty dir", nil, []string{"--data", empty}, filepath.Join(empty, "gitserver.db")},
		} {
			full := append(append([]string{"admin"}, args...), how.args...)
			stdout, stderr, code := runBin(t, cwd, how.env, full...)
			if code == 0 {
				t.Errorf("%s (%s): exit 0, want a refusal\n%s", strings.Join(full, " "), how.name, stdout)
			}
			if !strings.Contains(stderr, "--data") || !strings.Contains(stderr, "GITSERVER_DATA") {
				t.Errorf("%s (%s): message does not name --data and GITSERVER_DATA: %q", strings.Join(full, " "), how.name, stderr)
			}
			if strings.Contains(stdout, "password") || strings.Contains(stdout, "gst_") {
				t.Errorf("%s (%s): printed a credential: %q", strings.Join(full, " "), how.name, stdout)
			}
			if _, err := os.Stat(how.dir); !os.IsNotExist(err) {
				t.Errorf("%s (%s): created %s", strings.Join(full, " "), how.name, how.dir)
			}
		}
		if entries, _ := os.ReadDir(empty); len(entries) != 0 {
			t.Errorf("%s: wrote into an empty data directory: %v", strings.Join(args, " "), entries)
		}
	}
}

// TestHelpFlags: --help and -h print the usage once, to stdout, and exit 0.
func TestHelpFlags(t *testing.T) {
	t.Parallel()
	cwd := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string // a line of the usage
	}{
		{[]string{"admin", "--help"}, "gitserver admin user create NAME"},
		{[]string{"admin", "-h"}, "gitserver admin user create NAME"},
		{[]string{"admin", "user", "create", "--help"}, "gitserver admin user create NAME"},
		{[]string{"serve", "--help"}, "--http-addr"},
		{[]string{"serve", "-h"}, "--http-addr"},
		{[]string{"serve", "--data", "x", "--help"}, "--http-addr"},
		{[]string{"--help"}, "gitserver version"},
	} {
		stdout, stderr, code := runBin(t, cwd, []string{"GITSERVER_DATA="}, tc.args...)
		name := strings.Join(tc.args, " ")
		if code != 0 {
			t.Errorf("%s: exit %d, want 0", name, code)
		}
		if stderr != "" {
			t.Errorf("%s: wrote to stderr: %q", name, stderr)
		}
		if strings.Contains(stdout+stderr, "help requested") {
			t.Errorf("%s: prints flag's %q", name, "help requested")
		}
		if n := strings.Count(stdout, tc.want); n != 1 {
			t.Errorf("%s: %q appears %d times in stdout, want once:\n%s", name, tc.want, n, stdout)
		}
	}
	if entries, _ := os.ReadDir(cwd); len(entries) != 0 {
		t.Errorf("--help created files: %v", entries)
	}
}
