package mirror

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"gitserver/store"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url              string
		user, host, path string
		port             int
	}{
		{"git@github.com:owner/repo.git", "git", "github.com", "owner/repo.git", 22},
		{"ssh://git@127.0.0.1:2222/owner/name.git", "git", "127.0.0.1", "/owner/name.git", 2222},
		{"ssh://git@[::1]:2222/o/n.git", "git", "::1", "/o/n.git", 2222},
		{"ssh://gitea.example/o/n", "", "gitea.example", "/o/n", 22},
	} {
		r, err := ParseURL(tc.url)
		if err != nil || r.User != tc.user || r.Host != tc.host || r.Path != tc.path || r.Port != tc.port || r.URL != tc.url {
			t.Errorf("%s: %+v %v", tc.url, r, err)
		}
	}
	for _, tc := range []struct{ url, want string }{
		{"", "required"},
		{"-oProxyCommand=touch /tmp/x", "must not begin with \"-\""},
		{"ssh://-oProxyCommand=x/o/n", "host must not begin with \"-\""},
		{"git@-oProxyCommand=x:o/n", "host must not begin with \"-\""},
		{"ssh://-user@host/o/n", "user must not begin"},
		{"ext::sh -c touch% /tmp/pwned", "whitespace"},
		{"ext::sh", "remote helper"},
		{"fd::3", "remote helper"},
		{"/srv/git/repo.git", "local path"},
		{"./repo", "local path"},
		{"../repo", "local path"},
		{"~/repo", "local path"},
		{"repo", "local path"},
		{"file:///etc", "scheme \"file\" is not supported"},
		{"https://github.com/o/r.git", "scheme \"https\" is not supported"},
		{"git://host/o/r", "scheme \"git\" is not supported"},
		{"git@host:o/r.git\n", "whitespace or control"},
		{"git@host:o/r\x00.git", "whitespace or control"},
		{"git@host:o/r .git", "whitespace"},
		{"git@host:", "no repository path"},
		{"ssh://git@host:99999/o/r", "port"},
		{"ssh://git@host/", "no repository path"},
		{"ssh://git:pw@host/o/r", "password"},
		{"git@host:o/r';touch'x", "not allowed"},
		{"git@host:-u.git", "must not begin"},
		{"git@ho_st:o/r", "not a host name"},
	} {
		_, err := ParseURL(tc.url)
		if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want ErrInvalid containing %q", tc.url, err, tc.want)
		}
	}
}

func TestKeys(t *testing.T) {
	priv, pub, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(priv), "-----BEGIN OPENSSH PRIVATE KEY-----") || !strings.HasPrefix(pub, "ssh-ed25519 AAAA") || !strings.HasSuffix(pub, " "+DeployKeyComment) {
		t.Fatalf("generated %q", pub)
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pub)); err != nil {
		t.Fatal(err)
	}
	// A pasted key gives the same public half.
	p2, pub2, err := ParsePrivateKey("\n" + string(priv) + "\n\n")
	if err != nil || pub2 != pub || string(p2) != string(priv) {
		t.Fatalf("pasted: %q %v", pub2, err)
	}
	for _, bad := range []string{"", "not a key", "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----", pub} {
		_, _, err := ParsePrivateKey(bad)
		if !errors.Is(err, store.ErrInvalid) || (bad != "" && strings.Contains(err.Error(), bad)) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	r, _ := ParseURL("ssh://git@127.0.0.1:2222/o/n.git")
	hk, err := ParseHostKeys(r, []string{pub, "[other]:22 " + pub, pub})
	if err != nil || len(hk.Fingerprints) != 1 || !strings.HasPrefix(hk.Fingerprints[0], "SHA256:") ||
		!strings.HasPrefix(hk.KnownHosts, "[127.0.0.1]:2222 ssh-ed25519 AAAA") || strings.Count(hk.KnownHosts, "\n") != 1 {
		t.Fatalf("host keys: %+v %v", hk, err)
	}
	for _, bad := range [][]string{{}, {"nonsense"}, {pub + "\nx"}} {
		if _, err := ParseHostKeys(r, bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestIntervals(t *testing.T) {
	for in, want := range map[string]string{"": "10m", "10m": "10m", "1h": "1h", "90m": "1h30m", "24h": "24h", "1m": "1m"} {
		d, err := ParseInterval(in)
		if err != nil || FormatInterval(d) != want {
			t.Errorf("%q: %v %v", in, FormatInterval(d), err)
		}
	}
	for _, bad := range []string{"10", "59s", "25h", "-1m", "soon"} {
		if _, err := ParseInterval(bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestClassify(t *testing.T) {
	for stderr, code := range map[string]string{
		"@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\nHost key verification failed.\nfatal: Could not read from remote repository.": CodeHostKeyChanged,
		"git@127.0.0.1: Permission denied (publickey).\nfatal: Could not read from remote repository.":                                                    CodeAuthFailed,
		"ssh: connect to host 127.0.0.1 port 1: Connection refused\nfatal: Could not read from remote repository.":                                        CodeUnreachable,
		"gitserver: repository not found\nfatal: Could not read from remote repository.":                                                                  CodeNotFound,
		"fatal: something odd": CodeFetchFailed,
	} {
		if e := classify(stderr, false); e.Code != code || strings.Contains(e.Message, "127.0.0.1") {
			t.Errorf("%q: %+v", stderr, e)
		}
	}
}

// TestSchedulerCoalesces: triggers while a sync waits join it; triggers
// while it runs make exactly one more; at most Max run at once.
func TestSchedulerCoalesces(t *testing.T) {
	var mu sync.Mutex
	runs := map[int64]int{}
	pushers := map[int64][]string{}
	release := make(chan struct{})
	started := make(chan int64, 100)
	var running, maxRunning atomic.Int32
	s := &Scheduler{Max: 2, Sync: func(ctx context.Context, id int64, pusher string) {
		n := running.Add(1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		mu.Lock()
		runs[id]++
		pushers[id] = append(pushers[id], pusher)
		mu.Unlock()
		started <- id
		<-release
		running.Add(-1)
	}}
	s.Trigger(1, "alice")
	if id := <-started; id != 1 {
		t.Fatal(id)
	}
	// Repo 1 is running: five triggers make one more sync.
	for range 5 {
		s.Trigger(1, "bob")
	}
	s.TriggerIfIdle(1) // the poller: nothing more
	s.Trigger(2, "")
	<-started
	// Two run (Max 2): repo 3 waits; its triggers join the waiting one.
	s.Trigger(3, "x")
	s.Trigger(3, "y")
	select {
	case id := <-started:
		t.Fatalf("repo %d started beyond Max", id)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if !s.Close(5 * time.Second) {
		// Close cancels; the queued ones may not run: wait for the rest.
		t.Fatal("Close timed out")
	}
	mu.Lock()
	defer mu.Unlock()
	if maxRunning.Load() > 2 {
		t.Errorf("%d syncs at once", maxRunning.Load())
	}
	if runs[1] > 2 || runs[2] != 1 || runs[3] > 1 {
		t.Errorf("runs %v", runs)
	}
	if pushers[1][0] != "alice" {
		t.Errorf("pushers %v", pushers)
	}
}

// TestSchedulerOneMoreAfterRunning: after the burst, exactly one more sync
// runs, with the latest pusher.
func TestSchedulerOneMoreAfterRunning(t *testing.T) {
	var runs atomic.Int32
	gate := make(chan struct{})
	var last atomic.Value
	done := make(chan struct{}, 10)
	s := &Scheduler{Sync: func(ctx context.Context, id int64, pusher string) {
		if runs.Add(1) == 1 {
			<-gate
		}
		last.Store(pusher)
		done <- struct{}{}
	}}
	defer s.Close(time.Second)
	s.Trigger(7, "")
	for runs.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	for _, p := range []string{"a", "b", "c"} {
		s.Trigger(7, p)
	}
	close(gate)
	<-done
	<-done
	select {
	case <-done:
		t.Fatal("a third sync ran")
	case <-time.After(200 * time.Millisecond):
	}
	if runs.Load() != 2 || last.Load() != "c" {
		t.Fatalf("runs %d last %v", runs.Load(), last.Load())
	}
}

func TestReadAdvertisement(t *testing.T) {
	pkt := func(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }
	adv := pkt("1111111111111111111111111111111111111111 HEAD\x00multi_ack thin-pack side-band symref=HEAD:refs/heads/main object-format=sha1 agent=git/2.39.5\n") +
		pkt("1111111111111111111111111111111111111111 refs/heads/main\n") +
		pkt("2222222222222222222222222222222222222222 refs/heads/dev\n") +
		pkt("3333333333333333333333333333333333333333 refs/tags/v1\n") +
		pkt("1111111111111111111111111111111111111111 refs/tags/v1^{}\n") +
		pkt("4444444444444444444444444444444444444444 refs/pull/1/head\n") +
		"0000" + "trailing bytes not read"
	refs, head, err := readAdvertisement(bufio.NewReader(strings.NewReader(adv)))
	if err != nil || head != "main" || len(refs) != 3 || refs["refs/tags/v1"] != "3333333333333333333333333333333333333333" ||
		refs["refs/heads/dev"] != "2222222222222222222222222222222222222222" {
		t.Fatalf("%q %v %v", head, refs, err)
	}
	if !maps.Equal(refs, map[string]string{"refs/heads/main": refs["refs/heads/main"], "refs/heads/dev": refs["refs/heads/dev"], "refs/tags/v1": refs["refs/tags/v1"]}) {
		t.Fatal("sameRefs")
	}
	if maps.Equal(refs, map[string]string{"refs/heads/main": refs["refs/heads/main"]}) {
		t.Fatal("sameRefs of fewer refs")
	}
	// An empty repository; "version 1" first; a HEAD outside refs/heads.
	refs, head, err = readAdvertisement(bufio.NewReader(strings.NewReader(
		pkt("version 1\n") + pkt("0000000000000000000000000000000000000000 capabilities^{}\x00symref=HEAD:refs/remotes/x agent=x\n") + "0000")))
	if err != nil || head != "" || len(refs) != 0 {
		t.Fatalf("empty: %q %v %v", head, refs, err)
	}
	// An ERR line; a truncated advertisement; a bad length.
	_, _, err = readAdvertisement(bufio.NewReader(strings.NewReader(pkt("ERR repository not found"))))
	var re *remoteError
	if !errors.As(err, &re) || classify(re.msg, false).Code != CodeNotFound {
		t.Fatalf("ERR: %v", err)
	}
	if _, _, err = readAdvertisement(bufio.NewReader(strings.NewReader(pkt("1111111111111111111111111111111111111111 HEAD\n")))); err == nil {
		t.Fatal("no flush: no error")
	}
	if _, _, err = readAdvertisement(bufio.NewReader(strings.NewReader("zzzz"))); err == nil {
		t.Fatal("bad length: no error")
	}
}

// TestRelayBoundsWhatPasses: the ssh relay passes an upstream's bytes
// through up to its bound and stops (non-zero, with the marker classify
// knows) past it.
func TestRelayBoundsWhatPasses(t *testing.T) {
	var out, errb bytes.Buffer
	if code := RelayMain([]string{"1000", "sh", "-c", "exec head -c 100 /dev/zero"}, strings.NewReader(""), &out, &errb); code != 0 || out.Len() != 100 {
		t.Fatalf("under the bound: exit %d, %d bytes, %q", code, out.Len(), errb.String())
	}
	out.Reset()
	errb.Reset()
	code := RelayMain([]string{"10", "sh", "-c", "exec head -c 100000 /dev/zero"}, strings.NewReader(""), &out, &errb)
	if code == 0 || out.Len() > 10 || classify(errb.String(), false).Code != CodeTooLarge {
		t.Fatalf("over the bound: exit %d, %d bytes passed, %q", code, out.Len(), errb.String())
	}
	if code := RelayMain([]string{"1000", "sh", "-c", "exit 7"}, strings.NewReader(""), &out, &errb); code != 7 {
		t.Fatalf("ssh's exit status is not passed on: %d", code)
	}
}

func TestRepositoryEvent(t *testing.T) {
	for typ, want := range map[string]bool{"repository": true, "repo:updated": true, "repo:modified": true,
		"push": false, "Push Hook": false, "repo:refs_changed": false, "": false} {
		if got := repositoryEvent(typ); got != want {
			t.Errorf("repositoryEvent(%q) = %v", typ, got)
		}
	}
}
