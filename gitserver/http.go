package gitserver

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gorilla/mux"

	"gitserver/gitserver/access"
	"gitserver/gitserver/httperr"
	"gitserver/store"
)

// Request body limits.
const (
	maxUploadPackRequest = 64 << 20 // wants/haves negotiation
	defaultMaxPush       = 4 << 30
	pushCommandSlack     = 16 << 20 // ref commands ahead of a push's pack
)

// RegisterHTTP adds the smart HTTP routes under /git/ to r:
//
//	GET  /git/{owner}/{name}.git/info/refs?service=git-upload-pack|git-receive-pack
//	POST /git/{owner}/{name}.git/git-upload-pack
//	POST /git/{owner}/{name}.git/git-receive-pack
func (s *Server) RegisterHTTP(r *mux.Router) {
	r.HandleFunc("/git/{owner}/{name}.git/info/refs", s.infoRefs).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/git/{owner}/{name}.git/git-upload-pack", s.rpc(UploadPack)).Methods(http.MethodPost)
	r.HandleFunc("/git/{owner}/{name}.git/git-receive-pack", s.rpc(ReceivePack)).Methods(http.MethodPost)
	r.PathPrefix("/git/").HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gitError(w, http.StatusNotFound, "not found")
	})
}

// gitError answers a git client in plain text (git shows it after "fatal:").
func gitError(w http.ResponseWriter, status int, msg string) {
	httperr.New(status, "", msg).WriteText(w)
}

// serviceFromQuery reads info/refs' ?service=: smart HTTP serves
// upload-pack and receive-pack (not upload-archive).
func serviceFromQuery(v string) (Service, bool) {
	if s, ok := ParseService(v); ok && s != UploadArchive {
		return s, true
	}
	return "", false
}

// authorize authenticates the request and resolves the repository with the
// access the service needs; on failure it has written the answer.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, service Service) (store.Repo, store.Principal, bool) {
	op := access.OpRead
	if service == ReceivePack {
		op = access.OpWrite
	}
	p, err := s.Auth.Authenticate(r)
	switch {
	case errors.Is(err, store.ErrNoCredentials):
		// Anonymous: only public reads with --anonymous-read; otherwise
		// ask for credentials (git then prompts or uses its helper).
		if !(s.AnonymousRead && op == access.OpRead) {
			httperr.From(err).WriteText(w)
			return store.Repo{}, p, false
		}
	case err != nil:
		if !httperr.IsAuth(err) {
			s.Log.Error("authenticate", "err", err)
			httperr.Internal(err).WriteText(w)
			return store.Repo{}, p, false
		}
		httperr.From(err).WriteText(w) // 401 with a challenge, or 429
		return store.Repo{}, p, false
	}
	vars := mux.Vars(r)
	repo, err := s.Resolve(r.Context(), p, access.HTTPGit, vars["owner"], vars["name"], op)
	switch {
	case err == nil:
		return repo, p, true
	case errors.Is(err, ErrRepoNotFound):
		if p.Anonymous() {
			// Do not reveal whether it exists; let git ask for credentials.
			httperr.Unauthorized().WriteText(w)
		} else {
			gitError(w, http.StatusNotFound, "repository not found")
		}
	case errors.Is(err, ErrForbidden):
		if p.Anonymous() {
			httperr.Unauthorized().WriteText(w)
		} else {
			gitError(w, http.StatusForbidden, "permission denied: you cannot push to "+vars["owner"]+"/"+vars["name"])
		}
	default:
		s.Log.Error("resolve repo", "err", err)
		gitError(w, http.StatusInternalServerError, "internal error")
	}
	return store.Repo{}, p, false
}

func (s *Server) infoRefs(w http.ResponseWriter, r *http.Request) {
	service, ok := serviceFromQuery(r.URL.Query().Get("service"))
	if !ok {
		gitError(w, http.StatusForbidden, "unsupported service: only smart HTTP (git-upload-pack, git-receive-pack) is served")
		return
	}
	repo, p, ok := s.authorize(w, r, service)
	if !ok {
		return
	}
	proto := r.Header.Get("Git-Protocol")
	h := w.Header()
	h.Set("Content-Type", "application/x-"+service.Program()+"-advertisement")
	h.Set("Cache-Control", "no-cache, max-age=0, must-revalidate")
	h.Set("Expires", "Fri, 01 Jan 1980 00:00:00 GMT")
	h.Set("Pragma", "no-cache")
	out := &flushWriter{w: w, rc: http.NewResponseController(w)}
	if !IsV2(proto) {
		out.Write(pktLine("# service=" + service.Program() + "\n"))
		out.Write([]byte("0000"))
	}
	err := s.RunService(r.Context(), ServiceRequest{
		Repo: repo, Principal: p, Service: service, Transport: "http", Protocol: proto,
		Args: []string{"--stateless-rpc", "--advertise-refs"}, RequestID: requestID(r),
		Stdin: http.NoBody, Stdout: out,
	})
	if err != nil {
		s.logServiceError(r, repo, err)
	}
}

func (s *Server) rpc(service Service) http.HandlerFunc {
	wantCT := "application/x-" + service.Program() + "-request"
	return func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != wantCT {
			gitError(w, http.StatusUnsupportedMediaType, "expected Content-Type "+wantCT)
			return
		}
		repo, p, ok := s.authorize(w, r, service)
		if !ok {
			return
		}
		limit := int64(maxUploadPackRequest)
		if service == ReceivePack {
			// git enforces the push limit on the pack itself
			// (receive.maxInputSize, see RunService) and tells the client
			// why; the body bound leaves room for the ref commands ahead
			// of the pack so that git, not a cut body ("early EOF"), is
			// what refuses a pack over the limit. It remains a backstop.
			limit = s.maxPush() + pushCommandSlack
		}
		var body io.Reader = http.MaxBytesReader(w, r.Body, limit)
		switch r.Header.Get("Content-Encoding") {
		case "", "identity":
		case "gzip", "x-gzip":
			zr, err := gzip.NewReader(body)
			if err != nil {
				gitError(w, http.StatusBadRequest, "bad gzip request body")
				return
			}
			defer zr.Close()
			// Bound the inflated size too.
			body = &capReader{r: zr, left: limit}
		default:
			gitError(w, http.StatusUnsupportedMediaType, "unsupported Content-Encoding")
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/x-"+service.Program()+"-result")
		h.Set("Cache-Control", "no-cache, max-age=0, must-revalidate")
		rc := http.NewResponseController(w)
		// git answers while the request body still arrives (receive-pack's
		// side-band progress and fsck warnings, upload-pack's acks). Without
		// full duplex, Go's HTTP/1 server reads and discards up to 256 KiB
		// of a still-unread chunked body on the first write, and git then
		// receives a pack with a hole ("inflate returned -3"). HTTP/2 is
		// always full duplex and reports ErrNotSupported, which is fine.
		if err := rc.EnableFullDuplex(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			s.Log.Warn("enable full duplex", "err", err)
		}
		out := &flushWriter{w: w, rc: rc}
		proto := r.Header.Get("Git-Protocol")
		run := func(ctx context.Context, stdin io.Reader, stdout io.Writer, packHook bool) error {
			return s.RunService(ctx, ServiceRequest{
				Repo: repo, Principal: p, Service: service, Transport: "http", Protocol: proto,
				Args: []string{"--stateless-rpc"}, RequestID: requestID(r),
				Stdin: stdin, Stdout: stdout, NoPackHook: !packHook,
			})
		}
		var err error
		if service == UploadPack && s.Responses != nil {
			err = s.uploadPackCached(w, r, repo, proto, body, out, run)
		} else {
			err = run(r.Context(), body, out, true)
		}
		if err != nil {
			s.logServiceError(r, repo, err)
			if !out.wrote {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) || errors.Is(err, errBodyTooLarge) {
					gitError(w, http.StatusRequestEntityTooLarge, "request body too large")
					return
				}
				if errors.Is(err, ErrBodyStalled) {
					gitError(w, http.StatusRequestTimeout, "request body stalled")
					return
				}
				gitError(w, http.StatusBadRequest, "git "+string(service)+" could not process the request")
			}
		}
	}
}

func (s *Server) logServiceError(r *http.Request, repo store.Repo, err error) {
	if r.Context().Err() != nil {
		s.Log.Info("git request canceled", "repo", repo.FullName(), "path", r.URL.Path, "request_id", requestID(r))
		return
	}
	s.Log.Warn("git request failed", "repo", repo.FullName(), "path", r.URL.Path, "err", err, "request_id", requestID(r))
}

var errBodyTooLarge = errors.New("request body too large")

type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// flushWriter sends git's output to the client as it is produced.
type flushWriter struct {
	w     io.Writer
	rc    *http.ResponseController
	wrote bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if n > 0 {
		f.wrote = true
		f.rc.Flush()
	}
	return n, err
}

func pktLine(s string) []byte {
	return []byte(fmt.Sprintf("%04x%s", len(s)+4, s))
}

type requestIDKey struct{}

// WithRequestID stores a request id in ctx (set by cmd's middleware).
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey{}).(string)
	return id
}
