package gitserver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func pkt(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

func TestNormalizeUploadPackRequest(t *testing.T) {
	t.Parallel()
	want := pkt("want 1111111111111111111111111111111111111111\n")
	v2 := func(agent string, args ...string) string {
		b := pkt("command=fetch\n") + pkt("agent="+agent+"\n") + pkt("object-format=sha1\n") + "0001"
		for _, a := range args {
			b += a
		}
		return b + "0000"
	}
	a, ok1 := normalizeUploadPackRequest([]byte(v2("git/2.39.5", pkt("ofs-delta\n"), want, pkt("done\n"))), true)
	b, ok2 := normalizeUploadPackRequest([]byte(v2("git/2.45.0", pkt("ofs-delta\n"), want, pkt("done\n"))), true)
	if !ok1 || !ok2 || string(a) != string(b) {
		t.Fatalf("clients differing only by agent: %q %v, %q %v", a, ok1, b, ok2)
	}
	c, _ := normalizeUploadPackRequest([]byte(v2("git/2.39.5", pkt("ofs-delta\n"), want, pkt("deepen 1\n"), pkt("done\n"))), true)
	d, _ := normalizeUploadPackRequest([]byte(v2("git/2.39.5", pkt("ofs-delta\n"), want, pkt("filter blob:none\n"), pkt("done\n"))), true)
	if string(c) == string(a) || string(d) == string(a) || string(c) == string(d) {
		t.Fatal("deepen and filter must be part of the key")
	}
	for name, body := range map[string]string{
		"have":      v2("g", want, pkt("have 2222222222222222222222222222222222222222\n"), pkt("done\n")),
		"no done":   v2("g", want),
		"no want":   v2("g", pkt("done\n")),
		"ls-refs":   pkt("command=ls-refs\n") + "0001" + pkt("peel\n") + "0000",
		"truncated": v2("g", want, pkt("done\n"))[:30],
		"garbage":   "zzzz",
	} {
		if _, ok := normalizeUploadPackRequest([]byte(body), true); ok {
			t.Errorf("%s: cacheable", name)
		}
	}
	// v0: capabilities on the first want, agent dropped.
	v0 := func(agent string, tail string) string {
		return pkt("want 1111111111111111111111111111111111111111 multi_ack_detailed side-band-64k ofs-delta agent="+agent+"\n") +
			pkt("want 3333333333333333333333333333333333333333\n") + "0000" + tail
	}
	e, ok1 := normalizeUploadPackRequest([]byte(v0("git/2.39.5", pkt("done\n"))), false)
	f, ok2 := normalizeUploadPackRequest([]byte(v0("git/2.30.0", pkt("done\n"))), false)
	if !ok1 || !ok2 || string(e) != string(f) || strings.Contains(string(e), "agent") {
		t.Fatalf("v0: %q %v, %q %v", e, ok1, f, ok2)
	}
	if _, ok := normalizeUploadPackRequest([]byte(v0("g", pkt("have 2222222222222222222222222222222222222222\n")+pkt("done\n"))), false); ok {
		t.Error("v0 with a have: cacheable")
	}
	if _, ok := normalizeUploadPackRequest([]byte(v0("g", "")), false); ok {
		t.Error("v0 without done (a shallow clone's first round): cacheable")
	}
}

// TestRefsVersion: every kind of ref change (update, new ref, deletion,
// packing, HEAD) changes the version; the hidden refs/gitserver/ do not.
func TestRefsVersion(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "r.git")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
			"GIT_AUTHOR_NAME=T", "GIT_AUTHOR_EMAIL=t@x", "GIT_COMMITTER_NAME=T", "GIT_COMMITTER_EMAIL=t@x")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if err := exec.Command("git", "init", "-q", "--bare", "-b", "main", dir).Run(); err != nil {
		t.Fatal(err)
	}
	tree := run("hash-object", "-t", "tree", "-w", "/dev/null")
	c1 := run("commit-tree", "-m", "one", tree)
	c2 := run("commit-tree", "-m", "two", "-p", c1, tree)
	version := func() string {
		t.Helper()
		v, err := refsVersion(dir)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	seen := map[string]string{}
	step := func(what string, args ...string) {
		t.Helper()
		run(args...)
		v := version()
		if prev, ok := seen[v]; ok {
			t.Fatalf("%s: version unchanged (same as after %s)", what, prev)
		}
		seen[v] = what
	}
	seen[version()] = "init"
	step("create main", "update-ref", "refs/heads/main", c1)
	step("move main", "update-ref", "refs/heads/main", c2)
	step("create a tag", "update-ref", "refs/tags/v1", c1)
	run("pack-refs", "--all") // same refs, other storage: may or may not change it
	seen[version()] = "pack refs"
	step("move a packed ref", "update-ref", "refs/heads/main", c1)
	step("nested branch", "update-ref", "refs/heads/feature/x", c2)
	step("delete a packed ref", "update-ref", "-d", "refs/tags/v1")
	step("HEAD", "symbolic-ref", "HEAD", "refs/heads/feature/x")
	run("pack-refs", "--all")
	v := version()
	for _, args := range [][]string{
		{"update-ref", "refs/gitserver/builds/1", c2}, // loose
		{"pack-refs", "--all"},                        // packed
		{"update-ref", "refs/gitserver/builds/2", c1},
		{"update-ref", "-d", "refs/gitserver/builds/1"},
	} {
		run(args...)
		if version() != v {
			t.Fatalf("hidden refs changed the version (%v)", args)
		}
	}
}
