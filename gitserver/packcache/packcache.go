package packcache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults of the hook's options.
const (
	DefaultMaxBytes = 1 << 30
	DefaultMaxAge   = 10 * time.Minute
)

const (
	trailerLen  = 32
	magic       = "GSPACK01"
	maxStdin    = 64 << 20 // a request larger than this is not cached
	pollEvery   = 2 * time.Millisecond
	joinTimeout = 30 * time.Second // waiting for a producer to publish its file
	staleAfter  = time.Hour        // leftover .part/.tmp/.lock files
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Cache is a pack cache directory.
type Cache struct {
	Dir      string
	MaxBytes int64         // total size of complete entries; <= 0: DefaultMaxBytes
	MaxAge   time.Duration // <= 0: DefaultMaxAge
	// GitPath runs pack-objects on a miss ("git" when empty).
	GitPath string
	// MinOccurrences is how many times a key must have been requested
	// before a request of it writes a cache entry (GitLab Gitaly's
	// min_occurrences). 0 caches at first sight; 1 keeps one-off requests
	// (most incremental fetches, clones of distinct commits) off the disk,
	// while the second of a series of identical requests fills the cache.
	MinOccurrences int
}

// HookCommand is the uploadpack.packObjectsHook value that makes git call
// `binary hook pack-objects` with this cache's settings. git runs it with
// the shell and appends `git pack-objects ARGS...`.
func (c *Cache) HookCommand(binary string) string {
	parts := []string{ShellQuote(binary), "hook", "pack-objects", "--dir", ShellQuote(c.Dir)}
	if c.MaxBytes > 0 {
		parts = append(parts, "--max-bytes", strconv.FormatInt(c.MaxBytes, 10))
	}
	if c.MaxAge > 0 {
		parts = append(parts, "--max-age", c.MaxAge.String())
	}
	if c.GitPath != "" {
		parts = append(parts, "--git", ShellQuote(c.GitPath))
	}
	if c.MinOccurrences > 0 {
		parts = append(parts, "--min-occurrences", strconv.Itoa(c.MinOccurrences))
	}
	return strings.Join(parts, " ")
}

// Environment of the direct hook (DirectHook): the options HookCommand
// puts on the command line.
const (
	EnvDir            = "GITSERVER_PACK_CACHE_DIR"
	EnvMaxBytes       = "GITSERVER_PACK_CACHE_MAX_BYTES"
	EnvMaxAge         = "GITSERVER_PACK_CACHE_MAX_AGE"
	EnvGit            = "GITSERVER_PACK_CACHE_GIT"
	EnvMinOccurrences = "GITSERVER_PACK_CACHE_MIN_OCCURRENCES"
)

// DirectHook is an uploadpack.packObjectsHook that git runs without a
// shell: git execs a hook command that has no shell metacharacters itself
// (run-command's prepare_shell_cmd), as `binary git pack-objects ARGS...`,
// which saves an `sh` process per clone. The cache's options travel in the
// environment (HookEnv), which upload-pack passes on. ok is false when
// binary's path needs quoting; use HookCommand then.
func (c *Cache) DirectHook(binary string) (hook string, ok bool) {
	if binary == "" || strings.ContainsAny(binary, "|&;<>()$`\\\"' \t\n*?[#~=%") {
		return "", false
	}
	return binary, true
}

// HookEnv is the environment DirectHook's process reads its options from.
func (c *Cache) HookEnv() []string {
	env := []string{EnvDir + "=" + c.Dir}
	if c.MaxBytes > 0 {
		env = append(env, EnvMaxBytes+"="+strconv.FormatInt(c.MaxBytes, 10))
	}
	if c.MaxAge > 0 {
		env = append(env, EnvMaxAge+"="+c.MaxAge.String())
	}
	if c.GitPath != "" {
		env = append(env, EnvGit+"="+c.GitPath)
	}
	if c.MinOccurrences > 0 {
		env = append(env, EnvMinOccurrences+"="+strconv.Itoa(c.MinOccurrences))
	}
	return env
}

// IsDirectHook reports whether a process started as `binary ARGS...` is
// DirectHook's: git [OPTIONS] pack-objects, with the cache's directory in
// the environment.
func IsDirectHook(args []string, getenv func(string) string) bool {
	// git puts its own options first for a shallow clone:
	// `git --shallow-file "" pack-objects ...`.
	return len(args) >= 2 && args[0] == "git" && slices.Contains(args[1:], "pack-objects") && getenv(EnvDir) != ""
}

// MainEnv is Main for DirectHook: `git pack-objects ARGS...` with the
// options in the environment.
func MainEnv(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	opts := []string{"--dir", getenv(EnvDir)}
	for _, o := range []struct{ env, flag string }{
		{EnvMaxBytes, "--max-bytes"}, {EnvMaxAge, "--max-age"}, {EnvGit, "--git"}, {EnvMinOccurrences, "--min-occurrences"},
	} {
		if v := getenv(o.env); v != "" {
			opts = append(opts, o.flag, v)
		}
	}
	return Main(append(opts, args...), stdin, stdout, stderr)
}

// ShellQuote quotes s for a POSIX shell (git runs hook commands and
// uploadpack.packObjectsHook through sh).
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Main is `gitserver hook pack-objects [--dir DIR] [--max-bytes N]
// [--max-age D] git pack-objects ARGS...`, run by upload-pack in the
// repository directory with the request on stdin. It returns the exit code.
// Anything written to stderr reaches the client as progress, so only
// pack-objects' own messages go there.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hook pack-objects", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &Cache{}
	fs.StringVar(&c.Dir, "dir", "", "cache directory (empty: no caching)")
	fs.Int64Var(&c.MaxBytes, "max-bytes", DefaultMaxBytes, "size cap of the cache")
	fs.DurationVar(&c.MaxAge, "max-age", DefaultMaxAge, "age after which an entry is rebuilt")
	fs.StringVar(&c.GitPath, "git", "git", "git executable that runs pack-objects")
	fs.IntVar(&c.MinOccurrences, "min-occurrences", 0, "earlier requests of a key needed before it is cached")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rest := fs.Args()
	if len(rest) < 2 || rest[0] != "git" || !slices.Contains(rest[1:], "pack-objects") {
		fmt.Fprintln(stderr, "usage: gitserver hook pack-objects [--dir DIR] git pack-objects ARGS...")
		return 2
	}
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(stderr, "pack-objects hook:", err)
		return 1
	}
	return c.Serve(Request{Dir: wd, Args: rest[1:], Env: os.Environ(), Stdin: stdin}, stdout, stderr)
}

// Request is one pack-objects invocation.
type Request struct {
	Dir   string   // working directory (the repository)
	Args  []string // arguments after "git"
	Env   []string
	Stdin io.Reader
}

// Serve answers r from the cache or by running pack-objects, writing the
// pack to stdout. It returns the exit code for the hook.
func (c *Cache) Serve(r Request, stdout, stderr io.Writer) int {
	in, err := io.ReadAll(io.LimitReader(r.Stdin, maxStdin+1))
	if err != nil {
		fmt.Fprintln(stderr, "pack-objects hook: reading request:", err)
		return 1
	}
	if c.Dir == "" || len(in) > maxStdin {
		return c.run(r, io.MultiReader(bytes.NewReader(in), r.Stdin), stdout, stderr)
	}
	if err := os.MkdirAll(c.Dir, 0o750); err != nil {
		return c.run(r, bytes.NewReader(in), stdout, stderr)
	}
	key := Key(r, in)
	return c.serveKey(key, r, in, stdout, stderr)
}

// Key is the cache key of a request with stdin in.
func Key(r Request, in []byte) string {
	h := sha256.New()
	field := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		io.WriteString(h, s)
	}
	field("gitserver-packcache-v1")
	field(repoDir(r))
	field(strconv.Itoa(len(r.Args)))
	for _, a := range r.Args {
		field(a)
	}
	env := keyEnv(r.Env)
	field(strconv.Itoa(len(env)))
	for _, e := range env {
		field(e)
	}
	field(string(in))
	return hex.EncodeToString(h.Sum(nil))
}

// repoDir is the absolute repository directory: GIT_DIR resolved against
// the working directory.
func repoDir(r Request) string {
	dir := r.Dir
	for _, e := range r.Env {
		if v, ok := strings.CutPrefix(e, "GIT_DIR="); ok && v != "" {
			if filepath.IsAbs(v) {
				dir = v
			} else {
				dir = filepath.Join(r.Dir, v)
			}
		}
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	return filepath.Clean(dir)
}

// keyEnv are the environment entries that can change pack-objects' output:
// every GIT_* variable (config parameters, object directories, namespace,
// replace refs, shallow file...) except ones that only affect diagnostics or
// the transport around the pack.
func keyEnv(env []string) []string {
	var out []string
	for _, e := range env {
		name, _, _ := strings.Cut(e, "=")
		if !strings.HasPrefix(name, "GIT_") {
			continue
		}
		switch {
		case strings.HasPrefix(name, "GIT_TRACE"), strings.HasPrefix(name, "GIT_SSL"),
			name == "GIT_PROTOCOL", name == "GIT_TERMINAL_PROMPT", name == "GIT_DIR",
			name == "GIT_EXEC_PATH", name == "GIT_ASKPASS", name == "GIT_HTTP_USER_AGENT":
			continue
		}
		out = append(out, e)
	}
	sort.Strings(out)
	return out
}

func (c *Cache) paths(key string) (pack, part, lock string) {
	p := filepath.Join(c.Dir, key)
	return p + ".pack", p + ".part", p + ".lock"
}

// seenEnough records one more request of key and reports whether it had
// been requested MinOccurrences times before. The caller holds key's lock.
func (c *Cache) seenEnough(key string) bool {
	if c.MinOccurrences <= 0 {
		return true
	}
	path := filepath.Join(c.Dir, key+".seen")
	n := 0
	if b, err := os.ReadFile(path); err == nil {
		n, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if n >= c.MinOccurrences {
		return true
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(n+1)), 0o640); err != nil {
		return true // cannot count: cache rather than never
	}
	if n == 0 && rand.IntN(64) == 0 {
		c.evict("") // markers of one-off requests expire with MaxAge
	}
	return false
}

func (c *Cache) serveKey(key string, r Request, in []byte, stdout, stderr io.Writer) int {
	packPath, partPath, lockPath := c.paths(key)
	deadline := time.Now().Add(joinTimeout)
	for time.Now().Before(deadline) {
		// A complete entry?
		if f, ok := c.openComplete(packPath); ok {
			c.count(statHit)
			os.Chtimes(packPath, time.Now(), time.Now())
			return c.follow(f, packPath, stdout, stderr)
		}
		// Become the producer?
		lk, err := tryLock(lockPath)
		if err != nil {
			break
		}
		if lk != nil {
			if f, ok := c.openComplete(packPath); ok {
				lk.Close()
				c.count(statHit)
				return c.follow(f, packPath, stdout, stderr)
			}
			if !c.seenEnough(key) {
				lk.Close()
				c.count(statFirst)
				return c.run(r, bytes.NewReader(in), stdout, stderr)
			}
			c.count(statMiss)
			code := c.produce(key, r, in, stdout, stderr)
			lk.Close()
			if code == 0 {
				c.evict(packPath)
			}
			return code
		}
		// Join the running producer.
		f, err := os.Open(partPath)
		if err != nil {
			time.Sleep(pollEvery)
			continue
		}
		if !locked(f) {
			// No live producer on this file: it is either complete (just
			// renamed) or left by a killed producer.
			if valid(f, 0) {
				c.count(statHit)
				return c.follow(f, packPath, stdout, stderr)
			}
			f.Close()
			time.Sleep(pollEvery)
			continue
		}
		c.count(statJoin)
		return c.follow(f, packPath, stdout, stderr)
	}
	// Something is stuck; serve this request without the cache.
	return c.run(r, bytes.NewReader(in), stdout, stderr)
}

// run executes pack-objects without the cache.
func (c *Cache) run(r Request, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := exec.Command(c.gitPath(), r.Args...)
	cmd.Dir, cmd.Env = r.Dir, r.Env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	return exitCode(cmd.Run(), stderr)
}

func (c *Cache) gitPath() string {
	if c.GitPath == "" {
		return "git"
	}
	return c.GitPath
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		return ee.ExitCode()
	}
	fmt.Fprintln(stderr, "pack-objects hook:", err)
	return 1
}

// produce runs pack-objects, streaming its output to stdout and into a new
// KEY.part that joiners tail; on success the file gets its trailer and
// becomes KEY.pack. The caller holds KEY.lock.
func (c *Cache) produce(key string, r Request, in []byte, stdout, stderr io.Writer) int {
	packPath, partPath, _ := c.paths(key)
	tmp, err := os.CreateTemp(c.Dir, key+".*.tmp")
	if err != nil {
		return c.run(r, bytes.NewReader(in), stdout, stderr)
	}
	// Lock before publishing the name so that a joiner never sees the
	// file without its producer's lock.
	if err := syscall.Flock(int(tmp.Fd()), syscall.LOCK_EX); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return c.run(r, bytes.NewReader(in), stdout, stderr)
	}
	if err := os.Rename(tmp.Name(), partPath); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return c.run(r, bytes.NewReader(in), stdout, stderr)
	}
	f := tmp
	fail := func() {
		os.Remove(partPath)
		f.Close()
	}

	cmd := exec.Command(c.gitPath(), r.Args...)
	cmd.Dir, cmd.Env = r.Dir, r.Env
	cmd.Stdin, cmd.Stderr = bytes.NewReader(in), stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fail()
		return c.run(r, bytes.NewReader(in), stdout, stderr)
	}
	if err := cmd.Start(); err != nil {
		fail()
		fmt.Fprintln(stderr, "pack-objects hook:", err)
		return 1
	}
	crc := crc32.New(castagnoli)
	var n int64
	var writeErr error // cache file; the client's copy continues regardless
	clientOK := true
	buf := make([]byte, 256<<10)
	for {
		m, rerr := out.Read(buf)
		if m > 0 {
			chunk := buf[:m]
			if writeErr == nil {
				_, writeErr = f.Write(chunk)
			}
			crc.Write(chunk)
			n += int64(m)
			if clientOK {
				if _, err := stdout.Write(chunk); err != nil {
					// Our client is gone; keep producing for joiners and
					// the cache.
					clientOK = false
				}
			}
		}
		if rerr != nil {
			break
		}
	}
	werr := cmd.Wait()
	if werr != nil || writeErr != nil {
		fail()
		if werr != nil {
			return exitCode(werr, stderr)
		}
		if !clientOK {
			return 1
		}
		return 0 // the client got its pack; only the cache write failed
	}
	var t [trailerLen]byte
	copy(t[:8], magic)
	binary.BigEndian.PutUint64(t[8:16], uint64(n))
	binary.BigEndian.PutUint64(t[16:24], uint64(time.Now().Unix()))
	binary.BigEndian.PutUint32(t[24:28], crc.Sum32())
	if _, err := f.Write(t[:]); err != nil {
		fail()
		return boolCode(clientOK)
	}
	if err := f.Sync(); err != nil {
		fail()
		return boolCode(clientOK)
	}
	if err := os.Rename(partPath, packPath); err != nil {
		fail()
		return boolCode(clientOK)
	}
	f.Close() // releases the producer lock: joiners verify the trailer
	return boolCode(clientOK)
}

func boolCode(ok bool) int {
	if ok {
		return 0
	}
	return 1
}

func (c *Cache) maxAge() time.Duration {
	if c.MaxAge <= 0 {
		return DefaultMaxAge
	}
	return c.MaxAge
}

// openComplete opens a complete, unexpired entry.
func (c *Cache) openComplete(path string) (*os.File, bool) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	if !valid(f, c.maxAge()) {
		f.Close()
		return nil, false
	}
	return f, true
}

// valid checks a finished file's trailer: magic, length and (when maxAge >
// 0) age. The CRC is checked while streaming.
func valid(f *os.File, maxAge time.Duration) bool {
	st, err := f.Stat()
	if err != nil || st.Size() < trailerLen {
		return false
	}
	var t [trailerLen]byte
	if _, err := f.ReadAt(t[:], st.Size()-trailerLen); err != nil {
		return false
	}
	if string(t[:8]) != magic || binary.BigEndian.Uint64(t[8:16]) != uint64(st.Size()-trailerLen) {
		return false
	}
	if maxAge > 0 {
		created := time.Unix(int64(binary.BigEndian.Uint64(t[16:24])), 0)
		if time.Since(created) > maxAge {
			return false
		}
	}
	return true
}

// locked reports whether a producer still holds f.
func locked(f *os.File) bool {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return false
	}
	return errors.Is(err, syscall.EWOULDBLOCK)
}

// errCorrupt is a file that ended without a matching trailer.
var errCorrupt = errors.New("pack cache entry is incomplete or corrupt")

// follow streams f (complete, or still being written by a producer holding
// its lock) to w, holding back the trailer; it fails unless the file ends in
// a trailer matching everything sent.
func (c *Cache) follow(f *os.File, packPath string, w io.Writer, stderr io.Writer) int {
	defer f.Close()
	err := copyEntry(f, w)
	if err == nil {
		return 0
	}
	if errors.Is(err, errCorrupt) {
		// Never serve it again (a killed producer's file is removed by the
		// next producer; a complete one that fails its CRC goes now).
		if st, serr := f.Stat(); serr == nil {
			if pst, perr := os.Stat(packPath); perr == nil && os.SameFile(st, pst) {
				os.Remove(packPath)
			}
		}
	}
	fmt.Fprintln(stderr, "pack-objects hook:", err)
	return 1
}

func copyEntry(f *os.File, w io.Writer) error {
	crc := crc32.New(castagnoli)
	var sent int64
	buf := make([]byte, 256<<10)
	held := 0 // bytes at buf[:held] not yet sent (at most trailerLen once drained)
	final := false
	for {
		m, err := f.Read(buf[held:])
		held += m
		if held > trailerLen {
			out := buf[:held-trailerLen]
			if _, werr := w.Write(out); werr != nil {
				return werr
			}
			crc.Write(out)
			sent += int64(len(out))
			held = copy(buf, buf[held-trailerLen:held])
		}
		if err == nil {
			continue
		}
		if err != io.EOF {
			return err
		}
		if final {
			break
		}
		if locked(f) {
			time.Sleep(pollEvery)
			continue
		}
		final = true // producer gone: drain what it wrote, then check
	}
	if held != trailerLen {
		return errCorrupt
	}
	t := buf[:trailerLen]
	if string(t[:8]) != magic || binary.BigEndian.Uint64(t[8:16]) != uint64(sent) ||
		binary.BigEndian.Uint32(t[24:28]) != crc.Sum32() {
		return errCorrupt
	}
	return nil
}

// tryLock takes KEY.lock without waiting; nil, nil when another process
// holds it. The lock is robust against the file being removed by eviction.
func tryLock(path string) (*os.File, error) {
	for range 5 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, nil
			}
			return nil, err
		}
		st, err1 := f.Stat()
		pst, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(st, pst) {
			return f, nil
		}
		f.Close() // removed under us; take the new one
	}
	return nil, errors.New("pack cache lock keeps disappearing")
}

// evict removes least-recently-used complete entries until the cache is
// within MaxBytes, and files left by killed processes. keep (the entry just
// written) goes last.
func (c *Cache) evict(keep string) {
	maxBytes := c.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	entries, err := os.ReadDir(c.Dir)
	if err != nil {
		return
	}
	type entry struct {
		path  string
		size  int64
		mtime time.Time
	}
	var packs []entry
	var total int64
	now := time.Now()
	for _, e := range entries {
		name := e.Name()
		info, err := e.Info()
		if err != nil {
			continue
		}
		p := filepath.Join(c.Dir, name)
		switch {
		case strings.HasSuffix(name, ".pack"):
			packs = append(packs, entry{p, info.Size(), info.ModTime()})
			total += info.Size()
		case strings.HasSuffix(name, ".part"), strings.HasSuffix(name, ".tmp"):
			if now.Sub(info.ModTime()) > staleAfter {
				removeIfUnlocked(p)
			}
		case strings.HasSuffix(name, ".seen"):
			if now.Sub(info.ModTime()) > c.maxAge() {
				os.Remove(p)
			}
		case strings.HasSuffix(name, ".lock"):
			if now.Sub(info.ModTime()) > staleAfter {
				if _, err := os.Stat(strings.TrimSuffix(p, ".lock") + ".pack"); err != nil {
					removeIfUnlocked(p)
				}
			}
		}
	}
	if total <= maxBytes {
		return
	}
	sort.Slice(packs, func(i, j int) bool {
		if (packs[i].path == keep) != (packs[j].path == keep) {
			return packs[j].path == keep
		}
		return packs[i].mtime.Before(packs[j].mtime)
	})
	for _, e := range packs {
		if total <= maxBytes {
			break
		}
		if os.Remove(e.path) == nil {
			c.count(statEvict)
		}
		total -= e.size
	}
}

func removeIfUnlocked(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
		os.Remove(path)
	}
}
