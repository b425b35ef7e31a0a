package web

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/chroma/v2"
	chromahtml "github.com/alecthomas/chroma/v2/formatters/html"
	"github.com/alecthomas/chroma/v2/lexers"

	"gitserver/gitserver/access"
	"gitserver/store"
)

// ErrNotFound is what a Git answers for a ref that does not resolve to a
// commit, or a path that is not in its tree (or not of the kind asked).
var ErrNotFound = errors.New("web: not found")

// TreeEntry is one entry of a directory listing.
type TreeEntry struct {
	Name string
	// Type is git's: "blob", "tree" or "commit" (a submodule).
	Type string
	Mode string
	// Size is a blob's size in bytes (-1 for others).
	Size int64
}

// Blob is a file's content at a ref.
type Blob struct {
	Size int64
	// Content is nil when Size is over the limit asked for.
	Content []byte
}

// Commit is one entry of a commit log.
type Commit struct {
	Hash    string
	Author  string
	When    time.Time
	Subject string
}

// Short is the commit's abbreviated hash.
func (c Commit) Short() string {
	if len(c.Hash) > 10 {
		return c.Hash[:10]
	}
	return c.Hash
}

// Ref is a branch or a tag with its commit's (or annotated tag's) date and
// subject.
type Ref struct {
	Name    string
	Hash    string
	When    time.Time
	Subject string
}

// Refs are a repository's branches and tags, by name.
type Refs struct {
	Branches []Ref
	Tags     []Ref
}

const (
	// maxBlobBytes: larger files are shown as "large file, N bytes".
	maxBlobBytes = 1 << 20
	// commitsPerPage on the commit log.
	commitsPerPage = 50
)

// TreeData is a directory listing's.
type TreeData struct {
	Repo    store.Repo
	Ref     string
	Path    string
	Crumbs  []Crumb
	Entries []EntryLink
}

// Crumb is one link of a path's breadcrumb.
type Crumb struct {
	Name string
	URL  string
}

// EntryLink is a tree entry with its link.
type EntryLink struct {
	TreeEntry
	URL string
}

// BlobData is a file view's.
type BlobData struct {
	Repo   store.Repo
	Ref    string
	Path   string
	Crumbs []Crumb
	Size   int64
	// Binary or Large: no content shown.
	Binary, Large bool
	// HTML is the highlighted content (chroma, classes only).
	HTML template.HTML
}

// LogData is a commit log page's.
type LogData struct {
	Repo     store.Repo
	Ref      string
	Commits  []Commit
	Page     int
	PrevURL  string
	NextURL  string
	TreeURL  string
	RefsKind string
}

// RefsData is the branches or tags page's.
type RefsData struct {
	Repo store.Repo
	// Kind is "branches" or "tags".
	Kind string
	Refs []RefLink
}

// RefLink is a ref with its links.
type RefLink struct {
	Ref
	TreeURL, LogURL string
	Default         bool
}

// browsePath matches the browsing pages' paths (escaped): owner, name,
// page, and the rest (ref and path, still escaped).
var browsePath = lazyRegexp(`^/(` + namePattern + `)/(` + namePattern + `)/(tree|blob|commits)/([^/]+)((?:/[^/]*)*)$`)

var refsPath = lazyRegexp(`^/(` + namePattern + `)/(` + namePattern + `)/(branches|tags)$`)

func (pg *Pages) registerBrowse(routeFor func(*regexp.Regexp, http.HandlerFunc)) {
	routeFor(browsePath(), pg.browse)
	routeFor(refsPath(), pg.refsPage)
}

// ValidRef reports whether ref may be looked up: not empty, no "..", no
// leading "-", no control characters, spaces or revision syntax (~^:?*[\).
func ValidRef(ref string) bool {
	if ref == "" || len(ref) > 255 || strings.HasPrefix(ref, "-") || strings.Contains(ref, "..") ||
		strings.HasPrefix(ref, "/") || strings.HasSuffix(ref, "/") || strings.Contains(ref, "//") || strings.Contains(ref, "@{") {
		return false
	}
	for _, c := range ref {
		if c < 0x20 || c == 0x7f || strings.ContainsRune(" ~^:?*[\\", c) {
			return false
		}
	}
	return true
}

// cleanPath unescapes a page's path segments ("/a/b%20c") and checks them:
// no empty, "." or ".." segment, no NUL; "" is the root.
func cleanPath(escaped string) (string, bool) {
	if escaped == "" || escaped == "/" {
		return "", true
	}
	var segs []string
	for _, s := range strings.Split(strings.TrimPrefix(escaped, "/"), "/") {
		u, err := url.PathUnescape(s)
		if err != nil || u == "" || u == "." || u == ".." || strings.ContainsAny(u, "/\x00") {
			return "", false
		}
		segs = append(segs, u)
	}
	return strings.Join(segs, "/"), true
}

// readable finds the repository owner/name and checks that the request's
// principal may read it; ok false when it answered (404 or 500) itself.
func (pg *Pages) readable(w http.ResponseWriter, r *http.Request, owner, name string) (rp store.Repo, s session, signedIn, ok bool) {
	s, signedIn, err := pg.current(r)
	if err != nil {
		pg.fail(w, r, err)
		return rp, s, signedIn, false
	}
	p := s.principal(signedIn)
	if !store.ValidName(owner) || !store.ValidName(name) || !access.Admit(p, access.Web).OK() {
		pg.notFound(w, r, s, signedIn)
		return rp, s, signedIn, false
	}
	rp, err = pg.Store.RepoByName(r.Context(), owner, name)
	if errors.Is(err, store.ErrNotFound) {
		pg.notFound(w, r, s, signedIn)
		return rp, s, signedIn, false
	}
	if err != nil {
		pg.fail(w, r, err)
		return rp, s, signedIn, false
	}
	f, err := pg.facts(r.Context(), p, rp.OwnerKind, rp.OwnerID)
	if err != nil {
		pg.fail(w, r, err)
		return rp, s, signedIn, false
	}
	if !access.Decide(p, access.OpRead, access.Web, access.Target{Repo: rp}, f).OK() {
		pg.notFound(w, r, s, signedIn)
		return rp, s, signedIn, false
	}
	return rp, s, signedIn, true
}

func (pg *Pages) notFound(w http.ResponseWriter, r *http.Request, s session, signedIn bool) {
	pg.errorPage(w, r, s, signedIn, http.StatusNotFound, "Not found", "There is no repository here, or you may not see it.")
}

func (pg *Pages) showAs(w http.ResponseWriter, r *http.Request, s session, signedIn bool, name, title string, d any) {
	page := Page{Title: title, Data: d}
	if signedIn {
		u := s.user
		page.User, page.CSRF = &u, s.csrf
	}
	pg.show(w, r, http.StatusOK, name, page)
}

// RepoURL is the repository's page path for a page kind, a ref and a path,
// each segment escaped (a ref's slashes too: "feature%2Fx").
func RepoURL(rp store.Repo, kind, ref, path string) string {
	u := "/" + url.PathEscape(rp.Owner) + "/" + url.PathEscape(rp.Name) + "/" + kind
	if ref != "" {
		u += "/" + url.PathEscape(ref)
	}
	if path != "" {
		for _, s := range strings.Split(path, "/") {
			u += "/" + url.PathEscape(s)
		}
	}
	return u
}

func crumbs(rp store.Repo, ref, path string) []Crumb {
	c := []Crumb{{Name: rp.Name, URL: RepoURL(rp, "tree", ref, "")}}
	if path == "" {
		return c
	}
	segs := strings.Split(path, "/")
	for i := range segs {
		c = append(c, Crumb{Name: segs[i], URL: RepoURL(rp, "tree", ref, strings.Join(segs[:i+1], "/"))})
	}
	return c
}

func (pg *Pages) browse(w http.ResponseWriter, r *http.Request) {
	m := browsePath().FindStringSubmatch(r.URL.EscapedPath())
	if m == nil {
		http.NotFound(w, r)
		return
	}
	rp, s, signedIn, ok := pg.readable(w, r, m[1], m[2])
	if !ok {
		return
	}
	ref, err := url.PathUnescape(m[4])
	path, pathOK := cleanPath(m[5])
	if err != nil || !ValidRef(ref) || !pathOK || (m[3] == "commits" && path != "") || (m[3] == "blob" && path == "") {
		pg.notFound(w, r, s, signedIn)
		return
	}
	ctx := r.Context()
	switch m[3] {
	case "tree":
		entries, err := pg.Git.Tree(ctx, rp, ref, path)
		if pg.gitErr(w, r, s, signedIn, err) {
			return
		}
		d := TreeData{Repo: rp, Ref: ref, Path: path, Crumbs: crumbs(rp, ref, path), Entries: entryLinks(rp, ref, path, entries)}
		pg.showAs(w, r, s, signedIn, "tree", strings.TrimSuffix(rp.FullName()+"/"+path, "/"), d)
	case "blob":
		b, err := pg.Git.Blob(ctx, rp, ref, path, maxBlobBytes)
		if pg.gitErr(w, r, s, signedIn, err) {
			return
		}
		d := BlobData{Repo: rp, Ref: ref, Path: path, Crumbs: blobCrumbs(rp, ref, path), Size: b.Size}
		switch {
		case b.Content == nil || b.Size > maxBlobBytes:
			d.Large = true
		case isBinary(b.Content):
			d.Binary = true
		default:
			d.HTML, err = Highlight(path, b.Content)
			if err != nil {
				pg.fail(w, r, err)
				return
			}
		}
		pg.showAs(w, r, s, signedIn, "blob", rp.FullName()+"/"+path, d)
	case "commits":
		page := 1
		if v := r.URL.Query().Get("page"); v != "" {
			page, err = strconv.Atoi(v)
			if err != nil || page < 1 || page > 1_000_000 {
				pg.notFound(w, r, s, signedIn)
				return
			}
		}
		commits, err := pg.Git.Log(ctx, rp, ref, (page-1)*commitsPerPage, commitsPerPage+1)
		if pg.gitErr(w, r, s, signedIn, err) {
			return
		}
		d := LogData{Repo: rp, Ref: ref, Page: page, TreeURL: RepoURL(rp, "tree", ref, "")}
		base := RepoURL(rp, "commits", ref, "")
		if len(commits) > commitsPerPage {
			commits = commits[:commitsPerPage]
			d.NextURL = fmt.Sprintf("%s?page=%d", base, page+1)
		}
		if page > 1 {
			d.PrevURL = fmt.Sprintf("%s?page=%d", base, page-1)
		}
		d.Commits = commits
		pg.showAs(w, r, s, signedIn, "log", "Commits · "+rp.FullName(), d)
	}
}

// gitErr answers a Git error: 404 for ErrNotFound, 500 for others; false
// when err is nil.
func (pg *Pages) gitErr(w http.ResponseWriter, r *http.Request, s session, signedIn bool, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrNotFound):
		pg.notFound(w, r, s, signedIn)
	default:
		pg.fail(w, r, err)
	}
	return true
}

func entryLinks(rp store.Repo, ref, dir string, entries []TreeEntry) []EntryLink {
	out := make([]EntryLink, 0, len(entries))
	for _, e := range entries {
		p := e.Name
		if dir != "" {
			p = dir + "/" + e.Name
		}
		l := EntryLink{TreeEntry: e}
		switch e.Type {
		case "tree":
			l.URL = RepoURL(rp, "tree", ref, p)
		case "blob":
			l.URL = RepoURL(rp, "blob", ref, p)
		}
		out = append(out, l)
	}
	// Directories first, then files, each by name (git's order within).
	dirs := out[:0:0]
	var files []EntryLink
	for _, l := range out {
		if l.Type == "tree" {
			dirs = append(dirs, l)
		} else {
			files = append(files, l)
		}
	}
	return append(dirs, files...)
}

func (pg *Pages) refsPage(w http.ResponseWriter, r *http.Request) {
	m := refsPath().FindStringSubmatch(r.URL.EscapedPath())
	if m == nil {
		http.NotFound(w, r)
		return
	}
	rp, s, signedIn, ok := pg.readable(w, r, m[1], m[2])
	if !ok {
		return
	}
	refs, err := pg.Git.Refs(r.Context(), rp)
	if pg.gitErr(w, r, s, signedIn, err) {
		return
	}
	list := refs.Branches
	title := "Branches"
	if m[3] == "tags" {
		list, title = refs.Tags, "Tags"
	}
	d := RefsData{Repo: rp, Kind: m[3]}
	for _, ref := range list {
		d.Refs = append(d.Refs, RefLink{Ref: ref, TreeURL: RepoURL(rp, "tree", ref.Name, ""), LogURL: RepoURL(rp, "commits", ref.Name, ""),
			Default: m[3] == "branches" && ref.Name == rp.DefaultBranch})
	}
	pg.showAs(w, r, s, signedIn, "refs", title+" · "+rp.FullName(), d)
}

// isBinary: a NUL in the first 8000 bytes (git's own test).
func isBinary(b []byte) bool {
	if len(b) > 8000 {
		b = b[:8000]
	}
	return bytes.IndexByte(b, 0) >= 0
}

// chromaStyle is empty: the formatter writes classes only (the CSP forbids
// inline styles), whose colours are static/chroma.css (chroma's "github"
// style, written by TestChromaCSS). chroma's styles package is not linked
// into the binary: its init parses every style, which every git hook (a
// start of this binary) paid on each push.
var chromaStyle = chroma.MustNewStyle("classes", chroma.StyleEntries{})

var chromaFormatter = chromahtml.New(chromahtml.WithClasses(true), chromahtml.WithLineNumbers(true), chromahtml.TabWidth(4))

// highlight is Highlight without its cache.
func highlight(name string, src []byte) (template.HTML, error) {
	lexer := lexers.Match(name)
	if lexer == nil || len(src) > maxHighlightBytes {
		lexer = lexers.Fallback
	}
	lexer = chroma.Coalesce(lexer)
	it, err := lexer.Tokenise(nil, string(src))
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := chromaFormatter.Format(&buf, chromaStyle, it); err != nil {
		return "", err
	}
	return template.HTML(buf.String()), nil
}

// blobCrumbs are a file's breadcrumb: its directories, then itself.
func blobCrumbs(rp store.Repo, ref, path string) []Crumb {
	c := crumbs(rp, ref, path)
	c[len(c)-1].URL = RepoURL(rp, "blob", ref, path)
	return c
}
