package mirror

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"gitserver/gitserver/packcache"
	"gitserver/store"
)

// connectTimeout bounds the TCP connection and the SSH handshake of a
// check (OpenSSH's ConnectTimeout=15 on the fetch path); checkTimeout
// bounds the whole check.
const (
	connectTimeout = 15 * time.Second
	checkTimeout   = 60 * time.Second
)

// listRemote lists the upstream's branches, tags and HEAD in process:
// an SSH connection (golang.org/x/crypto/ssh) checked against the pinned
// host keys and authenticated with the deploy key from memory, then
// `git-upload-pack 'PATH'` read up to the end of its ref advertisement
// (protocol v0) and left with a flush. This is what `git ls-remote
// --symref` did through OpenSSH and the relay, without starting a
// process. Failures are *SyncError with the codes the fetch path uses.
func listRemote(ctx context.Context, m store.Mirror) (refs map[string]string, head string, err error) {
	r, err := ParseURL(m.URL)
	if err != nil {
		return nil, "", &SyncError{Code: CodeInternal, Message: "the mirror's URL is not valid", Detail: err.Error()}
	}
	pinned, err := pinnedKeys(m.KnownHosts)
	if err != nil {
		return nil, "", err
	}
	signer, err := ssh.ParsePrivateKey(m.PrivateKey)
	if err != nil {
		return nil, "", fmt.Errorf("mirror: the deploy key: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()

	name := r.User
	if name == "" {
		// What OpenSSH uses when the URL names no user.
		if u, err := user.Current(); err == nil {
			name = u.Username
		} else {
			name = os.Getenv("USER")
		}
	}
	addr := net.JoinHostPort(r.Host, strconv.Itoa(r.Port))
	var hostKeyErr error
	cfg := &ssh.ClientConfig{
		User: name,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			kb := key.Marshal()
			for _, p := range pinned {
				if bytes.Equal(kb, p.Marshal()) {
					return nil
				}
			}
			hostKeyErr = fmt.Errorf("host key %s %s is not pinned for %s", key.Type(), ssh.FingerprintSHA256(key), r.KnownHostsName())
			return hostKeyErr
		},
		HostKeyAlgorithms: hostKeyAlgorithms(pinned),
		Timeout:           connectTimeout,
	}
	d := net.Dialer{Timeout: connectTimeout}
	dctx, dcancel := context.WithTimeout(ctx, connectTimeout)
	conn, err := d.DialContext(dctx, "tcp", addr)
	dcancel()
	if err != nil {
		return nil, "", unreachable(err.Error())
	}
	// The whole check, handshake included, ends with ctx.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(connectTimeout))
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		switch {
		case hostKeyErr != nil:
			return nil, "", classify("Host key verification failed: "+hostKeyErr.Error(), false)
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, "", classify("Permission denied (publickey): "+err.Error(), false)
		}
		return nil, "", unreachable(err.Error())
	}
	client := ssh.NewClient(c, chans, reqs)
	defer client.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Time{})
	}
	sess, err := client.NewSession()
	if err != nil {
		return nil, "", unreachable(err.Error())
	}
	defer sess.Close()
	var stderr bytes.Buffer
	sess.Stderr = &limitedBuffer{buf: &stderr, max: 4000}
	stdin, err := sess.StdinPipe()
	if err != nil {
		return nil, "", err
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := sess.Start("git-upload-pack " + packcache.ShellQuote(remotePath(r))); err != nil {
		return nil, "", unreachable(err.Error())
	}
	refs, head, perr := readAdvertisement(bufio.NewReader(stdout))
	if perr == nil {
		stdin.Write([]byte("0000"))
		stdin.Close()
		// upload-pack exits after the flush; its status does not matter.
		return refs, head, nil
	}
	stdin.Close()
	var remoteErr *remoteError
	if errors.As(perr, &remoteErr) {
		return nil, "", classify(remoteErr.msg, false)
	}
	// The command failed or the connection broke: its stderr says why.
	werr := sess.Wait()
	msg := strings.TrimSpace(stderr.String())
	if msg == "" && werr != nil {
		msg = werr.Error()
	}
	if ctx.Err() != nil {
		return nil, "", unreachable(msg + " (timed out)")
	}
	if msg == "" {
		msg = perr.Error()
	}
	// git's own last word when the upstream's command fails (what the
	// fetch path's classification sees too).
	return nil, "", classify(msg+"\nfatal: Could not read from remote repository.", false)
}

// unreachable is a connection failure.
func unreachable(detail string) *SyncError {
	e := classify(detail, true)
	e.Code, e.Message = CodeUnreachable, "the upstream could not be reached over SSH (connection refused, timed out or closed)"
	return e
}

// remotePath is the path git sends to upload-pack for r: an ssh:// URL's
// path as is ("/~user/x" is "~user/x"), an scp-like URL's as given.
func remotePath(r Remote) string {
	p := r.Path
	if strings.Contains(r.URL, "://") {
		if strings.HasPrefix(p, "/~") {
			p = p[1:]
		}
	}
	return p
}

// pinnedKeys reads the mirror's known_hosts lines.
func pinnedKeys(knownHosts string) ([]ssh.PublicKey, error) {
	var keys []ssh.PublicKey
	rest := []byte(knownHosts)
	for len(bytes.TrimSpace(rest)) > 0 {
		marker, _, k, _, r, err := ssh.ParseKnownHosts(rest)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("mirror: the pinned host keys: %w", err)
		}
		if marker == "" {
			keys = append(keys, k)
		}
		rest = r
	}
	if len(keys) == 0 {
		return nil, &SyncError{Code: CodeHostKeyChanged, Message: "the mirror has no pinned host key; re-create the mirror", Detail: "no pinned host key"}
	}
	return keys, nil
}

// hostKeyAlgorithms are the signature algorithms of the pinned keys, so
// that the server presents one of them (as OpenSSH prefers the
// algorithms of the keys it knows for the host).
func hostKeyAlgorithms(keys []ssh.PublicKey) []string {
	var out []string
	add := func(a ...string) {
		for _, s := range a {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	for _, k := range keys {
		if k.Type() == ssh.KeyAlgoRSA {
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		} else {
			add(k.Type())
		}
	}
	return out
}

// remoteError is an "ERR message" pkt-line of the upstream.
type remoteError struct{ msg string }

func (e *remoteError) Error() string { return "remote error: " + e.msg }

// readAdvertisement reads a protocol v0 ref advertisement up to its
// flush: the branches and tags (peeled "^{}" lines skipped, as
// remoteRefs does) and the branch HEAD names from the symref capability
// ("" if none). An empty repository's "capabilities^{}" line is no ref.
func readAdvertisement(rd *bufio.Reader) (refs map[string]string, head string, err error) {
	refs = map[string]string{}
	first := true
	for {
		line, flush, err := readPktLine(rd)
		if err != nil {
			return nil, "", err
		}
		if flush {
			return refs, head, nil
		}
		line = strings.TrimSuffix(line, "\n")
		if msg, ok := strings.CutPrefix(line, "ERR "); ok {
			return nil, "", &remoteError{msg: msg}
		}
		if first {
			first = false
			if strings.HasPrefix(line, "version ") {
				// "version 1" precedes a v0-style advertisement.
				first = true
				continue
			}
			var caps string
			line, caps, _ = strings.Cut(line, "\x00")
			for _, c := range strings.Fields(caps) {
				if target, ok := strings.CutPrefix(c, "symref=HEAD:"); ok {
					if b, ok := strings.CutPrefix(target, "refs/heads/"); ok {
						head = b
					}
				}
			}
		}
		id, ref, ok := strings.Cut(line, " ")
		if !ok || !store.ValidObjectID(id) || strings.HasSuffix(ref, "^{}") || !(strings.HasPrefix(ref, "refs/heads/") || strings.HasPrefix(ref, "refs/tags/")) {
			continue
		}
		refs[ref] = id
	}
}

// readPktLine reads one pkt-line: its payload, or flush for "0000".
func readPktLine(rd *bufio.Reader) (string, bool, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(rd, hdr[:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return "", false, fmt.Errorf("reading the ref advertisement: %w", err)
	}
	n, err := strconv.ParseUint(string(hdr[:]), 16, 16)
	if err != nil {
		return "", false, fmt.Errorf("reading the ref advertisement: bad pkt-line length %q", hdr[:])
	}
	switch {
	case n == 0:
		return "", true, nil
	case n < 4:
		return "", false, fmt.Errorf("reading the ref advertisement: unexpected pkt-line %04x", n)
	}
	buf := make([]byte, n-4)
	if _, err := io.ReadFull(rd, buf); err != nil {
		return "", false, fmt.Errorf("reading the ref advertisement: %w", io.ErrUnexpectedEOF)
	}
	return string(buf), false, nil
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		if len(p) > room {
			l.buf.Write(p[:room])
		} else {
			l.buf.Write(p)
		}
	}
	return len(p), nil
}
