package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"gitserver/store"
)

// finishedBuild queues, claims and completes a build of commit with status.
func finishedBuild(t *testing.T, s store.Store, r store.Repo, commit string, status store.BuildStatus) store.Build {
	t.Helper()
	b, _ := enqueue(t, s, r, commit, "", 1)
	c := claim(t, s, "w", time.Minute)
	if c.ID != b.ID {
		t.Fatalf("claimed build %d, want %d", c.ID, b.ID)
	}
	done, err := s.CompleteBuild(context.Background(), c.ID, c.LeaseToken, status, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return done
}

func testPublishNumbering(t *testing.T, f Factory) {
	clock := newFakeClock()
	s := f.open(t, clock)
	r := testRepo(t, s, "alice", "app")
	other := testRepo(t, s, "alice", "other")
	ctx := context.Background()

	steps := []struct{ bump, want string }{
		{"minor", "0.1.0"},
		{"minor", "0.2.0"},
		{"patch", "0.2.1"},
		{"major", "1.0.0"},
		{"patch", "1.0.1"},
		{"patch", "1.0.2"},
		{"minor", "1.1.0"},
		{"major", "2.0.0"},
	}
	for i, st := range steps {
		b := finishedBuild(t, s, r, commitID(i), store.BuildSucceeded)
		clock.Advance(time.Minute)
		v, err := s.Publish(ctx, r.ID, b.ID, st.bump, "notes "+st.want, "alice")
		if err != nil {
			t.Fatalf("publish %s: %v", st.bump, err)
		}
		if v.String() != st.want || v.Commit != b.Commit || v.BuildID != b.ID || v.PublishedBy != "alice" ||
			v.ReleaseNotes != "notes "+st.want || !v.PublishedAt.Equal(clock.Now()) {
			t.Fatalf("step %d: got %+v (%s), want %s of build %d", i, v, v, st.want, b.ID)
		}
	}
	list, err := s.Versions(ctx, r.ID)
	if err != nil || len(list) != len(steps) {
		t.Fatalf("versions: %d, %v", len(list), err)
	}
	for i, v := range list {
		want := steps[len(steps)-1-i].want
		if v.String() != want {
			t.Errorf("versions[%d] = %s, want %s (newest first)", i, v, want)
		}
	}
	pins, err := s.PinnedCommits(ctx, r.ID)
	if err != nil || len(pins) != len(steps) {
		t.Errorf("pinned commits: %d, %v", len(pins), err)
	}

	// Another repository counts from 0.0.0 on its own.
	b := finishedBuild(t, s, other, commitID(100), store.BuildSucceeded)
	v, err := s.Publish(ctx, other.ID, b.ID, "patch", "", "bob")
	if err != nil || v.String() != "0.0.1" {
		t.Errorf("first version of another repo: %s, %v; want 0.0.1", v, err)
	}
	if l, _ := s.Versions(ctx, other.ID); len(l) != 1 {
		t.Errorf("other repo has %d versions, want 1", len(l))
	}
}

func testPublishOnlySucceededBuilds(t *testing.T, f Factory) {
	s := f.open(t, newFakeClock())
	r := testRepo(t, s, "alice", "app")
	other := testRepo(t, s, "alice", "other")
	ctx := context.Background()

	failed := finishedBuild(t, s, r, commitID(1), store.BuildFailed)
	ob := finishedBuild(t, s, other, commitID(5), store.BuildSucceeded)
	if _, err := s.Publish(ctx, r.ID, failed.ID, "minor", "", "alice"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("publish failed build: %v, want ErrConflict", err)
	}
	running, _ := enqueue(t, s, r, commitID(2), "", 1)
	claim(t, s, "w", time.Minute)
	if _, err := s.Publish(ctx, r.ID, running.ID, "minor", "", "alice"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("publish running build: %v, want ErrConflict", err)
	}
	queued, _ := enqueue(t, s, r, commitID(3), "", 1)
	if _, err := s.Publish(ctx, r.ID, queued.ID, "minor", "", "alice"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("publish queued build: %v, want ErrConflict", err)
	}
	superseded := queued
	enqueue(t, s, r, commitID(4), "", 1)
	if got := mustBuild(t, s, superseded.ID); got.Status != store.BuildSuperseded {
		t.Fatalf("setup: build %d is %s", got.ID, got.Status)
	}
	if _, err := s.Publish(ctx, r.ID, superseded.ID, "minor", "", "alice"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("publish superseded build: %v, want ErrConflict", err)
	}
	if _, err := s.Publish(ctx, r.ID, 99999, "minor", "", "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("publish missing build: %v, want ErrNotFound", err)
	}
	// A build of another repository is not this repository's.
	if _, err := s.Publish(ctx, r.ID, ob.ID, "minor", "", "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("publish another repo's build: %v, want ErrNotFound", err)
	}
	if _, err := s.Publish(ctx, other.ID, ob.ID, "sideways", "", "alice"); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("publish with a bad bump: %v, want ErrInvalid", err)
	}
	if _, err := s.Publish(ctx, other.ID, ob.ID, "minor", strings.Repeat("x", 64<<10+1), "alice"); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("publish with huge notes: %v, want ErrInvalid", err)
	}
	if l, _ := s.Versions(ctx, r.ID); len(l) != 0 {
		t.Errorf("refused publishes left %d versions", len(l))
	}
	if l, _ := s.Versions(ctx, other.ID); len(l) != 0 {
		t.Errorf("refused publishes left %d versions in the other repo", len(l))
	}
}

func testPublishSameBuildTwice(t *testing.T, f Factory) {
	s := f.open(t, newFakeClock())
	r := testRepo(t, s, "alice", "app")
	ctx := context.Background()
	b := finishedBuild(t, s, r, commitID(1), store.BuildSucceeded)
	v, err := s.Publish(ctx, r.ID, b.ID, "major", "", "alice")
	if err != nil || v.String() != "1.0.0" {
		t.Fatalf("publish: %s %v", v, err)
	}
	_, err = s.Publish(ctx, r.ID, b.ID, "patch", "", "alice")
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "1.0.0") {
		t.Errorf("publishing the same build again: %v, want ErrConflict naming 1.0.0", err)
	}
	list, _ := s.Versions(ctx, r.ID)
	if len(list) != 1 {
		t.Errorf("%d versions after a refused re-publish, want 1", len(list))
	}
	// The next build still continues from 1.0.0.
	b2 := finishedBuild(t, s, r, commitID(2), store.BuildSucceeded)
	if v, err := s.Publish(ctx, r.ID, b2.ID, "patch", "", "alice"); err != nil || v.String() != "1.0.1" {
		t.Errorf("next publish: %s %v, want 1.0.1", v, err)
	}
}
