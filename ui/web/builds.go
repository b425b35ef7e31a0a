package web

import (
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gitserver/gitserver/access"
	"gitserver/gitserver/httperr"
	"gitserver/gitserver/service"
	"gitserver/store"
)

// buildsLimit is how many builds the Builds tab lists.
const buildsLimit = 100

// liveRefresh is how often (seconds) the Builds tab reloads while a build
// is queued or running (not while the Publish modal is open).
const liveRefresh = 5

var (
	buildsPath  = lazyRegexp(`^/(` + namePattern + `)/(` + namePattern + `)/builds$`)
	versionPath = lazyRegexp(`^/(` + namePattern + `)/(` + namePattern + `)/versions$`)
	publishPath = lazyRegexp(`^/(` + namePattern + `)/(` + namePattern + `)/builds/([0-9]{1,18})/publish$`)
)

// matches is a route matcher: the escaped path matches re and its first
// segment is not reserved.
func matches(re *regexp.Regexp) func(*http.Request) bool {
	return func(r *http.Request) bool {
		m := re.FindStringSubmatch(r.URL.EscapedPath())
		return m != nil && !IsReserved(m[1])
	}
}

// repoRequest is a request for one repository's page, resolved and
// checked by the access policy.
type repoRequest struct {
	s        session
	signedIn bool
	p        store.Principal
	repo     store.Repo
	facts    access.Facts
	m        []string // re's submatches
}

// page is a Page for the request's user.
func (rr repoRequest) page(title string, d any) Page {
	p := Page{Title: title, Data: d}
	if rr.signedIn {
		u := rr.s.user
		p.User, p.CSRF = &u, rr.s.csrf
	}
	return p
}

// can reports whether the policy lets the request's principal do op on the
// repository through the web.
func (rr repoRequest) can(op access.Op) bool {
	return access.Decide(rr.p, op, access.Web, access.Target{Repo: rr.repo}, rr.facts).OK()
}

// resolve looks up the repository of a request whose path matches re and
// checks op on it; on false it has answered (404 for a repository the
// principal may not see or do op on, as the API hides it).
func (pg *Pages) resolve(w http.ResponseWriter, r *http.Request, re *regexp.Regexp, op access.Op) (repoRequest, bool) {
	var rr repoRequest
	s, ok, err := pg.current(r)
	if err != nil {
		pg.fail(w, r, err)
		return rr, false
	}
	rr.s, rr.signedIn, rr.p = s, ok, s.principal(ok)
	notFound := func() {
		pg.errorPage(w, r, s, ok, http.StatusNotFound, "Not found", "There is no repository here, or you may not see it.")
	}
	rr.m = re.FindStringSubmatch(r.URL.EscapedPath())
	if rr.m == nil || !store.ValidName(rr.m[1]) || !store.ValidName(rr.m[2]) || !access.Admit(rr.p, access.Web).OK() {
		notFound()
		return rr, false
	}
	rr.repo, err = pg.Store.RepoByName(r.Context(), rr.m[1], rr.m[2])
	if errors.Is(err, store.ErrNotFound) {
		notFound()
		return rr, false
	}
	if err != nil {
		pg.fail(w, r, err)
		return rr, false
	}
	if rr.facts, err = pg.facts(r.Context(), rr.p, rr.repo.OwnerKind, rr.repo.OwnerID); err != nil {
		pg.fail(w, r, err)
		return rr, false
	}
	if !rr.can(access.OpRead) || !rr.can(op) {
		notFound()
		return rr, false
	}
	return rr, true
}

// BuildsData is the Builds tab's.
type BuildsData struct {
	Repo   store.Repo
	Builds []BuildRow
	// CanPublish: the user may publish (the Publish buttons show).
	CanPublish bool
	// CanSettings: the Settings tab shows.
	CanSettings bool
	// Publish is the open Publish modal (?publish=ID), nil when closed.
	Publish *PublishForm
}

// BuildRow is one build as the Builds tab shows it.
type BuildRow struct {
	ID          int64
	Status      string
	Commit      string
	Short       string
	CommitCount int
	PushedBy    string
	Queued      string
	Started     string
	Finished    string
	LogURL      string
	Published   string // the version published from it, "" if none
	// Publishable: succeeded and not yet published.
	Publishable bool
}

// PublishForm is the Publish modal's.
type PublishForm struct {
	Build  BuildRow
	Latest string // the latest version, "" when none
	Bumps  []BumpChoice
	Notes  string
	Error  string
	// Log is the commits since the latest version (up to logLimit; LogMore
	// when there are more), LogSince that version's commit.
	Log      []LogEntry
	LogMore  bool
	LogSince string
}

// logLimit is how many commits the Publish modal lists.
const logLimit = 50

// BumpChoice is one bump with the version it makes.
type BumpChoice struct {
	Bump    string
	Version string
	Checked bool
}

// VersionsData is the versions page's.
type VersionsData struct {
	Repo store.Repo
	// CanSettings: the Settings tab shows.
	CanSettings bool
	Versions    []VersionRow
	// New is the version just published (highlighted), "" otherwise.
	New string
}

// VersionRow is one version as the versions page shows it.
type VersionRow struct {
	Version     string
	Commit      string
	Short       string
	BuildID     int64
	Notes       string
	PublishedBy string
	PublishedAt string
}

func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

func safeURL(u string) string {
	l := strings.ToLower(u)
	if strings.HasPrefix(l, "https://") || strings.HasPrefix(l, "http://") || strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "//") {
		return u
	}
	return ""
}

func buildRow(b store.Build, published map[int64]string) BuildRow {
	return BuildRow{ID: b.ID, Status: string(b.Status), Commit: b.Commit, Short: short(b.Commit), CommitCount: b.CommitCount,
		PushedBy: b.PushedBy, Queued: when(b.QueuedAt), Started: when(b.StartedAt), Finished: when(b.FinishedAt),
		LogURL: safeURL(b.LogURL), Published: published[b.ID],
		Publishable: b.Status == store.BuildSucceeded && published[b.ID] == ""}
}

// publishForm is the modal for build b, given the versions (newest first).
func publishForm(b BuildRow, versions []store.Version, bump, notes string) *PublishForm {
	f := &PublishForm{Build: b, Notes: notes}
	var ma, mi, pa int
	if len(versions) > 0 {
		v := versions[0]
		ma, mi, pa = v.Major, v.Minor, v.Patch
		f.Latest = v.String()
	}
	if bump == "" {
		bump = store.BumpPatch
	}
	for _, k := range []string{store.BumpMajor, store.BumpMinor, store.BumpPatch} {
		a, b, c, _ := store.NextVersion(ma, mi, pa, k)
		f.Bumps = append(f.Bumps, BumpChoice{Bump: k, Version: store.Version{Major: a, Minor: b, Patch: c}.String(), Checked: k == bump})
	}
	return f
}

func (pg *Pages) builds(w http.ResponseWriter, r *http.Request) {
	rr, ok := pg.resolve(w, r, buildsPath(), access.OpReadBuilds)
	if !ok {
		return
	}
	pg.showBuilds(w, r, rr, http.StatusOK, r.URL.Query().Get("publish"), "", "", "")
}

// showBuilds renders the Builds tab, with the Publish modal open for build
// openID (a string from the query or the form; ignored unless publishable).
func (pg *Pages) showBuilds(w http.ResponseWriter, r *http.Request, rr repoRequest, status int, openID, bump, notes, msg string) {
	bs, err := pg.Store.Builds(r.Context(), rr.repo.ID, "", buildsLimit)
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	vs, err := pg.Store.Versions(r.Context(), rr.repo.ID)
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	published := map[int64]string{}
	for _, v := range vs {
		published[v.BuildID] = v.String()
	}
	d := BuildsData{Repo: rr.repo, CanPublish: rr.signedIn && rr.can(access.OpPublish), CanSettings: rr.signedIn && rr.can(access.OpManageKeys)}
	for _, b := range bs {
		row := buildRow(b, published)
		d.Builds = append(d.Builds, row)
		if d.CanPublish && openID != "" && openID == strconv.FormatInt(b.ID, 10) && row.Publishable {
			d.Publish = publishForm(row, vs, bump, notes)
			d.Publish.Error = msg
			var since string
			if len(vs) > 0 {
				since = vs[0].Commit
				d.Publish.LogSince = short(since)
			}
			log, err := pg.Git.LogSince(r.Context(), rr.repo, b.Commit, since, logLimit+1)
			if err != nil {
				// The log is a help, not the form: show the form without it.
				pg.Log.Warn("publish modal: commit log", "repo", rr.repo.FullName(), "err", err)
			}
			if len(log) > logLimit {
				log, d.Publish.LogMore = log[:logLimit], true
			}
			d.Publish.Log = log
		}
	}
	page := rr.page("Builds · "+rr.repo.FullName(), d)
	if d.Publish == nil {
		for _, b := range bs {
			if b.Status == store.BuildQueued || b.Status == store.BuildRunning {
				page.Refresh = liveRefresh // until every build has finished
				break
			}
		}
	}
	pg.show(w, r, status, "builds", page)
}

func (pg *Pages) publish(w http.ResponseWriter, r *http.Request) {
	rr, ok := pg.resolve(w, r, publishPath(), access.OpReadBuilds)
	if !ok {
		return
	}
	if !rr.signedIn {
		pg.errorPage(w, r, rr.s, false, http.StatusForbidden, "Sign in", "Sign in to publish.")
		return
	}
	if !pg.checkForm(w, r, rr.s.csrf, rr.s, true) {
		return
	}
	id, err := strconv.ParseInt(rr.m[3], 10, 64)
	if err != nil {
		pg.errorPage(w, r, rr.s, true, http.StatusNotFound, "Not found", "There is no such build.")
		return
	}
	bump, notes := r.PostForm.Get("bump"), strings.ReplaceAll(r.PostForm.Get("notes"), "\r\n", "\n")
	v, err := pg.service().Publish(r.Context(), service.As(rr.p, access.Web), rr.repo, id, bump, notes)
	if err != nil {
		var se *service.Error
		msg := ""
		if errors.As(err, &se) {
			msg = se.Msg
		} else if he := httperr.From(err); he.Status < http.StatusInternalServerError {
			msg = he.Message // what the API would say
		} else {
			pg.fail(w, r, err)
			return
		}
		switch {
		case errors.Is(err, store.ErrNotFound):
			pg.errorPage(w, r, rr.s, true, http.StatusNotFound, "Not found", "There is no such build, or you may not see it.")
		case errors.Is(err, store.ErrForbidden):
			pg.errorPage(w, r, rr.s, true, http.StatusForbidden, "Not allowed", msg)
		case errors.Is(err, store.ErrInvalid):
			pg.showBuilds(w, r, rr, http.StatusBadRequest, rr.m[3], bump, notes, msg)
		default:
			pg.errorPage(w, r, rr.s, true, http.StatusConflict, "Not published", msg)
		}
		return
	}
	http.Redirect(w, r, "/"+rr.repo.FullName()+"/versions?new="+v.String(), http.StatusSeeOther)
}

func (pg *Pages) versions(w http.ResponseWriter, r *http.Request) {
	rr, ok := pg.resolve(w, r, versionPath(), access.OpRead)
	if !ok {
		return
	}
	vs, err := pg.Store.Versions(r.Context(), rr.repo.ID)
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	d := VersionsData{Repo: rr.repo, CanSettings: rr.signedIn && rr.can(access.OpManageKeys)}
	nv := r.URL.Query().Get("new")
	for _, v := range vs {
		if v.String() == nv {
			d.New = nv
		}
		d.Versions = append(d.Versions, VersionRow{Version: v.String(), Commit: v.Commit, Short: short(v.Commit), BuildID: v.BuildID,
			Notes: v.ReleaseNotes, PublishedBy: v.PublishedBy, PublishedAt: when(v.PublishedAt)})
	}
	pg.show(w, r, http.StatusOK, "versions", rr.page("Versions · "+rr.repo.FullName(), d))
}
