package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gitserver/store"
	"gitserver/store/sqlite"
	"gitserver/store/storetest"
)

// site is a data directory of the shape the server uses: a SQLite store,
// bare repositories named by id under repos/, and a key file.
type site struct {
	t     *testing.T
	root  string
	store store.Store
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LANG=C",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com"}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %v: %s", args[0], err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

func (s *site) must(dir string, args ...string) string {
	s.t.Helper()
	out, err := git(context.Background(), dir, args...)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

var sealer store.Sealer

func newSite(t *testing.T, root string) *site {
	t.Helper()
	if sealer == nil {
		sealer = storetest.NewTestSealer(t)
	}
	if err := os.MkdirAll(filepath.Join(root, "repos"), 0o750); err != nil {
		t.Fatal(err)
	}
	s, err := sqlite.Open(context.Background(), filepath.Join(root, "gitserver.db"), sqlite.Options{Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &site{t: t, root: root, store: s}
}

func (s *site) repoDir(r store.Repo) string {
	return filepath.Join(s.root, "repos", strconv.FormatInt(r.ID, 10)+".git")
}

func (s *site) initRepo(ctx context.Context, r store.Repo) error {
	_, err := git(ctx, s.root, "init", "--bare", "--quiet", "--initial-branch="+r.DefaultBranch, s.repoDir(r))
	return err
}

// repo creates a repository row and directory, with commits on main
// pushed into it unless commits is 0.
func (s *site) repo(owner store.Account, name string, commits int) store.Repo {
	s.t.Helper()
	ctx := context.Background()
	r, err := s.store.CreateRepo(ctx, store.NewRepo{OwnerID: owner.ID, Name: name, Visibility: store.Restricted})
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.initRepo(ctx, r); err != nil {
		s.t.Fatal(err)
	}
	if commits == 0 {
		return r
	}
	work := s.t.TempDir()
	s.must(work, "init", "--quiet", "--initial-branch="+r.DefaultBranch)
	for i := range commits {
		os.WriteFile(filepath.Join(work, "f"), []byte(name+strconv.Itoa(i)), 0o644)
		s.must(work, "add", "f")
		s.must(work, "commit", "--quiet", "-m", "c"+strconv.Itoa(i))
	}
	s.must(work, "tag", "v1")
	s.must(work, "push", "--quiet", s.repoDir(r), "HEAD:refs/heads/"+r.DefaultBranch, "refs/tags/v1")
	head := s.must(work, "rev-parse", "HEAD")
	s.must(s.repoDir(r), "update-ref", "refs/gitserver/pins/"+head, head)
	return r
}

func (s *site) refs(r store.Repo) string {
	s.t.Helper()
	return s.must(s.repoDir(r), "for-each-ref", "--format=%(objectname) %(refname)")
}

func (s *site) options(files []File) Options {
	return Options{Store: s.store, StoreKind: "sqlite", Git: git, RepoDir: s.repoDir, Files: files, TempDir: s.t.TempDir(), Version: "test"}
}

func restoreOptions(t *testing.T, root string, opened *store.Store) RestoreOptions {
	dst := &site{t: t, root: root}
	return RestoreOptions{
		SchemaVersion: sqlite.SchemaVersion(),
		Open: func(ctx context.Context) (store.Store, error) {
			if err := os.MkdirAll(filepath.Join(root, "repos"), 0o750); err != nil {
				return nil, err
			}
			s, err := sqlite.Open(ctx, filepath.Join(root, "gitserver.db"), sqlite.Options{Sealer: sealer})
			if err == nil {
				*opened = s
				t.Cleanup(func() { s.Close() })
			}
			return s, err
		},
		Git: git, InitRepo: dst.initRepo, RepoDir: dst.repoDir,
		Files:   map[string]string{"secret.key": filepath.Join(root, "secret.key"), "ssh_host_ed25519_key": filepath.Join(root, "ssh_host_ed25519_key")},
		TempDir: t.TempDir(),
	}
}

func TestCreateRestoreRoundTrip(t *testing.T) {
	for _, compressed := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", compressed), func(t *testing.T) {
			ctx := context.Background()
			src := newSite(t, t.TempDir())
			alice, err := src.store.CreateUser(ctx, "alice", "password-alice", true)
			if err != nil {
				t.Fatal(err)
			}
			full := src.repo(alice, "full", 3)
			empty := src.repo(alice, "empty", 0)
			other := src.repo(alice, "other", 1)
			tok, _, err := src.store.CreateToken(ctx, alice.ID, "t", nil)
			if err != nil {
				t.Fatal(err)
			}
			keyFile := filepath.Join(src.root, "secret.key")
			os.WriteFile(keyFile, []byte("gitserver secret key v1\nkey\n"), 0o600)

			var buf bytes.Buffer
			var w = &buf
			var progress []Progress
			opt := src.options([]File{{Name: "secret.key", Path: keyFile}, {Name: "ssh_host_ed25519_key", Path: filepath.Join(src.root, "nope"), Optional: true}})
			opt.Progress = func(p Progress) { progress = append(progress, p) }
			var zw *gzip.Writer
			var m Manifest
			if compressed {
				zw = gzip.NewWriter(w)
				m, err = Create(ctx, zw, opt)
				zw.Close()
			} else {
				m, err = Create(ctx, w, opt)
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Repositories != 3 || m.Tables["accounts"] != 1 || m.Tables["tokens"] != 1 || m.SchemaVersion != sqlite.SchemaVersion() || !slices.Equal(m.Files, []string{"secret.key"}) {
				t.Fatalf("manifest %+v", m)
			}
			if last := progress[len(progress)-1]; last.Phase != "done" || last.ReposDone != 3 || last.ReposTotal != 3 || last.Bytes == 0 {
				t.Fatalf("progress %+v", progress)
			}

			root := filepath.Join(t.TempDir(), "restored")
			var opened store.Store
			res, err := Restore(ctx, bytes.NewReader(buf.Bytes()), restoreOptions(t, root, &opened))
			if err != nil {
				t.Fatal(err)
			}
			if res.Repositories != 2 || res.Empty != 1 || res.Deleted != 0 || res.Store != opened {
				t.Fatalf("result %+v", res)
			}
			storetest.SameDump(t, storetest.DumpAll(t, src.store), storetest.DumpAll(t, res.Store))
			dst := &site{t: t, root: root, store: res.Store}
			for _, r := range []store.Repo{full, empty, other} {
				if a, b := src.refs(r), dst.refs(r); a != b {
					t.Errorf("%s: refs %q, restored %q", r.Name, a, b)
				}
			}
			if !strings.Contains(dst.refs(full), "refs/gitserver/pins/") || !strings.Contains(dst.refs(full), "refs/tags/v1") {
				t.Errorf("hidden refs or tags lost: %s", dst.refs(full))
			}
			if dst.must(dst.repoDir(full), "fsck", "--no-progress") != "" {
				t.Errorf("fsck complains")
			}
			if got, _ := os.ReadFile(filepath.Join(root, "secret.key")); string(got) != "gitserver secret key v1\nkey\n" {
				t.Errorf("key file %q", got)
			}
			if fi, err := os.Stat(filepath.Join(root, "secret.key")); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("key file mode: %v %v", fi, err)
			}
			if _, err := os.Stat(filepath.Join(root, "ssh_host_ed25519_key")); !os.IsNotExist(err) {
				t.Errorf("an optional file missing from the backup was restored: %v", err)
			}
			if _, _, err := res.Store.CheckToken(ctx, "alice", tok); err != nil {
				t.Errorf("token after restore: %v", err)
			}
		})
	}
}

// TestCreateWhileRepositoriesChange: a repository deleted after the
// snapshot is restored as deleted; one whose directory never appears is
// restored empty; pushes after the snapshot may be in the bundles, never
// missing from them.
func TestCreateWhileRepositoriesChange(t *testing.T) {
	defer func(d time.Duration) { missingDirWait = d }(missingDirWait)
	missingDirWait = 200 * time.Millisecond
	ctx := context.Background()
	src := newSite(t, t.TempDir())
	alice, err := src.store.CreateUser(ctx, "alice", "password-alice", true)
	if err != nil {
		t.Fatal(err)
	}
	kept := src.repo(alice, "kept", 1)
	doomed := src.repo(alice, "doomed", 2)
	nodir, err := src.store.CreateRepo(ctx, store.NewRepo{OwnerID: alice.ID, Name: "nodir", Visibility: store.Restricted})
	if err != nil {
		t.Fatal(err)
	}
	before := src.refs(kept)
	var after string
	opt := src.options(nil)
	opt.Progress = func(p Progress) {
		if p.Phase != "database" {
			return
		}
		// After the snapshot, before the repositories: a push to kept, a
		// deletion of doomed (directory first, then rows, as the server).
		work := t.TempDir()
		src.must(work, "clone", "--quiet", src.repoDir(kept), ".")
		os.WriteFile(filepath.Join(work, "g"), []byte("late"), 0o644)
		src.must(work, "add", "g")
		src.must(work, "commit", "--quiet", "-m", "late")
		src.must(work, "push", "--quiet", "origin", "HEAD:main")
		after = src.refs(kept)
		if err := os.RemoveAll(src.repoDir(doomed)); err != nil {
			t.Error(err)
		}
		if err := src.store.DeleteRepo(ctx, doomed.ID); err != nil {
			t.Error(err)
		}
	}
	var buf bytes.Buffer
	if _, err := Create(ctx, &buf, opt); err != nil {
		t.Fatal(err)
	}
	if before == after {
		t.Fatal("the late push changed nothing")
	}
	root := filepath.Join(t.TempDir(), "restored")
	var opened store.Store
	res, err := Restore(ctx, bytes.NewReader(buf.Bytes()), restoreOptions(t, root, &opened))
	if err != nil {
		t.Fatal(err)
	}
	if res.Repositories != 1 || res.Empty != 1 || res.Deleted != 1 {
		t.Fatalf("result %+v", res)
	}
	dst := &site{t: t, root: root, store: res.Store}
	if got := dst.refs(kept); got != after {
		t.Errorf("kept: refs %q, want the late push's %q", got, after)
	}
	if _, err := res.Store.RepoByID(ctx, doomed.ID); err == nil {
		t.Error("the repository deleted during the backup was restored")
	}
	if _, err := os.Stat(dst.repoDir(doomed)); !os.IsNotExist(err) {
		t.Errorf("doomed's directory: %v", err)
	}
	if got := dst.refs(nodir); got != "" {
		t.Errorf("nodir: refs %q", got)
	}
	if ev, _ := res.Store.AuditEvents(ctx, 1); len(ev) != 1 || ev[0].Action != "repo.delete" || ev[0].Detail != "deleted while the backup was written" {
		t.Errorf("audit %+v", ev)
	}
}

// archive builds a tar from entries (name, content, type).
type tarEntry struct {
	name, body, link string
	typ              byte
}

func archive(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: 0o600, Size: int64(len(e.body)), Linkname: e.link}
		if typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func manifestJSON(t *testing.T, edit func(*Manifest)) string {
	m := Manifest{Format: Format, Version: FormatVersion, SchemaVersion: sqlite.SchemaVersion(), CreatedAt: time.Now(), Tables: map[string]int{}, Files: []string{}}
	if edit != nil {
		edit(&m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRestoreRefusesHostileArchives: names that are not the format's, links,
// newer versions, damaged counts and truncation are refused, and nothing is
// written outside the restore's own paths (for the early refusals, nothing
// at all, not even the store).
func TestRestoreRefusesHostileArchives(t *testing.T) {
	ctx := context.Background()
	good := manifestJSON(t, nil)
	// A real backup to damage.
	src := newSite(t, t.TempDir())
	alice, _ := src.store.CreateUser(ctx, "alice", "password-alice", true)
	src.repo(alice, "r", 2)
	var real bytes.Buffer
	if _, err := Create(ctx, &real, src.options(nil)); err != nil {
		t.Fatal(err)
	}
	// The same, with one accounts row removed and everything else kept.
	tampered := func() []byte {
		var out bytes.Buffer
		tr := tar.NewReader(bytes.NewReader(real.Bytes()))
		tw := tar.NewWriter(&out)
		for {
			hdr, err := tr.Next()
			if err != nil {
				break
			}
			var body bytes.Buffer
			body.ReadFrom(tr)
			if hdr.Name == "db/accounts.jsonl" {
				body.Reset()
			}
			hdr.Size = int64(body.Len())
			tw.WriteHeader(hdr)
			tw.Write(body.Bytes())
		}
		tw.Close()
		return out.Bytes()
	}()

	for _, tc := range []struct {
		name     string
		data     []byte
		want     string
		noCreate bool // refused before the store is opened
	}{
		{"parent path", archive(t, tarEntry{name: manifestName, body: good}, tarEntry{name: "../escape", body: "x"}), "not part of a gitserver backup", true},
		{"nested parent path", archive(t, tarEntry{name: manifestName, body: good}, tarEntry{name: "files/../../escape", body: "x"}), "not part of a gitserver backup", true},
		{"absolute path", archive(t, tarEntry{name: manifestName, body: good}, tarEntry{name: "/tmp/escape", body: "x"}), "not part of a gitserver backup", true},
		{"table path", archive(t, tarEntry{name: manifestName, body: good}, tarEntry{name: "db/../../escape.jsonl", body: "x"}), "not part of a gitserver backup", true},
		{"repo path", archive(t, tarEntry{name: manifestName, body: good}, tarEntry{name: "repos/../1.bundle", body: "x"}), "not part of a gitserver backup", true},
		{"symlink", archive(t, tarEntry{name: manifestName, body: good}, tarEntry{name: "files/secret.key", typ: tar.TypeSymlink, link: "/etc/passwd"}), "not a regular file", true},
		{"hard link", archive(t, tarEntry{name: manifestName, body: good}, tarEntry{name: "files/secret.key", typ: tar.TypeLink, link: "../../x"}), "not a regular file", true},
		{"no manifest", archive(t, tarEntry{name: "db/accounts.jsonl", body: ""}), "does not start with manifest.json", true},
		{"not a tar", []byte("hello, this is not an archive at all, but it is long enough for a header? no."), "not a readable archive", true},
		{"other format", archive(t, tarEntry{name: manifestName, body: manifestJSON(t, func(m *Manifest) { m.Format = "zip" })}), "not a gitserver backup", true},
		{"newer format", archive(t, tarEntry{name: manifestName, body: manifestJSON(t, func(m *Manifest) { m.Version = FormatVersion + 1 })}), "newer than this gitserver reads", true},
		{"newer schema", archive(t, tarEntry{name: manifestName, body: manifestJSON(t, func(m *Manifest) { m.SchemaVersion++ })}), "is newer than this gitserver's", true},
		{"unknown data file", archive(t, tarEntry{name: manifestName, body: manifestJSON(t, func(m *Manifest) { m.Files = []string{"../../x"} })}), "does not know", true},
		{"tampered rows", tampered, "holds 0 rows, its manifest 1", false},
		{"truncated", real.Bytes()[:real.Len()/2], "truncated", false},
		{"truncated mid-entry", real.Bytes()[:real.Len()/2+100], "truncated", false},
		{"truncated in the database", real.Bytes()[:3000], "truncated", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			root := filepath.Join(parent, "data")
			var opened store.Store
			opt := restoreOptions(t, root, &opened)
			_, err := Restore(ctx, bytes.NewReader(tc.data), opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Restore: %v, want an error containing %q", err, tc.want)
			}
			entries, _ := os.ReadDir(parent)
			if tc.noCreate {
				if len(entries) != 0 || opened != nil {
					t.Fatalf("refused archive created %v (store opened: %v)", entries, opened != nil)
				}
				return
			}
			if len(entries) != 1 || entries[0].Name() != "data" {
				t.Fatalf("restore wrote outside its data directory: %v", entries)
			}
			if tc.name == "tampered rows" {
				// The refused load left no row.
				s, err := sqlite.Open(ctx, filepath.Join(root, "gitserver.db"), sqlite.Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if d := storetest.DumpAll(t, s); len(d.Tables["repos"]) != 0 {
					t.Fatalf("a refused database load left rows: %v", d.Tables)
				}
			}
		})
	}
}

func TestRowEncoding(t *testing.T) {
	row := store.Row{"i": int64(-1 << 62), "s": "héllo \"x\" <b>", "b": []byte{0, 1, 255}, "n": nil, "e": "", "z": []byte{}}
	line, err := EncodeRow(row)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRow(line)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", row) {
		t.Fatalf("round trip:\n%#v\n%#v", got, row)
	}
	if _, err := EncodeRow(store.Row{"f": 1.5}); err == nil {
		t.Fatal("a float encoded")
	}
	for _, bad := range []string{`{"a":1.5}`, `{"a":true}`, `{"a":[1]}`, `{"a":{"base64":"!!"}}`, `{"a":{"base64":"AA==","x":1}}`, `{"a":{"hex":"00"}}`,
		`{"a":99999999999999999999}`, `[1]`, `{"a":1} {"b":2}`, `{"a":1`} {
		if r, err := DecodeRow([]byte(bad)); err == nil {
			t.Errorf("DecodeRow(%s) = %v, want an error", bad, r)
		}
	}
}
