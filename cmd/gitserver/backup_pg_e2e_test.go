package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gitserver/store/postgres/pgtest"
)

// TestBackupPostgresE2E: a backup of two nodes on PostgreSQL, taken while
// pushes go through both, restores into a new PostgreSQL database (with
// its repository root) and into the SQLite default: every push
// acknowledged before the backup began is there, with its build, and the
// version published before it.
func TestBackupPostgresE2E(t *testing.T) {
	t.Parallel()
	a, b := startNodes(t)
	admin := Cred{"admin", a.AdminPassword}
	worker := a.Token("admin", "builds")
	g := NewGitEnv(t)

	// A published version.
	c1 := pushNew(t, g, a, admin, "rel")
	b1 := runBuild(t, b, worker, c1, "succeeded")
	if code, v := a.JSON("POST", "/api/v1/repos/admin/rel/versions", admin, map[string]any{"build_id": jsonNum(t, b1, "id"), "bump": "minor"}); code != 201 {
		t.Fatalf("publish: %d %v", code, v)
	}

	// Pushers through both nodes while the backup runs.
	const pushers = 2
	works := make([]string, pushers)
	nodes := []*TestServer{a, b}
	for i := range pushers {
		name := fmt.Sprintf("load%d", i)
		a.CreateRepo(admin, "admin", name, "restricted")
		works[i] = g.Init(nodes[i].RepoURL(admin, "admin", name))
	}
	var mu sync.Mutex
	acks := make([][]backupAck, pushers)
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
				c := g.Commit(works[i], "f", fmt.Sprint(n), fmt.Sprint("load ", n))
				if out, err := g.Run(works[i], "push", "-q", "origin", "master"); err != nil {
					t.Errorf("push: %v %s", err, out)
					return
				}
				mu.Lock()
				acks[i] = append(acks[i], backupAck{c, time.Now()})
				mu.Unlock()
			}
		})
	}
	// Back up once every pusher has had a push acknowledged (a second's
	// sleep was not always enough on a loaded machine).
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		ready := true
		for i := range acks {
			ready = ready && len(acks[i]) > 0
		}
		mu.Unlock()
		if ready {
			break
		}
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatal("no push acknowledged within 60s")
		}
	}
	backupFile := filepath.Join(t.TempDir(), "pg.tar")
	began := time.Now()
	out, stderr, err := adminCmd(t, a.Env, "backup", "--out", backupFile, "--data", a.Data,
		"--repos-dir", argValue(a.Args, "--repos-dir"), "--secret-key-file", argValue(a.Args, "--secret-key-file"))
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("backup: %v\n%s\n%s", err, out, stderr)
	}
	if strings.Contains(out+stderr, pgtest.Password) {
		t.Fatalf("backup output shows the database password")
	}

	check := func(s *TestServer, what string) {
		t.Helper()
		if got := buildsFor(t, s, admin, "admin", "rel", c1); len(got) != 1 {
			t.Errorf("%s: build of the published commit: %v", what, got)
		}
		if code, body := s.Do("GET", "/api/v1/repos/admin/rel/versions", admin, nil); code != 200 || !strings.Contains(string(body), c1) {
			t.Errorf("%s: versions: %d %s", what, code, body)
		}
		for i := range pushers {
			name := fmt.Sprintf("load%d", i)
			head := lsRemoteHead(t, g, s.RepoURL(admin, "admin", name))
			clone := g.Clone(s.RepoURL(admin, "admin", name))
			var last string
			for _, ack := range acks[i] {
				if !ack.at.After(began) {
					last = ack.commit
				}
			}
			if last == "" {
				t.Fatalf("%s: no push acknowledged before the backup", name)
			}
			if _, err := g.Run(clone, "merge-base", "--is-ancestor", last, head); err != nil {
				t.Errorf("%s, %s: push %s acknowledged before the backup is not in the restored head %s", what, name, last, head)
			}
			if len(buildsFor(t, s, admin, "admin", name, head)) != 1 {
				t.Errorf("%s, %s: the restored head %s has no build", what, name, head)
			}
		}
	}

	// Into a new PostgreSQL database and repository root.
	url2 := pgtest.Start(t)
	shared2 := t.TempDir()
	data2 := filepath.Join(t.TempDir(), "data")
	env2 := []string{"GITSERVER_DATABASE_URL=" + url2, "GITSERVER_REPOS_DIR=" + filepath.Join(shared2, "repos")}
	if out, stderr, err := adminCmd(t, env2, "restore", "--from", backupFile, "--data", data2); err != nil {
		t.Fatalf("restore into PostgreSQL: %v\n%s\n%s", err, out, stderr)
	}
	s2 := StartServer(t, WithData(data2), WithEnv(env2...))
	check(s2, "PostgreSQL")

	// Into the SQLite default.
	data3 := filepath.Join(t.TempDir(), "data")
	if out, stderr, err := adminCmd(t, nil, "restore", "--from", backupFile, "--data", data3); err != nil {
		t.Fatalf("restore into SQLite: %v\n%s\n%s", err, out, stderr)
	}
	s3 := StartServer(t, WithData(data3))
	check(s3, "SQLite")
}

// argValue is the value following flag in args ("" if absent).
func argValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// TestRestorePostgresFailedLeavesEmptyDatabaseE2E: a restore into
// PostgreSQL that fails after its rows were loaded (an archive cut short
// in a bundle) takes them back, as it takes back the data directory, so
// that the same database can take the next attempt.
func TestRestorePostgresFailedLeavesEmptyDatabaseE2E(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	g := NewGitEnv(t)
	head := pushNew(t, g, s, admin, "r")
	file := filepath.Join(t.TempDir(), "b.tar")
	if out, stderr, err := adminCmd(t, nil, "backup", "--out", file, "--data", s.Data); err != nil {
		t.Fatalf("backup: %v %s %s", err, out, stderr)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.tar")
	if err := os.WriteFile(cut, b[:len(b)-1024-512], 0o600); err != nil {
		t.Fatal(err)
	}
	url := pgtest.Start(t)
	env := []string{"GITSERVER_DATABASE_URL=" + url}
	data := filepath.Join(t.TempDir(), "data")
	if out, stderr, err := adminCmd(t, env, "restore", "--from", cut, "--data", data); err == nil || !strings.Contains(stderr, "repos/") {
		t.Fatalf("restore of an archive cut short in a bundle: %v %s %s", err, out, stderr)
	}
	if out, stderr, err := adminCmd(t, env, "restore", "--from", file, "--data", data); err != nil {
		t.Fatalf("restore into the database of the failed attempt: %v %s %s", err, out, stderr)
	}
	// A restore refused by the (now full) database takes back nothing of it.
	other := filepath.Join(t.TempDir(), "data")
	if _, stderr, err := adminCmd(t, env, "restore", "--from", file, "--data", other); err == nil || !strings.Contains(stderr, "not empty") {
		t.Fatalf("restore into a full database: %v %s", err, stderr)
	}
	s2 := StartServer(t, WithData(data), WithEnv(env...))
	if got := lsRemoteHead(t, g, s2.RepoURL(admin, "admin", "r")); got != head {
		t.Fatalf("restored head %s, pushed %s", got, head)
	}
}

// TestBackupWithoutReposDirE2E: a backup of nodes on a shared --repos-dir
// run without that setting is refused, rather than written with every
// repository as one without refs (their directories are not under the
// data directory).
func TestBackupWithoutReposDirE2E(t *testing.T) {
	t.Parallel()
	a, _ := startNodes(t)
	admin := Cred{"admin", a.AdminPassword}
	pushNew(t, NewGitEnv(t), a, admin, "r")
	file := filepath.Join(t.TempDir(), "b.tar")
	out, stderr, err := adminCmd(t, a.Env, "backup", "--out", file, "--data", a.Data,
		"--secret-key-file", argValue(a.Args, "--secret-key-file"))
	if err == nil || !strings.Contains(stderr, "--repos-dir") {
		t.Fatalf("backup without --repos-dir: %v\n%s%s", err, out, stderr)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("the refused backup wrote %s: %v", file, err)
	}
}
