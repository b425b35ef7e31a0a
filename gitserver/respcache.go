package gitserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gitserver/gitserver/packcache"
	"gitserver/store"
)

// The response cache (issue 15): identical clone requests over smart HTTP
// are answered by streaming a file, with no process at all. The key is
//
//	(repository, version of its refs, protocol, normalized request)
//
// where the version of the refs is a hash of the ref storage upload-pack
// reads (HEAD, packed-refs and the loose refs, hidden refs/gitserver/
// excluded), computed in this process at every request: whatever moves a
// ref (a push, the web editor, a mirror sync, an admin with git on the
// disk) changes the key, without any path having to report it. A response is
// kept only if the version is the same after upload-pack finished as before
// it started, so an entry never mixes two ref states, and a hit is served
// only when the refs are exactly what they were when it was produced.
// Access is decided before the cache is consulted (rpc), and the response
// of upload-pack does not depend on who asks.
//
// Cacheable requests: a protocol v2 `fetch`, or a v0/v1 request, without a
// single `have` (clones: full, shallow, filtered) and ending in `done`.
// The normalized request is every pkt-line of the body except the client's
// agent and session id (which do not change the answer), so any argument
// that can change the answer (wants, deepen, filter, include-tag,
// thin-pack, no-progress, ...) is part of the key.

// maxCachedRequest bounds the request bodies the cache considers (a clone
// of 100k refs sends 5 MB of wants); larger ones go to git directly.
const maxCachedRequest = 8 << 20

// uploadPackKey reads the request body and, if the request can be answered
// from the cache, returns its key and the refs' version it holds. body is always what git must read
// instead of the original (the part already read, then the rest).
func (s *Server) uploadPackKey(repo store.Repo, proto string, in io.Reader) (key, version string, body io.Reader, err error) {
	buf, err := io.ReadAll(io.LimitReader(in, maxCachedRequest+1))
	if err != nil {
		return "", "", nil, err
	}
	body = bytes.NewReader(buf)
	if len(buf) > maxCachedRequest {
		return "", "", io.MultiReader(body, in), nil
	}
	v2 := IsV2(proto)
	norm, ok := normalizeUploadPackRequest(buf, v2)
	if !ok {
		return "", "", body, nil
	}
	dir := s.Repos.Dir(repo)
	version, err = refsVersion(dir)
	if err != nil {
		return "", "", body, nil
	}
	h := sha256.New()
	field := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		io.WriteString(h, s)
	}
	field("gitserver-response-v1")
	field(strconv.FormatInt(repo.ID, 10))
	field(dir)
	field(version)
	field(strings.Join(ProtocolEnv(proto), ""))
	field(strings.Join(s.Git.serviceArgs(UploadPack, false, true, "--stateless-rpc"), "\x00"))
	field(string(norm))
	return hex.EncodeToString(h.Sum(nil)), version, body, nil
}

// pktLines splits a request body into its pkt-lines; flush, delim and
// response-end packets are "0000", "0001" and "0002". ok is false for
// anything that is not well-formed.
func pktLines(b []byte) (lines []string, ok bool) {
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, false
		}
		n, err := strconv.ParseUint(string(b[:4]), 16, 16)
		if err != nil {
			return nil, false
		}
		if n < 4 {
			if n == 3 {
				return nil, false
			}
			lines = append(lines, string(b[:4]))
			b = b[4:]
			continue
		}
		if int(n) > len(b) {
			return nil, false
		}
		lines = append(lines, string(b[4:n]))
		b = b[n:]
	}
	return lines, true
}

// normalizeUploadPackRequest returns the cache-relevant form of a clone
// request, or false if the request is not a clone that ends in "done".
func normalizeUploadPackRequest(b []byte, v2 bool) ([]byte, bool) {
	lines, ok := pktLines(b)
	if !ok || len(lines) == 0 {
		return nil, false
	}
	var out []string
	done, wants := false, 0
	if v2 {
		fetch := false
		for _, l := range lines {
			t := strings.TrimSuffix(l, "\n")
			switch {
			case strings.HasPrefix(t, "agent="), strings.HasPrefix(t, "session-id="):
				continue
			case t == "command=fetch":
				fetch = true
			case strings.HasPrefix(t, "command="):
				return nil, false
			case strings.HasPrefix(t, "have "):
				return nil, false
			case strings.HasPrefix(t, "want ") || strings.HasPrefix(t, "want-ref "):
				wants++
			case t == "done":
				done = true
			}
			out = append(out, t)
		}
		if !fetch || !done || wants == 0 || out[len(out)-1] != "0000" {
			return nil, false
		}
	} else {
		for i, l := range lines {
			t := strings.TrimSuffix(l, "\n")
			switch {
			case strings.HasPrefix(t, "have "):
				return nil, false
			case strings.HasPrefix(t, "want "):
				if wants == 0 {
					// The first want carries the capabilities.
					f := strings.Fields(t)
					kept := f[:0]
					for _, c := range f {
						if !strings.HasPrefix(c, "agent=") && !strings.HasPrefix(c, "session-id=") {
							kept = append(kept, c)
						}
					}
					t = strings.Join(kept, " ")
				}
				wants++
			case t == "done":
				if i != len(lines)-1 {
					return nil, false
				}
				done = true
			}
			out = append(out, t)
		}
		if !done || wants == 0 {
			return nil, false
		}
	}
	return []byte(strings.Join(out, "\n")), true
}

// refsVersion hashes the refs upload-pack sees in the repository at dir:
// HEAD, packed-refs and every loose ref, except the hidden refs/gitserver/
// namespace and lock files. Any change of a ref value changes it.
func refsVersion(dir string) (string, error) {
	h := sha256.New()
	head, err := os.ReadFile(filepath.Join(dir, "HEAD"))
	if err != nil {
		return "", err
	}
	io.WriteString(h, "HEAD\x00")
	h.Write(head)
	packed, err := os.ReadFile(filepath.Join(dir, "packed-refs"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	io.WriteString(h, "\x00packed-refs\x00")
	skipPeeled := false
	for line := range bytes.Lines(packed) {
		if bytes.HasPrefix(line, []byte("^")) {
			if !skipPeeled {
				h.Write(line)
			}
			continue
		}
		skipPeeled = bytes.Contains(line, []byte(" refs/gitserver/"))
		if !skipPeeled {
			h.Write(line)
		}
	}
	io.WriteString(h, "\x00loose\x00")
	root := filepath.Join(dir, "refs")
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walk (an empty directory pruned)
			}
			return err
		}
		name := path[len(root):]
		if d.IsDir() {
			if name == "/gitserver" {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(name, ".lock") {
			return nil
		}
		v, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted meanwhile (packed or removed)
		}
		if err != nil {
			return err
		}
		io.WriteString(h, name+"\x00")
		h.Write(v)
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// serveFile sends the first n bytes of f as the whole response body, with
// a Content-Length: net/http then hands the copy to sendfile(2).
func serveFile(w http.ResponseWriter, f *os.File, n int64) error {
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	w.WriteHeader(http.StatusOK)
	_, err := io.Copy(w, io.LimitReader(f, n))
	return err
}

// uploadPackCached answers an authorized upload-pack request through the
// response cache: a hit streams a file; a miss runs git (run) and, for a
// key seen before, keeps its response. Requests the cache cannot answer go
// to git unchanged.
func (s *Server) uploadPackCached(w http.ResponseWriter, r *http.Request, repo store.Repo, proto string, in io.Reader,
	out *flushWriter, run func(ctx context.Context, stdin io.Reader, stdout io.Writer, packHook bool) error) error {
	key, before, body, err := s.uploadPackKey(repo, proto, in)
	if err != nil {
		return err
	}
	if key == "" {
		return run(r.Context(), body, out, true) // the pack cache may still help
	}
	req, _ := io.ReadAll(body) // a bytes.Reader: no error
	dir := s.Repos.Dir(repo)
	outcome, err := s.Responses.Serve(key, packcache.Exchange{
		Hit: func(f *os.File, n int64) error {
			out.wrote = true
			return serveFile(w, f, n)
		},
		Out: out,
		Run: func(wr io.Writer) error {
			ctx := r.Context()
			if wr != io.Writer(out) {
				// The producer: others may be waiting for this
				// response, so git is not killed when its client
				// leaves (wr drains), only after a bound.
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), producerTimeout)
				defer cancel()
			}
			// Without the pack-objects hook: this cache answers the
			// request's repetitions itself, and the hook is a process
			// start (the whole gitserver binary, ~25 ms of package
			// initialisation) per request, which is as much as
			// upload-pack's own work for a mid-sized repository.
			return run(ctx, bytes.NewReader(req), wr, false)
		},
		StillValid: func() bool {
			after, err := refsVersion(dir)
			return err == nil && after == before
		},
	})
	if s.Metrics != nil && outcome == packcache.Hit {
		s.Metrics.ops.WithLabelValues(string(UploadPack), "http", "ok").Inc()
	}
	s.Log.Debug("response cache", "repo", repo.FullName(), "result", outcome.String(), "request_id", requestID(r))
	return err
}

// producerTimeout bounds the git of a response being written to the cache
// once its own client has gone.
const producerTimeout = 30 * time.Minute
