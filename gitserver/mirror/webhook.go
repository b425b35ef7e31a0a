package mirror

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"regexp"

	"github.com/gorilla/mux"

	"gitserver/gitserver/httperr"
	"gitserver/gitserver/scm/webhook"
	"gitserver/store"
)

// WebhookPath is the route of inbound webhooks.
const WebhookPath = "/hooks/scm/{hook_id}"

var hookIDRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

// RegisterHTTP adds POST /hooks/scm/{hook_id} to r.
func (e *Engine) RegisterHTTP(r *mux.Router) {
	r.HandleFunc(WebhookPath, e.ServeWebhook).Methods(http.MethodPost)
}

func (e *Engine) webhookResult(result string) {
	e.metrics().webhooks.WithLabelValues(result).Inc()
}

func writeStatus(w http.ResponseWriter, status int, s string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"status": s})
}

// ServeWebhook handles one delivery (docs/api.md §9): the hook id is
// looked up first (404), the raw body read with a 25 MiB cap (413) and
// verified with the mirror's secret (401, nothing changes) before anything
// parses it; a ping answers 200, a replayed delivery id 200 without a sync,
// a verified push 202 with a sync in the background.
func (e *Engine) ServeWebhook(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["hook_id"]
	log := e.log().With("hook", store.Truncate(id, 40), "remote", r.RemoteAddr)
	var m store.Mirror
	var err error
	if hookIDRe.MatchString(id) {
		m, err = e.Store.MirrorByHookID(r.Context(), id)
	} else {
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		e.webhookResult("unknown_hook")
		httperr.New(http.StatusNotFound, "not_found", "no such webhook").WriteJSON(w)
		return
	}
	if err != nil {
		internalError(w, log, "webhook: look up hook", err)
		return
	}
	body, err := webhook.ReadBody(http.MaxBytesReader(w, r.Body, webhook.MaxBody+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.Is(err, webhook.ErrTooLarge) || errors.As(err, &mbe) {
			e.webhookResult("too_large")
			httperr.New(http.StatusRequestEntityTooLarge, "too_large", "webhook body larger than 25 MiB").WriteJSON(w)
			return
		}
		httperr.New(http.StatusBadRequest, "bad_request", "could not read the body").WriteJSON(w)
		return
	}
	provider, ok := webhook.Detect(r.Header)
	if m.Provider != "" && (!ok || string(provider) != m.Provider) {
		ok = false
	}
	if !ok {
		e.webhookResult("no_signature")
		log.Warn("webhook refused: no provider's signature headers")
		httperr.New(http.StatusUnauthorized, "bad_signature", "the delivery is not signed by a supported provider (GitHub, GitLab, Bitbucket Cloud or Server, Gitea/Forgejo)").WriteJSON(w)
		return
	}
	if err := webhook.Verify(provider, r.Header, body, m.WebhookSecret); err != nil {
		result := "bad_signature"
		if errors.Is(err, webhook.ErrNoSignature) {
			result = "no_signature"
		}
		e.webhookResult(result)
		log.Warn("webhook refused: signature", "provider", provider, "result", result)
		httperr.New(http.StatusUnauthorized, "bad_signature", "missing or wrong webhook signature").WriteJSON(w)
		return
	}
	ev, err := webhook.Parse(provider, r.Header, body)
	// A provider-hosted mirror's repository events (GitHub's renamed or
	// transferred, Bitbucket's repo:updated / repo:modified) ask for a
	// sync, which looks the remote up by its stable id (Resolve).
	moved := errors.Is(err, webhook.ErrUnsupported) && m.SCMConfigID != 0 && e.Resolve != nil && repositoryEvent(ev.Type)
	switch {
	case moved:
		err = nil
	case errors.Is(err, webhook.ErrUnsupported):
		e.webhookResult("ignored")
		writeStatus(w, http.StatusOK, "ignored")
		return
	case err != nil:
		e.webhookResult("malformed")
		log.Warn("webhook: malformed payload", "provider", provider, "err", err)
		httperr.New(http.StatusBadRequest, "malformed", "the payload is not what its event promises").WriteJSON(w)
		return
	case ev.Kind == webhook.Ping:
		e.webhookResult("ping")
		writeStatus(w, http.StatusOK, "pong")
		return
	}
	fresh, err := e.Store.RecordDelivery(r.Context(), m.HookID, ev.DeliveryID)
	if err != nil {
		internalError(w, log, "webhook: record delivery", err)
		return
	}
	if !fresh {
		e.webhookResult("duplicate")
		writeStatus(w, http.StatusOK, "duplicate")
		return
	}
	e.webhookResult("accepted")
	if moved {
		log.Info("webhook: repository event", "provider", provider, "delivery", ev.DeliveryID, "repo_id", m.RepoID, "type", ev.Type)
		e.Trigger(m.RepoID, "")
		writeStatus(w, http.StatusAccepted, "queued")
		return
	}
	log.Info("webhook: push", "provider", provider, "delivery", ev.DeliveryID, "repo_id", m.RepoID, "refs", len(ev.Changes))
	e.Trigger(m.RepoID, ev.Pusher)
	writeStatus(w, http.StatusAccepted, "queued")
}

// internalError logs err under a new reference and answers 500 with only
// that reference.
func internalError(w http.ResponseWriter, log *slog.Logger, what string, err error) {
	ref := store.RandomHex(6)
	log.Error(what, "err", err, "reference", ref)
	httperr.New(http.StatusInternalServerError, "internal", "internal error, reference "+ref).WriteJSON(w)
}

// repositoryEvent reports whether a provider's event type may announce a
// rename or transfer of the repository.
func repositoryEvent(typ string) bool {
	switch typ {
	case "repository", "repo:updated", "repo:modified":
		return true
	}
	return false
}
