package hooks

import (
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
)

// SocketServer is the daemon's end of the hook socket.
type SocketServer struct {
	Secret  string
	Trigger *Trigger
	Log     *slog.Logger
	// BeforeEnqueue, when set, runs before a post-receive is handled. Tests
	// use it to simulate a crash between the ref update and the enqueue.
	BeforeEnqueue func()
}

func (s *SocketServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || subtle.ConstantTimeCompare([]byte(r.Header.Get(SecretHeader)), []byte(s.Secret)) != 1 {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<20)
	switch r.URL.Path {
	case "/post-receive":
		var req PostReceiveRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		// git runs post-receive only once it has updated refs: whatever
		// happens to the enqueue or to the client, this push changed refs.
		s.Trigger.NoteRefsUpdated(req.PushID)
		if s.BeforeEnqueue != nil {
			s.BeforeEnqueue()
		}
		msgs, err := s.Trigger.PostReceive(r.Context(), req.RepoID, req.Pusher, req.Updates)
		if err != nil {
			s.Log.Error("post-receive", "repo_id", req.RepoID, "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(PostReceiveResponse{Messages: msgs})
	case "/log":
		var req LogRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		s.Log.Error("hook error", "request_id", req.RequestID, "repo", req.Repo, "err", req.Message)
		w.WriteHeader(http.StatusOK)
	default:
		http.NotFound(w, r)
	}
}
