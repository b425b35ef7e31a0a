package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"time"
)

// PreReceive is the body of `gitserver hook pre-receive`. It reads every
// update from stdin, applies Check with ancestry answered by C git inside
// git's quarantine (the inherited environment), prints one line per refused
// ref to stderr and returns the exit code for git (non-zero refuses the whole
// push, which makes it atomic).
func PreReceive(ctx context.Context, env Env, gitPath string, stdin io.Reader, stderr io.Writer) int {
	updates, err := ParseUpdates(stdin)
	if err != nil {
		fmt.Fprintf(stderr, "rejected: malformed ref update input (%v)\n", err)
		return 1
	}
	if env.Mirror != "" {
		// A mirror's history comes from its upstream only.
		for _, u := range updates {
			fmt.Fprintln(stderr, Rejection{Ref: u.Ref, Reason: MirrorReason(env.Mirror)}.String())
		}
		return 1
	}
	var firstErr error
	gitAncestry := GitAncestry(ctx, gitPath, "")
	isAncestor := func(old, new string) (bool, error) {
		ok, err := gitAncestry(old, new)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return ok, err
	}
	rejected := Check(updates, env.DefaultBranch, isAncestor)
	// What git would refuse only when updating refs, after this hook, while
	// applying the rest: refuse it here so that the push stays all or
	// nothing (docs/api.md §6).
	more := CheckNames(updates)
	if patterns := ConflictPatterns(updates); len(patterns) > 0 {
		existing, err := GitRefs(ctx, gitPath, "", patterns)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			for _, u := range updates {
				if u.Created() {
					more = append(more, Rejection{Ref: u.Ref, Reason: ReasonCheckFailed})
				}
			}
		} else {
			more = append(more, CheckConflicts(updates, existing)...)
		}
	}
	rejected = addNew(rejected, more)
	for _, r := range rejected {
		fmt.Fprintln(stderr, r.String())
	}
	if firstErr != nil {
		ReportError(env, firstErr)
		fmt.Fprintf(stderr, "internal error, reference %s\n", env.RequestID)
	}
	if len(rejected) > 0 {
		return 1
	}
	return 0
}

// addNew appends to rs the rejections of more whose ref rs does not reject
// yet (one reason per ref is enough).
func addNew(rs, more []Rejection) []Rejection {
	seen := map[string]bool{}
	for _, r := range rs {
		seen[r.Ref] = true
	}
	for _, r := range more {
		if !seen[r.Ref] {
			seen[r.Ref] = true
			rs = append(rs, r)
		}
	}
	return rs
}

// GitRefs lists the refs matching for-each-ref patterns, with git run in dir
// ("" = the current directory, as in a hook).
func GitRefs(ctx context.Context, gitPath, dir string, patterns []string) ([]string, error) {
	cmd := exec.CommandContext(ctx, gitPath, append([]string{"for-each-ref", "--format=%(refname)", "--"}, patterns...)...)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("git for-each-ref: %v: %s", err, bytes.TrimSpace(errb.Bytes()))
	}
	return strings.Fields(out.String()), nil
}

// GitAncestry answers Check's question with `git merge-base --is-ancestor`
// run in dir ("" = the current directory, as in a hook) with the inherited
// environment, so that objects still in git's quarantine are seen. Exit 1
// means "not an ancestor"; any other failure is an error naming the ids and
// git's message (for the log, never for the pusher).
func GitAncestry(ctx context.Context, gitPath, dir string) Ancestry {
	return func(old, new string) (bool, error) {
		cmd := exec.CommandContext(ctx, gitPath, "merge-base", "--is-ancestor", old, new)
		cmd.Dir = dir
		cmd.WaitDelay = 5 * time.Second
		var errb bytes.Buffer
		cmd.Stderr = &errb
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return true, nil
		case errors.As(err, &ee) && ee.ExitCode() == 1:
			return false, nil
		}
		return false, fmt.Errorf("git merge-base --is-ancestor %s %s: %v: %s", old, new, err, bytes.TrimSpace(errb.Bytes()))
	}
}

// PostReceive is the body of `gitserver hook post-receive`: it hands the
// updates to the daemon, which queues the build. A failure to reach the
// daemon loses nothing: the daemon reconciles owed builds after every push
// and at every start. It always returns 0 (refs are already updated).
func PostReceive(ctx context.Context, env Env, stdin io.Reader, stderr io.Writer) int {
	updates, err := ParseUpdates(stdin)
	if err != nil {
		ReportError(env, fmt.Errorf("post-receive: %w", err))
		return 0
	}
	msg := PostReceiveRequest{RepoID: env.RepoID, Pusher: env.Pusher, PushID: env.PushID, Updates: updates}
	var resp PostReceiveResponse
	if err := call(ctx, env, "/post-receive", msg, &resp); err != nil {
		ReportError(env, fmt.Errorf("post-receive: %w", err))
		fmt.Fprintf(stderr, "gitserver: build notification delayed; the server will queue it (reference %s)\n", env.RequestID)
		return 0
	}
	for _, line := range resp.Messages {
		fmt.Fprintln(stderr, line)
	}
	return 0
}

// PostReceiveRequest is what a post-receive hook sends to the daemon.
type PostReceiveRequest struct {
	RepoID int64  `json:"repo_id"`
	Pusher string `json:"pusher"`
	// PushID is the receive-pack run's id (Env.PushID): git runs
	// post-receive only after it updated at least one ref.
	PushID  string      `json:"push_id,omitempty"`
	Updates []RefUpdate `json:"updates"`
}

// PostReceiveResponse carries lines for the pusher's terminal.
type PostReceiveResponse struct {
	Messages []string `json:"messages"`
}

// LogRequest carries an internal error from a hook process to the daemon's
// log.
type LogRequest struct {
	RequestID string `json:"request_id"`
	Repo      string `json:"repo"`
	Message   string `json:"message"`
}

// SecretHeader authenticates hook processes to the daemon's socket.
const SecretHeader = "X-Gitserver-Hook-Secret"

func socketClient(socket string) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			},
		},
	}
}

func call(ctx context.Context, env Env, path string, in, out any) error {
	if env.Socket == "" {
		return errors.New("no hook socket in the environment")
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://gitserver"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SecretHeader, env.Secret)
	resp, err := socketClient(env.Socket).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("daemon answered %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// ReportError sends an internal error's detail to the daemon's log (best
// effort); the pusher only ever sees the request id.
func ReportError(env Env, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = call(ctx, env, "/log", LogRequest{RequestID: env.RequestID, Repo: env.Repo, Message: err.Error()}, nil)
}
