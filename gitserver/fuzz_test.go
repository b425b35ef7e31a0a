package gitserver

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"gitserver/store"
	"gitserver/store/sqlite"
)

// FuzzProtocolEnv: only values matching Gitea's safe-header pattern (and
// not absurdly long) reach git's environment, unchanged.
func FuzzProtocolEnv(f *testing.F) {
	for _, s := range []string{
		"", "version=2", "version=1", "version=2:object-format=sha1", "version=2:", ":version=2",
		"version=2\nGIT_DIR=/etc", "version=2 ", "version=2;x=y", "version=2:a=b:c=d", "version", "=2",
		"version==2", "version=2\x00", strings.Repeat("a=b:", 70) + "a=b", "vérsion=2",
	} {
		f.Add(s)
	}
	pattern := regexp.MustCompile(`^[0-9a-zA-Z]+=[0-9a-zA-Z]+(:[0-9a-zA-Z]+=[0-9a-zA-Z]+)*$`)
	f.Fuzz(func(t *testing.T, v string) {
		env := ProtocolEnv(v)
		want := v != "" && len(v) <= 256 && pattern.MatchString(v)
		if !want {
			if env != nil {
				t.Fatalf("ProtocolEnv(%q) = %q, want nil", v, env)
			}
			return
		}
		if len(env) != 1 || env[0] != "GIT_PROTOCOL="+v {
			t.Fatalf("ProtocolEnv(%q) = %q", v, env)
		}
		if strings.ContainsAny(v, "\x00\n\r \t;'\"$`\\/") {
			t.Fatalf("ProtocolEnv accepted unsafe %q", v)
		}
	})
}

// FuzzParseSSHCommand: only the three git services are accepted, and an
// accepted command names exactly one owner/name pair of valid names, which
// is all that ever reaches the store (never a path).
func FuzzParseSSHCommand(f *testing.F) {
	add := func(args ...string) {
		var a [3]string
		copy(a[:], args)
		f.Add(uint8(len(args)), a[0], a[1], a[2])
	}
	add("git-upload-pack", "/alice/repo.git")
	add("git-upload-pack", "alice/repo.git")
	add("git-receive-pack", "/alice/repo")
	add("git-upload-archive", "/org/r-1.x_y.git")
	add("git-upload-pack", "//../x.git")
	add("git-upload-pack", "/../../etc/passwd")
	add("git-upload-pack", "/alice/repo.git.git")
	add("git-upload-pack", "/alice/sub/repo.git")
	add("git-upload-pack", "/alice/")
	add("git-upload-pack", "--upload-pack=touch /tmp/x")
	add("git-upload-pack", "/-alice/repo.git")
	add("sh", "-c", "id")
	add("git-receive-pack")
	add("git-upload-pack", "/alice/repo.git", "extra")
	add()
	add("git upload-pack", "/alice/repo.git")
	add("git-upload-pack", "/alice/.git")
	add("git-upload-pack", "/alice/repo.git\n")
	f.Fuzz(func(t *testing.T, n uint8, a0, a1, a2 string) {
		args := []string{a0, a1, a2}[:int(n)%4]
		service, owner, name, err := ParseSSHCommand(args)
		if err != nil {
			if service != "" || owner != "" || name != "" {
				t.Fatalf("error %v with results %q %q %q", err, service, owner, name)
			}
			return
		}
		if len(args) != 2 {
			t.Fatalf("accepted %d args %q", len(args), args)
		}
		want, ok := map[string]Service{
			"git-upload-pack": UploadPack, "git-receive-pack": ReceivePack, "git-upload-archive": UploadArchive,
		}[args[0]]
		if !ok || service != want {
			t.Fatalf("args %q: service %q", args, service)
		}
		if !store.ValidName(owner) || !store.ValidName(name) {
			t.Fatalf("args %q: invalid owner/name %q/%q accepted", args, owner, name)
		}
		p := strings.TrimPrefix(args[1], "/")
		if p != owner+"/"+name && p != owner+"/"+name+".git" {
			t.Fatalf("args %q parsed as %q/%q", args, owner, name)
		}
	})
}

// smartHTTPFixture is a real store, a real bare repository with commits and
// the real smart-HTTP handler, shared by every fuzz iteration.
type smartHTTPFixture struct {
	root    string // every path of the fixture is under it
	router  *mux.Router
	token   string
	gitPath string
	repoDir string
	refs    string // for-each-ref output of the baseline
	seeds   []capturedRequest
}

type capturedRequest struct {
	receive  bool
	protocol string
	body     []byte
}

// newSmartHTTPFixture is built once per process (each fuzz worker builds
// its own) and removed at the end of the fuzz target.
func newSmartHTTPFixture(tb testing.TB) *smartHTTPFixture {
	tb.Helper()
	ctx := context.Background()
	gitPath, _, err := FindGit()
	if err != nil {
		tb.Fatal(err)
	}
	root, err := filepath.EvalSymlinks(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	fx := &smartHTTPFixture{root: root, gitPath: gitPath}
	fail := func(err error) *smartHTTPFixture {
		tb.Fatal(err)
		return nil
	}
	st, err := sqlite.Open(ctx, filepath.Join(root, "gitserver.db"), sqlite.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	user, err := st.CreateUser(ctx, "alice", "alice-password", false)
	if err != nil {
		return fail(err)
	}
	fx.token, _, err = st.CreateToken(ctx, user.ID, "fuzz", nil)
	if err != nil {
		return fail(err)
	}
	repo, err := st.CreateRepo(ctx, store.NewRepo{OwnerID: user.ID, Name: "repo", Visibility: "restricted", DefaultBranch: "master"})
	if err != nil {
		return fail(err)
	}
	// No hooks are installed: receive-pack alone decides, so that a body
	// which is a valid push really updates refs (and is recognised as such).
	git := &Git{Path: gitPath, HooksDir: filepath.Join(root, "hooks"), Home: root}
	if err := os.MkdirAll(git.HooksDir, 0o755); err != nil {
		return fail(err)
	}
	repos := &Repos{Root: filepath.Join(root, "repos"), Git: git}
	if err := os.MkdirAll(repos.Root, 0o755); err != nil {
		return fail(err)
	}
	if err := repos.Init(ctx, repo); err != nil {
		return fail(err)
	}
	fx.repoDir = repos.Dir(repo)
	srv := &Server{
		Store: st, Repos: repos, Git: git,
		Auth: tokenAuth{st},
		Log:  slog.New(slog.DiscardHandler),
	}
	fx.router = mux.NewRouter()
	srv.RegisterHTTP(fx.router)

	// Capture real requests of the real git client: clones with protocol
	// v0 and v2, a fetch, and pushes (a fast-forward and a new branch).
	var mu sync.Mutex
	capture := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			plain := body
			if r.Header.Get("Content-Encoding") == "gzip" {
				if zr, err := gzip.NewReader(bytes.NewReader(body)); err == nil {
					plain, _ = io.ReadAll(zr)
				}
			}
			mu.Lock()
			fx.seeds = append(fx.seeds, capturedRequest{
				receive: strings.HasSuffix(r.URL.Path, "/git-receive-pack"), protocol: r.Header.Get("Git-Protocol"), body: plain,
			})
			mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		fx.router.ServeHTTP(w, r)
	})
	hs := httptest.NewServer(capture)
	defer hs.Close()
	url := "http://x-access-token:" + fx.token + "@" + strings.TrimPrefix(hs.URL, "http://") + "/git/alice/repo.git"
	env := append(os.Environ(), "HOME="+root, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Fuzz", "GIT_AUTHOR_EMAIL=fuzz@example.com", "GIT_COMMITTER_NAME=Fuzz", "GIT_COMMITTER_EMAIL=fuzz@example.com")
	run := func(dir string, args ...string) error {
		cmd := exec.Command(gitPath, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return &exec.Error{Name: "git " + strings.Join(args, " ") + ": " + string(out), Err: err}
		}
		return nil
	}
	work := filepath.Join(root, "work")
	steps := [][]string{
		{"init", "-q", "-b", "master", work},
		{"-C", work, "commit", "-q", "--allow-empty", "-m", "first"},
		{"-C", work, "push", "-q", url, "master"},
		{"-C", work, "commit", "-q", "--allow-empty", "-m", "second"},
		{"-C", work, "push", "-q", url, "master"},
		{"-c", "protocol.version=0", "clone", "-q", url, filepath.Join(root, "clone0")},
		{"-c", "protocol.version=2", "clone", "-q", url, filepath.Join(root, "clone2")},
		{"-C", work, "commit", "-q", "--allow-empty", "-m", "third"},
		{"-C", work, "push", "-q", url, "master"},
		{"-C", filepath.Join(root, "clone2"), "fetch", "-q", "origin"},
		{"-C", filepath.Join(root, "clone0"), "-c", "protocol.version=0", "fetch", "-q", "origin"},
		{"-C", work, "push", "-q", url, "master:refs/heads/topic"},
		{"-C", work, "push", "-q", url, ":refs/heads/topic"},
	}
	for _, s := range steps {
		if err := run("", s...); err != nil {
			return fail(err)
		}
	}
	refs, err := fx.forEachRef()
	if err != nil {
		return fail(err)
	}
	fx.refs = refs
	return fx
}

func (fx *smartHTTPFixture) forEachRef() (string, error) {
	cmd := exec.Command(fx.gitPath, "for-each-ref", "--format=%(objectname) %(refname)")
	cmd.Dir = fx.repoDir
	cmd.Env = []string{"HOME=" + fx.root, "GIT_CONFIG_NOSYSTEM=1", "PATH=" + os.Getenv("PATH")}
	out, err := cmd.Output()
	return string(out), err
}

// restore puts the refs back to the baseline after a fuzzed push that git
// accepted.
func (fx *smartHTTPFixture) restore() error {
	var in strings.Builder
	cur, err := fx.forEachRef()
	if err != nil {
		return err
	}
	base := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(fx.refs), "\n") {
		if id, ref, ok := strings.Cut(l, " "); ok {
			base[ref] = id
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(cur), "\n") {
		if _, ref, ok := strings.Cut(l, " "); ok {
			if _, keep := base[ref]; !keep {
				in.WriteString("delete " + ref + "\n")
			}
		}
	}
	for ref, id := range base {
		in.WriteString("update " + ref + " " + id + "\n")
	}
	cmd := exec.Command(fx.gitPath, "update-ref", "--stdin")
	cmd.Dir = fx.repoDir
	cmd.Stdin = strings.NewReader(in.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return &exec.Error{Name: "update-ref: " + string(out), Err: err}
	}
	return nil
}

// Mode bits of a fuzzed request.
const (
	modeReceive   = 1 << iota // git-receive-pack instead of git-upload-pack
	modeGzip                  // gzip the body (Content-Encoding: gzip)
	modeV2                    // Git-Protocol: version=2
	modeBadType               // a wrong Content-Type
	modeInfoRefs              // GET info/refs with the body ignored
	modeNoAuth                // no credentials
	modeBadHeader             // an unsafe Git-Protocol header
)

// FuzzSmartHTTP drives the real smart-HTTP handler with arbitrary request
// bodies. It never panics, never answers 5xx, never puts git's raw "fatal:"
// text or a server path into a 200 body, and a body that git does not
// accept as a push leaves every ref as it was.
func FuzzSmartHTTP(f *testing.F) {
	fx := newSmartHTTPFixture(f)
	var receives, v2 int
	for _, s := range fx.seeds {
		if s.receive {
			receives++
		} else if IsV2(s.protocol) {
			v2++
		}
	}
	if receives < 3 || v2 < 2 {
		f.Fatalf("captured %d receive-pack and %d v2 upload-pack requests from the real client; want >= 3 and >= 2", receives, v2)
	}
	for _, s := range fx.seeds {
		mode := uint8(0)
		if s.receive {
			mode |= modeReceive
		}
		if IsV2(s.protocol) {
			mode |= modeV2
		}
		f.Add(mode, s.body)
		f.Add(mode|modeGzip, s.body)
		if len(s.body) > 8 {
			f.Add(mode, s.body[:len(s.body)/2]) // truncated
		}
	}
	const z = "0000000000000000000000000000000000000000"
	for _, s := range []struct {
		mode uint8
		body string
	}{
		{0, ""},
		{0, "0000"},
		{0, "0009done\n"},
		{0, "0032want 0123456789012345678901234567890123456789\n00000009done\n"},
		{0, "003cwant " + z + " multi_ack\n00000009done\n"},
		{modeV2, "0014command=ls-refs\n0001000bpeel\n0000"},
		{modeV2, "0012command=fetch\n00010032want 0123456789012345678901234567890123456789\n0009done\n0000"},
		{modeV2, "0013command=bogus\n0000"},
		{modeV2, "0016object-format=sha1\n0000"},
		{0, "ffff"},
		{0, "zzzz"},
		{0, "0001"},
		{0, "0003"},
		{modeReceive, ""},
		{modeReceive, "0000"},
		{modeReceive, "0067" + z + " 1111111111111111111111111111111111111111 refs/heads/x\x00report-status\n0000"},
		{modeReceive, "0067" + z + " 1111111111111111111111111111111111111111 refs/heads/x\x00report-status\n0000PACK\x00\x00\x00\x02\x00\x00\x00\x00"},
		{modeReceive, "0000PACK"},
		{modeReceive, "005e1111111111111111111111111111111111111111 " + z + " refs/heads/master\x00report-status\n0000"},
		{modeReceive | modeGzip, "\x1f\x8b garbage"},
		{modeBadType, "0000"},
		{modeInfoRefs, ""},
		{modeInfoRefs | modeReceive | modeV2, ""},
		{modeNoAuth, "0000"},
		{modeBadHeader | modeV2, "0014command=ls-refs\n0000"},
	} {
		f.Add(s.mode, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, mode uint8, body []byte) {
		if len(body) > 1<<20 {
			return // bounded per-iteration work
		}
		service := "git-upload-pack"
		if mode&modeReceive != 0 {
			service = "git-receive-pack"
		}
		var req *http.Request
		if mode&modeInfoRefs != 0 {
			req = httptest.NewRequest(http.MethodGet, "/git/alice/repo.git/info/refs?service="+service, nil)
		} else {
			sent := body
			if mode&modeGzip != 0 {
				var b bytes.Buffer
				zw := gzip.NewWriter(&b)
				zw.Write(body)
				zw.Close()
				sent = b.Bytes()
			}
			req = httptest.NewRequest(http.MethodPost, "/git/alice/repo.git/"+service, bytes.NewReader(sent))
			req.Header.Set("Content-Type", "application/x-"+service+"-request")
			if mode&modeBadType != 0 {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if mode&modeGzip != 0 {
				req.Header.Set("Content-Encoding", "gzip")
			}
		}
		if mode&modeV2 != 0 {
			req.Header.Set("Git-Protocol", "version=2")
		}
		if mode&modeBadHeader != 0 {
			req.Header.Set("Git-Protocol", "version=2\nGIT_DIR="+fx.root)
		}
		if mode&modeNoAuth == 0 {
			req.Header.Set("Authorization", "Bearer "+fx.token)
		}
		ctx, cancel := context.WithTimeout(req.Context(), 60*time.Second)
		defer cancel()
		req = req.WithContext(ctx)
		w := httptest.NewRecorder()
		fx.router.ServeHTTP(w, req)

		res := w.Result()
		out := w.Body.Bytes()
		if res.StatusCode >= 500 {
			t.Fatalf("status %d: %q", res.StatusCode, out)
		}
		if res.StatusCode == http.StatusOK {
			// git relays its own messages to the client on side-band
			// channels 2 and 3 (shown as "remote: ..."); anything else with
			// "fatal:" is stderr mixed into the protocol stream.
			if bytes.Contains(outsideSideband(out), []byte("fatal:")) {
				t.Fatalf("200 body carries raw git error text outside the side-band: %q", out)
			}
			if bytes.Contains(out, []byte(fx.root)) {
				t.Fatalf("200 body reveals a server path: %q", out)
			}
		}
		refs, err := fx.forEachRef()
		if err != nil {
			t.Fatal(err)
		}
		if refs == fx.refs {
			return
		}
		// Refs moved: only acceptable when git took the body as a valid push
		// and said so for every changed ref.
		changed := diffRefs(fx.refs, refs)
		rerr := fx.restore()
		if mode&modeReceive == 0 || res.StatusCode != http.StatusOK {
			t.Fatalf("refs changed by a %s request (status %d): %v", service, res.StatusCode, changed)
		}
		for _, ref := range changed {
			if !bytes.Contains(out, []byte("ok "+ref)) {
				t.Fatalf("ref %s changed without git reporting an accepted update; response %q", ref, out)
			}
		}
		if rerr != nil {
			t.Fatal(rerr)
		}
	})
}

func diffRefs(a, b string) []string {
	parse := func(s string) map[string]string {
		m := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
			if id, ref, ok := strings.Cut(l, " "); ok {
				m[ref] = id
			}
		}
		return m
	}
	ma, mb := parse(a), parse(b)
	var out []string
	for ref, id := range mb {
		if ma[ref] != id {
			out = append(out, ref)
		}
	}
	for ref := range ma {
		if _, ok := mb[ref]; !ok {
			out = append(out, ref)
		}
	}
	return out
}

// outsideSideband returns the bytes of a smart-HTTP response that are not
// the payload of a side-band message (channel 2: progress, 3: error). It
// walks pkt-lines, stopping at the first thing that is not one (e.g. a raw
// pack without side-band), which it returns whole.
func outsideSideband(b []byte) []byte {
	var out []byte
	for len(b) > 0 {
		if len(b) < 4 {
			return append(out, b...)
		}
		var n int
		for _, c := range b[:4] {
			var v int
			switch {
			case c >= '0' && c <= '9':
				v = int(c - '0')
			case c >= 'a' && c <= 'f':
				v = int(c-'a') + 10
			default:
				return append(out, b...)
			}
			n = n<<4 | v
		}
		if n < 4 { // flush, delimiter, response-end
			out = append(out, b[:4]...)
			b = b[4:]
			continue
		}
		if n > len(b) {
			return append(out, b...)
		}
		payload := b[4:n]
		if len(payload) == 0 || (payload[0] != 2 && payload[0] != 3) {
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return out
}

// tokenAuth is the fixture's Authenticator: account tokens, as Bearer or as
// the password of Basic (the server's real one, ui/httpauth, is an edge of
// its own that this package does not import).
type tokenAuth struct {
	st interface {
		CheckToken(ctx context.Context, name, secret string) (store.Account, store.Token, error)
	}
}

func (a tokenAuth) Authenticate(r *http.Request) (store.Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return store.Principal{}, store.ErrNoCredentials
	}
	secret, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		if _, secret, ok = r.BasicAuth(); !ok {
			return store.Principal{}, store.ErrBadCredentials
		}
	}
	acct, tok, err := a.st.CheckToken(r.Context(), "", secret)
	if err != nil {
		return store.Principal{}, err
	}
	return store.Principal{User: &acct, Token: &tok}, nil
}
