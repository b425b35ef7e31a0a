package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMainInProcess starts the server in this process through Main, waits
// on Ready (no log parsing), clones and pushes with the real git client,
// and closes it.
func TestMainInProcess(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	c, err := loadConfig([]string{"--data", data, "--http-addr", "127.0.0.1:0", "--ssh-addr", "127.0.0.1:0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	m := NewMain(c, slog.New(slog.NewTextHandler(logs, nil)))
	m.Self = binPath // git's hooks run the real binary, not this test binary
	m.Out = io.Discard
	errc := make(chan error, 1)
	go func() { errc <- m.Run(context.Background()) }()
	select {
	case <-m.Ready:
	case err := <-errc:
		t.Fatalf("Run returned during start-up: %v\n%s", err, logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("not ready within 30 s\n%s", logs)
	}
	closed := false
	defer func() {
		if !closed {
			m.Close()
		}
	}()
	if m.SSHAddr == nil {
		t.Errorf("SSHAddr not set although SSH listens")
	}
	pw, err := os.ReadFile(filepath.Join(data, "initial-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	s := &TestServer{t: t, Data: data, HTTPAddr: m.HTTPAddr.String(), URL: "http://" + m.HTTPAddr.String(),
		AdminPassword: strings.TrimSpace(string(pw))}
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "inproc", "restricted")
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(admin, "admin", "inproc"))
	head := g.Commit(work, "README", "hello\n", "first")
	g.Must(work, "push", "-q", "origin", "master")
	clone := g.Clone(s.RepoURL(admin, "admin", "inproc"))
	if got := strings.TrimSpace(g.Must(clone, "rev-parse", "HEAD")); got != head {
		t.Fatalf("cloned head %s, pushed %s", got, head)
	}
	// The hooks reached this process's hook socket: the push queued a build.
	if b := s.Builds(admin, "admin", "inproc"); len(b) != 1 || b[0]["commit"] != head {
		t.Errorf("builds after the push: %v, want one of %s", b, head)
	}

	closed = true
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v\n%s", err, logs)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	if conn, err := net.DialTimeout("tcp", m.HTTPAddr.String(), time.Second); err == nil {
		conn.Close()
		t.Errorf("HTTP still listens after Close")
	}
}

// TestFaultInjectionNotInProductionBinary: the fault names (and the code
// they select) are compiled only with -tags faultinject.
func TestFaultInjectionNotInProductionBinary(t *testing.T) {
	t.Parallel()
	prod, err := os.ReadFile(binPath)
	if err != nil {
		t.Fatal(err)
	}
	faulty, err := os.ReadFile(faultBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"crash-before-enqueue", "slow-backstop", "fault injection: hook enqueue fails"} {
		if bytes.Contains(prod, []byte(s)) {
			t.Errorf("the production binary contains %q", s)
		}
		if !bytes.Contains(faulty, []byte(s)) {
			t.Errorf("the faultinject binary lacks %q: this test checks nothing", s)
		}
	}
}
