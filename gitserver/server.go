package gitserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gitserver/gitserver/access"
	"gitserver/gitserver/packcache"
	"gitserver/hooks"
	"gitserver/store"
)

// Authenticator is what the smart HTTP transport needs to know who sent a
// request (cmd passes ui/httpauth's). Authenticate returns the principal,
// store.ErrNoCredentials for a request without credentials,
// store.ErrBadCredentials for wrong ones, *store.ThrottledError for a
// throttled address, or another error if the check itself failed.
type Authenticator interface {
	Authenticate(*http.Request) (store.Principal, error)
}

// Server holds what both transports need. Fields are set by cmd; New
// starts nothing.
type Server struct {
	Store         store.Store
	Repos         *Repos
	Git           *Git
	Auth          Authenticator
	Trigger       *hooks.Trigger
	Log           *slog.Logger
	AnonymousRead bool
	// HookSocket and HookSecret are handed to hook processes (hooks.Env).
	HookSocket string
	HookSecret string
	// MaxPushBytes bounds a push's request body (0: 4 GiB).
	MaxPushBytes int64
	Metrics      *Metrics
	// Maintainer, if set, is told about every successful push (repacking
	// with bitmaps in the background).
	Maintainer interface{ Schedule(store.Repo) }
	// Responses, if set, answers identical clone requests over smart HTTP
	// from whole cached responses (respcache.go).
	Responses *packcache.Responses

	// Backstop, if set, is the trigger of the post-push build backstop
	// (nil: Trigger). Fault injection slows it down on its own.
	Backstop *hooks.Trigger
	// BeforeEnqueue, when set, runs after git updated the refs of a
	// hook-free push and before its build is queued (fault injection: a
	// crash there, as hooks.SocketServer.BeforeEnqueue on the hook path).
	BeforeEnqueue func()

	// bg is the background work started by requests (the post-push build
	// backstop); Close waits for it, so it never outlives the store.
	bg background
}

// maxPush is the largest pack a push may carry.
func (s *Server) maxPush() int64 {
	if s.MaxPushBytes > 0 {
		return s.MaxPushBytes
	}
	return defaultMaxPush
}

// Metrics are the transport's Prometheus collectors.
type Metrics struct {
	ops      *prometheus.CounterVec
	duration *prometheus.HistogramVec
	pushes   *prometheus.CounterVec
}

// NewMetrics registers the git-operation metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitserver_git_operations_total",
			Help: "Git operations served, by service, transport and result.",
		}, []string{"service", "transport", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gitserver_git_operation_duration_seconds",
			Help:    "Wall time of git operations, by service and transport.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12),
		}, []string{"service", "transport"}),
	}
	m.pushes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gitserver_pushes_total",
		Help: "Pushes (receive-pack runs) by whether git ran the hooks or the push was hook-free (fastpush.go).",
	}, []string{"hooks"})
	reg.MustRegister(m.ops, m.duration, m.pushes)
	return m
}

// Access errors of Resolve.
var (
	ErrRepoNotFound = errors.New("repository not found")
	ErrForbidden    = errors.New("permission denied")
)

// Resolve finds owner/name and asks the access policy whether p may perform
// op (access.OpRead or access.OpWrite) on it over transport t. A repository
// the principal cannot read is reported as not found, so its existence does
// not leak.
func (s *Server) Resolve(ctx context.Context, p store.Principal, t access.Transport, owner, name string, op access.Op) (store.Repo, error) {
	if !store.ValidName(owner) || !store.ValidName(name) {
		return store.Repo{}, ErrRepoNotFound
	}
	repo, err := s.Store.RepoByName(ctx, owner, name)
	if errors.Is(err, store.ErrNotFound) {
		return store.Repo{}, ErrRepoNotFound
	}
	if err != nil {
		return store.Repo{}, err
	}
	f := access.Facts{AnonymousRead: s.AnonymousRead}
	if p.User != nil && repo.OwnerKind == store.KindOrg {
		if f.OrgRole, err = s.Store.Role(ctx, repo.OwnerID, p.User.ID); err != nil {
			return store.Repo{}, err
		}
	}
	switch access.Decide(p, op, t, access.Target{Repo: repo}, f).Outcome {
	case access.Allow:
		return repo, nil
	case access.Forbidden:
		return store.Repo{}, ErrForbidden
	}
	return store.Repo{}, ErrRepoNotFound
}

// ServiceRequest is one git operation, from either transport.
type ServiceRequest struct {
	Repo      store.Repo
	Principal store.Principal
	Service   Service
	Transport string   // "http" or "ssh"
	Protocol  string   // Git-Protocol / GIT_PROTOCOL, unvalidated
	Args      []string // e.g. --stateless-rpc, --advertise-refs
	RequestID string
	Stdin     io.Reader
	Stdout    io.Writer
	Stderr    io.Writer // nil: captured and logged
	// NoPackHook runs upload-pack without the pack-objects cache's hook
	// (the response cache handles the request).
	NoPackHook bool
}

// isPush reports whether the request can update refs: receive-pack, but
// not its ref advertisement (the GET of info/refs).
func (req ServiceRequest) isPush() bool {
	return req.Service == ReceivePack && !slices.Contains(req.Args, "--advertise-refs")
}

// ServiceError is a failed git process. Stderr is for logs, never clients.
type ServiceError struct {
	Service Service
	Err     error
	Stderr  string
}

func (e *ServiceError) Unwrap() error { return e.Err }

func (e *ServiceError) Error() string {
	return fmt.Sprintf("git %s: %v: %s", e.Service, e.Err, e.Stderr)
}

// ExitCode is git's exit status (-1 if it did not exit normally).
func (e *ServiceError) ExitCode() int {
	var ee *exec.ExitError
	if errors.As(e.Err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// RunService runs one git service for an authorised request. Both transports
// call it, so access, hooks and build triggering are the same for both.
func (s *Server) RunService(ctx context.Context, req ServiceRequest) error {
	start := time.Now()
	env := ProtocolEnv(req.Protocol)
	if req.isPush() && !slices.Contains(req.Args, "--stateless-rpc") && s.Trigger != nil {
		// SSH runs receive-pack as one session. Run it as smart HTTP
		// does instead, the advertisement and then the request, so that
		// the server reads the commands before git starts (the hook-free
		// push, fastpush.go). receive-pack answers the same either way:
		// stateless, it only skips the advertisement.
		if err := s.advertiseRefs(ctx, req, env); err != nil {
			return err
		}
		req.Args = append(slices.Clip(req.Args), "--stateless-rpc")
	}
	gitCtx := ctx
	refsUpdated := func() bool { return false }
	var fast *pushCommands // the hook-free push's commands
	tracked := false
	pushID := ""
	if req.isPush() {
		// A push is judged by what git did to the refs, not by the
		// request: libgit2 and Dulwich close the connection as soon as
		// they have read the report, before git has run post-receive.
		// So git is not killed when the client leaves (a pack cut short
		// ends in git's own EOF error, which updates nothing), and its
		// output is drained rather than failing it with EPIPE. A push that
		// no client sends to the end is still bounded: see pushGrace.
		var stop context.CancelFunc
		gitCtx, stop = context.WithCancel(context.WithoutCancel(ctx))
		defer stop()
		go func() {
			select {
			case <-ctx.Done():
				t := time.NewTimer(pushGrace)
				defer t.Stop()
				select {
				case <-t.C:
					stop()
				case <-gitCtx.Done():
				}
			case <-gitCtx.Done():
			}
		}()
		req.Stdout = drainOnError(req.Stdout)
		req.Stderr = drainOnError(req.Stderr)
		if s.Trigger != nil {
			pushID, refsUpdated = s.Trigger.TrackPush()
			tracked = true
		}
	}
	if req.Service == ReceivePack {
		pusherID := int64(0)
		if req.Principal.User != nil {
			pusherID = req.Principal.User.ID
		}
		// A mirror refuses every push (pre-receive), naming its upstream.
		mirrorURL := ""
		if req.isPush() {
			m, err := s.Store.MirrorByRepo(ctx, req.Repo.ID)
			switch {
			case err == nil:
				mirrorURL = m.URL
			case !errors.Is(err, store.ErrNotFound):
				refsUpdated() // forget the tracked push: git never ran
				return &ServiceError{Service: req.Service, Err: err}
			}
		}
		// The hook-free push (fastpush.go): smart HTTP sends the
		// command list ahead of the pack, so the server can tell a push
		// that needs no hook before git starts.
		if req.isPush() && mirrorURL == "" && s.Trigger != nil && slices.Contains(req.Args, "--stateless-rpc") {
			pc, err := readPushCommands(req.Stdin)
			req.Stdin = io.MultiReader(bytes.NewReader(pc.Head), req.Stdin)
			if err == nil && pc.hookFree() {
				fast = &pc
			}
		}
		env = append(env, hooks.Env{
			RepoID: req.Repo.ID, Repo: req.Repo.FullName(), DefaultBranch: req.Repo.DefaultBranch,
			Pusher: req.Principal.Name(), PusherID: pusherID, Transport: req.Transport,
			Socket: s.HookSocket, Secret: s.HookSecret, RequestID: req.RequestID, PushID: pushID,
			Mirror: mirrorURL,
		}.Environ()...)
	}
	if req.Service == UploadPack && !req.NoPackHook {
		env = append(env, s.Git.PackObjectsHookEnv...)
	}
	args := s.Git.serviceArgs(req.Service, !req.NoPackHook, fast == nil, req.Args...)
	if req.Service == ReceivePack {
		// git itself bounds the pack (index-pack/unpack-objects
		// --max-input-size), whatever the transport, and says so to the
		// client: "pack exceeds maximum allowed size" on the side band.
		args = append([]string{"-c", "receive.maxInputSize=" + strconv.FormatInt(s.maxPush(), 10)}, args...)
	}
	cmd := s.Git.Command(gitCtx, s.Repos.Dir(req.Repo), env, args...)
	cmd.Stdout = req.Stdout
	var out *pushOutput
	if fast != nil {
		out = newPushOutput(req.Stdout)
		cmd.Stdout = out
	}
	var errb limitedBuffer
	errb.limit = 64 << 10
	if req.Stderr != nil {
		cmd.Stderr = io.MultiWriter(req.Stderr, &errb)
	} else {
		cmd.Stderr = &errb
	}
	// stdin is copied by our own goroutine, which Wait does not wait for:
	// an SSH client sends EOF only after it has seen git exit, so waiting
	// for that copy would deadlock until WaitDelay. git's stdin is closed
	// at the reader's EOF.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return &ServiceError{Service: req.Service, Err: err}
	}
	stdinErr := make(chan error, 1)
	go func() {
		_, err := io.Copy(stdin, req.Stdin)
		stdin.Close()
		stdinErr <- err
	}()
	err = cmd.Wait()
	if err != nil {
		// A body that could not be read explains git's failure best.
		select {
		case cerr := <-stdinErr:
			if cerr != nil && !errors.Is(cerr, syscall.EPIPE) {
				err = cerr
			}
		default:
		}
	}
	// post-receive has run (and reached the daemon) iff git updated refs.
	updated := refsUpdated()
	if fast != nil {
		// No hook ran: git's report says what it did, and the server
		// does what post-receive would (the build and its line).
		u := fast.Updates[0]
		updated = out.Updated(u.Ref)
		var lines []string
		if updated {
			lines = s.afterHookFreePush(gitCtx, req, u)
		}
		out.Finish(lines)
	}
	result := "ok"
	if err != nil && !updated {
		result = "error"
		if ctx.Err() != nil {
			result = "canceled"
		}
	}
	if s.Metrics != nil {
		s.Metrics.ops.WithLabelValues(string(req.Service), req.Transport, result).Inc()
		s.Metrics.duration.WithLabelValues(string(req.Service), req.Transport).Observe(time.Since(start).Seconds())
		if req.isPush() {
			hooksRun := "run"
			if fast != nil {
				hooksRun = "none"
			}
			s.Metrics.pushes.WithLabelValues(hooksRun).Inc()
		}
	}
	if req.isPush() && s.Trigger != nil {
		// Backstop for the post-receive hook: whatever happened to it, a
		// moved default branch gets its build. It runs after the answer:
		// the hook has normally queued the build already, and if this
		// process dies first, the start-up reconciliation does it.
		s.bg.Go(ctx, func(ctx context.Context) {
			bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			backstop := s.Backstop
			if backstop == nil {
				backstop = s.Trigger
			}
			if _, _, terr := backstop.EnsureHeadBuilt(bctx, req.Repo, req.Principal.Name(), ""); terr != nil {
				s.Log.Error("queue owed build", "repo", req.Repo.FullName(), "err", terr, "request_id", req.RequestID)
			}
		})
	}
	// Maintenance follows changed refs; without the hook's signal (no
	// Trigger), a clean exit is the best evidence there is.
	if req.isPush() && (updated || !tracked && err == nil) && s.Maintainer != nil {
		s.Maintainer.Schedule(req.Repo)
	}
	if err != nil {
		return &ServiceError{Service: req.Service, Err: err, Stderr: strings.TrimSpace(errb.String())}
	}
	return nil
}

// advertiseRefs writes receive-pack's ref advertisement for req (the first
// half of an SSH push, see RunService).
func (s *Server) advertiseRefs(ctx context.Context, req ServiceRequest, env []string) error {
	cmd := s.Git.Command(ctx, s.Repos.Dir(req.Repo), env, s.Git.serviceArgs(ReceivePack, false, true, "--stateless-rpc", "--advertise-refs")...)
	cmd.Stdout = req.Stdout
	var errb limitedBuffer
	errb.limit = 64 << 10
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		return &ServiceError{Service: req.Service, Err: err, Stderr: strings.TrimSpace(errb.String())}
	}
	return nil
}

// afterHookFreePush does post-receive's work for a hook-free push that
// updated u: it queues the build of a moved default branch and returns the
// lines for the pusher.
func (s *Server) afterHookFreePush(ctx context.Context, req ServiceRequest, u hooks.RefUpdate) []string {
	if s.BeforeEnqueue != nil {
		s.BeforeEnqueue()
	}
	lines, err := s.Trigger.Received(ctx, req.Repo, req.Principal.Name(), []hooks.RefUpdate{u})
	if err != nil {
		// The backstop after the answer (and else the next start)
		// queues it.
		s.Log.Error("post-receive", "repo", req.Repo.FullName(), "err", err, "request_id", req.RequestID)
		return []string{fmt.Sprintf("gitserver: build notification delayed; the server will queue it (reference %s)", req.RequestID)}
	}
	return lines
}

// pushGrace is how long a push's git may still run once its client has
// gone: enough to finish checking and applying a pack it received in full.
const pushGrace = 5 * time.Minute

// drainOnError passes writes to w until one fails (the client left), then
// discards them, so that git never dies of EPIPE half-way through its
// post-receive work.
func drainOnError(w io.Writer) io.Writer {
	if w == nil {
		return nil
	}
	return &drainWriter{w: w}
}

type drainWriter struct {
	w      io.Writer
	failed bool
}

func (d *drainWriter) Write(p []byte) (int, error) {
	if !d.failed {
		if _, err := d.w.Write(p); err != nil {
			d.failed = true
		}
	}
	return len(p), nil
}

type limitedBuffer struct {
	buf   []byte
	limit int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.limit - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string { return string(b.buf) }
