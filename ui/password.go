package ui

import (
	"net/http"

	"gitserver/store"
)

// regeneratePassword is POST /api/v1/user/password: a generated password
// for the caller, shown once ({"password": "..."}). It replaces the old one
// at once (contract §13).
func (a *API) regeneratePassword(w http.ResponseWriter, r *http.Request, p store.Principal) {
	pw, _, err := a.svc().RegeneratePassword(r.Context(), actor(p), "")
	if err != nil {
		a.failOp(w, r, p, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Password string `json:"password"`
	}{pw})
}
