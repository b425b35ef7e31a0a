package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// id is a repository id that providers send as a JSON number (GitHub,
// GitLab, Gitea, Bitbucket Server) or string (Bitbucket Cloud's uuid).
type id string

func (i *id) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*i = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*i = id(s)
		return nil
	}
	if len(b) == 0 || len(b) > 20 {
		return fmt.Errorf("id %.40s is not an integer", b)
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return fmt.Errorf("id %.40s is not an integer", b)
		}
	}
	*i = id(b)
	return nil
}

// decode unmarshals a verified body (or its form payload field) into v.
func decode(h http.Header, body []byte, what string, v any) error {
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		q, err := url.ParseQuery(string(body))
		if err != nil || q.Get("payload") == "" {
			return fmt.Errorf("%w: %s: form body without a payload field", ErrMalformed, what)
		}
		body = []byte(q.Get("payload"))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
	}
	return nil
}

func unsupported(ev *Event) error {
	ev.Kind = Other
	return fmt.Errorf("%w: %s event %q", ErrUnsupported, ev.Provider, ev.Type)
}

// zeroID reports whether s is an all-zero object id (a missing side).
func zeroID(s string) bool {
	return s != "" && strings.Trim(s, "0") == ""
}

// objectID reports whether s is a SHA-1 or SHA-256 object id in lowercase hex.
func objectID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// validRef is a conservative subset of git check-ref-format for a full
// ref name: the names git would refuse are refused, and a few it allows
// (control characters aside, nothing git allows in practice).
func validRef(r string) bool {
	if !strings.HasPrefix(r, "refs/") || len(r) > 1024 || strings.HasSuffix(r, "/") ||
		strings.HasSuffix(r, ".") || strings.HasSuffix(r, ".lock") ||
		strings.Contains(r, "..") || strings.Contains(r, "//") || strings.Contains(r, "@{") ||
		strings.Contains(r, "/.") {
		return false
	}
	for i := 0; i < len(r); i++ {
		if c := r[i]; c < 0x21 || c == 0x7f || strings.IndexByte("~^:?*[\\", c) >= 0 {
			return false
		}
	}
	return true
}

// change builds a RefChange, normalising all-zero ids into the flags and
// checking what it was given.
func change(what, ref, before, after string, created, deleted bool) (RefChange, error) {
	before, after = strings.ToLower(before), strings.ToLower(after)
	if zeroID(before) || before == "" && created {
		before, created = "", true
	}
	if zeroID(after) || after == "" && deleted {
		after, deleted = "", true
	}
	c := RefChange{Ref: ref, Before: before, After: after, Created: created, Deleted: deleted}
	switch {
	case !validRef(ref):
		return c, fmt.Errorf("%w: %s: ref %.100q is not a full ref name", ErrMalformed, what, ref)
	case created && deleted:
		return c, fmt.Errorf("%w: %s: %s both created and deleted", ErrMalformed, what, ref)
	case created && before != "" || deleted && after != "":
		return c, fmt.Errorf("%w: %s: %s created or deleted but with both ids", ErrMalformed, what, ref)
	case !created && !objectID(before):
		return c, fmt.Errorf("%w: %s: %s: before %.80q is not an object id", ErrMalformed, what, ref, before)
	case !deleted && !objectID(after):
		return c, fmt.Errorf("%w: %s: %s: after %.80q is not an object id", ErrMalformed, what, ref, after)
	}
	return c, nil
}

func needRepo(ev *Event, what string) error {
	if ev.RepoID == "" {
		return fmt.Errorf("%w: %s: no repository id", ErrMalformed, what)
	}
	return nil
}

// GitHub and Gitea ("push", and GitHub's "ping").

type ghRepo struct {
	ID            id     `json:"id"`
	FullName      string `json:"full_name"`
	DefaultBranch string `json:"default_branch"`
	SSHURL        string `json:"ssh_url"`
}

type ghPush struct {
	Ref        string  `json:"ref"`
	Before     string  `json:"before"`
	After      string  `json:"after"`
	Created    bool    `json:"created"`
	Deleted    bool    `json:"deleted"`
	Repository *ghRepo `json:"repository"`
	Pusher     struct {
		Name     string `json:"name"`     // GitHub: the login
		Login    string `json:"login"`    // Gitea
		Username string `json:"username"` // Gitea
	} `json:"pusher"`
	Sender struct {
		Login string `json:"login"`
	} `json:"sender"`
}

func (p *ghPush) fill(ev *Event, what string) error {
	if p.Repository != nil {
		ev.RepoID = string(p.Repository.ID)
		ev.RepoFullName = p.Repository.FullName
		ev.DefaultBranch = p.Repository.DefaultBranch
		ev.SSHURL = p.Repository.SSHURL
	}
	if err := needRepo(ev, what); err != nil {
		return err
	}
	ev.Pusher = firstOf(p.Pusher.Name, p.Pusher.Login, p.Pusher.Username, p.Sender.Login)
	c, err := change(what, p.Ref, p.Before, p.After, p.Created, p.Deleted)
	if err != nil {
		return err
	}
	ev.Kind, ev.Changes = Push, []RefChange{c}
	return nil
}

func parseGitHub(ev *Event, h http.Header, body []byte) error {
	ev.Type = h.Get("X-GitHub-Event")
	ev.DeliveryID = deliveryID(h, "X-GitHub-Delivery")
	switch ev.Type {
	case "push":
		var p ghPush
		if err := decode(h, body, "github push", &p); err != nil {
			return err
		}
		return p.fill(ev, "github push")
	case "ping":
		// A ping names the repository only for a repository's own hook.
		var p struct {
			Repository *ghRepo `json:"repository"`
		}
		if err := decode(h, body, "github ping", &p); err != nil {
			return err
		}
		if r := p.Repository; r != nil {
			ev.RepoID, ev.RepoFullName, ev.DefaultBranch, ev.SSHURL = string(r.ID), r.FullName, r.DefaultBranch, r.SSHURL
		}
		ev.Kind = Ping
		return nil
	}
	return unsupported(ev)
}

func parseGitea(ev *Event, h http.Header, body []byte) error {
	ev.Type = firstOf(h.Get("X-Forgejo-Event"), h.Get("X-Gitea-Event"))
	ev.DeliveryID = deliveryID(h, "X-Forgejo-Delivery", "X-Gitea-Delivery", "X-Gogs-Delivery", "X-GitHub-Delivery")
	if ev.Type != "push" {
		return unsupported(ev) // "create" and "delete" come with a push too
	}
	var p ghPush
	if err := decode(h, body, "gitea push", &p); err != nil {
		return err
	}
	p.Created, p.Deleted = false, false // Gitea's payload has no such flags; the ids say it
	return p.fill(ev, "gitea push")
}

// GitLab ("Push Hook", "Tag Push Hook").

func parseGitLab(ev *Event, h http.Header, body []byte) error {
	ev.Type = h.Get("X-Gitlab-Event")
	ev.DeliveryID = deliveryID(h, "Idempotency-Key", "webhook-id", "X-Gitlab-Event-UUID")
	if ev.Type != "Push Hook" && ev.Type != "Tag Push Hook" {
		return unsupported(ev)
	}
	what := "gitlab " + ev.Type
	var p struct {
		ObjectKind   string `json:"object_kind"`
		Ref          string `json:"ref"`
		Before       string `json:"before"`
		After        string `json:"after"`
		UserUsername string `json:"user_username"`
		ProjectID    id     `json:"project_id"`
		Project      struct {
			ID                id     `json:"id"`
			PathWithNamespace string `json:"path_with_namespace"`
			DefaultBranch     string `json:"default_branch"`
			GitSSHURL         string `json:"git_ssh_url"`
		} `json:"project"`
	}
	if err := decode(h, body, what, &p); err != nil {
		return err
	}
	if p.ObjectKind != "push" && p.ObjectKind != "tag_push" {
		return fmt.Errorf("%w: %s: object_kind %.40q", ErrMalformed, what, p.ObjectKind)
	}
	ev.RepoID = string(firstOf(p.Project.ID, p.ProjectID))
	ev.RepoFullName = p.Project.PathWithNamespace
	ev.DefaultBranch = p.Project.DefaultBranch
	ev.SSHURL = p.Project.GitSSHURL
	ev.Pusher = p.UserUsername
	if err := needRepo(ev, what); err != nil {
		return err
	}
	c, err := change(what, p.Ref, p.Before, p.After, false, false)
	if err != nil {
		return err
	}
	ev.Kind, ev.Changes = Push, []RefChange{c}
	return nil
}

// Bitbucket Cloud ("repo:push").

type bbcRef struct {
	Type   string `json:"type"`
	Name   string `json:"name"`
	Target struct {
		Hash string `json:"hash"`
	} `json:"target"`
}

func parseBitbucketCloud(ev *Event, h http.Header, body []byte) error {
	ev.Type = h.Get("X-Event-Key")
	ev.DeliveryID = deliveryID(h, "X-Request-UUID")
	if ev.Type != "repo:push" {
		return unsupported(ev)
	}
	const what = "bitbucket-cloud repo:push"
	var p struct {
		Actor struct {
			Nickname    string `json:"nickname"`
			Username    string `json:"username"`
			DisplayName string `json:"display_name"`
		} `json:"actor"`
		Repository struct {
			UUID     id     `json:"uuid"`
			FullName string `json:"full_name"`
		} `json:"repository"`
		Push struct {
			Changes []struct {
				Old     *bbcRef `json:"old"`
				New     *bbcRef `json:"new"`
				Created bool    `json:"created"`
				Closed  bool    `json:"closed"`
			} `json:"changes"`
		} `json:"push"`
	}
	if err := decode(h, body, what, &p); err != nil {
		return err
	}
	ev.RepoID, ev.RepoFullName = string(p.Repository.UUID), p.Repository.FullName
	ev.Pusher = firstOf(p.Actor.Nickname, p.Actor.Username, p.Actor.DisplayName)
	if err := needRepo(ev, what); err != nil {
		return err
	}
	ev.Kind = Push
	for i, ch := range p.Push.Changes {
		r := ch.New
		if r == nil {
			r = ch.Old
		}
		if r == nil {
			return fmt.Errorf("%w: %s: change %d has neither old nor new", ErrMalformed, what, i)
		}
		var ref string
		switch r.Type {
		case "branch":
			ref = "refs/heads/" + r.Name
		case "tag", "annotated_tag":
			ref = "refs/tags/" + r.Name
		default:
			continue // not a git ref (Mercurial's named_branch, bookmark)
		}
		var before, after string
		if ch.Old != nil {
			before = ch.Old.Target.Hash
		}
		if ch.New != nil {
			after = ch.New.Target.Hash
		}
		c, err := change(what, ref, before, after, ch.Old == nil || ch.Created, ch.New == nil || ch.Closed)
		if err != nil {
			return err
		}
		ev.Changes = append(ev.Changes, c)
	}
	return nil
}

// Bitbucket Server / Data Center ("repo:refs_changed", "diagnostics:ping").

func parseBitbucketServer(ev *Event, h http.Header, body []byte) error {
	ev.Type = h.Get("X-Event-Key")
	ev.DeliveryID = deliveryID(h, "X-Request-Id")
	switch ev.Type {
	case "diagnostics:ping":
		ev.Kind = Ping // the body ({"test": true}) says nothing more
		return nil
	case "repo:refs_changed":
	default:
		return unsupported(ev)
	}
	const what = "bitbucket-server repo:refs_changed"
	var p struct {
		Actor struct {
			Name string `json:"name"`
			Slug string `json:"slug"`
		} `json:"actor"`
		Repository struct {
			ID      id     `json:"id"`
			Slug    string `json:"slug"`
			Project struct {
				Key string `json:"key"`
			} `json:"project"`
			Links struct {
				Clone []struct {
					Href string `json:"href"`
					Name string `json:"name"`
				} `json:"clone"`
			} `json:"links"`
		} `json:"repository"`
		Changes []struct {
			Ref struct {
				ID string `json:"id"`
			} `json:"ref"`
			RefID    string `json:"refId"`
			FromHash string `json:"fromHash"`
			ToHash   string `json:"toHash"`
			Type     string `json:"type"`
		} `json:"changes"`
	}
	if err := decode(h, body, what, &p); err != nil {
		return err
	}
	r := p.Repository
	ev.RepoID = string(r.ID)
	if r.Project.Key != "" && r.Slug != "" {
		ev.RepoFullName = r.Project.Key + "/" + r.Slug
	}
	for _, l := range r.Links.Clone {
		if l.Name == "ssh" {
			ev.SSHURL = l.Href
		}
	}
	ev.Pusher = firstOf(p.Actor.Name, p.Actor.Slug)
	if err := needRepo(ev, what); err != nil {
		return err
	}
	ev.Kind = Push
	for _, ch := range p.Changes {
		c, err := change(what, firstOf(ch.Ref.ID, ch.RefID), ch.FromHash, ch.ToHash, ch.Type == "ADD", ch.Type == "DELETE")
		if err != nil {
			return err
		}
		ev.Changes = append(ev.Changes, c)
	}
	return nil
}

func firstOf[T ~string](vs ...T) T {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
