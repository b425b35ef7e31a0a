package gitserver

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/anmitsu/go-shlex"
	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"gitserver/gitserver/access"
	"gitserver/store"
)

// SSHServer serves git over SSH with user keys and deploy keys. It shares
// Resolve and RunService with the HTTP transport.
//
// Connections that have not authenticated yet and authenticated ones are
// bounded separately, so that slow, idle or hostile clients that never
// authenticate cannot lock out users with keys (docs/decisions.md, SSH).
// Zero fields take their defaults; set them before Serve.
type SSHServer struct {
	// MaxConns bounds simultaneous authenticated connections
	// (DefaultSSHMaxConns). While it is reached, new connections are
	// closed before the banner.
	MaxConns int
	// MaxUnauthenticated bounds connections that have not authenticated
	// yet (DefaultSSHMaxUnauthenticated). When it is reached, a new
	// connection replaces the oldest unauthenticated connection of the
	// client that holds the most.
	MaxUnauthenticated int
	// MaxStartupsPerIP bounds one client's unauthenticated connections
	// (DefaultSSHMaxStartupsPerIP; a client is an IPv4 address or an IPv6
	// /64); more are closed before the banner.
	MaxStartupsPerIP int
	// LoginGrace is how long a connection may take from accept to
	// authentication before it is closed (DefaultSSHLoginGrace).
	LoginGrace time.Duration

	git      *Server
	srv      *ssh.Server
	log      *slog.Logger
	hostKeys []HostKey

	mu      sync.Mutex
	limiter *connLimiter // set by Serve
}

// NewSSHServer prepares the SSH transport with the host keys in keyDir
// (HostKeyFiles), generating each missing one on first use.
func NewSSHServer(gs *Server, keyDir string, log *slog.Logger) (*SSHServer, error) {
	keys, err := loadOrCreateHostKeys(keyDir)
	if err != nil {
		return nil, err
	}
	s := &SSHServer{git: gs, log: log, hostKeys: keys}
	s.srv = &ssh.Server{
		Handler:          s.handle,
		PublicKeyHandler: s.knownKey,
		// A PTY request is acknowledged (nothing is allocated) so that the
		// session handler can refuse the interactive login with a clear
		// message: OpenSSH treats a refused PTY as fatal under -t and
		// would print only "PTY allocation request failed".
		PtyCallback:                   func(ssh.Context, ssh.Pty) bool { return true },
		IdleTimeout:                   10 * time.Minute,
		MaxTimeout:                    6 * time.Hour,
		Version:                       "gitserver",
		LocalPortForwardingCallback:   func(ssh.Context, string, uint32) bool { return false },
		ReversePortForwardingCallback: func(ssh.Context, string, uint32) bool { return false },
		// The connection's limiter entry travels in its context, so that a
		// successful authentication moves it to the authenticated pool.
		ConnCallback: func(ctx ssh.Context, c net.Conn) net.Conn {
			if tc, ok := c.(*trackedConn); ok {
				ctx.SetValue(trackedConnKey{}, tc)
			}
			return c
		},
		ServerConfigCallback: func(ctx ssh.Context) *gossh.ServerConfig {
			tc, _ := ctx.Value(trackedConnKey{}).(*trackedConn)
			return &gossh.ServerConfig{AuthLogCallback: func(_ gossh.ConnMetadata, _ string, err error) {
				// Called with a nil error only once authentication
				// succeeded (a public key query is not a success).
				if err == nil && tc != nil {
					tc.authenticated()
				}
			}}
		},
	}
	for _, k := range keys {
		s.srv.AddHostKey(k.signer)
	}
	return s, nil
}

// trackedConnKey is the ssh.Context key of a connection's *trackedConn.
type trackedConnKey struct{}

// Serve accepts connections on ln until Shutdown.
func (s *SSHServer) Serve(ln net.Listener) error {
	or := func(v, def int) int {
		if v <= 0 {
			return def
		}
		return v
	}
	grace := s.LoginGrace
	if grace <= 0 {
		grace = DefaultSSHLoginGrace
	}
	l := newConnLimiter(or(s.MaxConns, DefaultSSHMaxConns), or(s.MaxUnauthenticated, DefaultSSHMaxUnauthenticated),
		or(s.MaxStartupsPerIP, DefaultSSHMaxStartupsPerIP), grace, s.log)
	s.mu.Lock()
	s.limiter = l
	s.mu.Unlock()
	err := s.srv.Serve(&limitListener{Listener: ln, l: l})
	if errors.Is(err, ssh.ErrServerClosed) {
		return nil
	}
	return err
}

// openConns is the number of open connections.
func (s *SSHServer) openConns() int {
	s.mu.Lock()
	l := s.limiter
	s.mu.Unlock()
	if l == nil {
		return 0
	}
	return l.open()
}

// Shutdown stops accepting and waits for connections to end, bounded by
// ctx. If connections are still open when ctx ends, they are closed and
// the error says how many were cut off; otherwise Shutdown returns nil.
func (s *SSHServer) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if ctx.Err() == nil {
		// Finished in time; an error here is only about closing a
		// listener that Serve had already closed.
		return nil
	}
	n := s.openConns()
	s.srv.Close()
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%d SSH connection(s) cut off: %w", n, err)
}

// knownKey only answers "is this key known, and its account enabled?".
// Identity is taken later from the session's key (never from state set
// here: CVE-2024-45337), and checked again there.
func (s *SSHServer) knownKey(ctx ssh.Context, key ssh.PublicKey) bool {
	_, err := s.principal(ctx, key)
	return err == nil
}

func (s *SSHServer) principal(ctx context.Context, key ssh.PublicKey) (store.Principal, error) {
	if key == nil {
		return store.Principal{}, errors.New("no public key")
	}
	k, err := s.git.Store.KeyByFingerprint(ctx, gossh.FingerprintSHA256(key))
	if err != nil {
		return store.Principal{}, err
	}
	if k.RepoID != 0 {
		return store.Principal{DeployKey: &k}, nil
	}
	u, err := s.git.Store.AccountByID(ctx, k.UserID)
	if err != nil {
		return store.Principal{}, err
	}
	// A disabled account's keys are refused; a deploy key belongs to its
	// repository and keeps working (docs/api.md, "Taking access back").
	if u.Disabled {
		return store.Principal{}, fmt.Errorf("%w: account %s is disabled", store.ErrBadCredentials, u.Name)
	}
	return store.Principal{User: &u}, nil
}

var errOnlyGit = errors.New("only git-upload-pack, git-receive-pack and git-upload-archive are supported")

// ParseSSHCommand splits "git-upload-pack '/owner/name.git'" into the
// service and the repository's owner and name.
func ParseSSHCommand(args []string) (service Service, owner, name string, err error) {
	if len(args) == 0 {
		return "", "", "", errOnlyGit
	}
	service, ok := ParseService(args[0])
	if !ok {
		return "", "", "", errOnlyGit
	}
	if len(args) != 2 {
		return "", "", "", fmt.Errorf("%s takes exactly one repository path, e.g. %s '/owner/name.git'", args[0], args[0])
	}
	p := strings.TrimPrefix(args[1], "/")
	owner, name, ok = strings.Cut(p, "/")
	name = strings.TrimSuffix(name, ".git")
	if !ok || !store.ValidName(owner) || !store.ValidName(name) {
		return "", "", "", errors.New("repository not found")
	}
	return service, owner, name, nil
}

func (s *SSHServer) handle(sess ssh.Session) {
	ctx := sess.Context()
	reqID := store.RandomHex(8)
	_, _, isPty := sess.Pty()
	fail := func(code int, msg string) {
		eol := "\n"
		if isPty {
			eol = "\r\n" // the client's terminal is in raw mode
		}
		fmt.Fprintf(sess.Stderr(), "gitserver: %s%s", msg, eol)
		sess.Exit(code)
	}
	p, err := s.principal(ctx, sess.PublicKey())
	if err != nil {
		s.log.Warn("ssh session without a known key", "remote", sess.RemoteAddr().String(), "err", err)
		fail(1, "access denied")
		return
	}
	// sess.Command() drops shlex's error and returns a partial split
	// (an unclosed quote still "parses"), so split strictly here.
	args, perr := shlex.Split(sess.RawCommand(), true)
	if perr != nil {
		args = nil
	}
	if isPty || strings.TrimSpace(sess.RawCommand()) == "" {
		fail(1, fmt.Sprintf("hi %s! You have authenticated, but gitserver provides no shell access; use git.", p.Name()))
		return
	}
	if len(args) == 0 {
		fail(1, "could not parse the command; only git-upload-pack, git-receive-pack and git-upload-archive are supported")
		return
	}
	service, owner, name, err := ParseSSHCommand(args)
	if err != nil {
		fail(1, err.Error())
		return
	}
	op := access.OpRead
	if service == ReceivePack {
		op = access.OpWrite
	}
	repo, err := s.git.Resolve(ctx, p, access.SSHGit, owner, name, op)
	switch {
	case errors.Is(err, ErrRepoNotFound):
		fail(1, "repository not found")
		return
	case errors.Is(err, ErrForbidden):
		fail(1, "permission denied: you cannot push to "+owner+"/"+name)
		return
	case err != nil:
		s.log.Error("ssh resolve", "err", err, "request_id", reqID)
		fail(1, "internal error, reference "+reqID)
		return
	}
	proto := ""
	for _, kv := range sess.Environ() {
		if v, ok := strings.CutPrefix(kv, "GIT_PROTOCOL="); ok {
			proto = v
		}
	}
	err = s.git.RunService(ctx, ServiceRequest{
		Repo: repo, Principal: p, Service: service, Transport: "ssh", Protocol: proto, RequestID: reqID,
		Stdin: sess, Stdout: sess, Stderr: sess.Stderr(),
	})
	code := 0
	if err != nil {
		var se *ServiceError
		code = 1
		if errors.As(err, &se) && se.ExitCode() > 0 {
			code = se.ExitCode()
		}
		if ctx.Err() == nil {
			s.log.Warn("ssh git failed", "repo", repo.FullName(), "service", service, "err", err, "request_id", reqID)
		}
	}
	sess.Exit(code)
}

// HostKeyFiles are the host key files in the data directory, named as
// OpenSSH names them: ed25519 (the original key, kept under its name), and
// ECDSA nistp256 and RSA 3072 for older SSH stacks that know no ed25519
// (JSch, as in Debian's JGit).
var HostKeyFiles = []string{"ssh_host_ed25519_key", "ssh_host_ecdsa_key", "ssh_host_rsa_key"}

// HostKey is one of the server's host keys.
type HostKey struct {
	Path        string
	Type        string // ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa
	Fingerprint string // SHA256:...
	signer      gossh.Signer
}

// HostKeys are the host keys the server offers.
func (s *SSHServer) HostKeys() []HostKey { return s.hostKeys }

func loadOrCreateHostKeys(dir string) ([]HostKey, error) {
	gens := map[string]func() (crypto.Signer, error){
		"ssh_host_ed25519_key": func() (crypto.Signer, error) {
			_, priv, err := ed25519.GenerateKey(rand.Reader)
			return priv, err
		},
		"ssh_host_ecdsa_key": func() (crypto.Signer, error) {
			return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		},
		"ssh_host_rsa_key": func() (crypto.Signer, error) {
			return rsa.GenerateKey(rand.Reader, 3072)
		},
	}
	var keys []HostKey
	for _, name := range HostKeyFiles {
		path := filepath.Join(dir, name)
		signer, err := loadOrCreateHostKey(path, gens[name])
		if err != nil {
			return nil, err
		}
		pub := signer.PublicKey()
		if pub.Type() == gossh.KeyAlgoRSA {
			// SHA-2 signatures only (RFC 8332), as OpenSSH >= 8.8 offers:
			// no SHA-1 ssh-rsa.
			as, ok := signer.(gossh.AlgorithmSigner)
			if !ok {
				return nil, fmt.Errorf("ssh host key %s: RSA signer without algorithm choice", path)
			}
			if signer, err = gossh.NewSignerWithAlgorithms(as, []string{gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256}); err != nil {
				return nil, fmt.Errorf("ssh host key %s: %w", path, err)
			}
		}
		keys = append(keys, HostKey{Path: path, Type: pub.Type(), Fingerprint: gossh.FingerprintSHA256(pub), signer: signer})
	}
	return keys, nil
}

func loadOrCreateHostKey(path string, generate func() (crypto.Signer, error)) (gossh.Signer, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		signer, err := gossh.ParsePrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("ssh host key %s: %w", path, err)
		}
		return signer, nil
	}
	if !os.IsNotExist(err) {
		return nil, fmt.Errorf("ssh host key: %w", err)
	}
	priv, err := generate()
	if err != nil {
		return nil, err
	}
	block, err := gossh.MarshalPrivateKey(priv, "gitserver host key")
	if err != nil {
		return nil, err
	}
	if err := writeSecretFile(path, pem.EncodeToMemory(block)); err != nil {
		return nil, fmt.Errorf("ssh host key: %w", err)
	}
	return gossh.NewSignerFromKey(priv)
}

// writeSecretFile writes data to path (0600) atomically and durably: a
// crash leaves either no file or the complete one, never a truncated key.
func writeSecretFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-key-*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
