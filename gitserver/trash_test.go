package gitserver

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gitserver/store"
)

// lockedBuffer is a log sink safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestReposDeleteViaTrash: deletion renames into the trash first, then
// deletes the rows, then removes the directory; a removal that fails is
// logged once and retried by the sweep; a failed rename deletes nothing; a
// failed row deletion puts the directory back.
func TestReposDeleteViaTrash(t *testing.T) {
	f := newMaintFixture(t)
	var logs lockedBuffer
	f.repos.Log = slog.New(slog.NewTextHandler(&logs, nil))
	ctx := context.Background()
	r := f.repoWithPushes(7, 1)
	dir := f.repos.Dir(r)

	// Removal fails (as root, chmod cannot make it fail: a seam).
	failing := true
	f.repos.removeAll = func(p string) error {
		if failing {
			return errors.New("injected: directory not empty")
		}
		return os.RemoveAll(p)
	}
	var rowsDeleted bool
	rows := func(context.Context) error {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("rows deleted while the directory is still live: %v", err)
		}
		rowsDeleted = true
		return nil
	}
	if err := f.repos.Delete(ctx, r, rows); err != nil {
		t.Fatalf("Delete with a failing removal: %v (the rows are gone: it must succeed)", err)
	}
	if !rowsDeleted {
		t.Fatal("rows not deleted")
	}
	trash, _ := os.ReadDir(f.repos.TrashDir())
	if len(trash) != 1 || !strings.HasPrefix(trash[0].Name(), "7.git-") {
		t.Fatalf("trash holds %v, want the deleted repository", trash)
	}
	f.repos.SweepTrash()
	f.repos.SweepTrash()
	if n := strings.Count(logs.String(), "could not be removed yet"); n != 1 {
		t.Fatalf("removal failure logged %d times, want once:\n%s", n, logs.String())
	}
	failing = false
	f.repos.SweepTrash()
	if trash, _ := os.ReadDir(f.repos.TrashDir()); len(trash) != 0 {
		t.Fatalf("sweep left %v in the trash", trash)
	}
	if !strings.Contains(logs.String(), "deleted repository's directory removed") {
		t.Errorf("the late removal is not logged:\n%s", logs.String())
	}

	// The rename fails (the trash is not a directory): nothing is deleted.
	r2 := f.repoWithPushes(8, 1)
	os.RemoveAll(f.repos.TrashDir())
	if err := os.WriteFile(f.repos.TrashDir(), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	called := false
	err := f.repos.Delete(ctx, r2, func(context.Context) error { called = true; return nil })
	if err == nil || called {
		t.Fatalf("Delete with a failing rename: err %v, rows deleted %v; want an error and the rows kept", err, called)
	}
	if !strings.Contains(err.Error(), "nothing was deleted") {
		t.Errorf("error does not say nothing was deleted: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.repos.Dir(r2), "HEAD")); err != nil {
		t.Fatalf("repository damaged by a failed delete: %v", err)
	}

	// The rows cannot be deleted: the directory comes back.
	os.Remove(f.repos.TrashDir())
	err = f.repos.Delete(ctx, r2, func(context.Context) error { return errors.New("injected: database locked") })
	if err == nil {
		t.Fatal("Delete ignored the failed row deletion")
	}
	if _, err := os.Stat(filepath.Join(f.repos.Dir(r2), "HEAD")); err != nil {
		t.Fatalf("directory not restored after a failed row deletion: %v", err)
	}
}

// TestMaintenanceOfDeletedRepo: maintenance scheduled for a repository
// that is deleted meanwhile is cancelled, and a repository whose directory
// is gone is skipped without a misleading "fork/exec ... no such file or
// directory" in the log.
func TestMaintenanceOfDeletedRepo(t *testing.T) {
	f := newMaintFixture(t)
	var logs lockedBuffer
	done := make(chan error, 10)
	m := &Maintainer{Git: f.git, Repos: f.repos, Log: slog.New(slog.NewTextHandler(&logs, nil)),
		Delay: 200 * time.Millisecond, OnDone: func(_ store.Repo, err error) { done <- err }}
	defer m.Close()

	// Gone without Delete (e.g. removed by hand): skipped quietly.
	gone := f.repoWithPushes(1, 1)
	m.Schedule(gone)
	if err := os.RemoveAll(f.repos.Dir(gone)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("job did not run")
	}
	for _, bad := range []string{"fork/exec", "no such file or directory", "maintenance failed"} {
		if strings.Contains(logs.String(), bad) {
			t.Errorf("log of a deleted repository's maintenance says %q:\n%s", bad, logs.String())
		}
	}

	// Deleted through Repos.Delete: the scheduled job is cancelled.
	deleted := f.repoWithPushes(2, 1)
	m.Schedule(deleted)
	if err := f.repos.Delete(context.Background(), deleted, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("maintenance ran for a deleted repository (err %v)", err)
	case <-time.After(600 * time.Millisecond):
	}
	m.mu.Lock()
	n := len(m.jobs)
	m.mu.Unlock()
	if n != 0 {
		t.Errorf("%d maintenance jobs left after deletion", n)
	}
}
