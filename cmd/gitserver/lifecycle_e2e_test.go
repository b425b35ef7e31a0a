package main

// Stopping, starting and the admin CLI (issue 8, item 4), end to end with
// the real binary, git and OpenSSH.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
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

// TestShutdownAnswersWaitingClaims: a build worker's idle long-poll claim
// does not hold SIGTERM for the grace period; it is answered 204 ("nothing
// queued") at once and the process exits 0 within seconds. The log claims
// no SSH session was cut off, since none ran.
func TestShutdownAnswersWaitingClaims(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	tok := s.Token("admin", "builds")

	type answer struct {
		status int
		err    error
		at     time.Time
	}
	claim := func(wait int) chan answer {
		ch := make(chan answer, 1)
		go func() {
			req, _ := http.NewRequest("POST", s.URL+"/api/v1/builds/claim",
				strings.NewReader(fmt.Sprintf(`{"worker":"w1","wait_seconds":%d,"lease_seconds":60}`, wait)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := (&http.Client{Timeout: 90 * time.Second}).Do(req)
			if err != nil {
				ch <- answer{err: err, at: time.Now()}
				return
			}
			resp.Body.Close()
			ch <- answer{status: resp.StatusCode, at: time.Now()}
		}()
		return ch
	}
	// 30 s as a worker polls; 60 s (the longest wait) would outlast the
	// grace period.
	claims := []chan answer{claim(30), claim(60)}
	time.Sleep(1500 * time.Millisecond) // both claims are waiting
	for i, c := range claims {
		select {
		case a := <-c:
			t.Fatalf("claim %d answered before the stop: %+v", i, a)
		default:
		}
	}

	sent := time.Now()
	err, exited := s.Signal(syscall.SIGTERM, 10*time.Second)
	if !exited {
		t.Fatalf("server still running 10s after SIGTERM with only idle claims in flight\n%s", s.Output())
	}
	if err != nil {
		t.Fatalf("server exit: %v\n%s", err, s.Output())
	}
	if took := time.Since(sent); took > 5*time.Second {
		t.Errorf("exit took %v after SIGTERM, want a few seconds", took)
	}
	for i, c := range claims {
		select {
		case a := <-c:
			if a.err != nil || a.status != http.StatusNoContent {
				t.Errorf("claim %d: status %d, err %v; want 204", i, a.status, a.err)
			} else if d := a.at.Sub(sent); d > 5*time.Second {
				t.Errorf("claim %d answered %v after SIGTERM", i, d)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("claim %d not answered after the server exited", i)
		}
	}
	if strings.Contains(s.Output(), "cut off") {
		t.Errorf("log says operations were cut off, but none ran:\n%s", s.Output())
	}
}

// TestShutdownWaitsForPushBackgroundWork: the post-push build backstop
// still running when SIGTERM arrives finishes before the store is closed,
// so a push acknowledged just before the stop has its build queued by this
// process (not owed to the next start). The fault injection makes the
// hook's enqueue fail and the backstop slow.
func TestShutdownWaitsForPushBackgroundWork(t *testing.T) {
	t.Parallel()
	s := StartServer(t, WithFault("slow-backstop"))
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "bg", "restricted")
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(admin, "admin", "bg"))
	g.Commit(work, "f", "x\n", "first")
	out := g.Must(work, "push", "origin", "master")
	if !strings.Contains(out, "build notification delayed") {
		t.Fatalf("the fault injection did not make the hook's enqueue fail:\n%s", out)
	}
	err, exited := s.Signal(syscall.SIGTERM, 30*time.Second)
	if !exited || err != nil {
		t.Fatalf("server exit: exited %v, %v\n%s", exited, err, s.Output())
	}
	log := s.Output()
	queued := strings.Index(log, `msg="build queued"`)
	stopped := strings.Index(log, `msg="gitserver stopped"`)
	if queued < 0 || stopped < 0 || queued > stopped {
		t.Fatalf("the push's backstop did not queue its build before the server stopped\n%s", log)
	}
	if strings.Contains(log, "queue owed build") {
		t.Fatalf("backstop failed:\n%s", log)
	}
	// Nothing was left owed to the next start.
	s.start()
	if strings.Contains(s.Output(), "queued builds owed") {
		t.Fatalf("the next start found the push's build still owed\n%s", s.Output())
	}
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

// keyscan runs ssh-keyscan against the server's SSH port and returns the
// offered host keys as "type base64" lines, sorted.
func keyscan(t *testing.T, s *TestServer, types string) []string {
	t.Helper()
	out, err := exec.Command("ssh-keyscan", "-T", "20", "-t", types, "-p", sshPort(t, s), "127.0.0.1").Output()
	if err != nil {
		t.Fatalf("ssh-keyscan: %v", err)
	}
	var keys []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && !strings.HasPrefix(line, "#") {
			keys = append(keys, f[1]+" "+f[2])
		}
	}
	slices.Sort(keys)
	return keys
}

var fingerprintLineRE = regexp.MustCompile(`^(\d+) (SHA256:\S+) .* \((\w+)\)$`)

// TestSSHHostKeyAlgorithms: the server offers ed25519, ECDSA (nistp256) and
// RSA (3072 bits, SHA-2 signatures) host keys as OpenSSH does, each kept in
// the data directory (0600) across restarts, and logs their fingerprints.
// Clients restricted to ECDSA or RSA host keys (older SSH stacks such as
// JSch) can clone.
func TestSSHHostKeyAlgorithms(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	erin := Cred{"erin", s.CreateUser("erin", false)}
	key := newSSHKey(t, "erin")
	addUserKey(t, s, erin, "k", key.Text)
	s.CreateRepo(erin, "erin", "r", "restricted")
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(erin, "erin", "r"))
	head := g.Commit(work, "f", "x\n", "c")
	g.Must(work, "push", "-q", "origin", "master")

	keys := keyscan(t, s, "ecdsa,rsa,ed25519")
	var types []string
	for _, k := range keys {
		types = append(types, strings.Fields(k)[0])
	}
	if want := []string{"ecdsa-sha2-nistp256", "ssh-ed25519", "ssh-rsa"}; !slices.Equal(types, want) {
		t.Fatalf("offered host key types %v, want %v", types, want)
	}
	// Sizes and fingerprints, as ssh-keygen sees them; each is in the log.
	kh := filepath.Join(t.TempDir(), "known_hosts")
	var lines []string
	for _, k := range keys {
		lines = append(lines, "gitserver-test "+k)
	}
	os.WriteFile(kh, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
	fp, err := exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", kh).Output()
	if err != nil {
		t.Fatalf("ssh-keygen -l: %v", err)
	}
	bits := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(fp)), "\n") {
		m := fingerprintLineRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unexpected ssh-keygen -l line %q", line)
		}
		bits[m[3]] = m[1]
		if !strings.Contains(s.Output(), m[2]) {
			t.Errorf("fingerprint %s (%s) is not in the start-up log\n%s", m[2], m[3], s.Output())
		}
	}
	if bits["RSA"] != "3072" || bits["ECDSA"] != "256" || bits["ED25519"] != "256" {
		t.Errorf("host key sizes %v, want RSA 3072, ECDSA 256, ED25519 256", bits)
	}
	for _, f := range []string{"ssh_host_ed25519_key", "ssh_host_ecdsa_key", "ssh_host_rsa_key"} {
		fi, err := os.Stat(filepath.Join(s.Data, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("host key file %s: %v, %v", f, fi, err)
		}
	}

	// Clients limited to one host key algorithm, checking strictly against
	// the scanned keys, clone.
	for _, alg := range []string{"ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256", "ssh-ed25519"} {
		opts := []string{"-F", "/dev/null", "-i", key.Priv, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
			"-o", "BatchMode=yes", "-o", "HostKeyAlias=gitserver-test", "-o", "UserKnownHostsFile=" + kh,
			"-o", "StrictHostKeyChecking=yes", "-o", "HostKeyAlgorithms=" + alg, "-o", "LogLevel=ERROR"}
		dir := cloneT(t, sshGit(t, opts), sshURL(t, s, "erin", "r"))
		if got := strings.TrimSpace(gitMust(t, g, dir, "rev-parse", "HEAD")); got != head {
			t.Errorf("clone with %s: head %s, want %s", alg, got, head)
		}
	}

	// The same keys after a restart.
	s.Restart()
	if after := keyscan(t, s, "ecdsa,rsa,ed25519"); !slices.Equal(after, keys) {
		t.Fatalf("host keys changed across a restart:\n%v\n%v", keys, after)
	}
}
