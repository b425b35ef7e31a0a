package gitserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gitserver/gitserver/service"
	"gitserver/hooks"
	"gitserver/store"
)

// WebCommitter writes Web IDE commits (service.Committer) on a bare
// repository with git plumbing and no working tree: blobs with
// `hash-object -w --stdin`, a temporary index (GIT_INDEX_FILE) read from
// the branch head, `update-index --index-info`, `write-tree`,
// `commit-tree`, then `update-ref` with the old value, so a concurrent push
// is never overwritten. The update goes through the push policy
// (hooks.Check) and its build is queued by the post-receive path's trigger
// (hooks.Trigger.Pushed); repository maintenance follows, as after a push.
type WebCommitter struct {
	Git   *Git
	Repos *Repos
	// Trigger queues the commit's build; nil queues none (tests).
	Trigger *hooks.Trigger
	// Maintainer, when set, is told about the changed repository.
	Maintainer *Maintainer
	// TempDir holds the temporary index files (os.TempDir() when "").
	TempDir string
	Log     *slog.Logger
}

// webCommitAttempts bounds how often a commit is redone when the branch
// moves between reading it and updating it.
const webCommitAttempts = 3

// CommitFiles implements service.Committer. The request is checked by
// service.CommitFiles already (paths, sizes, message, access).
func (wc *WebCommitter) CommitFiles(ctx context.Context, r store.Repo, req service.CommitRequest) (service.CommitResult, error) {
	dir := wc.Repos.Dir(r)
	ref := "refs/heads/" + r.DefaultBranch
	var lastErr error
	for attempt := 0; attempt < webCommitAttempts; attempt++ {
		res, retry, err := wc.commitOnce(ctx, r, dir, ref, req)
		if err == nil {
			wc.after(ctx, r, req, &res)
			return res, nil
		}
		if !retry {
			return service.CommitResult{}, err
		}
		lastErr = err
	}
	return service.CommitResult{}, fmt.Errorf("web commit to %s: the branch kept moving: %w", r.FullName(), lastErr)
}

// after queues the build of a committed edit, as post-receive does for a
// push, and schedules maintenance. A failure to queue is logged, not
// returned: the commit is made, and the start-up reconciliation queues
// what is owed.
func (wc *WebCommitter) after(ctx context.Context, r store.Repo, req service.CommitRequest, res *service.CommitResult) {
	if wc.Trigger != nil {
		b, created, err := wc.Trigger.Pushed(context.WithoutCancel(ctx), r, req.Pusher, res.Old, res.Commit)
		if err != nil {
			wc.log().Error("queue build of web commit", "repo", r.FullName(), "commit", res.Commit, "err", err)
		} else {
			res.Build, res.BuildQueued = b, created
		}
	}
	if wc.Maintainer != nil {
		wc.Maintainer.Schedule(r)
	}
}

func (wc *WebCommitter) log() *slog.Logger {
	if wc.Log != nil {
		return wc.Log
	}
	return slog.Default()
}

// entry is a path's entry in a tree: git's mode and type.
type entry struct{ mode, typ, oid string }

// commitOnce reads the branch, builds the commit on its head and moves the
// branch from that head. retry reports that the branch moved meanwhile.
func (wc *WebCommitter) commitOnce(ctx context.Context, r store.Repo, dir, ref string, req service.CommitRequest) (res service.CommitResult, retry bool, err error) {
	head, err := wc.head(ctx, dir, ref)
	if err != nil {
		return res, false, err
	}
	res.Old = head
	if head != req.Parent {
		if err := wc.checkStale(ctx, dir, req, head); err != nil {
			return res, false, err
		}
		res.Rebased = true
	}
	// What the changed paths and their folders are in head.
	existing, err := wc.entries(ctx, dir, head, req.Changes)
	if err != nil {
		return res, false, err
	}
	if err := wc.emptiedFolders(ctx, dir, head, req.Changes, existing); err != nil {
		return res, false, err
	}
	if err := checkShapes(req.Changes, existing); err != nil {
		return res, false, err
	}
	tmp, err := os.MkdirTemp(wc.TempDir, "gitserver-webcommit-")
	if err != nil {
		return res, false, err
	}
	defer os.RemoveAll(tmp)
	env := []string{"GIT_INDEX_FILE=" + filepath.Join(tmp, "index")}
	if head != "" {
		_, err = wc.run(ctx, dir, env, nil, "read-tree", head)
	} else {
		_, err = wc.run(ctx, dir, env, nil, "read-tree", "--empty")
	}
	if err != nil {
		return res, false, err
	}
	// Deletions first: a file "a" renamed to "a/b" frees the name.
	var info bytes.Buffer
	changes := append([]service.FileChange(nil), req.Changes...)
	sort.SliceStable(changes, func(i, j int) bool { return changes[i].Delete && !changes[j].Delete })
	for _, c := range changes {
		if c.Delete {
			fmt.Fprintf(&info, "0 %s\t%s\x00", strings.Repeat("0", len(head)), c.Path)
			continue
		}
		var oid string
		if c.Keep {
			// A rename that keeps the content: the moved file's blob
			// (checkShapes made sure From exists as a file: its edit
			// deletes it).
			oid = existing[c.From].oid
		} else if oid, err = wc.run(ctx, dir, nil, bytes.NewReader(c.Content), "hash-object", "-w", "--stdin"); err != nil {
			return res, false, err
		}
		mode := "100644"
		e, ok := existing[c.Path]
		if !ok && c.From != "" {
			e, ok = existing[c.From] // a rename: the moved file's mode
		}
		if ok && e.typ == "blob" && (e.mode == "100755" || e.mode == "120000") {
			mode = e.mode // an executable stays executable, a symlink a symlink
		}
		fmt.Fprintf(&info, "%s %s\t%s\x00", mode, oid, c.Path)
	}
	if _, err := wc.run(ctx, dir, env, &info, "update-index", "-z", "--add", "--index-info"); err != nil {
		return res, false, err
	}
	tree, err := wc.run(ctx, dir, env, nil, "write-tree")
	if err != nil {
		return res, false, err
	}
	if head != "" {
		headTree, err := wc.run(ctx, dir, nil, nil, "rev-parse", "--verify", "--end-of-options", head+"^{tree}")
		if err != nil {
			return res, false, err
		}
		if headTree == tree {
			return res, false, service.Refusal(store.ErrInvalid, "nothing to commit: the files are unchanged")
		}
	}
	msg := strings.ReplaceAll(req.Message, "\r\n", "\n")
	msg = strings.TrimSpace(msg) + "\n"
	when := fmt.Sprintf("@%d +0000", req.When.Unix())
	cenv := []string{
		"GIT_AUTHOR_NAME=" + req.AuthorName, "GIT_AUTHOR_EMAIL=" + req.AuthorEmail, "GIT_AUTHOR_DATE=" + when,
		"GIT_COMMITTER_NAME=" + req.AuthorName, "GIT_COMMITTER_EMAIL=" + req.AuthorEmail, "GIT_COMMITTER_DATE=" + when,
	}
	args := []string{"commit-tree", tree}
	if head != "" {
		args = append(args, "-p", head)
	}
	commit, err := wc.run(ctx, dir, cenv, strings.NewReader(msg), append(args, "-F", "-")...)
	if err != nil {
		return res, false, err
	}
	res.Commit = commit
	// The push policy, as for a push of this update.
	old := head
	if old == "" {
		old = strings.Repeat("0", len(commit))
	}
	updates := []hooks.RefUpdate{{Old: old, New: commit, Ref: ref}}
	rejected := append(hooks.Check(updates, r.DefaultBranch, wc.ancestry(ctx, dir)), hooks.CheckNames(updates)...)
	if patterns := hooks.ConflictPatterns(updates); len(patterns) > 0 {
		// Creating the branch: no ref may be its folder or below it, as
		// pre-receive checks for a push.
		out, err := wc.run(ctx, dir, nil, nil, append([]string{"for-each-ref", "--format=%(refname)", "--"}, patterns...)...)
		if err != nil {
			return res, false, err
		}
		rejected = append(rejected, hooks.CheckConflicts(updates, strings.Fields(out))...)
	}
	if len(rejected) > 0 {
		return res, false, service.Refusal(store.ErrForbidden, rejected[0].String())
	}
	if _, err := wc.run(ctx, dir, nil, nil, "update-ref", "-m", "web commit by "+req.Pusher, ref, commit, old); err != nil {
		// Lost a race with a push (or another web commit): redo it on the
		// new head, unless the branch is where it was (a real failure).
		if now, herr := wc.head(ctx, dir, ref); herr == nil && now != head {
			return res, true, err
		}
		return res, false, err
	}
	return res, false, nil
}

// head is the branch's commit, "" when it does not exist.
func (wc *WebCommitter) head(ctx context.Context, dir, ref string) (string, error) {
	return wc.Git.RefHead(ctx, dir, ref)
}

// RefHead is the commit ref (a full name, refs/heads/main) points at in
// the repository dir, "" when ref does not exist. A for-each-ref pattern
// also matches the refs below it (refs/heads/main/x): only ref itself
// counts.
func (g *Git) RefHead(ctx context.Context, dir, ref string) (string, error) {
	out, err := g.Output(ctx, dir, "for-each-ref", "--format=%(objectname) %(refname)", ref)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		if id, name, ok := strings.Cut(line, " "); ok && name == ref {
			return id, nil
		}
	}
	return "", nil
}

// checkStale decides an edit made on req.Parent while the branch is at
// head: it may go on (rebased onto head) when none of its paths was changed
// between the two, nor any file below or above them; otherwise it is
// refused with a *service.StaleError naming the path.
func (wc *WebCommitter) checkStale(ctx context.Context, dir string, req service.CommitRequest, head string) error {
	var changed []string
	switch {
	case head == "":
		return service.Refusal(store.ErrConflict, "the branch was deleted since you opened the editor; your edit was not committed")
	case req.Parent == "":
		out, err := wc.run(ctx, dir, nil, nil, "ls-tree", "-r", "-z", "--name-only", "--full-tree", head)
		if err != nil {
			return err
		}
		changed = splitZ(out)
	default:
		if t, err := wc.run(ctx, dir, nil, nil, "cat-file", "-t", req.Parent); err != nil || t != "commit" {
			return service.Refusal(store.ErrConflict, "the commit your edit started from is not in this repository; reload the page (your edit was not committed)")
		}
		out, err := wc.run(ctx, dir, nil, nil, "diff-tree", "-r", "-z", "--name-only", "--no-renames", "--no-commit-id", req.Parent, head)
		if err != nil {
			return err
		}
		changed = splitZ(out)
	}
	set := map[string]bool{}
	for _, c := range changed {
		set[c] = true
	}
	for _, c := range req.Changes {
		if set[c.Path] {
			return &service.StaleError{Path: c.Path}
		}
		for i := 0; i < len(c.Path); i++ {
			if c.Path[i] == '/' && set[c.Path[:i]] {
				return &service.StaleError{Path: c.Path[:i]}
			}
		}
		for _, o := range changed {
			if strings.HasPrefix(o, c.Path+"/") {
				return &service.StaleError{Path: o}
			}
		}
	}
	return nil
}

// entries lists what each changed path and each of its folders is in
// commit (nothing when commit is "").
func (wc *WebCommitter) entries(ctx context.Context, dir, commit string, changes []service.FileChange) (map[string]entry, error) {
	out := map[string]entry{}
	if commit == "" {
		return out, nil
	}
	var paths []string
	seen := map[string]bool{}
	for _, c := range changes {
		for i := 0; i <= len(c.Path); i++ {
			if (i == len(c.Path) || c.Path[i] == '/') && !seen[c.Path[:i]] {
				seen[c.Path[:i]] = true
				paths = append(paths, c.Path[:i])
			}
		}
	}
	// ls-tree's paths are literal with --literal-pathspecs; it lists the
	// entry of each (a folder's entry, not its content, without -r). A
	// folder that another path leads into is recursed into and, without
	// -t, not listed itself: "a" would look absent next to "a/b/c".
	raw, err := wc.run(ctx, dir, nil, nil, append([]string{"--literal-pathspecs", "ls-tree", "-t", "-z", "--full-tree", commit, "--"}, paths...)...)
	if err != nil {
		return nil, err
	}
	for _, rec := range splitZ(raw) {
		meta, name, ok := strings.Cut(rec, "\t")
		f := strings.Fields(meta)
		if !ok || len(f) != 3 {
			return nil, fmt.Errorf("ls-tree: bad line %q", rec)
		}
		out[name] = entry{mode: f[0], typ: f[1], oid: f[2]}
	}
	return out, nil
}

// emptiedFolders forgets, in existing, a folder that a file of the
// commit replaces when the commit deletes every file in it (a/x renamed to
// a): update-index then finds no folder there. A folder that keeps a file
// stays, and checkShapes refuses the change.
func (wc *WebCommitter) emptiedFolders(ctx context.Context, dir, head string, changes []service.FileChange, existing map[string]entry) error {
	deleted := map[string]bool{}
	for _, c := range changes {
		if c.Delete {
			deleted[c.Path] = true
		}
	}
	for _, c := range changes {
		if e, ok := existing[c.Path]; c.Delete || !ok || e.typ != "tree" {
			continue
		}
		out, err := wc.run(ctx, dir, nil, nil, "--literal-pathspecs", "ls-tree", "-r", "-z", "--name-only", "--full-tree", head, "--", c.Path+"/")
		if err != nil {
			return err
		}
		files := splitZ(out)
		all := len(files) > 0
		for _, f := range files {
			all = all && deleted[f]
		}
		if all {
			delete(existing, c.Path)
		}
	}
	return nil
}

// checkShapes refuses changes the tree cannot take: deleting a file that is
// not there, writing a file where a folder (or a submodule) is, or below a
// file.
func checkShapes(changes []service.FileChange, existing map[string]entry) error {
	deleted := map[string]bool{}
	for _, c := range changes {
		if c.Delete {
			deleted[c.Path] = true
		}
	}
	for _, c := range changes {
		e, ok := existing[c.Path]
		switch {
		case c.Delete && !ok:
			return service.Refusal(store.ErrInvalid, c.Path+" does not exist")
		case c.New && ok && !deleted[c.Path]:
			return service.Refusal(store.ErrConflict, c.Path+" already exists")
		case ok && e.typ == "tree":
			return service.Refusal(store.ErrInvalid, c.Path+" is a folder")
		case ok && e.typ != "blob":
			return service.Refusal(store.ErrInvalid, c.Path+" is a submodule; it cannot be edited here")
		}
		if c.Delete {
			continue
		}
		for i := 0; i < len(c.Path); i++ {
			if c.Path[i] != '/' {
				continue
			}
			if p, ok := existing[c.Path[:i]]; ok && p.typ != "tree" && !deleted[c.Path[:i]] {
				return service.Refusal(store.ErrInvalid, fmt.Sprintf("%s is a file, so %s cannot be created", c.Path[:i], c.Path))
			}
		}
	}
	// Two new files of one commit: "a" and "a/b".
	for _, c := range changes {
		for _, o := range changes {
			if !c.Delete && !o.Delete && strings.HasPrefix(o.Path, c.Path+"/") {
				return service.Refusal(store.ErrInvalid, fmt.Sprintf("%s cannot be both a file and a folder", c.Path))
			}
		}
	}
	return nil
}

// ancestry answers hooks.Check with `git merge-base --is-ancestor` run
// with the server's clean git environment.
func (wc *WebCommitter) ancestry(ctx context.Context, dir string) hooks.Ancestry {
	return func(old, new string) (bool, error) {
		_, err := wc.run(ctx, dir, nil, nil, "merge-base", "--is-ancestor", old, new)
		var ee interface{ ExitCode() int }
		switch {
		case err == nil:
			return true, nil
		case errors.As(err, &ee) && ee.ExitCode() == 1:
			return false, nil
		}
		return false, err
	}
}

// run runs git in dir with extra environment and stdin, and returns its
// trimmed stdout; its error wraps the *exec.ExitError.
func (wc *WebCommitter) run(ctx context.Context, dir string, env []string, stdin io.Reader, args ...string) (string, error) {
	cmd := wc.Git.Command(ctx, dir, env, args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	if err := cmd.Run(); err != nil {
		name := args[0]
		if name == "--literal-pathspecs" && len(args) > 1 {
			name = args[1]
		}
		return "", fmt.Errorf("git %s: %w: %s", name, err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimRight(out.String(), "\n"), nil
}

func splitZ(s string) []string {
	var out []string
	for _, f := range strings.Split(s, "\x00") {
		if f = strings.TrimPrefix(f, "\n"); f != "" {
			out = append(out, f)
		}
	}
	return out
}
