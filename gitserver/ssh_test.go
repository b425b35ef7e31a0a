package gitserver

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestParseSSHCommand(t *testing.T) {
	ok := []struct {
		args        []string
		service     Service
		owner, name string
	}{
		{[]string{"git-upload-pack", "/alice/proj.git"}, UploadPack, "alice", "proj"},
		{[]string{"git-receive-pack", "/alice/proj.git"}, ReceivePack, "alice", "proj"},
		{[]string{"git-upload-archive", "/alice/proj.git"}, UploadArchive, "alice", "proj"},
		// scp-like URLs (git@host:alice/proj.git) send no leading slash.
		{[]string{"git-upload-pack", "alice/proj.git"}, UploadPack, "alice", "proj"},
		// The .git suffix is optional, as on GitHub.
		{[]string{"git-upload-pack", "/alice/proj"}, UploadPack, "alice", "proj"},
		{[]string{"git-upload-pack", "/Org-1/my_repo.v2.git"}, UploadPack, "Org-1", "my_repo.v2"},
		{[]string{"git-upload-pack", "/a/b.git"}, UploadPack, "a", "b"},
	}
	for _, tc := range ok {
		service, owner, name, err := ParseSSHCommand(tc.args)
		if err != nil {
			t.Errorf("ParseSSHCommand(%q): unexpected error %v", tc.args, err)
			continue
		}
		if service != tc.service || owner != tc.owner || name != tc.name {
			t.Errorf("ParseSSHCommand(%q) = %q %q %q, want %q %q %q", tc.args, service, owner, name, tc.service, tc.owner, tc.name)
		}
	}

	const onlyGit = "only git-upload-pack, git-receive-pack and git-upload-archive"
	bad := []struct {
		args    []string
		wantErr string
	}{
		// Not a git service.
		{nil, onlyGit},
		{[]string{}, onlyGit},
		{[]string{"ls"}, onlyGit},
		{[]string{"sh", "-c", "id"}, onlyGit},
		{[]string{"git", "upload-pack", "/alice/proj.git"}, onlyGit},
		{[]string{"git-upload-pack-x", "/alice/proj.git"}, onlyGit},
		{[]string{"GIT-UPLOAD-PACK", "/alice/proj.git"}, onlyGit},
		{[]string{"/usr/bin/git-upload-pack", "/alice/proj.git"}, onlyGit},
		{[]string{"git-shell", "-c", "git-upload-pack '/alice/proj.git'"}, onlyGit},
		// Missing or extra arguments.
		{[]string{"git-upload-pack"}, "takes exactly one repository path"},
		{[]string{"git-receive-pack"}, "takes exactly one repository path"},
		{[]string{"git-upload-pack", "/alice/proj.git", "extra"}, "takes exactly one repository path"},
		{[]string{"git-upload-pack", "--help", "/alice/proj.git"}, "takes exactly one repository path"},
		// Traversal.
		{[]string{"git-upload-pack", "/../x.git"}, "repository not found"},
		{[]string{"git-upload-pack", "//../x.git"}, "repository not found"},
		{[]string{"git-upload-pack", "/alice/../bob/x.git"}, "repository not found"},
		{[]string{"git-upload-pack", "/alice/.."}, "repository not found"},
		{[]string{"git-upload-pack", "/alice/..git"}, "repository not found"},
		{[]string{"git-upload-pack", "../../etc/passwd"}, "repository not found"},
		{[]string{"git-upload-pack", "/./alice/proj.git"}, "repository not found"},
		{[]string{"git-upload-pack", "/alice/./proj.git"}, "repository not found"},
		// Absolute filesystem paths and odd shapes.
		{[]string{"git-upload-pack", "/srv/git/alice/proj.git"}, "repository not found"},
		{[]string{"git-upload-pack", "/etc/passwd/x"}, "repository not found"},
		{[]string{"git-upload-pack", "//alice/proj.git"}, "repository not found"},
		{[]string{"git-upload-pack", "/alice//proj.git"}, "repository not found"},
		{[]string{"git-upload-pack", "/alice/proj.git/"}, "repository not found"},
		{[]string{"git-upload-pack", "~alice/proj.git"}, "repository not found"},
		{[]string{"git-upload-pack", "/alice"}, "repository not found"},
		{[]string{"git-upload-pack", "/"}, "repository not found"},
		{[]string{"git-upload-pack", ""}, "repository not found"},
		{[]string{"git-upload-pack", "/alice/"}, "repository not found"},
		{[]string{"git-upload-pack", "/alice/.git"}, "repository not found"},
		// Bad names.
		{[]string{"git-upload-pack", "/-alice/proj.git"}, "repository not found"},
		{[]string{"git-upload-pack", "/alice/-proj.git"}, "repository not found"},
		{[]string{"git-upload-pack", "/alice/.proj.git"}, "repository not found"},
		{[]string{"git-upload-pack", "/alice/proj.git.git"}, "repository not found"},
		{[]string{"git-upload-pack", "/alice/pr oj.git"}, "repository not found"},
		{[]string{"git-upload-pack", "/alice/proj\x00.git"}, "repository not found"},
		{[]string{"git-upload-pack", "/alice/proj\n.git"}, "repository not found"},
		{[]string{"git-upload-pack", "/alice/pröj.git"}, "repository not found"},
		{[]string{"git-upload-pack", "/alice/proj;id.git"}, "repository not found"},
		{[]string{"git-upload-pack", "/alice/'proj'.git"}, "repository not found"},
		{[]string{"git-upload-pack", "/alice/" + strings.Repeat("a", 101) + ".git"}, "repository not found"},
		{[]string{"git-upload-pack", "/" + strings.Repeat("a", 101) + "/proj.git"}, "repository not found"},
	}
	for _, tc := range bad {
		service, owner, name, err := ParseSSHCommand(tc.args)
		if err == nil {
			t.Errorf("ParseSSHCommand(%q) = %q %q %q, want an error", tc.args, service, owner, name)
			continue
		}
		if !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseSSHCommand(%q) error %q, want it to contain %q", tc.args, err, tc.wantErr)
		}
		if service != "" || owner != "" || name != "" {
			t.Errorf("ParseSSHCommand(%q) returned %q %q %q with its error", tc.args, service, owner, name)
		}
	}

	// Names at the length limit are still fine.
	long := strings.Repeat("a", 100)
	if _, owner, name, err := ParseSSHCommand([]string{"git-upload-pack", "/" + long + "/" + long + ".git"}); err != nil || owner != long || name != long {
		t.Errorf("100-character names: %q %q %v", owner, name, err)
	}
}

// TestCryptoVersion guards CVE-2024-45337: before golang.org/x/crypto
// v0.31.0 the SSH server could authenticate a connection with one key after
// its callback last saw another, and gliderlabs/ssh takes the session's key
// from what the callback saw. (cmd/gitserver's TestSSHOfferedKeyIsNotIdentity
// shows the same end to end.)
func TestCryptoVersion(t *testing.T) {
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?golang\.org/x/crypto\s+v(\d+)\.(\d+)\.(\d+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("golang.org/x/crypto not found in go.mod")
	}
	var major, minor int
	fmt.Sscan(string(m[1]), &major)
	fmt.Sscan(string(m[2]), &minor)
	if major == 0 && minor < 31 {
		t.Fatalf("golang.org/x/crypto v%s.%s.%s: must be >= v0.31.0 (CVE-2024-45337)", m[1], m[2], m[3])
	}
}
