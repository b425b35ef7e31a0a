package web

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"sync"

	"github.com/microcosm-cc/bluemonday"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/renderer/html"

	"gitserver/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// staticFiles are the embedded assets, served under /-/static/.
func staticFiles() fs.FS {
	sub, _ := fs.Sub(staticFS, "static")
	return sub
}

// pageNames are the pages; each is templates/<name>.html with the layout.
var pageNames = []string{"login", "home", "repo", "error", "tree", "blob", "log", "refs", "builds", "versions", "settings", "edit", "reposettings"}

// templateBuilders are the pages parsed beside pageNames (admin.go,
// scmconnect.go register theirs in init).
var templateBuilders = map[string]func() *template.Template{}

// templates are parsed once, at the first page rendered rather than at
// start-up: every git hook is a start of this binary, and parsing them
// all cost each push several milliseconds.
var templates = sync.OnceValue(func() map[string]*template.Template {
	m := map[string]*template.Template{}
	for _, name := range pageNames {
		m[name] = template.Must(template.New(name).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
	}
	for name, build := range templateBuilders {
		m[name] = build()
	}
	return m
})

// Page is what every template gets: the page's title, the signed-in user
// (nil when anonymous), the CSRF token its forms carry, and the page's own
// data.
type Page struct {
	Title string
	User  *store.Account
	CSRF  string
	Data  any
	// Refresh, when positive, reloads the page after that many seconds
	// (a <meta> refresh: live status without script).
	Refresh int
}

// LoginData is the sign-in page's.
type LoginData struct {
	Username string
	Error    string
	// SSOName is the identity provider's name when single sign-on is on:
	// the page offers "Sign in with <SSOName>".
	SSOName string
}

// HomeData is the repository list's.
type HomeData struct {
	Repos []store.Repo
	// CanCreate: the credential may create repositories ("New
	// repository" shows); New is the open create-repository modal.
	CanCreate bool
	New       *NewRepoForm
	Notice    string
}

// RepoData is the repository home's.
type RepoData struct {
	Repo    store.Repo
	HTTPURL string
	SSHURL  string
	// Empty: the repository has no branch at all (push instructions).
	Empty bool
	// NoBranch: it has branches, but not the default one.
	NoBranch   bool
	ReadmeName string
	// ReadmeHTML is the README rendered and sanitised (RenderMarkdown).
	ReadmeHTML template.HTML
	// Files are the default branch's root (none when it has no commit).
	Files                            []EntryLink
	CommitsURL, BranchesURL, TagsURL string
	// EditURL and NewFileURL lead to the Web IDE ("" when the user may
	// not commit: a reader, a mirror).
	EditURL, NewFileURL string
	// CanSettings: the user may use the settings page (the tab shows).
	CanSettings bool
}

// ErrorData is an error page's.
type ErrorData struct {
	Heading string
	Message string
}

// render executes page name into a buffer, then writes it with status.
func render(w http.ResponseWriter, status int, name string, p Page) error {
	var buf bytes.Buffer
	if err := templates()[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// markdown renders GitHub-flavoured Markdown. Raw HTML is let through to
// the sanitiser (READMEs use <img>, <details>, <br>), which is what makes
// the output safe.
var markdown = sync.OnceValue(func() goldmark.Markdown {
	return goldmark.New(
		goldmark.WithExtensions(extension.GFM),
		goldmark.WithRendererOptions(html.WithUnsafe()),
	)
})

// sanitiser is bluemonday's policy for user-generated content: no scripts,
// no event-handler attributes, no javascript: URLs, no style, no forms,
// no frames. Built at the first README (as markdown and the templates:
// not at the start of every git hook).
var sanitiser = sync.OnceValue(func() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.AllowAttrs("class").Matching(bluemonday.SpaceSeparatedTokens).OnElements("code", "pre", "span")
	p.RequireNoReferrerOnLinks(true)
	return p
})

// RenderMarkdown renders Markdown source to HTML that is safe to embed in
// a page: rendered with goldmark, then sanitised with bluemonday.
func RenderMarkdown(src []byte) (template.HTML, error) {
	var buf bytes.Buffer
	if err := markdown().Convert(src, &buf); err != nil {
		return "", err
	}
	return template.HTML(sanitiser().SanitizeBytes(buf.Bytes())), nil
}
