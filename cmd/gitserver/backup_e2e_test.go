package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// adminCmd runs `gitserver admin ARGS...` (no --data added) and returns its
// stdout, stderr and error.
func adminCmd(t *testing.T, env []string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"admin"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

var hostKeyRE = regexp.MustCompile(`msg="ssh host key".* fingerprint=(\S+)`)

func hostKeys(s *TestServer) []string {
	var fps []string
	for _, m := range hostKeyRE.FindAllStringSubmatch(s.Output(), -1) {
		fps = append(fps, m[1])
	}
	slices.Sort(fps)
	return fps
}

// buildSummary is what must survive a restore of a build.
func buildSummary(t *testing.T, s *TestServer, c Cred, owner, name string) []string {
	t.Helper()
	var out []string
	for _, b := range s.Builds(c, owner, name) {
		out = append(out, fmt.Sprintf("%v %s %s %v", b["id"], jsonStr(b, "commit"), jsonStr(b, "status"), b["commit_count"]))
	}
	return out
}

type backupAck struct {
	commit string
	at     time.Time // when git push returned success
}

// TestBackupRestoreE2E: a backup taken while pushes run restores into a
// new data directory and a server that has every push acknowledged before
// the backup began (with its build), the builds, versions, users, tokens,
// SSH keys, SSH host keys and the mirror (whose sealed deploy key still
// opens: it syncs).
func TestBackupRestoreE2E(t *testing.T) {
	t.Parallel()
	p := newMirrorPair(t)
	p.sync(t)
	s, admin := p.here, p.admin
	worker := s.Token("admin", "builds")
	runBuild(t, s, worker, p.head(t), "succeeded") // the mirror's first head

	// Users, a token, an SSH key, a private repository.
	alicePW := s.CreateUser("alice", false)
	alice := Cred{"alice", alicePW}
	aliceTok := s.Token("alice")
	key := newSSHKey(t, "alice")
	if _, err := s.Admin("", "key", "add", "alice", "--file", key.Pub); err != nil {
		t.Fatal(err)
	}
	s.CreateRepo(alice, "alice", "priv", "restricted")
	g := NewGitEnv(t)
	aw := g.Init(s.RepoURL(alice, "alice", "priv"))
	aliceHead := g.Commit(aw, "a", "alice", "alice's")
	g.Must(aw, "push", "-q", "origin", "master")
	runBuild(t, s, worker, aliceHead, "succeeded")

	// A repository with a published version, a failed build and a queued
	// one; an empty repository.
	s.CreateRepo(admin, "admin", "rel", "restricted")
	rw := g.Init(s.RepoURL(admin, "admin", "rel"))
	c1 := g.Commit(rw, "a", "1", "c1")
	g.Must(rw, "push", "-q", "origin", "master")
	b1 := runBuild(t, s, worker, c1, "succeeded")
	if code, v := s.JSON("POST", "/api/v1/repos/admin/rel/versions", admin, map[string]any{"build_id": jsonNum(t, b1, "id"), "bump": "minor", "release_notes": "first"}); code != http.StatusCreated {
		t.Fatalf("publish: %d %v", code, v)
	}
	c2 := g.Commit(rw, "a", "2", "c2")
	g.Must(rw, "push", "-q", "origin", "master")
	runBuild(t, s, worker, c2, "failed")
	g.Commit(rw, "a", "3", "c3")
	g.Must(rw, "push", "-q", "origin", "master")
	s.CreateRepo(admin, "admin", "empty", "public")

	// Pushers push in a loop to their own repositories while the backup
	// runs.
	const pushers = 3
	works := make([]string, pushers)
	for i := range pushers {
		name := fmt.Sprintf("load%d", i)
		s.CreateRepo(admin, "admin", name, "restricted")
		works[i] = g.Init(s.RepoURL(admin, "admin", name))
	}
	var mu sync.Mutex
	acks := make([][]backupAck, pushers)
	pushErrs := make([]error, pushers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range pushers {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				os.WriteFile(filepath.Join(works[i], "f"), []byte(fmt.Sprint(n)), 0o644)
				if out, err := g.Run(works[i], "add", "f"); err != nil {
					pushErrs[i] = fmt.Errorf("add: %v %s", err, out)
					return
				}
				if out, err := g.Run(works[i], "commit", "-q", "-m", fmt.Sprint(n)); err != nil {
					pushErrs[i] = fmt.Errorf("commit: %v %s", err, out)
					return
				}
				head, err := g.Run(works[i], "rev-parse", "HEAD")
				if err != nil {
					pushErrs[i] = err
					return
				}
				if out, err := g.Run(works[i], "push", "-q", "origin", "master"); err != nil {
					pushErrs[i] = fmt.Errorf("push: %v %s", err, out)
					return
				}
				mu.Lock()
				acks[i] = append(acks[i], backupAck{strings.TrimSpace(head), time.Now()})
				mu.Unlock()
			}
		})
	}
	countAcks := func(before time.Time) (n int) {
		mu.Lock()
		defer mu.Unlock()
		for _, a := range acks {
			for _, p := range a {
				if before.IsZero() || p.at.Before(before) {
					n++
				}
			}
		}
		return n
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		ready := true
		for i := range pushers {
			ready = ready && len(acks[i]) >= 2
		}
		mu.Unlock()
		if ready {
			break
		}
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("pushers did not get going: %v", pushErrs)
		}
	}

	backupFile := filepath.Join(t.TempDir(), "site.tar.gz")
	backupStart := time.Now()
	out, stderr, err := adminCmd(t, nil, "backup", "--out", backupFile, "--data", s.Data)
	backupEnd := time.Now()
	// A few more pushes after it, then stop.
	for n := countAcks(time.Time{}); countAcks(time.Time{}) < n+pushers && time.Since(backupEnd) < 20*time.Second; {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("backup: %v\n%s\n%s", err, out, stderr)
	}
	for i, err := range pushErrs {
		if err != nil {
			t.Fatalf("pusher %d: %v", i, err)
		}
	}
	during := countAcks(backupEnd) - countAcks(backupStart)
	t.Logf("backup took %v; %d pushes acknowledged before it, %d during it, %d in all\n%s%s",
		backupEnd.Sub(backupStart).Round(time.Millisecond), countAcks(backupStart), during, countAcks(time.Time{}), out, stderr)
	if !strings.Contains(out, "wrote "+backupFile) || !strings.Contains(stderr, "backup: repositories 7/7") {
		t.Errorf("backup output:\n%s\n%s", out, stderr)
	}
	if fi, err := os.Stat(backupFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}

	// Refusals, touching nothing: a non-empty data directory, a hostile
	// archive.
	full := filepath.Join(t.TempDir(), "full")
	os.MkdirAll(full, 0o750)
	os.WriteFile(filepath.Join(full, "keep"), []byte("mine"), 0o600)
	if out, stderr, err := adminCmd(t, nil, "restore", "--from", backupFile, "--data", full); err == nil || !strings.Contains(stderr, "is not empty") {
		t.Errorf("restore into a non-empty directory: %v\n%s%s", err, out, stderr)
	}
	if entries, _ := os.ReadDir(full); len(entries) != 1 {
		t.Errorf("the refused restore changed the directory: %v", entries)
	}
	if _, stderr, err := adminCmd(t, nil, "restore", "--from", backupFile, "--data", s.Data); err == nil || !strings.Contains(stderr, "is not empty") {
		t.Errorf("restore over the running server's data: %v %s", err, stderr)
	}
	parent := t.TempDir()
	hostile := filepath.Join(parent, "hostile.tar.gz")
	writeHostile(t, backupFile, hostile)
	if _, stderr, err := adminCmd(t, nil, "restore", "--from", hostile, "--data", filepath.Join(parent, "new", "data")); err == nil || !strings.Contains(stderr, "not part of a gitserver backup") {
		t.Errorf("restore of a hostile archive: %v %s", err, stderr)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 {
		t.Errorf("the hostile archive wrote %v", entries)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(parent), "evil")); !os.IsNotExist(err) {
		t.Errorf("the hostile archive wrote outside: %v", err)
	}

	// Restore into a new directory (given through the environment, as
	// serve reads it) and start a server on it.
	data2 := filepath.Join(t.TempDir(), "restored")
	out, stderr, err = adminCmd(t, []string{"GITSERVER_DATA=" + data2}, "restore", "--from", backupFile)
	if err != nil {
		t.Fatalf("restore: %v\n%s\n%s", err, out, stderr)
	}
	t.Logf("restore:\n%s%s", out, stderr)
	s2 := StartServer(t, WithData(data2))
	if s2.AdminPassword != "" {
		t.Error("the restored server created a new admin")
	}

	// Every push acknowledged before the backup began is there, with its
	// build; every restored head has a build (queued by the restore when
	// the push came after the database snapshot).
	for i := range pushers {
		name := fmt.Sprintf("load%d", i)
		clone := g.Clone(s2.RepoURL(admin, "admin", name))
		head := strings.TrimSpace(g.Must(clone, "rev-parse", "HEAD"))
		builds := map[string]bool{}
		for _, b := range s2.Builds(admin, "admin", name) {
			builds[jsonStr(b, "commit")] = true
		}
		mu.Lock()
		mine := slices.Clone(acks[i])
		mu.Unlock()
		for _, a := range mine {
			if !a.at.Before(backupStart) {
				continue
			}
			if _, err := g.Run(clone, "cat-file", "-e", a.commit+"^{commit}"); err != nil {
				t.Errorf("%s: push of %s acknowledged before the backup is missing", name, a.commit)
			}
			if !builds[a.commit] {
				t.Errorf("%s: push of %s acknowledged before the backup has no build", name, a.commit)
			}
		}
		if !builds[head] {
			t.Errorf("%s: the restored head %s has no build", name, head)
		}
	}

	// The quiet repositories are exactly as they were.
	for _, r := range [][2]string{{"admin", "rel"}, {"admin", "empty"}, {"alice", "priv"}, {"admin", "app"}} {
		a, _ := g.Run("", "ls-remote", s.RepoURL(admin, r[0], r[1]))
		b, _ := g.Run("", "ls-remote", s2.RepoURL(admin, r[0], r[1]))
		if a != b {
			t.Errorf("%s/%s: refs %q, restored %q", r[0], r[1], a, b)
		}
	}
	if a, b := buildSummary(t, s, admin, "admin", "rel"), buildSummary(t, s2, admin, "admin", "rel"); !slices.Equal(a, b) || len(a) != 3 {
		t.Errorf("builds %v, restored %v", a, b)
	}
	va, vb := versionsOf(t, s, admin, "admin", "rel"), versionsOf(t, s2, admin, "admin", "rel")
	if len(va) != 1 || fmt.Sprint(va) != fmt.Sprint(vb) {
		t.Errorf("versions %v, restored %v", va, vb)
	}

	// Credentials: password, token, SSH key; the host keys are the same.
	if code, _ := s2.Do("GET", "/api/v1/user", alice, nil); code != http.StatusOK {
		t.Errorf("alice's password on the restored server: %d", code)
	}
	clone := g.Clone(s2.RepoURL(Cred{Secret: aliceTok}, "alice", "priv"))
	if h := strings.TrimSpace(g.Must(clone, "rev-parse", "HEAD")); h != aliceHead {
		t.Errorf("clone with alice's token: %s, want %s", h, aliceHead)
	}
	sg := sshGit(t, sshOptions(key.Priv))
	sclone := cloneT(t, sg, sshURL(t, s2, "alice", "priv"))
	if h := strings.TrimSpace(gitMust(t, sg, sclone, "rev-parse", "HEAD")); h != aliceHead {
		t.Errorf("clone with alice's SSH key: %s, want %s", h, aliceHead)
	}
	if a, b := hostKeys(s), hostKeys(s2); len(a) != 3 || !slices.Equal(a, b) {
		t.Errorf("SSH host keys %v, restored %v", a, b)
	}

	// The mirror syncs from the restored server: its sealed deploy key
	// opened with the restored secret key.
	next := p.git.Commit(p.work, "a.txt", "after the backup\n", "after")
	p.git.Must(p.work, "push", "-q", "origin", "master")
	p2 := &mirrorPair{up: p.up, here: s2, upAdmin: p.upAdmin, admin: admin, git: p.git, work: p.work}
	if m := p2.sync(t); m["status"] != "ok" {
		t.Fatalf("mirror on the restored server: %v", m)
	}
	if h := p2.head(t); h != next {
		t.Errorf("mirror head on the restored server %s, want %s", h, next)
	}
}

// TestBackupWithoutSecretKeyE2E: a backup made --without-secret-key
// restores only with the key file of its server: none is refused before
// anything is written, another server's key is refused once it fails to
// open the sealed secrets (and what was written is removed), the right one
// restores a mirror that syncs.
func TestBackupWithoutSecretKeyE2E(t *testing.T) {
	t.Parallel()
	p := newMirrorPair(t)
	p.sync(t)
	s := p.here
	file := filepath.Join(t.TempDir(), "nokey.tar")
	out, _, err := adminCmd(t, nil, "backup", "--without-secret-key", "--out", file, "--data", s.Data)
	if err != nil || !strings.Contains(out, "not the secret key") {
		t.Fatalf("backup: %v %s", err, out)
	}
	listing, err := exec.Command("tar", "tf", file).Output()
	if err != nil || strings.Contains(string(listing), "secret.key") || !strings.Contains(string(listing), "files/ssh_host_ed25519_key") {
		t.Fatalf("archive entries (%v):\n%s", err, listing)
	}
	parent := t.TempDir()
	data := filepath.Join(parent, "data")
	if _, stderr, err := adminCmd(t, nil, "restore", "--from", file, "--data", data); err == nil || !strings.Contains(stderr, "--without-secret-key") {
		t.Fatalf("restore without a key: %v %s", err, stderr)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Fatalf("the refused restore wrote %v", entries)
	}
	wrongKey := filepath.Join(p.up.Data, "secret.key") // another server's
	if _, stderr, err := adminCmd(t, nil, "restore", "--from", file, "--data", data, "--secret-key-file", wrongKey); err == nil || !strings.Contains(stderr, "does not open") {
		t.Fatalf("restore with another server's key: %v %s", err, stderr)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Fatalf("the failed restore left %v", entries)
	}
	if _, err := os.Stat(wrongKey); err != nil {
		t.Fatalf("the failed restore removed the key it was given: %v", err)
	}
	rightKey := filepath.Join(s.Data, "secret.key")
	if out, stderr, err := adminCmd(t, nil, "restore", "--from", file, "--data", data, "--secret-key-file", rightKey); err != nil {
		t.Fatalf("restore with the key: %v %s %s", err, out, stderr)
	}
	s2 := StartServer(t, WithData(data), WithArgs("--secret-key-file", rightKey))
	p2 := &mirrorPair{up: p.up, here: s2, upAdmin: p.upAdmin, admin: p.admin, git: p.git, work: p.work}
	if m := p2.sync(t); m["status"] != "ok" {
		t.Fatalf("mirror on the restored server: %v", m)
	}
}

// writeHostile copies the manifest of a real backup into a new archive and
// adds an entry that climbs out of the data directory.
func writeHostile(t *testing.T, from, to string) {
	t.Helper()
	f, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != "manifest.json" {
		t.Fatalf("first entry %v %v", hdr, err)
	}
	manifest, _ := io.ReadAll(tr)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range []struct{ name, body string }{{"manifest.json", string(manifest)}, {"../../evil", "owned"}} {
		tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(e.body))})
		tw.Write([]byte(e.body))
	}
	tw.Close()
	zw.Close()
	if err := os.WriteFile(to, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreRefusesNonEmptyReposDirE2E: a restore with --repos-dir is
// refused, touching nothing, when that directory holds anything (the live
// repository root of a running server, say): its repositories' refs
// would otherwise be force-updated from the bundles.
func TestRestoreRefusesNonEmptyReposDirE2E(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "r", "restricted")
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(admin, "admin", "r"))
	g.Commit(work, "a", "1", "backed up")
	g.Must(work, "push", "-q", "origin", "master")
	file := filepath.Join(t.TempDir(), "b.tar")
	if out, stderr, err := adminCmd(t, nil, "backup", "--out", file, "--data", s.Data); err != nil {
		t.Fatalf("backup: %v %s %s", err, out, stderr)
	}
	newer := g.Commit(work, "a", "2", "after the backup")
	g.Must(work, "push", "-q", "origin", "master")

	live := filepath.Join(s.Data, "repos")
	data := filepath.Join(t.TempDir(), "data")
	if out, stderr, err := adminCmd(t, nil, "restore", "--from", file, "--data", data, "--repos-dir", live); err == nil || !strings.Contains(stderr, "is not empty") {
		t.Errorf("restore into a non-empty repository root: %v\n%s%s", err, out, stderr)
	}
	clone := g.Clone(s.RepoURL(admin, "admin", "r"))
	if got := strings.TrimSpace(g.Must(clone, "rev-parse", "HEAD")); got != newer {
		t.Errorf("the refused restore moved master of the live repository to %s (was %s)", got, newer)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("the refused restore left %s: %v", data, err)
	}

	// A failed restore (an archive cut short in the last bundle) removes
	// the repositories it created in an empty --repos-dir of its own.
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.tar")
	if err := os.WriteFile(cut, b[:len(b)-1024-512], 0o600); err != nil {
		t.Fatal(err)
	}
	repos := t.TempDir()
	if _, stderr, err := adminCmd(t, nil, "restore", "--from", cut, "--data", data, "--repos-dir", repos); err == nil {
		t.Fatalf("restore of a truncated archive succeeded: %s", stderr)
	}
	if entries, _ := os.ReadDir(repos); len(entries) != 0 {
		t.Errorf("the failed restore left %v in the repository root", entries)
	}
	if out, stderr, err := adminCmd(t, nil, "restore", "--from", file, "--data", data, "--repos-dir", repos); err != nil {
		t.Fatalf("restore into an empty repository root: %v %s %s", err, out, stderr)
	}
}
