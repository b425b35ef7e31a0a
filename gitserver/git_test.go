package gitserver

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gitserver/store"
)

func TestProtocolEnv(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"version=2", []string{"GIT_PROTOCOL=version=2"}},
		{"version=1", []string{"GIT_PROTOCOL=version=1"}},
		{"version=2:object-format=sha256", nil}, // '-' is outside the safe set
		{"version=2:object=sha256", []string{"GIT_PROTOCOL=version=2:object=sha256"}},
		{"a=b:c=d", []string{"GIT_PROTOCOL=a=b:c=d"}},
		{"version=2 ", nil},
		{"version=2\nX=1", nil},
		{"version=2;rm -rf", nil},
		{"version", nil},
		{"=2", nil},
		{"version=", nil},
		{"version=2:", nil},
		{":version=2", nil},
		{"version=2::a=b", nil},
		{"version=2\x00", nil},
		{"version=2:" + strings.Repeat("a=b:", 70) + "a=b", nil}, // longer than 256
		{"v=" + strings.Repeat("a", 250), []string{"GIT_PROTOCOL=v=" + strings.Repeat("a", 250)}},
	} {
		if got := ProtocolEnv(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("ProtocolEnv(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestIsV2(t *testing.T) {
	for in, want := range map[string]bool{
		"":                   false,
		"version=2":          true,
		"version=1":          false,
		"version=0":          false,
		"a=b:version=2":      true,
		"version=2:a=b":      true,
		"version=20":         false,
		"xversion=2":         false,
		"version=1:version2": false,
	} {
		if got := IsV2(in); got != want {
			t.Errorf("IsV2(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestReposDirUsesOnlyTheID(t *testing.T) {
	root := filepath.Join(t.TempDir(), "repos")
	rs := &Repos{Root: root}
	for _, r := range []store.Repo{
		{ID: 1, Owner: "alice", Name: "proj"},
		{ID: 2, Owner: "..", Name: ".."},
		{ID: 3, Owner: "/etc", Name: "passwd"},
		{ID: 4, Owner: "a/../../b", Name: "c%2f..%2f"},
		{ID: 5, Owner: "x", Name: "y.git.git"},
		{ID: 1234567890123, Owner: strings.Repeat("o", 300), Name: "\x00"},
	} {
		dir := rs.Dir(r)
		want := filepath.Join(root, strconv.FormatInt(r.ID, 10)+".git")
		if dir != want {
			t.Errorf("Dir(%+v) = %q, want %q", r, dir, want)
		}
		for _, part := range []string{r.Owner, r.Name} {
			if len(part) > 1 && strings.Contains(strings.TrimPrefix(dir, root), part) {
				t.Errorf("Dir(%+v) = %q contains request text %q", r, dir, part)
			}
		}
		if filepath.Dir(dir) != root {
			t.Errorf("Dir(%+v) = %q is not directly under %q", r, dir, root)
		}
	}
}

func TestParseService(t *testing.T) {
	for program, want := range map[string]Service{
		"git-upload-pack": UploadPack, "git-receive-pack": ReceivePack, "git-upload-archive": UploadArchive,
	} {
		got, ok := ParseService(program)
		if !ok || got != want || got.Program() != program || !got.Valid() {
			t.Errorf("ParseService(%q) = %q, %v", program, got, ok)
		}
	}
	for _, program := range []string{"", "git-", "upload-pack", "git upload-pack", "git-upload-pack ", "GIT-UPLOAD-PACK",
		"git-http-backend", "git-shell", "sh"} {
		if got, ok := ParseService(program); ok || got != "" {
			t.Errorf("ParseService(%q) = %q, %v; want nothing", program, got, ok)
		}
	}
	for _, q := range []string{"git-upload-archive", "upload-pack"} {
		if s, ok := serviceFromQuery(q); ok {
			t.Errorf("smart HTTP accepts ?service=%s as %q", q, s)
		}
	}
}

func TestServiceArgs(t *testing.T) {
	g := &Git{HooksDir: "/srv/hooks", PackObjectsHook: "/srv/pack-hook"}
	for _, tc := range []struct {
		service   Service
		extra     []string
		mustHave  []string
		mustNotBe []string
	}{
		{UploadPack, []string{"--stateless-rpc", "--advertise-refs"},
			[]string{"uploadpack.hideRefs=refs/gitserver/", "uploadpack.allowFilter=true", "uploadpack.packObjectsHook=/srv/pack-hook"},
			[]string{"core.hooksPath=/srv/hooks"}},
		{ReceivePack, []string{"--stateless-rpc"},
			[]string{"receive.hideRefs=refs/gitserver/", "core.hooksPath=/srv/hooks", "receive.fsckObjects=true", "receive.denyNonFastForwards=true"},
			[]string{"uploadpack.packObjectsHook=/srv/pack-hook"}},
		{UploadArchive, nil, []string{"uploadpack.hideRefs=refs/gitserver/"}, []string{"core.hooksPath=/srv/hooks"}},
	} {
		args := g.ServiceArgs(tc.service, tc.extra...)
		// Layout: -c k=v pairs, then the service, the extras, and "." last.
		if args[len(args)-1] != "." {
			t.Errorf("%s: repository argument is %q, want \".\"", tc.service, args[len(args)-1])
		}
		i := slices.Index(args, string(tc.service))
		if i < 0 || !slices.Equal(args[i+1:len(args)-1], tc.extra) {
			t.Errorf("%s: args %q: service not followed by the extras", tc.service, args)
			continue
		}
		for j := 0; j < i; j += 2 {
			if args[j] != "-c" || strings.HasPrefix(args[j+1], "-") || !strings.Contains(args[j+1], "=") {
				t.Errorf("%s: bad config pair %q %q", tc.service, args[j], args[j+1])
			}
		}
		cfg := args[:i]
		for _, m := range tc.mustHave {
			if !slices.Contains(cfg, m) {
				t.Errorf("%s: missing -c %s in %q", tc.service, m, args)
			}
		}
		for _, m := range tc.mustNotBe {
			if slices.Contains(cfg, m) {
				t.Errorf("%s: unexpected -c %s", tc.service, m)
			}
		}
	}
	// Partial clones over v0/v1 need reachable wants; a later
	// allowAnySHA1InWant=false would clear that again.
	up := g.ServiceArgs(UploadPack)
	reach := slices.Index(up, "uploadpack.allowReachableSHA1InWant=true")
	if reach < 0 {
		t.Errorf("upload-pack does not allow reachable wants: %q", up)
	}
	if anyFalse := slices.Index(up, "uploadpack.allowAnySHA1InWant=false"); anyFalse > reach {
		t.Errorf("allowAnySHA1InWant=false after allowReachableSHA1InWant=true cancels it: %q", up)
	}
	// Without a pack-objects hook none is configured.
	if args := (&Git{}).ServiceArgs(UploadPack); slices.ContainsFunc(args, func(s string) bool { return strings.HasPrefix(s, "uploadpack.packObjectsHook") }) {
		t.Errorf("packObjectsHook set without one configured: %q", args)
	}
}

// TestReposInitRealGit creates a bare repository with the real git and
// checks its layout and default branch.
func TestReposInitRealGit(t *testing.T) {
	path, _, err := FindGit()
	if err != nil {
		t.Skipf("no usable git: %v", err)
	}
	root := filepath.Join(t.TempDir(), "repos")
	if err := os.MkdirAll(root, 0o750); err != nil {
		t.Fatal(err)
	}
	rs := &Repos{Root: root, Git: &Git{Path: path, Home: t.TempDir()}}
	ctx := context.Background()
	r := store.Repo{ID: 42, Owner: "alice", Name: "p", DefaultBranch: "trunk"}
	if err := rs.Init(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := rs.Init(ctx, r); err != nil {
		t.Fatalf("second Init: %v", err)
	}
	head, err := os.ReadFile(filepath.Join(rs.Dir(r), "HEAD"))
	if err != nil || strings.TrimSpace(string(head)) != "ref: refs/heads/trunk" {
		t.Fatalf("HEAD = %q, %v", head, err)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 || entries[0].Name() != "42.git" {
		t.Fatalf("root holds %v, want only 42.git", entries)
	}
	if err := rs.Pin(ctx, r, "not-a-commit"); err == nil {
		t.Fatal("Pin accepted a bad commit id")
	}
	noRows := func(context.Context) error { return nil }
	if err := rs.Delete(ctx, r, noRows); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 1 || entries[0].Name() != ".trash" {
		t.Fatalf("Delete left %v", entries)
	}
	if entries, _ := os.ReadDir(rs.TrashDir()); len(entries) != 0 {
		t.Fatalf("Delete left %v in the trash", entries)
	}
	if err := rs.Delete(ctx, r, noRows); err != nil {
		t.Fatalf("Delete of a missing repo: %v", err)
	}
}
