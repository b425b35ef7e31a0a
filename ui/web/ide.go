package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"gitserver/gitserver/access"
	"gitserver/gitserver/httperr"
	"gitserver/gitserver/service"
	"gitserver/store"
)

// EditorGit is what the Web IDE reads of a repository beyond Git (cmd
// implements it with plumbing on the bare repository).
type EditorGit interface {
	// Files returns the default branch's head commit ("" when the branch
	// has none) and the paths of the files in it, sorted, at most max
	// (more reports that there were more).
	Files(ctx context.Context, r store.Repo, max int) (head string, files []string, more bool, err error)
}

// Web IDE limits.
const (
	// maxIDEFiles is how many files the IDE's tree lists.
	maxIDEFiles = 5000
	// maxEditForm bounds an edit form's body: a file of
	// service.MaxEditBytes, percent-encoded, and the message.
	maxEditForm = 3*service.MaxEditBytes + 2*service.MaxMessageBytes
)

// editPath matches /{owner}/{name}/edit and /{owner}/{name}/edit/{path...}
// (escaped).
var editPath = lazyRegexp(`^/(` + namePattern + `)/(` + namePattern + `)/edit((?:/[^/]*)*)$`)

// EditData is the Web IDE page's.
type EditData struct {
	Repo store.Repo
	// Head is the default branch's commit the page was rendered from (the
	// forms' parent), "" when the branch has no commit yet.
	Head string
	Tree []IDENode
	// More: the tree was cut at maxIDEFiles.
	More bool
	// Mirror is the upstream of a mirror (read-only: no forms).
	Mirror string
	// Path is the open file ("" for none); New: the New file form.
	Path string
	New  bool
	// Size of the open file; Binary or Large: shown, not editable.
	Size          int64
	Binary, Large bool
	// The form's fields (re-filled after a refusal).
	FileName string
	Content  string
	CRLF     bool
	Message  string
	// DeleteMessage is the Delete form's message.
	DeleteMessage string
	Error         string
	BlobURL       string
	// Action is the forms' address.
	Action    string
	NewURL    string
	BuildsURL string
}

// IDENode is a file or folder of the IDE's tree.
type IDENode struct {
	Name     string
	Path     string
	URL      string
	Dir      bool
	Current  bool
	Children []IDENode
}

// registerIDE adds the Web IDE: GET /{owner}/{name}/edit[/{path}] (the
// tree, the open file or the New file form) and POST /{owner}/{name}/edit
// (a commit). Registered before /{owner}/{name}.
func (pg *Pages) registerIDE(r *mux.Router) {
	match := func(r *http.Request, _ *mux.RouteMatch) bool { return matches(editPath())(r) }
	r.Handle("/{owner}/{name}/edit{rest:.*}", pg.headers(http.HandlerFunc(pg.editPage))).Methods(http.MethodGet, http.MethodHead).MatcherFunc(match)
	r.Handle("/{owner}/{name}/edit", pg.headers(http.HandlerFunc(pg.editCommit))).Methods(http.MethodPost).MatcherFunc(match)
}

// editable resolves an edit request: readable (else 404), then writable,
// signed in and hosted (else 403, or the read-only page of a mirror for a
// GET). ok false when it answered.
func (pg *Pages) editable(w http.ResponseWriter, r *http.Request) (rr repoRequest, mirror string, ok bool) {
	rr, ok = pg.resolve(w, r, editPath(), access.OpRead)
	if !ok {
		return rr, "", false
	}
	if !rr.signedIn {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
		} else {
			pg.errorPage(w, r, rr.s, false, http.StatusForbidden, "Form refused", "You are not signed in. Sign in and try again.")
		}
		return rr, "", false
	}
	if !rr.can(access.OpWrite) {
		pg.errorPage(w, r, rr.s, true, http.StatusForbidden, "Not allowed",
			"You may read "+rr.repo.FullName()+" but not change it.")
		return rr, "", false
	}
	m, err := pg.Store.MirrorByRepo(r.Context(), rr.repo.ID)
	switch {
	case err == nil:
		mirror = m.URL
	case !errors.Is(err, store.ErrNotFound):
		pg.fail(w, r, err)
		return rr, "", false
	}
	if mirror != "" && r.Method == http.MethodPost {
		pg.errorPage(w, r, rr.s, true, http.StatusForbidden, "Read-only mirror",
			"This repository mirrors "+mirror+"; change it there.")
		return rr, mirror, false
	}
	return rr, mirror, true
}

func (pg *Pages) editPage(w http.ResponseWriter, r *http.Request) {
	if pg.EditGit == nil {
		http.NotFound(w, r)
		return
	}
	rr, mirror, ok := pg.editable(w, r)
	if !ok {
		return
	}
	path, pathOK := cleanPath(rr.m[3])
	if !pathOK {
		pg.errorPage(w, r, rr.s, true, http.StatusNotFound, "Not found", "There is no such file.")
		return
	}
	d := EditData{Repo: rr.repo, Mirror: mirror, Path: path}
	q := r.URL.Query()
	if path == "" && q.Has("new") && mirror == "" {
		d.New = true
		if dir := q.Get("dir"); dir != "" && service.CheckFilePath(dir) == nil {
			d.FileName = dir + "/"
		}
	}
	pg.showEdit(w, r, rr, http.StatusOK, d, true)
}

// showEdit renders the IDE with the tree of the current head; load reads
// the open file into the form (false: the form keeps d's fields, as
// posted).
func (pg *Pages) showEdit(w http.ResponseWriter, r *http.Request, rr repoRequest, status int, d EditData, load bool) {
	head, files, more, err := pg.EditGit.Files(r.Context(), rr.repo, maxIDEFiles)
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	if load || d.Head == "" {
		d.Head = head
	}
	d.More = more
	d.Tree = ideTree(rr.repo, files, d.Path)
	d.Action = editURL(rr.repo, "")
	d.NewURL = d.Action + "?new=1"
	d.BuildsURL = "/" + url.PathEscape(rr.repo.Owner) + "/" + url.PathEscape(rr.repo.Name) + "/builds"
	if d.Path != "" {
		d.BlobURL = RepoURL(rr.repo, "blob", rr.repo.DefaultBranch, d.Path)
		if load && d.Mirror == "" {
			if head == "" {
				pg.errorPage(w, r, rr.s, true, http.StatusNotFound, "Not found", "There is no such file.")
				return
			}
			b, err := pg.Git.Blob(r.Context(), rr.repo, head, d.Path, maxBlobBytes)
			if pg.gitErr(w, r, rr.s, true, err) {
				return
			}
			d.Size, d.FileName = b.Size, d.Path
			switch {
			case b.Content == nil || b.Size > maxBlobBytes:
				d.Large = true
			case isBinary(b.Content) || !utf8.Valid(b.Content):
				d.Binary = true
			default:
				d.Content = string(b.Content)
				d.CRLF = strings.Contains(d.Content, "\r\n")
			}
			d.DeleteMessage = "Delete " + d.Path
		}
	}
	title := "Edit · " + rr.repo.FullName()
	if d.Path != "" {
		title = "Edit " + d.Path + " · " + rr.repo.FullName()
	} else if d.New {
		title = "New file · " + rr.repo.FullName()
	}
	pg.show(w, r, status, "edit", rr.page(title, d))
}

// editURL is the IDE's address for path ("" for the tree alone).
func editURL(rp store.Repo, path string) string {
	u := "/" + url.PathEscape(rp.Owner) + "/" + url.PathEscape(rp.Name) + "/edit"
	if path != "" {
		for _, s := range strings.Split(path, "/") {
			u += "/" + url.PathEscape(s)
		}
	}
	return u
}

// ideTree nests sorted file paths into folders (folders first, each level
// by name); current is the open file.
func ideTree(rp store.Repo, files []string, current string) []IDENode {
	type dir struct {
		node IDENode
		sub  map[string]*dir
		subs []string
	}
	root := &dir{sub: map[string]*dir{}}
	for _, f := range files {
		segs := strings.Split(f, "/")
		d := root
		for i, s := range segs[:len(segs)-1] {
			next, ok := d.sub[s]
			if !ok {
				p := strings.Join(segs[:i+1], "/")
				next = &dir{node: IDENode{Name: s, Path: p, Dir: true, URL: editURL(rp, "") + "?new=1&dir=" + url.QueryEscape(p)}, sub: map[string]*dir{}}
				d.sub[s] = next
				d.subs = append(d.subs, s)
			}
			d = next
		}
		d.node.Children = append(d.node.Children, IDENode{Name: segs[len(segs)-1], Path: f, URL: editURL(rp, f), Current: f == current})
	}
	var build func(d *dir) []IDENode
	build = func(d *dir) []IDENode {
		sort.Strings(d.subs)
		out := make([]IDENode, 0, len(d.subs)+len(d.node.Children))
		for _, s := range d.subs {
			c := d.sub[s]
			c.node.Children = build(c)
			out = append(out, c.node)
		}
		files := d.node.Children
		sort.SliceStable(files, func(i, j int) bool { return files[i].Name < files[j].Name })
		return append(out, files...)
	}
	return build(root)
}

// editCommit handles the IDE's forms: op "create" (New file), "edit"
// (content, and the name: a changed name is a rename) and "delete".
func (pg *Pages) editCommit(w http.ResponseWriter, r *http.Request) {
	if pg.EditGit == nil || pg.Committer == nil {
		http.NotFound(w, r)
		return
	}
	// The body may carry a whole file: read it with the IDE's bound
	// before checkForm (which then finds the form parsed).
	r.Body = http.MaxBytesReader(w, r.Body, maxEditForm)
	if err := r.ParseForm(); err != nil {
		s, ok, _ := pg.current(r)
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			pg.errorPage(w, r, s, ok, http.StatusRequestEntityTooLarge, "Too large", "The form could not be read: a file may be at most 1 MiB.")
			return
		}
		pg.errorPage(w, r, s, ok, http.StatusBadRequest, "Bad request", "The form could not be read (it is not a valid form). Go back and send it again.")
		return
	}
	rr, _, ok := pg.editable(w, r)
	if !ok {
		return
	}
	if !pg.checkForm(w, r, rr.s.csrf, rr.s, true) {
		return
	}
	if rr.m[3] != "" {
		http.NotFound(w, r)
		return
	}
	f := r.PostForm
	op, orig := f.Get("op"), f.Get("path")
	name := strings.TrimSpace(f.Get("name"))
	content := f.Get("content")
	crlf := f.Get("crlf") == "1"
	if !crlf {
		// Browsers send a textarea's lines with CRLF.
		content = strings.ReplaceAll(content, "\r\n", "\n")
	}
	d := EditData{Repo: rr.repo, Head: f.Get("parent"), FileName: name, Content: content, CRLF: crlf, Message: f.Get("message")}
	var changes []service.FileChange
	switch op {
	case "create":
		d.New = true
		changes = []service.FileChange{{Path: name, Content: []byte(content), New: true}}
	case "edit":
		d.Path = orig
		if f.Get("name") == orig {
			// The name as shown: not a rename, even if it starts or ends
			// with a space (trimmed, it would be one).
			name, d.FileName = orig, orig
		}
		if name == orig {
			changes = []service.FileChange{{Path: name, Content: []byte(content)}}
		} else {
			changes = []service.FileChange{{Path: orig, Delete: true}, {Path: name, Content: []byte(content), New: true, From: orig}}
		}
	case "rename":
		// A binary or large file: only its name changes (the form has no
		// content).
		d.Path = orig
		if name == orig {
			pg.errorPage(w, r, rr.s, true, http.StatusBadRequest, "Not renamed", "The name is unchanged: nothing to commit.")
			return
		}
		changes = []service.FileChange{{Path: orig, Delete: true}, {Path: name, New: true, From: orig, Keep: true}}
	case "delete":
		d.Path, d.FileName, d.DeleteMessage, d.Message = orig, orig, f.Get("message"), ""
		changes = []service.FileChange{{Path: orig, Delete: true}}
	default:
		pg.errorPage(w, r, rr.s, true, http.StatusBadRequest, "Bad request", "Unknown operation.")
		return
	}
	svc := pg.service()
	svc.Committer, svc.BaseURL = pg.Committer, pg.BaseURL
	res, err := svc.CommitFiles(r.Context(), actorOf(rr.s), rr.repo, service.Edit{Parent: d.Head, Message: f.Get("message"), Changes: changes})
	if err != nil {
		var se *service.Error
		var stale *service.StaleError
		status, msg := 0, ""
		switch {
		case errors.As(err, &stale):
			status, msg = http.StatusConflict, stale.Error()
		case errors.As(err, &se):
			status, msg = httperr.From(se.Kind).Status, se.Msg
		default:
			he := httperr.From(err)
			if he.Status >= http.StatusInternalServerError {
				pg.fail(w, r, err)
				return
			}
			status, msg = he.Status, he.Message
		}
		switch {
		case se != nil && se.Decision != nil && status == http.StatusNotFound:
			pg.notFound(w, r, rr.s, true)
		case se != nil && se.Decision != nil:
			pg.errorPage(w, r, rr.s, true, status, "Not allowed", msg)
		case op == "delete":
			pg.errorPage(w, r, rr.s, true, status, "Not deleted", msg)
		case op == "rename":
			pg.errorPage(w, r, rr.s, true, status, "Not renamed", msg)
		default:
			// The form again, with what the user sent and why it was not
			// committed.
			d.Error = msg
			pg.showEdit(w, r, rr, status, d, false)
		}
		return
	}
	pg.Log.Info("web commit", "repo", rr.repo.FullName(), "commit", res.Commit, "user", rr.s.user.Name, "rebased", res.Rebased, "build", res.Build.ID)
	http.Redirect(w, r, "/"+url.PathEscape(rr.repo.Owner)+"/"+url.PathEscape(rr.repo.Name)+"/builds", http.StatusSeeOther)
}

// ideLinks are the repository home's links to the Web IDE for s's user:
// none when the user may not commit to rp or rp is a mirror.
func (pg *Pages) ideLinks(ctx context.Context, s session, rp store.Repo) (edit, newFile string, err error) {
	if pg.EditGit == nil || pg.Committer == nil {
		return "", "", nil
	}
	p := s.principal(true)
	f, err := pg.facts(ctx, p, rp.OwnerKind, rp.OwnerID)
	if err != nil {
		return "", "", err
	}
	if !access.Decide(p, access.OpWrite, access.Web, access.Target{Repo: rp}, f).OK() {
		return "", "", nil
	}
	if _, err := pg.Store.MirrorByRepo(ctx, rp.ID); err == nil {
		return "", "", nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", "", err
	}
	edit = editURL(rp, "")
	return edit, edit + "?new=1", nil
}
