package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"gitserver/gitserver/access"
	"gitserver/gitserver/service"
	"gitserver/store"
)

// NewRepoForm is the create-repository modal's (on /, open at /-/new).
type NewRepoForm struct {
	// Owners are the accounts the user may create under (the user first).
	Owners     []string
	Owner      string
	Name       string
	Visibility string
	// Host is "internal", "scm-ID" (a provider through an SCM
	// configuration) or "mirror" (an existing external repository).
	Host  string
	Hosts []HostChoice
	// RemoteOwner and RemoteName: the repository on a provider host.
	RemoteOwner string
	RemoteName  string
	// MirrorURL: an existing external repository to mirror over SSH;
	// its private key is never sent back.
	MirrorURL string
	// Mirrors: this server mirrors repositories (the mirror option shows).
	Mirrors bool
	Error   string
}

// HostChoice is one repository host of the modal.
type HostChoice struct {
	Value string
	Label string
	// Connected: the user has a connection to the SCM configuration;
	// AuthorizeURL makes one when not.
	Connected    bool
	AuthorizeURL string
}

// fillNewRepo fills the modal's choices for s into f.
func (pg *Pages) fillNewRepo(r *http.Request, s session, f *NewRepoForm) error {
	svc, act := pg.service(), actorOf(s)
	owners, err := svc.CreatableOwners(r.Context(), act)
	if err != nil {
		return err
	}
	f.Owners = nil
	for _, o := range owners {
		f.Owners = append(f.Owners, o.Name)
	}
	if f.Owner == "" {
		f.Owner = s.user.Name
	}
	if f.Visibility == "" {
		f.Visibility = string(store.Restricted)
	}
	if f.Host == "" {
		f.Host = "internal"
	}
	f.Hosts = []HostChoice{{Value: "internal", Label: "This server", Connected: true}}
	cs, err := svc.SCMConfigsForUser(r.Context(), act)
	if err != nil {
		return err
	}
	for _, c := range cs {
		h := HostChoice{Value: "scm-" + strconv.FormatInt(c.ID, 10), Label: c.Name + " (" + c.Kind + ")", Connected: c.Connected}
		if !c.Connected {
			h.AuthorizeURL = fmt.Sprintf("/scm/%d/connect?return_to=%s", c.ID, url.QueryEscape("/-/new"))
		}
		f.Hosts = append(f.Hosts, h)
	}
	f.Mirrors = pg.Mirrors != nil
	return nil
}

// homeData is the repository list of s's user: owned by the user or by an
// organisation the user belongs to, and readable (the policy has the last
// word).
func (pg *Pages) homeData(r *http.Request, s session) (HomeData, error) {
	p := s.principal(true)
	all, err := pg.Store.Repos(r.Context())
	if err != nil {
		return HomeData{}, err
	}
	var d HomeData
	facts := map[int64]access.Facts{} // by owner: one role lookup per organisation
	for _, rp := range all {
		f, seen := facts[rp.OwnerID]
		if !seen {
			f, err = pg.facts(r.Context(), p, rp.OwnerKind, rp.OwnerID)
			if err != nil {
				return HomeData{}, err
			}
			facts[rp.OwnerID] = f
		}
		if rp.OwnerID != s.user.ID && f.OrgRole == "" {
			continue
		}
		if access.Decide(p, access.OpRead, access.Web, access.Target{Repo: rp}, f).OK() {
			d.Repos = append(d.Repos, rp)
		}
	}
	d.CanCreate = access.Scoped(p, access.OpCreateRepo, access.Web).OK()
	return d, nil
}

// showNewRepo renders / with the modal open.
func (pg *Pages) showNewRepo(w http.ResponseWriter, r *http.Request, s session, status int, f NewRepoForm) {
	d, err := pg.homeData(r, s)
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	if err := pg.fillNewRepo(r, s, &f); err != nil {
		pg.fail(w, r, err)
		return
	}
	d.New = &f
	u := s.user
	pg.show(w, r, status, "home", Page{Title: "New repository", User: &u, CSRF: s.csrf, Data: d})
}

func (pg *Pages) newRepoForm(w http.ResponseWriter, r *http.Request) {
	s, ok := pg.signedIn(w, r)
	if !ok {
		return
	}
	pg.showNewRepo(w, r, s, http.StatusOK, NewRepoForm{})
}

func (pg *Pages) createRepo(w http.ResponseWriter, r *http.Request) {
	s, ok := pg.post(w, r)
	if !ok {
		return
	}
	form := r.PostForm
	f := NewRepoForm{Owner: strings.TrimSpace(form.Get("owner")), Name: strings.TrimSpace(form.Get("name")),
		Visibility: form.Get("visibility"), Host: form.Get("host"),
		RemoteOwner: strings.TrimSpace(form.Get("remote_owner")), RemoteName: strings.TrimSpace(form.Get("remote_name")),
		MirrorURL: strings.TrimSpace(form.Get("mirror_url"))}
	svc, act := pg.service(), actorOf(s)
	in := service.NewRepoInput{Owner: f.Owner, Name: f.Name, Visibility: f.Visibility}
	var rp store.Repo
	var err error
	switch {
	case f.Host == "" || f.Host == "internal":
		rp, err = svc.CreateRepo(r.Context(), act, in)
	case f.Host == "mirror":
		rp, _, err = svc.CreateMirror(r.Context(), act, in, service.MirrorInput{URL: f.MirrorURL, PrivateKey: strings.TrimSpace(form.Get("mirror_key"))})
	case strings.HasPrefix(f.Host, "scm-"):
		id, perr := strconv.ParseInt(strings.TrimPrefix(f.Host, "scm-"), 10, 64)
		if perr != nil || id <= 0 {
			f.Error = "Choose a repository host from the list."
			pg.showNewRepo(w, r, s, http.StatusBadRequest, f)
			return
		}
		rp, _, err = svc.CreateHosted(r.Context(), act, in, service.HostInput{SCMConfig: id, RemoteOwner: f.RemoteOwner, RemoteName: f.RemoteName})
	default:
		f.Error = "Choose a repository host from the list."
		pg.showNewRepo(w, r, s, http.StatusBadRequest, f)
		return
	}
	if err != nil {
		status, msg, ok := failure(err)
		if !ok {
			pg.fail(w, r, err)
			return
		}
		f.Error = msg
		pg.showNewRepo(w, r, s, status, f)
		return
	}
	http.Redirect(w, r, "/"+rp.Owner+"/"+rp.Name, http.StatusSeeOther)
}
