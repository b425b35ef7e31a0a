package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestHTTPChunkedPushWithFsckWarnings pushes, over smart HTTP, a history
// whose first commit holds a tree that fsck only warns about (a 100664
// entry: "zeroPaddedFilemode"-class warnings from old real projects),
// followed by more than 1 MiB of data, so git sends the pack chunked.
// receive-pack writes the warning on the side band while the pack is still
// arriving; unless the handler runs in full duplex, Go's HTTP/1 server then
// discards up to 256 KiB of the unread body and git sees a pack with a hole.
func TestHTTPChunkedPushWithFsckWarnings(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "old", "restricted")
	url := s.RepoURL(admin, "admin", "old")
	g := NewGitEnv(t)
	work := g.Init(url)

	// First well over 1 MiB of incompressible data, so the POST is chunked.
	data := make([]byte, 3<<20)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(work, "data.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	// And more objects than receive.unpackLimit (100), so that receive-pack
	// streams the pack into index-pack, which checks objects as they arrive
	// (unpack-objects would check them only at the end).
	for i := 0; i < 150; i++ {
		if err := os.WriteFile(filepath.Join(work, fmt.Sprintf("f%03d.txt", i)), []byte(fmt.Sprintf("file %d\n", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g.Must(work, "add", ".")
	g.Must(work, "commit", "-q", "-m", "data")

	// Then, at the tip, a tree with a 100664 entry written literally (git
	// itself would normalise the mode). pack-objects writes the tip's tree
	// before the big blob, so the warning comes while the pack still arrives.
	empty := strings.TrimSpace(g.Must(work, "hash-object", "-w", "-t", "blob", "/dev/null"))
	id, err := hex.DecodeString(empty)
	if err != nil {
		t.Fatal(err)
	}
	// The tip's tree is the first one's entries plus "zz-old-mode.txt",
	// which sorts last.
	cat := exec.Command("git", "cat-file", "tree", "HEAD^{tree}")
	cat.Dir, cat.Env = work, g.Env
	raw, err := cat.Output()
	if err != nil {
		t.Fatal(err)
	}
	raw = append(append(raw, "100664 zz-old-mode.txt\x00"...), id...)
	rawFile := filepath.Join(t.TempDir(), "tree")
	if err := os.WriteFile(rawFile, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	tree := strings.TrimSpace(g.Must(work, "hash-object", "-w", "-t", "tree", "--literally", rawFile))
	head := strings.TrimSpace(g.Must(work, "commit-tree", tree, "-p", "HEAD", "-m", "a tree with a 100664 entry, as old projects have"))
	g.Must(work, "update-ref", "refs/heads/master", head)

	out, err := g.RunEnv(work, []string{"GIT_TRACE_CURL=1", "GIT_TRACE_CURL_NO_DATA=1"}, "push", "origin", "master")
	if err != nil {
		t.Fatalf("push: %v\n%s", err, truncateTrace(out))
	}
	if !strings.Contains(strings.ToLower(out), "transfer-encoding: chunked") {
		t.Fatalf("push was not sent chunked; the test does not test what it should:\n%s", truncateTrace(out))
	}
	if !strings.Contains(out, "remote: warning") {
		t.Fatalf("receive-pack wrote no fsck warning; the test does not test what it should:\n%s", truncateTrace(out))
	}
	clone := g.Clone(url)
	if got := strings.TrimSpace(g.Must(clone, "rev-parse", "HEAD")); got != head {
		t.Fatalf("cloned %s, pushed %s", got, head)
	}
	g.Must(clone, "fsck", "--no-dangling")
}
