package main

// Clone measurements of issue 15: every request different, identical full
// clones from 8 agents (against plain http-backend with bitmaps and against
// streaming the same response bytes from a file over loopback HTTP),
// identical shallow and filtered clones of the default branch head.

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var flagServeFile = flag.String("serve-file", "", "internal: serve this file to every HTTP request on -listen (the file-streaming peer)")
var flagListen = flag.String("listen", "", "internal: address of -serve-file")

// serveFile is the physical-limit peer: a plain Go HTTP server that answers
// every request with the bytes of one file (io.Copy from *os.File to the
// ResponseWriter: sendfile). It runs as its own process, like the servers.
func serveFile(path, addr string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
		w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
		io.Copy(w, f)
	})
	return http.ListenAndServe(addr, h)
}

// request is one fetch: wants plus the v2 arguments (deepen, filter).
type request struct {
	wants []string
	extra []string // e.g. "deepen 1", "filter blob:none"
}

func fetchBodyReq(r request) []byte {
	var b strings.Builder
	b.WriteString(pkt("command=fetch\n") + pkt("agent=git/2.39.5\n") + pkt("object-format=sha1\n") + "0001")
	b.WriteString(pkt("thin-pack\n") + pkt("no-progress\n") + pkt("ofs-delta\n") + pkt("include-tag\n"))
	for _, w := range r.wants {
		b.WriteString(pkt("want " + w + "\n"))
	}
	for _, e := range r.extra {
		b.WriteString(pkt(e + "\n"))
	}
	b.WriteString(pkt("done\n") + "0000")
	return []byte(b.String())
}

// readFetchFast parses a v2 fetch response (shallow-info, packfile with
// side-band) up to its final flush and returns the pack size. One buffer
// for the whole response: the client should cost little next to the server.
func readFetchFast(r io.Reader) (int64, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	var hdr [4]byte
	var packBytes int64
	inPack := false
	var first [8]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return packBytes, fmt.Errorf("truncated response: %w", err)
		}
		n, err := strconv.ParseUint(string(hdr[:]), 16, 16)
		if err != nil {
			return packBytes, fmt.Errorf("bad pkt-line header %q", hdr)
		}
		if n == 0 {
			if inPack {
				if packBytes < 32 {
					return packBytes, errors.New("empty pack")
				}
				return packBytes, nil
			}
			return packBytes, errors.New("flush before packfile")
		}
		if n < 4 {
			continue // delim
		}
		size := int(n - 4)
		if !inPack {
			payload := make([]byte, size)
			if _, err := io.ReadFull(br, payload); err != nil {
				return packBytes, err
			}
			if string(payload) == "packfile\n" {
				inPack = true
			}
			if bytes.HasPrefix(payload, []byte("ERR ")) {
				return 0, fmt.Errorf("%s", payload)
			}
			continue
		}
		band, err := br.ReadByte()
		if err != nil {
			return packBytes, err
		}
		switch band {
		case 1:
			if packBytes == 0 && size >= 5 {
				io.ReadFull(br, first[:4])
				if string(first[:4]) != "PACK" {
					return 0, errors.New("pack does not start with PACK")
				}
				br.Discard(size - 5)
			} else if _, err := br.Discard(size - 1); err != nil {
				return packBytes, err
			}
			packBytes += int64(size - 1)
		case 2:
			br.Discard(size - 1)
		case 3:
			msg := make([]byte, size-1)
			io.ReadFull(br, msg)
			return packBytes, fmt.Errorf("remote error: %s", msg)
		default:
			return packBytes, fmt.Errorf("bad side-band %d", band)
		}
	}
}

// fetchReq runs one fetch against s; save, if set, receives the raw
// response bytes.
func fetchReq(s *server, repo string, r request, save io.Writer) (int64, error) {
	body := fetchBodyReq(r)
	repo += s.repoSuffix
	if s.daemon != "" {
		c, err := net.Dial("tcp", s.daemon)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		io.WriteString(c, pkt("git-upload-pack /"+repo+".git\x00host=127.0.0.1\x00\x00version=2\x00"))
		br := bufio.NewReader(c)
		for {
			var hdr [4]byte
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				return 0, err
			}
			n, _ := strconv.ParseUint(string(hdr[:]), 16, 16)
			if n == 0 {
				break
			}
			if _, err := br.Discard(int(n) - 4); err != nil {
				return 0, err
			}
		}
		if _, err := c.Write(body); err != nil {
			return 0, err
		}
		return readFetchFast(br)
	}
	url := s.http + repo + ".git/git-upload-pack"
	if s.file {
		url = s.http
	}
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-git-upload-pack-request")
	req.Header.Set("Git-Protocol", "version=2")
	if s.auth != "" {
		req.Header.Set("Authorization", s.auth)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		return 0, fmt.Errorf("%s: %s", resp.Status, b)
	}
	var rd io.Reader = resp.Body
	if save != nil {
		rd = io.TeeReader(resp.Body, save)
	}
	n, err := readFetchFast(rd)
	io.Copy(io.Discard, rd)
	return n, err
}

// rate runs reqs with conc concurrent clients; it returns clones per second
// and the failures.
func rate(s *server, repo string, reqs []request, conc int) (float64, int) {
	var next, fails atomic.Int64
	var wg sync.WaitGroup
	var errOnce sync.Once
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(reqs) {
					return
				}
				if _, err := fetchReq(s, repo, reqs[i], nil); err != nil {
					fails.Add(1)
					errOnce.Do(func() { logf("%s: fetch failed: %v", s.name, err) })
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	r := float64(len(reqs)) / el
	logf("  %-22s %7.2f clones/s (%d in %.1fs, %d failed; %s)", s.name, r, len(reqs), el, fails.Load(), loadavg())
	return r, int(fails.Load())
}

// warm sends r three times, one after the other, before a measurement
// of identical requests: the steady state of build agents cloning the same
// head all day (for plain git: the page cache; for gitserver: its caches,
// which keep a response from its third request on).
func warm(s *server, repo string, r request) error {
	for range 3 {
		if _, err := fetchReq(s, repo, r, nil); err != nil {
			return fmt.Errorf("%s: warm-up: %w", s.name, err)
		}
	}
	return nil
}

func repeat(r request, n int) []request {
	out := make([]request, n)
	for i := range out {
		out[i] = r
	}
	return out
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "load ?"
	}
	return "load " + strings.Join(f[:3], " ")
}

// cloneSet are the servers of one repository's measurements.
type cloneSet struct {
	gs, hbb, hb, dm *server
}

// measureClones measures one repository (repo is its name on every server;
// plain+bitmaps serves REPO-bm). scale multiplies the request counts.
func measureClones(tmp, repo, srcDir string, cs cloneSet, scale int, slowPlain bool) ([]result, error) {
	var results []result
	head := gitOut(srcDir, "rev-parse", "HEAD")
	allWants := uniq(strings.Fields(gitOut(srcDir, "for-each-ref", "--format=%(objectname)", "refs/heads", "refs/tags")))
	history := strings.Fields(gitOut(srcDir, "rev-list", "--first-parent", "--max-count=400", "HEAD"))
	fail := func(s *server, n int) error {
		if n > 0 {
			return fmt.Errorf("%s: %d failed fetches", s.name, n)
		}
		return nil
	}
	bm := func(s *server) *server { c := *s; c.repoSuffix = "-bm"; return &c }

	// Every request different: clones of distinct commits of the default
	// branch, 2 clients; no cache can answer two of them.
	n := 8 * scale
	if !slowPlain {
		n *= 3 // a short measurement is at the mercy of the machine's other load
	}
	diff := make([]request, n)
	for i := range diff {
		diff[i] = request{wants: []string{history[(i*3+5)%len(history)]}}
	}
	logf("%s: full clones, every request different (%d, 2 clients)", repo, n)
	res := result{name: repo + ": full clones/s, every request different (2 clients)", unit: "clones/s", higherIsBetter: true, target: ">= 1.0x", vs: "hbb"}
	var f int
	// Two rounds, the servers alternating (plain, gitserver, gitserver,
	// plain), each round on its own half of the commits (every request
	// stays a first sighting for gitserver): a load spike from elsewhere
	// on the machine then hits both, and the order favours neither.
	half := len(diff) / 2
	var tHBB, tGS float64
	for round, part := range [][]request{diff[:half], diff[half:]} {
		order := []*server{bm(cs.hbb), cs.gs}
		if round == 1 {
			order = []*server{cs.gs, bm(cs.hbb)}
		}
		for _, srv := range order {
			r, f := rate(srv, repo, part, 2)
			if f > 0 {
				return nil, fail(srv, f)
			}
			if srv == cs.gs {
				tGS += float64(len(part)) / r
			} else {
				tHBB += float64(len(part)) / r
			}
		}
	}
	res.hbb, res.gs = float64(len(diff))/tHBB, float64(len(diff))/tGS
	logf("  both rounds: http-backend+bitmaps %.2f, gitserver %.2f clones/s", res.hbb, res.gs)
	plainN := diff[:half]
	if slowPlain {
		plainN = diff[:min(len(diff), 4)]
	}
	if res.hb, f = rate(cs.hb, repo, plainN, 2); f > 0 {
		return nil, fail(cs.hb, f)
	}
	if cs.dm != nil {
		if res.dm, f = rate(cs.dm, repo, plainN, 2); f > 0 {
			return nil, fail(cs.dm, f)
		}
	}
	results = append(results, res)

	// Identical full clones (what `git clone` wants: every branch and tag),
	// 8 agents.
	m := 8 * 4 * scale
	full := request{wants: allWants}
	logf("%s: identical full clones (%d, 8 clients)", repo, m)
	res = result{name: repo + ": identical full clones/s (8 clients)", unit: "clones/s", higherIsBetter: true, target: ">= 4x", vs: "hbb"}
	for _, s := range []*server{bm(cs.hbb), cs.gs} {
		if err := warm(s, repo, full); err != nil {
			return nil, err
		}
	}
	if res.hbb, f = rate(bm(cs.hbb), repo, repeat(full, m), 8); f > 0 {
		return nil, fail(cs.hbb, f)
	}
	if res.gs, f = rate(cs.gs, repo, repeat(full, m), 8); f > 0 {
		return nil, fail(cs.gs, f)
	}
	plainM := m
	if slowPlain {
		plainM = 8
	}
	if res.hb, f = rate(cs.hb, repo, repeat(full, plainM), 8); f > 0 {
		return nil, fail(cs.hb, f)
	}
	// The physical limit: the same response bytes from a file over
	// loopback HTTP.
	respFile := filepath.Join(tmp, repo+"-response")
	out, err := os.Create(respFile)
	if err != nil {
		return nil, err
	}
	if _, err := fetchReq(cs.gs, repo, full, out); err != nil {
		return nil, err
	}
	out.Close()
	st, _ := os.Stat(respFile)
	self, _ := os.Executable()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort())
	p := start(self, []string{"-serve-file", respFile, "-listen", addr}, nil)
	procs = append(procs, p)
	if err := waitTCP(addr); err != nil {
		return nil, err
	}
	peer := &server{name: "file over loopback HTTP", http: "http://" + addr + "/", file: true}
	if res.file, f = rate(peer, repo, repeat(full, m), 8); f > 0 {
		return nil, fail(peer, f)
	}
	res.comment = fmt.Sprintf("response %.1f MiB", float64(st.Size())/(1<<20))
	results = append(results, res)
	results = append(results, result{name: repo + ": identical full clones/s (8 clients) vs the same bytes streamed from a file over loopback HTTP",
		unit: "clones/s", higherIsBetter: true, gs: res.gs, file: res.file, vs: "file", target: "within 2x (>= 0.5x)"})

	// Identical shallow clones of the default branch head (--depth 1).
	k := 8 * 8 * scale
	for _, v := range []struct {
		what, arg, target string
	}{{"shallow (--depth 1)", "deepen 1", ">= 5x"}, {"filtered (--filter=blob:none)", "filter blob:none", "-"}} {
		r := request{wants: []string{head}, extra: []string{v.arg}}
		logf("%s: identical %s clones of HEAD (%d, 8 clients)", repo, v.what, k)
		res := result{name: repo + ": identical " + v.what + " clones/s of the default branch head (8 clients)", unit: "clones/s", higherIsBetter: true, target: v.target, vs: "hbb"}
		// Shallow packs cannot use bitmaps and must re-delta objects whose
		// bases stay behind: on the large repository plain git takes
		// seconds per request, so it gets fewer of them.
		plainK, bmK := k, k
		if slowPlain {
			plainK, bmK = 8, 24
		}
		for _, s := range []*server{bm(cs.hbb), cs.gs} {
			if err := warm(s, repo, r); err != nil {
				return nil, err
			}
		}
		if res.hbb, f = rate(bm(cs.hbb), repo, repeat(r, bmK), 8); f > 0 {
			return nil, fail(cs.hbb, f)
		}
		if res.gs, f = rate(cs.gs, repo, repeat(r, k), 8); f > 0 {
			return nil, fail(cs.gs, f)
		}
		if res.hb, f = rate(cs.hb, repo, repeat(r, plainK), 8); f > 0 {
			return nil, fail(cs.hb, f)
		}
		results = append(results, res)
	}
	return results, nil
}

// rssDuring runs conc concurrent fetches of distinct commits plus as many
// identical full clones against s and samples the VmRSS of pid.
func rssDuring(s *server, repo, srcDir string, pid, conc int) (peakKB int64, fails int) {
	history := strings.Fields(gitOut(srcDir, "rev-list", "--first-parent", "--max-count=400", "HEAD"))
	reqs := make([]request, conc)
	for i := range reqs {
		reqs[i] = request{wants: []string{history[300+i]}} // not requested before
	}
	var peak atomic.Int64
	stop := make(chan struct{})
	go func() {
		for {
			if kb := statusKB(pid, "VmRSS"); kb > peak.Load() {
				peak.Store(kb)
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	_, fails = rate(s, repo, reqs, conc)
	close(stop)
	return peak.Load(), fails
}

// gitTime runs git in dir and returns its wall time.
func gitTime(dir string, args ...string) (time.Duration, error) {
	t0 := time.Now()
	cmd := gitCmd(dir, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return time.Since(t0), nil
}
