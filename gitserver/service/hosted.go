package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gitserver/gitserver/access"
	"gitserver/gitserver/scm"
	"gitserver/store"
)

// HostInput is the provider part of a repository to create (docs/api.md
// §10): the configuration, the owner on the provider, and the remote name
// ("" for the repository's own).
type HostInput struct {
	SCMConfig   int64
	RemoteOwner string
	RemoteName  string
}

// StepError is a step of creating or repairing a provider-hosted
// repository that failed on the provider: the API answers 502
// provider_failed with "<step>: <the provider's answer>". What was done
// before it stays done; the same request again completes the rest.
type StepError struct {
	Step string // e.g. "adding the deploy key"
	Err  error  // wraps one of gitserver/scm's errors
}

func (e *StepError) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

// deployKeyTitle is the title of our deploy key on the provider.
func (s *Service) deployKeyTitle(r store.Repo) string {
	host := strings.TrimPrefix(strings.TrimPrefix(strings.TrimRight(s.BaseURL, "/"), "https://"), "http://")
	if host == "" {
		host = "gitserver"
	}
	return store.Truncate("gitserver "+host+" "+r.FullName(), 100)
}

// webhookURL is where a mirror's provider webhook points.
func (s *Service) webhookURL(m store.Mirror) string {
	return strings.TrimRight(s.BaseURL, "/") + "/hooks/scm/" + m.HookID
}

// sameKey reports whether two authorized_keys lines are the same key
// (their type and base64 blob; comments aside).
func sameKey(a, b string) bool {
	fa, fb := strings.Fields(a), strings.Fields(b)
	return len(fa) >= 2 && len(fb) >= 2 && fa[0] == fb[0] && fa[1] == fb[1]
}

// knownHostsLines are the lines of a configuration's pinned host keys.
func knownHostsLines(kh string) []string {
	var out []string
	for _, l := range strings.Split(kh, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// CreateHosted creates a provider-hosted repository (docs/api.md §10):
// the access checks of CreateRepo, the remote owner among those the user
// may create under, then on the provider the repository (private unless
// public; an existing one of that name is taken, so that a retry
// completes an interrupted creation), then here the mirror with a fresh
// deploy key and the remote's stable id, then upstream the read-only
// deploy key and the webhook (each reused when already there), then the
// first sync. A step that fails on the provider is a *StepError; the same
// request again resumes: a repository here already hosted on that
// configuration carries on with its missing steps.
func (s *Service) CreateHosted(ctx context.Context, actor Actor, in NewRepoInput, h HostInput) (store.Repo, store.Mirror, error) {
	if s.Mirrors == nil {
		return store.Repo{}, store.Mirror{}, refuse(store.ErrInvalid, "this server does not mirror repositories")
	}
	owner, err := s.createRepoOwner(ctx, actor, &in)
	if err != nil {
		return store.Repo{}, store.Mirror{}, err
	}
	u, err := s.signedIn(actor)
	if err != nil {
		return store.Repo{}, store.Mirror{}, err
	}
	// What the store would refuse is refused before anything is created
	// upstream.
	nr := store.NewRepo{OwnerID: owner.ID, Name: in.Name, Visibility: store.Visibility(in.Visibility), DefaultBranch: in.DefaultBranch}
	if err := nr.Normalize(); err != nil {
		return store.Repo{}, store.Mirror{}, err
	}
	if h.SCMConfig <= 0 {
		return store.Repo{}, store.Mirror{}, invalidf("host.scm_config is required (GET /api/v1/scm-configs lists them)")
	}
	c, err := s.Store.SCMConfigByID(ctx, h.SCMConfig)
	if err != nil {
		return store.Repo{}, store.Mirror{}, err
	}
	// A repository here already hosted on c: a retry; resume it.
	if rp, err := s.Store.RepoByName(ctx, owner.Name, in.Name); err == nil {
		m, merr := s.Store.MirrorByRepo(ctx, rp.ID)
		if merr != nil || m.SCMConfigID != c.ID || m.Remote.ID == "" {
			return store.Repo{}, store.Mirror{}, refuse(store.ErrExists, fmt.Sprintf("repository %s exists", rp.FullName()))
		}
		want := strings.TrimSpace(h.RemoteName)
		if want == "" {
			want = in.Name
		}
		if !strings.EqualFold(m.Remote.FullName, strings.TrimSpace(h.RemoteOwner)+"/"+want) {
			return store.Repo{}, store.Mirror{}, refuse(store.ErrExists, fmt.Sprintf("repository %s exists, hosted as %s", rp.FullName(), m.Remote.FullName))
		}
		cl, err := s.ProviderClient(ctx, u, c.ID)
		if err != nil {
			return store.Repo{}, store.Mirror{}, err
		}
		remote, err := cl.RepoByID(ctx, m.Remote.ID)
		if err != nil {
			return store.Repo{}, store.Mirror{}, &StepError{Step: "looking up " + m.Remote.FullName + " on " + c.Name, Err: err}
		}
		if _, err := s.ensureUpstream(ctx, cl, c, rp, m, remote); err != nil {
			return store.Repo{}, store.Mirror{}, err
		}
		s.Mirrors.Trigger(rp.ID, "")
		return rp, m, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.Repo{}, store.Mirror{}, err
	}

	owners, err := s.SCMOwners(ctx, actor, c.ID)
	if err != nil {
		return store.Repo{}, store.Mirror{}, err
	}
	ro := strings.TrimSpace(h.RemoteOwner)
	i := slices.IndexFunc(owners, func(o scm.Owner) bool { return strings.EqualFold(o.Name, ro) })
	if i < 0 {
		names := make([]string, len(owners))
		for j, o := range owners {
			names[j] = o.Name
		}
		return store.Repo{}, store.Mirror{}, invalidf("host.remote_owner %q is not an account you may create repositories under on %s (you may use: %s)",
			store.Truncate(ro, 100), c.Name, strings.Join(names, ", "))
	}
	remoteOwner := owners[i]
	name := strings.TrimSpace(h.RemoteName)
	if name == "" {
		name = in.Name
	}
	if !store.ValidName(name) {
		return store.Repo{}, store.Mirror{}, invalidf("host.remote_name must match [A-Za-z0-9][A-Za-z0-9_.-]{0,99} and not end in .git")
	}
	if c.Kind == string(scm.BitbucketCloud) || c.Kind == string(scm.BitbucketServer) {
		// Bitbucket names repositories by a lower-case slug: say so
		// before creating rather than end up with another name.
		if slug := strings.ToLower(name); slug != name {
			return store.Repo{}, store.Mirror{}, invalidf("%s would name the repository %q (Bitbucket slugs are lower case): give host.remote_name %q", c.Name, slug, slug)
		}
	}
	cl, err := s.ProviderClient(ctx, u, c.ID)
	if err != nil {
		return store.Repo{}, store.Mirror{}, err
	}
	remote, err := cl.CreateRepo(ctx, remoteOwner, name, in.Visibility != string(store.Public))
	if errors.Is(err, scm.ErrExists) {
		remote, err = cl.RepoByName(ctx, remoteOwner.Name, name)
	}
	if err != nil {
		return store.Repo{}, store.Mirror{}, &StepError{Step: "creating " + remoteOwner.Name + "/" + name + " on " + c.Name, Err: err}
	}
	interval := ""
	if c.Mode == string(scm.ModeAPI) {
		interval = "1m" // no webhook: the default branch is polled
	}
	nm, err := s.Mirrors.Prepare(ctx, remote.SSHURL, "", knownHostsLines(c.KnownHosts), interval)
	if err != nil {
		return store.Repo{}, store.Mirror{}, err
	}
	nm.Provider = c.Kind // the webhook endpoint takes this provider's deliveries only
	full := owner.Name + "/" + in.Name
	rp, m, err := s.Store.CreateMirror(ctx, nr,
		nm, actor.audit("repo.create", full, fmt.Sprintf("%s hosted on %s as %s", in.Visibility, c.Name, remote.FullName)))
	if err != nil {
		return store.Repo{}, store.Mirror{}, err
	}
	if err := s.initOrUndo(ctx, rp); err != nil {
		return store.Repo{}, store.Mirror{}, err
	}
	m.SCMConfigID = c.ID
	m.Remote = store.MirrorRemote{ID: remote.ID, FullName: remote.FullName, HTMLURL: remote.HTMLURL, DefaultBranch: remote.DefaultBranch, UserID: u.ID}
	if err := s.Store.SetMirrorRemote(ctx, rp.ID, c.ID, m.Remote); err != nil {
		return store.Repo{}, store.Mirror{}, err
	}
	if _, err := s.ensureUpstream(ctx, cl, c, rp, m, remote); err != nil {
		return store.Repo{}, store.Mirror{}, err
	}
	s.Mirrors.Trigger(rp.ID, "")
	return rp, m, nil
}

// UpstreamState is what Repair found and did upstream.
type UpstreamState struct {
	DeployKey string // "present" or "added"
	Webhook   string // "present", "added" or "none" (polled: Bitbucket Server api mode)
}

// ensureUpstream adds rp's read-only deploy key and webhook to remote
// unless they are there already.
func (s *Service) ensureUpstream(ctx context.Context, cl scm.Client, c store.SCMConfig, rp store.Repo, m store.Mirror, remote scm.RemoteRepo) (UpstreamState, error) {
	var st UpstreamState
	keys, err := cl.DeployKeys(ctx, remote)
	if err != nil {
		return st, &StepError{Step: "listing the deploy keys of " + remote.FullName, Err: err}
	}
	st.DeployKey = "present"
	if !slices.ContainsFunc(keys, func(k scm.DeployKey) bool { return sameKey(k.Key, m.PublicKey) }) {
		if _, err := cl.AddDeployKey(ctx, remote, s.deployKeyTitle(rp), m.PublicKey, true); err != nil {
			return st, &StepError{Step: "adding the deploy key", Err: err}
		}
		st.DeployKey = "added"
	}
	st.Webhook = "none"
	if c.Mode == string(scm.ModeAPI) {
		return st, nil
	}
	url := s.webhookURL(m)
	hooks, err := cl.Webhooks(ctx, remote)
	if err != nil {
		return st, &StepError{Step: "listing the webhooks of " + remote.FullName, Err: err}
	}
	st.Webhook = "present"
	if !slices.ContainsFunc(hooks, func(h scm.Webhook) bool { return h.URL == url }) {
		if _, err := cl.AddWebhook(ctx, remote, url, m.WebhookSecret); err != nil {
			return st, &StepError{Step: "adding the webhook", Err: err}
		}
		st.Webhook = "added"
	}
	return st, nil
}

// hostedClient is a client for repository rp's configuration acting as the
// acting user if connected, else (fallback) as the user who created it.
func (s *Service) hostedClient(ctx context.Context, actor Actor, m store.Mirror, fallback bool) (scm.Client, store.Account, error) {
	var first error
	if actor.Principal.User != nil {
		u := *actor.Principal.User
		cl, err := s.ProviderClient(ctx, u, m.SCMConfigID)
		if err == nil || !fallback {
			return cl, u, err
		}
		first = err
	}
	if fallback && m.Remote.UserID != 0 {
		if u, err := s.Store.AccountByID(ctx, m.Remote.UserID); err == nil {
			cl, err := s.ProviderClient(ctx, u, m.SCMConfigID)
			if err == nil {
				return cl, u, nil
			}
			if first == nil {
				first = err
			}
		}
	}
	if first == nil {
		first = refuse(store.ErrConflict, "no connection to act with")
	}
	return nil, store.Account{}, first
}

// RepairError is a repair this server cannot do: Steps say what the user
// must do by hand (the API answers 409 with them).
type RepairError struct {
	Msg   string
	Steps []string
}

func (e *RepairError) Error() string { return e.Msg }
func (e *RepairError) Unwrap() error { return store.ErrConflict }

// manualSteps are the seeds' troubleshooting steps for a hosted
// repository whose deploy key or webhook is missing upstream.
func (s *Service) manualSteps(c store.SCMConfig, m store.Mirror, rp store.Repo) []string {
	page := m.Remote.HTMLURL
	if page == "" {
		page = m.Remote.FullName + " on " + c.Name
	}
	steps := []string{
		fmt.Sprintf("connect your account to %s again (GET /scm/%d/connect) with an account that administers %s, then POST /api/v1/repos/%s/mirror/repair again", c.Name, c.ID, m.Remote.FullName, rp.FullName()),
		fmt.Sprintf("or, on %s, settings of %s: add the deploy key %q read-only (title %q)", c.Name, page, m.PublicKey, s.deployKeyTitle(rp)),
	}
	if c.Mode != string(scm.ModeAPI) {
		steps = append(steps, fmt.Sprintf("and add a webhook to %s, content type application/json, push (and repository) events, with the secret of GET /api/v1/repos/%s/mirror/webhook", s.webhookURL(m), rp.FullName()))
	}
	return steps
}

// RepairHosted re-adds a provider-hosted repository's deploy key and
// webhook where they are missing upstream, with the acting user's
// connection (r's owners only). When that is not possible it is a
// *RepairError saying what to do by hand. The remote's full name, page
// and default branch are refreshed (renames are followed by stable id).
func (s *Service) RepairHosted(ctx context.Context, actor Actor, rp store.Repo) (UpstreamState, store.Mirror, error) {
	if err := s.checkRepo(ctx, actor, access.OpMirrorWebhook, rp); err != nil {
		return UpstreamState{}, store.Mirror{}, err
	}
	m, err := s.mirrorOf(ctx, rp)
	if err != nil {
		return UpstreamState{}, store.Mirror{}, err
	}
	if m.SCMConfigID == 0 || m.Remote.ID == "" {
		return UpstreamState{}, store.Mirror{}, invalidf("%s is not hosted through an SCM configuration: add its deploy key (GET /api/v1/repos/%s/mirror) and webhook (GET /api/v1/repos/%s/mirror/webhook) upstream by hand",
			rp.FullName(), rp.FullName(), rp.FullName())
	}
	c, err := s.Store.SCMConfigByID(ctx, m.SCMConfigID)
	if err != nil {
		return UpstreamState{}, store.Mirror{}, err
	}
	cl, _, err := s.hostedClient(ctx, actor, m, false)
	if err != nil {
		var pe *ProviderError
		if errors.As(err, &pe) || errors.Is(err, store.ErrConflict) {
			return UpstreamState{}, store.Mirror{}, &RepairError{Msg: "this server cannot act on " + c.Name + " for you: " + err.Error(), Steps: s.manualSteps(c, m, rp)}
		}
		return UpstreamState{}, store.Mirror{}, err
	}
	remote, err := cl.RepoByID(ctx, m.Remote.ID)
	if err != nil {
		if errors.Is(err, scm.ErrNotFound) || errors.Is(err, scm.ErrForbidden) || errors.Is(err, scm.ErrUnauthorized) {
			return UpstreamState{}, store.Mirror{}, &RepairError{Msg: fmt.Sprintf("%s (id %s) cannot be seen on %s with your connection: %v", m.Remote.FullName, m.Remote.ID, c.Name, err),
				Steps: s.manualSteps(c, m, rp)}
		}
		return UpstreamState{}, store.Mirror{}, &StepError{Step: "looking up " + m.Remote.FullName + " on " + c.Name, Err: err}
	}
	if remote.FullName != m.Remote.FullName || remote.HTMLURL != m.Remote.HTMLURL || remote.DefaultBranch != m.Remote.DefaultBranch {
		m.Remote.FullName, m.Remote.HTMLURL, m.Remote.DefaultBranch = remote.FullName, remote.HTMLURL, remote.DefaultBranch
		if err := s.Store.SetMirrorRemote(ctx, rp.ID, c.ID, m.Remote); err != nil {
			return UpstreamState{}, store.Mirror{}, err
		}
	}
	st, err := s.ensureUpstream(ctx, cl, c, rp, m, remote)
	if err != nil {
		if errors.Is(err, scm.ErrForbidden) || errors.Is(err, scm.ErrUnauthorized) {
			return st, m, &RepairError{Msg: err.Error(), Steps: s.manualSteps(c, m, rp)}
		}
		return st, m, err
	}
	if st.DeployKey == "added" || st.Webhook == "added" {
		if err := s.Store.Audit(ctx, actor.Name(), "repo.mirror.repair", rp.FullName(), "deploy key "+st.DeployKey+", webhook "+st.Webhook); err != nil {
			s.log().Error("audit", "err", err)
		}
		s.Mirrors.Trigger(rp.ID, "")
	}
	return st, m, nil
}

// cleanupUpstream removes a provider-hosted repository's webhook and
// deploy key upstream, best effort (logged), never the remote repository.
func (s *Service) cleanupUpstream(ctx context.Context, actor Actor, rp store.Repo, m store.Mirror) {
	if m.SCMConfigID == 0 || m.Remote.ID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	log := s.log().With("repo", rp.FullName(), "remote", m.Remote.FullName)
	cl, _, err := s.hostedClient(ctx, actor, m, true)
	if err != nil {
		log.Warn("hosted repository deleted: its webhook and deploy key stay upstream", "err", err)
		return
	}
	remote, err := cl.RepoByID(ctx, m.Remote.ID)
	if err != nil {
		log.Warn("hosted repository deleted: its webhook and deploy key stay upstream", "err", err)
		return
	}
	url := s.webhookURL(m)
	if hooks, err := cl.Webhooks(ctx, remote); err != nil {
		log.Warn("hosted repository deleted: listing its webhooks upstream", "err", err)
	} else {
		for _, h := range hooks {
			if h.URL == url {
				if err := cl.DeleteWebhook(ctx, remote, h.ID); err != nil {
					log.Warn("hosted repository deleted: removing its webhook upstream", "err", err)
				}
			}
		}
	}
	if keys, err := cl.DeployKeys(ctx, remote); err != nil {
		log.Warn("hosted repository deleted: listing its deploy keys upstream", "err", err)
	} else {
		for _, k := range keys {
			if sameKey(k.Key, m.PublicKey) {
				if err := cl.DeleteDeployKey(ctx, remote, k.ID); err != nil {
					log.Warn("hosted repository deleted: removing its deploy key upstream", "err", err)
				}
			}
		}
	}
}

// ResolveHosted looks a provider-hosted mirror's remote repository up by
// its stable id, with the connection of the user who created it (the
// mirror engine's Resolve): where it is now after a rename or transfer.
func (s *Service) ResolveHosted(ctx context.Context, m store.Mirror) (string, store.MirrorRemote, error) {
	if m.SCMConfigID == 0 || m.Remote.ID == "" || m.Remote.UserID == 0 {
		return "", m.Remote, nil
	}
	u, err := s.Store.AccountByID(ctx, m.Remote.UserID)
	if err != nil {
		return "", m.Remote, err
	}
	cl, err := s.ProviderClient(ctx, u, m.SCMConfigID)
	if err != nil {
		return "", m.Remote, err
	}
	r, err := cl.RepoByID(ctx, m.Remote.ID)
	if err != nil {
		return "", m.Remote, err
	}
	return r.SSHURL, store.MirrorRemote{ID: m.Remote.ID, FullName: r.FullName, HTMLURL: r.HTMLURL, DefaultBranch: r.DefaultBranch, UserID: m.Remote.UserID}, nil
}

// PolledHead is the head of a provider-hosted mirror's remote default
// branch through the provider's API, for the configurations that poll
// (Bitbucket Server in api mode; ok is false for every other), with the
// connection of the user who created it (the mirror engine's PollHead).
func (s *Service) PolledHead(ctx context.Context, m store.Mirror) (string, bool, error) {
	if m.SCMConfigID == 0 || m.Remote.ID == "" || m.Remote.UserID == 0 || m.Remote.DefaultBranch == "" {
		return "", false, nil
	}
	c, err := s.Store.SCMConfigByID(ctx, m.SCMConfigID)
	if err != nil || c.Mode != string(scm.ModeAPI) {
		return "", false, err
	}
	u, err := s.Store.AccountByID(ctx, m.Remote.UserID)
	if err != nil {
		return "", false, err
	}
	cl, err := s.ProviderClient(ctx, u, c.ID)
	if err != nil {
		return "", false, err
	}
	r, err := cl.RepoByID(ctx, m.Remote.ID)
	if err != nil {
		return "", false, err
	}
	head, err := cl.BranchHead(ctx, r, m.Remote.DefaultBranch)
	if err != nil {
		return "", false, err
	}
	return head, true, nil
}
