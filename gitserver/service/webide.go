package service

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"gitserver/gitserver/access"
	"gitserver/store"
)

// Limits of a Web IDE commit.
const (
	// MaxEditBytes is the largest file the Web IDE edits or writes.
	MaxEditBytes = 1 << 20
	// MaxPathBytes bounds a file's path; MaxSegmentBytes each of its names
	// (most filesystems allow 255 bytes per name).
	MaxPathBytes    = 1024
	MaxSegmentBytes = 255
	// MaxMessageBytes bounds a commit message.
	MaxMessageBytes = 64 << 10
	// maxChanges bounds the changes of one commit (a rename is two).
	maxChanges = 16
)

// FileChange is one change of a Web IDE commit: the file Path gets
// Content, or is deleted. New: the file must not exist yet (a new file, a
// rename's target). From: a rename's target names the file it moves,
// whose mode (executable, symbolic link) it keeps. Keep: the target keeps
// From's content too (Content unused), which is how a binary or large file,
// whose content the IDE does not carry, is renamed; the same edit must
// delete From.
type FileChange struct {
	Path    string
	Content []byte
	Delete  bool
	New     bool
	From    string
	Keep    bool
}

// Edit is what a Web IDE form asks to commit.
type Edit struct {
	// Parent is the commit the form was rendered from ("" when the
	// default branch had no commit yet).
	Parent  string
	Changes []FileChange
	Message string
}

// CommitRequest is an Edit checked by CommitFiles, with its author.
type CommitRequest struct {
	Edit
	AuthorName, AuthorEmail string
	When                    time.Time
	// Pusher is the account name builds record as "pushed by".
	Pusher string
}

// CommitResult is a committed Edit.
type CommitResult struct {
	Commit string
	// Old is the branch's value the commit replaced ("" when it created
	// the branch); it differs from the Edit's Parent when the edit was
	// moved onto a newer head (Rebased).
	Old     string
	Rebased bool
	// Build is the build the commit queued (BuildQueued false when the
	// queueing failed: the start-up reconciliation owes it).
	Build       store.Build
	BuildQueued bool
}

// Committer writes a Web IDE commit on a repository's default branch
// through the push policy and queues its build as a push does
// (gitserver.WebCommitter implements it; cmd passes it in).
type Committer interface {
	CommitFiles(ctx context.Context, r store.Repo, req CommitRequest) (CommitResult, error)
}

// StaleError refuses an edit whose file someone else changed on the branch
// since the form was rendered. It wraps store.ErrConflict.
type StaleError struct{ Path string }

func (e *StaleError) Error() string {
	return e.Path + " was changed by someone else since you opened it; your edit was not committed"
}
func (e *StaleError) Unwrap() error { return store.ErrConflict }

// Refusal is a refusal of kind (a store sentinel) with a message safe for
// the client, for the implementations of this package's interfaces.
func Refusal(kind error, msg string) error { return refuse(kind, msg) }

// CheckFilePath checks a path a Web IDE user typed: relative, "/"-separated
// names, none empty, "." or ".." or ".git" (any case), no NUL or other
// control character, no backslash, bounded lengths. The error is a
// refusal (store.ErrInvalid) that says what is wrong.
func CheckFilePath(p string) error {
	bad := func(why string) error {
		return refuse(store.ErrInvalid, fmt.Sprintf("invalid file name %q: %s", p, why))
	}
	switch {
	case p == "":
		return refuse(store.ErrInvalid, "file name is required")
	case len(p) > MaxPathBytes:
		return refuse(store.ErrInvalid, fmt.Sprintf("file name is longer than %d bytes", MaxPathBytes))
	case !utf8.ValidString(p):
		return refuse(store.ErrInvalid, "file name is not valid UTF-8")
	case strings.HasPrefix(p, "/"):
		return bad("it must not start with /")
	case strings.HasSuffix(p, "/"):
		return bad("it must not end with /")
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f {
			return bad("it must not contain control characters")
		}
		if c == '\\' {
			return bad("use / to separate folders")
		}
	}
	for _, seg := range strings.Split(p, "/") {
		switch {
		case seg == "":
			return bad("empty folder name (//)")
		case seg == "." || seg == "..":
			return bad(`"." and ".." are not allowed`)
		case isDotGit(seg):
			return bad(`".git" is not allowed`)
		case len(seg) > MaxSegmentBytes:
			return bad(fmt.Sprintf("a name is longer than %d bytes", MaxSegmentBytes))
		}
	}
	return nil
}

// isDotGit reports whether a path name is ".git" as git's verify_path
// sees it with core.protectNTFS (on by default; is_ntfs_dotgit): ".git" or
// its short name "git~1", in any case, followed by nothing but dots and
// spaces, up to the end or a ":" (an NTFS stream). Git refuses such a
// name in an index; update-index --index-info skips it silently.
func isDotGit(seg string) bool {
	s := strings.ToLower(seg)
	var rest string
	switch {
	case strings.HasPrefix(s, ".git"):
		rest = s[len(".git"):]
	case strings.HasPrefix(s, "git~1"):
		rest = s[len("git~1"):]
	default:
		return false
	}
	rest, _, _ = strings.Cut(rest, ":")
	return strings.Trim(rest, ". ") == ""
}

// NoreplyEmail is the e-mail address of a Web IDE commit's author:
// <name>@users.noreply.<host of baseURL> (accounts have no address). An
// IPv6 host, which cannot follow "users.noreply." in a domain, counts as no
// host (localhost).
func NoreplyEmail(name, baseURL string) string {
	host := "localhost"
	if u, err := url.Parse(baseURL); err == nil && u.Hostname() != "" && !strings.Contains(u.Hostname(), ":") {
		host = strings.ToLower(u.Hostname())
	}
	return name + "@users.noreply." + host
}

// CommitFiles commits a Web IDE edit on r's default branch as actor: the
// access policy (write), no mirror (its history comes from upstream), the
// edit's paths, contents and message checked, then the Committer (the push
// policy, the ref update, the build).
func (s *Service) CommitFiles(ctx context.Context, actor Actor, r store.Repo, e Edit) (CommitResult, error) {
	if s.Committer == nil {
		return CommitResult{}, errors.New("service: no Committer")
	}
	if err := s.checkRepo(ctx, actor, access.OpWrite, r); err != nil {
		return CommitResult{}, err
	}
	u := actor.Principal.User
	if u == nil {
		return CommitResult{}, refuse(store.ErrForbidden, "only a signed-in user can commit from the web")
	}
	if m, err := s.Store.MirrorByRepo(ctx, r.ID); err == nil {
		return CommitResult{}, refuse(store.ErrForbidden, "this repository mirrors "+m.URL+"; push there")
	} else if !errors.Is(err, store.ErrNotFound) {
		return CommitResult{}, err
	}
	if err := checkEdit(e); err != nil {
		return CommitResult{}, err
	}
	return s.Committer.CommitFiles(ctx, r, CommitRequest{Edit: e, AuthorName: u.Name,
		AuthorEmail: NoreplyEmail(u.Name, s.BaseURL), When: time.Now(), Pusher: u.Name})
}

func checkEdit(e Edit) error {
	if e.Parent != "" && !store.ValidObjectID(e.Parent) {
		return refuse(store.ErrInvalid, "the form's parent commit is not a commit id; reload the page")
	}
	msg := strings.TrimSpace(e.Message)
	switch {
	case msg == "":
		return refuse(store.ErrInvalid, "commit message is required")
	case len(e.Message) > MaxMessageBytes:
		return refuse(store.ErrInvalid, fmt.Sprintf("commit message is longer than %d bytes", MaxMessageBytes))
	case strings.ContainsRune(e.Message, 0):
		return refuse(store.ErrInvalid, "commit message must not contain NUL")
	case len(e.Changes) == 0:
		return refuse(store.ErrInvalid, "nothing to commit")
	case len(e.Changes) > maxChanges:
		return refuse(store.ErrInvalid, fmt.Sprintf("at most %d changes per commit", maxChanges))
	}
	seen := map[string]bool{}
	for _, c := range e.Changes {
		if err := CheckFilePath(c.Path); err != nil {
			return err
		}
		if seen[c.Path] {
			return refuse(store.ErrInvalid, fmt.Sprintf("%s is changed twice in one commit", c.Path))
		}
		seen[c.Path] = true
		if !c.Delete && len(c.Content) > MaxEditBytes {
			return refuse(store.ErrInvalid, fmt.Sprintf("%s is larger than %d bytes", c.Path, MaxEditBytes))
		}
	}
	for _, c := range e.Changes {
		if c.Keep && (c.Delete || !c.New || c.From == "" || len(c.Content) > 0 || !deletes(e.Changes, c.From)) {
			return refuse(store.ErrInvalid, fmt.Sprintf("%s: keeping a file's content is for renaming it", c.Path))
		}
	}
	return nil
}

// deletes reports whether changes delete path.
func deletes(changes []FileChange, path string) bool {
	for _, c := range changes {
		if c.Delete && c.Path == path {
			return true
		}
	}
	return false
}
