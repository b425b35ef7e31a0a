package ui

import (
	"context"
	"errors"
	"net/http"
	"time"

	"gitserver/gitserver/access"
	"gitserver/store"
	"gitserver/ui/wire"
)

// buildJSON is the build object of docs/api.md §7 (b.Repo is "owner/name").
func (a *API) buildJSON(b store.Build) wire.Build {
	return wire.NewBuild(b, wire.HTTPCloneURL(a.BaseURL, b.Repo))
}

func (a *API) listBuilds(w http.ResponseWriter, r *http.Request, p store.Principal) {
	rp, ok := a.repo(w, r, p, access.OpReadBuilds)
	if !ok {
		return
	}
	status := store.BuildStatus(r.URL.Query().Get("status"))
	if status != "" && !status.Valid() {
		WriteError(w, http.StatusBadRequest, "invalid", "status must be one of queued, running, succeeded, failed, superseded")
		return
	}
	builds, err := a.Store.Builds(r.Context(), rp.ID, status, 200)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]wire.Build, 0, len(builds))
	for _, b := range builds {
		out = append(out, a.buildJSON(b))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) getBuild(w http.ResponseWriter, r *http.Request, p store.Principal) {
	b, err := a.Store.BuildByID(r.Context(), pathID(r))
	if errors.Is(err, store.ErrNotFound) {
		notFound(w, p, "build not found")
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	rp, err := a.Store.RepoByID(r.Context(), b.RepoID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	f, err := a.facts(r.Context(), p, rp.OwnerKind, rp.OwnerID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if !access.Decide(p, access.OpReadBuilds, access.API, access.Target{Repo: rp}, f).OK() {
		// Whether or not the build exists is not revealed.
		notFound(w, p, "build not found")
		return
	}
	writeJSON(w, http.StatusOK, a.buildJSON(b))
}

func (a *API) claim(w http.ResponseWriter, r *http.Request, p store.Principal) {
	var in struct {
		Worker       string `json:"worker"`
		WaitSeconds  *int   `json:"wait_seconds"`
		LeaseSeconds *int   `json:"lease_seconds"`
	}
	if !decode(w, r, &in) || !a.may(w, p, access.OpClaimBuilds) {
		return
	}
	if in.Worker == "" || len(in.Worker) > 100 {
		WriteError(w, http.StatusBadRequest, "invalid", "worker must be a name of 1 to 100 characters")
		return
	}
	wait, ok := claimWait(in.WaitSeconds, a.MaxClaimWait)
	if !ok {
		WriteError(w, http.StatusBadRequest, "invalid", "wait_seconds must not be negative")
		return
	}
	lease := 300 * time.Second
	if in.LeaseSeconds != nil {
		if *in.LeaseSeconds < 1 || *in.LeaseSeconds > 86400 {
			WriteError(w, http.StatusBadRequest, "invalid", "lease_seconds must be between 1 and 86400")
			return
		}
		lease = time.Duration(*in.LeaseSeconds) * time.Second
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		changed := a.Store.Changed() // before the attempt, so no wake-up is missed
		b, err := a.Store.ClaimBuild(r.Context(), in.Worker, lease)
		if err == nil {
			a.audit(r, p, "build.claim", b.Repo, in.Worker)
			writeJSON(w, http.StatusOK, wire.NewClaim(b, wire.HTTPCloneURL(a.BaseURL, b.Repo)))
			return
		}
		if !errors.Is(err, store.ErrNotFound) {
			a.fail(w, r, err)
			return
		}
		// Leases expire on a clock, not an event: look again every second.
		tick := time.NewTimer(time.Second)
		select {
		case <-changed:
		case <-tick.C:
		case <-deadline.C:
			tick.Stop()
			w.WriteHeader(http.StatusNoContent)
			return
		case <-stopping(r.Context()):
			// The server is stopping: answer "nothing queued" now rather
			// than hold the shutdown for the rest of the wait.
			tick.Stop()
			w.WriteHeader(http.StatusNoContent)
			return
		case <-r.Context().Done():
			tick.Stop()
			return
		}
		tick.Stop()
	}
}

// claimWait is how long a claim asking for waitSeconds (nil: not at all)
// waits: at most max (0: 60s). ok is false for a negative wait.
func claimWait(waitSeconds *int, max time.Duration) (wait time.Duration, ok bool) {
	if max <= 0 {
		max = 60 * time.Second
	}
	if waitSeconds == nil {
		return 0, true
	}
	if *waitSeconds < 0 {
		return 0, false
	}
	// Compare in seconds: a huge wait_seconds times time.Second overflows
	// (to a negative or small duration) and would not wait at all.
	if int64(*waitSeconds) >= int64(max/time.Second) {
		return max, true
	}
	return time.Duration(*waitSeconds) * time.Second, true
}

type stoppingKey struct{}

// WithStopping returns ctx carrying a channel that is closed when the server
// begins to stop: a build claim waiting for work then answers 204 at once.
// The server sets it on every request's base context.
func WithStopping(ctx context.Context, stopping <-chan struct{}) context.Context {
	return context.WithValue(ctx, stoppingKey{}, stopping)
}

// stopping is ctx's stop signal (nil, which never fires, if none).
func stopping(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(stoppingKey{}).(<-chan struct{})
	return ch
}

type leaseBody struct {
	LeaseToken string `json:"lease_token"`
}

func (a *API) heartbeat(w http.ResponseWriter, r *http.Request, p store.Principal) {
	var in leaseBody
	if !decode(w, r, &in) || !a.may(w, p, access.OpClaimBuilds) {
		return
	}
	b, err := a.Store.Heartbeat(r.Context(), pathID(r), in.LeaseToken)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.buildJSON(b))
}

func (a *API) complete(w http.ResponseWriter, r *http.Request, p store.Principal) {
	var in struct {
		LeaseToken string `json:"lease_token"`
		Status     string `json:"status"`
		Message    string `json:"message"`
		LogURL     string `json:"log_url"`
	}
	if !decode(w, r, &in) || !a.may(w, p, access.OpClaimBuilds) {
		return
	}
	if len(in.Message) > 64<<10 || len(in.LogURL) > 2048 {
		WriteError(w, http.StatusBadRequest, "invalid", "message (64 KiB) or log_url (2048 bytes) too long")
		return
	}
	b, err := a.Store.CompleteBuild(r.Context(), pathID(r), in.LeaseToken, store.BuildStatus(in.Status), in.Message, in.LogURL)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.audit(r, p, "build.complete", b.Repo, string(b.Status))
	writeJSON(w, http.StatusOK, a.buildJSON(b))
}

func versionJSON(v store.Version) wire.Version { return wire.NewVersion(v) }

func (a *API) publish(w http.ResponseWriter, r *http.Request, p store.Principal) {
	var in struct {
		BuildID      int64  `json:"build_id"`
		Bump         string `json:"bump"`
		ReleaseNotes string `json:"release_notes"`
	}
	if !decode(w, r, &in) {
		return
	}
	rp, ok := a.lookupRepo(w, r, p) // Publish decides access
	if !ok {
		return
	}
	// Pinned first, then the version and its audit event in one transaction.
	v, err := a.svc().Publish(r.Context(), actor(p), rp, in.BuildID, in.Bump, in.ReleaseNotes)
	if err != nil {
		a.failOp(w, r, p, err)
		return
	}
	writeJSON(w, http.StatusCreated, versionJSON(v))
}

func (a *API) listVersions(w http.ResponseWriter, r *http.Request, p store.Principal) {
	rp, ok := a.repo(w, r, p, access.OpRead)
	if !ok {
		return
	}
	vs, err := a.Store.Versions(r.Context(), rp.ID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]wire.Version, 0, len(vs))
	for _, v := range vs {
		out = append(out, versionJSON(v))
	}
	writeJSON(w, http.StatusOK, out)
}
