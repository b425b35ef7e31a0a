package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const secret = "s3cr3t"

func hexMAC(key string, body []byte) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// sigHeader names each provider's signature header.
var sigHeader = map[Provider]string{
	GitHub:          "X-Hub-Signature-256",
	GitLab:          "X-Gitlab-Token",
	BitbucketCloud:  "X-Hub-Signature",
	BitbucketServer: "X-Hub-Signature",
	Gitea:           "X-Gitea-Signature",
}

// sign returns the signature header value for body, as the provider
// computes it (GitLab sends the secret itself).
func sign(p Provider, body []byte, key string) string {
	switch p {
	case GitLab:
		return key
	case Gitea:
		return hexMAC(key, body)
	}
	return "sha256=" + hexMAC(key, body)
}

// delivery returns the headers a provider sends with body for event (as
// the fact sheet lists them), signed with key.
func delivery(p Provider, event string, body []byte, key string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	switch p {
	case GitHub:
		h.Set("X-GitHub-Event", event)
		h.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
		h.Set("X-GitHub-Hook-ID", "4242")
		h.Set("User-Agent", "GitHub-Hookshot/044aadd")
	case GitLab:
		h.Set("X-Gitlab-Event", event)
		h.Set("X-Gitlab-Instance", "https://gitlab.example.com")
		h.Set("X-Gitlab-Event-UUID", "13792a34-cac6-4fda-95a8-c58e00a3954e")
		h.Set("Idempotency-Key", "8f2c1d3e-6b7a-4c1e-9d2f-0a1b2c3d4e5f")
	case BitbucketCloud:
		h.Set("X-Event-Key", event)
		h.Set("X-Hook-UUID", "{4c8a1f7e-0000-4000-8000-000000000001}")
		h.Set("X-Request-UUID", "0b8f7e9a-1234-4cde-8f00-aaaaaaaaaaaa")
		h.Set("X-Attempt-Number", "1")
	case BitbucketServer:
		h.Set("X-Event-Key", event)
		h.Set("X-Request-Id", "6f0a2b9c-3d4e-4f50-8a1b-2c3d4e5f6a7b")
	case Gitea:
		for _, pre := range []string{"X-Gitea-", "X-Gogs-", "X-GitHub-"} {
			h.Set(pre+"Event", event)
			h.Set(pre+"Event-Type", event)
			h.Set(pre+"Delivery", "f6266f16-1bf3-46a5-9ea4-602e06ead473")
		}
		h.Set("X-Gogs-Signature", hexMAC(key, body))
		h.Set("X-Hub-Signature-256", "sha256="+hexMAC(key, body))
	}
	h.Set(sigHeader[p], sign(p, body, key))
	return h
}

// forgejo adds Forgejo's twins of Gitea's headers.
func forgejo(h http.Header) http.Header {
	for _, n := range []string{"Event", "Event-Type", "Delivery", "Signature"} {
		h.Set("X-Forgejo-"+n, h.Get("X-Gitea-"+n))
	}
	return h
}

func fixture(t testing.TB, p Provider, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", string(p), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	ghDelivery  = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
	glDelivery  = "8f2c1d3e-6b7a-4c1e-9d2f-0a1b2c3d4e5f"
	bbcDelivery = "0b8f7e9a-1234-4cde-8f00-aaaaaaaaaaaa"
	bbsDelivery = "6f0a2b9c-3d4e-4f50-8a1b-2c3d4e5f6a7b"
	gtDelivery  = "f6266f16-1bf3-46a5-9ea4-602e06ead473"
)

// pushEvent is the event each provider's push.json stands for, without
// Changes, Kind and Type.
var pushEvent = map[Provider]Event{
	GitHub: {Provider: GitHub, DeliveryID: ghDelivery, RepoID: "1296269", RepoFullName: "octo-org/hello-world",
		SSHURL: "git@github.com:octo-org/hello-world.git", DefaultBranch: "main", Pusher: "octocat"},
	GitLab: {Provider: GitLab, DeliveryID: glDelivery, RepoID: "15", RepoFullName: "mike/diaspora",
		SSHURL: "git@gitlab.example.com:mike/diaspora.git", DefaultBranch: "main", Pusher: "jsmith"},
	BitbucketCloud: {Provider: BitbucketCloud, DeliveryID: bbcDelivery, RepoID: "{bc771cbf-829e-4c4b-b71f-a0eb3ac2b860}",
		RepoFullName: "acme/foo", Pusher: "jdoe"},
	BitbucketServer: {Provider: BitbucketServer, DeliveryID: bbsDelivery, RepoID: "656", RepoFullName: "MYPROJECT/test-repo",
		SSHURL: "ssh://git@bitbucket.example.com:7999/myproject/test-repo.git", Pusher: "jdoe"},
	Gitea: {Provider: Gitea, DeliveryID: gtDelivery, RepoID: "140", RepoFullName: "acme/webhooks",
		SSHURL: "git@gitea.example.com:acme/webhooks.git", DefaultBranch: "main", Pusher: "jane"},
}

// pushType is each provider's name for a branch push.
var pushType = map[Provider]string{
	GitHub: "push", GitLab: "Push Hook", BitbucketCloud: "repo:push", BitbucketServer: "repo:refs_changed", Gitea: "push",
}

type fixtureCase struct {
	p       Provider
	file    string
	event   string
	kind    Kind
	changes []RefChange
	edit    func(*Event) // differences from pushEvent[p]
	err     error
}

func upd(ref, before, after string) RefChange {
	return RefChange{Ref: ref, Before: before, After: after}
}
func created(ref, after string) RefChange {
	return RefChange{Ref: ref, After: after, Created: true}
}
func deleted(ref, before string) RefChange {
	return RefChange{Ref: ref, Before: before, Deleted: true}
}

var fixtureCases = []fixtureCase{
	{p: GitHub, file: "push.json", event: "push", kind: Push,
		changes: []RefChange{upd("refs/heads/main", "9049f1265b7d61be4a8904a9a27120d2064dab3b", "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c")}},
	{p: GitHub, file: "tag.json", event: "push", kind: Push,
		changes: []RefChange{created("refs/tags/v1.0.0", "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c")}},
	{p: GitHub, file: "create.json", event: "push", kind: Push,
		changes: []RefChange{created("refs/heads/feature-x", "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c")}},
	{p: GitHub, file: "delete.json", event: "push", kind: Push,
		changes: []RefChange{deleted("refs/heads/feature-x", "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c")}},
	{p: GitHub, file: "ping.json", event: "ping", kind: Ping, edit: func(e *Event) { e.Pusher = "" }},
	{p: GitHub, file: "repository-renamed.json", event: "repository", kind: Other, err: ErrUnsupported},

	{p: GitLab, file: "push.json", event: "Push Hook", kind: Push,
		changes: []RefChange{upd("refs/heads/main", "95790bf891e76fee5e1747ab589903a6a1f80f22", "da1560886d4f094c3e6c9ef40349f7d38b5d27d7")}},
	{p: GitLab, file: "tag.json", event: "Tag Push Hook", kind: Push,
		changes: []RefChange{created("refs/tags/v1.0.0", "da1560886d4f094c3e6c9ef40349f7d38b5d27d7")}},
	{p: GitLab, file: "create.json", event: "Push Hook", kind: Push,
		changes: []RefChange{created("refs/heads/feature-x", "da1560886d4f094c3e6c9ef40349f7d38b5d27d7")}},
	{p: GitLab, file: "delete.json", event: "Push Hook", kind: Push,
		changes: []RefChange{deleted("refs/heads/feature-x", "da1560886d4f094c3e6c9ef40349f7d38b5d27d7")}},
	{p: GitLab, file: "push-renamed.json", event: "Push Hook", kind: Push,
		changes: []RefChange{upd("refs/heads/main", "95790bf891e76fee5e1747ab589903a6a1f80f22", "da1560886d4f094c3e6c9ef40349f7d38b5d27d7")},
		edit: func(e *Event) {
			e.RepoFullName, e.SSHURL = "mike/diaspora2", "git@gitlab.example.com:mike/diaspora2.git" // same RepoID
		}},
	{p: GitLab, file: "merge-request.json", event: "Merge Request Hook", kind: Other, err: ErrUnsupported},

	{p: BitbucketCloud, file: "push.json", event: "repo:push", kind: Push,
		changes: []RefChange{upd("refs/heads/main", "40e7580cf11311d84a6e5e97e2cbba6df1675750", "141977fedf5cf35aa290ac87d4b5177ac4cd9de1")},
		edit:    func(e *Event) { e.Pusher = "Jane Doe" }}, // this actor has no nickname
	{p: BitbucketCloud, file: "tag.json", event: "repo:push", kind: Push,
		changes: []RefChange{created("refs/tags/v1.0.0", "141977fedf5cf35aa290ac87d4b5177ac4cd9de1")}},
	{p: BitbucketCloud, file: "create.json", event: "repo:push", kind: Push,
		changes: []RefChange{created("refs/heads/feature-x", "141977fedf5cf35aa290ac87d4b5177ac4cd9de1")}},
	{p: BitbucketCloud, file: "delete.json", event: "repo:push", kind: Push,
		changes: []RefChange{deleted("refs/heads/feature-x", "141977fedf5cf35aa290ac87d4b5177ac4cd9de1")}},
	{p: BitbucketCloud, file: "multi.json", event: "repo:push", kind: Push,
		changes: []RefChange{
			upd("refs/heads/main", "40e7580cf11311d84a6e5e97e2cbba6df1675750", "141977fedf5cf35aa290ac87d4b5177ac4cd9de1"),
			deleted("refs/heads/old-work", "40e7580cf11311d84a6e5e97e2cbba6df1675750"),
		}},
	{p: BitbucketCloud, file: "repo-updated.json", event: "repo:updated", kind: Other, err: ErrUnsupported},

	{p: BitbucketServer, file: "push.json", event: "repo:refs_changed", kind: Push,
		changes: []RefChange{upd("refs/heads/main", "f09c8889a2d234985734958795a31589cd91ffda", "22671f0349857934857983457983475ec39f196b")}},
	{p: BitbucketServer, file: "tag.json", event: "repo:refs_changed", kind: Push,
		changes: []RefChange{created("refs/tags/v1.0.0", "22671f0349857934857983457983475ec39f196b")}},
	{p: BitbucketServer, file: "create.json", event: "repo:refs_changed", kind: Push,
		changes: []RefChange{created("refs/heads/feature-x", "22671f0349857934857983457983475ec39f196b")}},
	{p: BitbucketServer, file: "delete.json", event: "repo:refs_changed", kind: Push,
		changes: []RefChange{deleted("refs/heads/feature-x", "22671f0349857934857983457983475ec39f196b")}},
	{p: BitbucketServer, file: "multi.json", event: "repo:refs_changed", kind: Push,
		changes: []RefChange{
			created("refs/heads/feature-x", "22671f0349857934857983457983475ec39f196b"),
			upd("refs/heads/main", "f09c8889a2d234985734958795a31589cd91ffda", "22671f0349857934857983457983475ec39f196b"),
			deleted("refs/heads/old-work", "f09c8889a2d234985734958795a31589cd91ffda"),
		}},
	{p: BitbucketServer, file: "ping.json", event: "diagnostics:ping", kind: Ping,
		edit: func(e *Event) { *e = Event{Provider: BitbucketServer, DeliveryID: bbsDelivery} }},
	{p: BitbucketServer, file: "repo-modified.json", event: "repo:modified", kind: Other, err: ErrUnsupported},

	{p: Gitea, file: "push.json", event: "push", kind: Push,
		changes: []RefChange{upd("refs/heads/main", "28e1879d029cb852e4844d9c718537df08844e03", "bffeb74224043ba2feb48d137756c8a9331c449a")}},
	{p: Gitea, file: "tag.json", event: "push", kind: Push,
		changes: []RefChange{created("refs/tags/v1.0.0", "bffeb74224043ba2feb48d137756c8a9331c449a")}},
	{p: Gitea, file: "create.json", event: "push", kind: Push,
		changes: []RefChange{created("refs/heads/feature-x", "bffeb74224043ba2feb48d137756c8a9331c449a")}},
	{p: Gitea, file: "delete.json", event: "push", kind: Push,
		changes: []RefChange{deleted("refs/heads/feature-x", "bffeb74224043ba2feb48d137756c8a9331c449a")}},
	{p: Gitea, file: "repository-renamed.json", event: "repository", kind: Other, err: ErrUnsupported},
}

// wantEvent is what Parse must return for c over body.
func (c fixtureCase) wantEvent(body []byte) Event {
	sum := sha256.Sum256(body)
	var want Event
	if c.err != nil { // unsupported: only the delivery's identity
		want = Event{Provider: c.p, DeliveryID: pushEvent[c.p].DeliveryID}
	} else {
		want = pushEvent[c.p]
		if c.edit != nil {
			c.edit(&want)
		}
		want.Changes = c.changes
	}
	want.Kind, want.Type, want.Digest = c.kind, c.event, hex.EncodeToString(sum[:])
	return want
}

// TestFixtures: every fixture, signed over its file's bytes, is detected,
// verified and parsed as the provider means it.
func TestFixtures(t *testing.T) {
	for _, c := range fixtureCases {
		t.Run(string(c.p)+"/"+c.file, func(t *testing.T) {
			body := fixture(t, c.p, c.file)
			h := delivery(c.p, c.event, body, secret)
			if p, ok := Detect(h); !ok || p != c.p {
				t.Errorf("Detect = %q, %v; want %q", p, ok, c.p)
			}
			if err := Verify(c.p, h, body, secret); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			ev, err := Parse(c.p, h, body)
			if !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
				t.Fatalf("Parse error = %v, want %v", err, c.err)
			}
			if want := c.wantEvent(body); !reflect.DeepEqual(ev, want) {
				t.Errorf("Parse =\n%+v\nwant\n%+v", ev, want)
			}
			for _, ch := range ev.Changes {
				if ch.Created && ch.Before != "" || ch.Deleted && ch.After != "" {
					t.Errorf("change %+v keeps an all-zero id", ch)
				}
			}
		})
	}
}

// TestForgejo: Forgejo's own headers alone are enough, and with Gitea's
// twins the same delivery is the same event.
func TestForgejo(t *testing.T) {
	body := fixture(t, Gitea, "push.json")
	full := forgejo(delivery(Gitea, "push", body, secret))
	only := http.Header{}
	for _, n := range []string{"Event", "Delivery", "Signature"} {
		only.Set("X-Forgejo-"+n, full.Get("X-Forgejo-"+n))
	}
	for name, h := range map[string]http.Header{"all headers": full, "X-Forgejo-* only": only} {
		if p, ok := Detect(h); !ok || p != Gitea {
			t.Errorf("%s: Detect = %q, %v", name, p, ok)
		}
		if err := Verify(Gitea, h, body, secret); err != nil {
			t.Errorf("%s: Verify: %v", name, err)
		}
		ev, err := Parse(Gitea, h, body)
		if err != nil || ev.DeliveryID != gtDelivery || ev.Kind != Push || ev.RepoID != "140" {
			t.Errorf("%s: Parse = %+v, %v", name, ev, err)
		}
	}
	only.Set("X-Forgejo-Signature", hexMAC("wrong", body))
	if err := Verify(Gitea, only, body, secret); !errors.Is(err, ErrBadSignature) {
		t.Errorf("wrong X-Forgejo-Signature: %v", err)
	}
}

// TestVerifyRefusals: for every provider, a valid delivery is accepted and
// a tampered body, a wrong secret, a missing or empty header, a malformed
// value and an empty secret are refused with the right error.
func TestVerifyRefusals(t *testing.T) {
	for _, p := range Providers {
		t.Run(string(p), func(t *testing.T) {
			body := fixture(t, p, "push.json")
			good := delivery(p, pushType[p], body, secret)
			if err := Verify(p, good, body, secret); err != nil {
				t.Fatalf("valid delivery refused: %v", err)
			}
			tampered := bytes.Replace(body, []byte(`"main"`), []byte(`"evil"`), 1)
			if bytes.Equal(tampered, body) {
				t.Fatal("tampering changed nothing")
			}
			if p != GitLab { // GitLab's plain token does not cover the body
				if err := Verify(p, good, tampered, secret); !errors.Is(err, ErrBadSignature) {
					t.Errorf("tampered body: %v, want ErrBadSignature", err)
				}
				if err := Verify(p, good, append(bytes.Clone(body), '\n'), secret); !errors.Is(err, ErrBadSignature) {
					t.Errorf("body with a byte more: %v, want ErrBadSignature", err)
				}
			}
			if err := Verify(p, good, body, "s3cr3T"); !errors.Is(err, ErrBadSignature) {
				t.Errorf("wrong secret: %v, want ErrBadSignature", err)
			}
			if err := Verify(p, delivery(p, pushType[p], body, "other"), body, secret); !errors.Is(err, ErrBadSignature) {
				t.Errorf("signed with another secret: %v, want ErrBadSignature", err)
			}
			if err := Verify(p, good, body, ""); !errors.Is(err, ErrNoSecret) {
				t.Errorf("empty secret: %v, want ErrNoSecret", err)
			}
			for name, v := range map[string]*string{"missing": nil, "empty": new(string), "blank": ptr("  ")} {
				h := good.Clone()
				h.Del(sigHeader[p])
				if v != nil {
					h[sigHeader[p]] = []string{*v}
				}
				if err := Verify(p, h, body, secret); !errors.Is(err, ErrNoSignature) {
					t.Errorf("%s header: %v, want ErrNoSignature", name, err)
				}
			}
			if p == GitLab {
				return
			}
			mac := hexMAC(secret, body)
			bad := []string{"sha256=zz", "sha256=" + mac[:62], "sha1=" + mac[:40], mac + "00", "sha256:" + mac}
			if p != Gitea {
				bad = append(bad, mac) // the prefix is required
			} else {
				bad = append(bad, "sha256="+mac) // and refused on Gitea
			}
			for _, v := range bad {
				h := good.Clone()
				h.Set(sigHeader[p], v)
				if err := Verify(p, h, body, secret); !errors.Is(err, ErrBadSignature) {
					t.Errorf("signature %q: %v, want ErrBadSignature", v, err)
				}
			}
			h := good.Clone() // either case of hex is the same signature
			h.Set(sigHeader[p], strings.ToUpper(good.Get(sigHeader[p])))
			if err := Verify(p, h, body, secret); err != nil {
				t.Errorf("upper-case hex: %v", err)
			}
		})
	}
	if err := Verify("gogs", http.Header{}, nil, secret); !errors.Is(err, ErrUnknownProvider) {
		t.Errorf("unknown provider: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestNotOtherProvidersHeaders: a delivery signed only in another
// provider's header is unsigned for this one (no fallback to GitHub's
// legacy SHA-1 header, nor from Gitea to X-Hub-Signature-256).
func TestNotOtherProvidersHeaders(t *testing.T) {
	body := []byte(`{"ref":"refs/heads/main"}`)
	h := http.Header{}
	h.Set("X-Hub-Signature", "sha1=ca5d9a2b42732da6779a57fd80ac97cfdf0e7635")
	if err := Verify(GitHub, h, body, secret); !errors.Is(err, ErrNoSignature) {
		t.Errorf("GitHub with only the SHA-1 header: %v", err)
	}
	h = http.Header{}
	h.Set("X-Hub-Signature-256", "sha256=8588fd50c04ac2c191575340c4c0fe284157898def8e4d10af822f05dd7c9bb5")
	for _, p := range []Provider{Gitea, BitbucketCloud, BitbucketServer, GitLab} {
		if err := Verify(p, h, body, secret); !errors.Is(err, ErrNoSignature) {
			t.Errorf("%s with only X-Hub-Signature-256: %v", p, err)
		}
	}
}

// TestKnownAnswers: the fact sheet's vectors (§1.3), header values as
// printed there.
func TestKnownAnswers(t *testing.T) {
	h := http.Header{}
	h.Set("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
	if err := Verify(GitHub, h, []byte("Hello, World!"), "It's a Secret to Everybody"); err != nil {
		t.Errorf("GitHub's published vector: %v", err)
	}

	body := []byte(`{"ref":"refs/heads/main"}`)
	if len(body) != 25 {
		t.Fatal("the vector's body is 25 bytes")
	}
	const mac = "8588fd50c04ac2c191575340c4c0fe284157898def8e4d10af822f05dd7c9bb5"
	for _, v := range []struct {
		p             Provider
		header, value string
	}{
		{GitHub, "X-Hub-Signature-256", "sha256=" + mac},
		{BitbucketCloud, "X-Hub-Signature", "sha256=" + mac},
		{BitbucketServer, "X-Hub-Signature", "sha256=" + mac},
		{Gitea, "X-Gitea-Signature", mac},
		{Gitea, "X-Forgejo-Signature", mac},
		{GitLab, "X-Gitlab-Token", "s3cr3t"},
	} {
		h := http.Header{}
		h.Set(v.header, v.value)
		if err := Verify(v.p, h, body, secret); err != nil {
			t.Errorf("%s %s: %v", v.p, v.header, err)
		}
		if v.p != GitLab {
			if got := sign(v.p, body, secret); got != v.value && v.header != "X-Forgejo-Signature" {
				t.Errorf("%s: computed %s, the sheet says %s", v.p, got, v.value)
			}
		}
	}
	// Gitea's SHA-1 twin, which the package does not use, still matches
	// the sheet (so the vector itself is consistent).
	m := hmac.New(sha1.New, []byte(secret))
	m.Write(body)
	if got := hex.EncodeToString(m.Sum(nil)); got != "ca5d9a2b42732da6779a57fd80ac97cfdf0e7635" {
		t.Errorf("Gitea X-Hub-Signature SHA-1 = %s", got)
	}
}

// signingVector is the fact sheet's GitLab signing-token vector.
func signingVector() (http.Header, []byte, string, time.Time) {
	h := http.Header{}
	h.Set("X-Gitlab-Event", "Push Hook")
	h.Set("webhook-id", "8f2c1d3e-6b7a-4c1e-9d2f-0a1b2c3d4e5f")
	h.Set("webhook-timestamp", "1767225600")
	h.Set("webhook-signature", "v1,V4yyA2F0/E2cX8xAiKInlV1yp3sA5zMFiGOE0Mq8TTg=")
	return h, []byte(`{"ref":"refs/heads/main"}`), "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", time.Unix(1767225600, 0)
}

func TestGitLabSigningToken(t *testing.T) {
	h, body, token, at := signingVector()
	if err := verifyAt(GitLab, h, body, token, at); err != nil {
		t.Fatalf("the sheet's vector: %v", err)
	}
	if err := verifyAt(GitLab, h, body, token, at.Add(4*time.Minute)); err != nil {
		t.Errorf("4 minutes later: %v", err)
	}
	for name, when := range map[string]time.Time{"6 minutes later": at.Add(6 * time.Minute), "6 minutes early": at.Add(-6 * time.Minute)} {
		if err := verifyAt(GitLab, h, body, token, when); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v, want ErrBadSignature", name, err)
		}
	}
	if err := Verify(GitLab, h, body, token); !errors.Is(err, ErrBadSignature) {
		t.Errorf("now (the vector is from 2026-01-01): %v, want ErrBadSignature", err)
	}
	if err := verifyAt(GitLab, h, []byte(`{"ref":"refs/heads/evil"}`), token, at); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered body: %v", err)
	}
	for _, n := range []string{"webhook-id", "webhook-timestamp"} { // the id and time are signed
		h2 := h.Clone()
		h2.Set(n, h.Get(n)+"1")
		if err := verifyAt(GitLab, h2, body, token, at); !errors.Is(err, ErrBadSignature) {
			t.Errorf("changed %s: %v", n, err)
		}
		h2.Del(n)
		if err := verifyAt(GitLab, h2, body, token, at); !errors.Is(err, ErrBadSignature) {
			t.Errorf("no %s: %v", n, err)
		}
	}
	h2 := h.Clone() // several signatures: one matching is enough
	h2.Set("webhook-signature", "v1,AAAA v1a,xyz "+h.Get("webhook-signature"))
	if err := verifyAt(GitLab, h2, body, token, at); err != nil {
		t.Errorf("list of signatures: %v", err)
	}
	h2.Set("webhook-signature", "v2,V4yyA2F0/E2cX8xAiKInlV1yp3sA5zMFiGOE0Mq8TTg=")
	if err := verifyAt(GitLab, h2, body, token, at); !errors.Is(err, ErrBadSignature) {
		t.Errorf("unknown version: %v", err)
	}
	if err := verifyAt(GitLab, h, body, "whsec_not*base64", at); !errors.Is(err, ErrNoSecret) {
		t.Errorf("undecodable signing token: %v, want ErrNoSecret", err)
	}
	// Without webhook-signature, a whsec_ secret is compared as a token.
	h3 := http.Header{}
	h3.Set("X-Gitlab-Token", token)
	if err := verifyAt(GitLab, h3, body, token, at); err != nil {
		t.Errorf("whsec_ secret sent as X-Gitlab-Token: %v", err)
	}
	h3.Del("X-Gitlab-Token")
	if err := verifyAt(GitLab, h3, body, token, at); !errors.Is(err, ErrNoSignature) {
		t.Errorf("whsec_ secret, nothing sent: %v", err)
	}
	// A plain secret ignores webhook-signature: the token decides.
	h4 := h.Clone()
	h4.Set("X-Gitlab-Token", "wrong")
	if err := verifyAt(GitLab, h4, body, secret, at); !errors.Is(err, ErrBadSignature) {
		t.Errorf("plain secret, wrong token beside a signature: %v", err)
	}
	// webhook-id is the delivery id when Idempotency-Key is missing.
	ev, err := Parse(GitLab, h, fixture(t, GitLab, "push.json"))
	if err != nil || ev.DeliveryID != "8f2c1d3e-6b7a-4c1e-9d2f-0a1b2c3d4e5f" {
		t.Errorf("Parse = %q, %v", ev.DeliveryID, err)
	}
}

func TestDetect(t *testing.T) {
	for _, c := range []struct {
		name string
		h    map[string]string
		want Provider
	}{
		{"github", map[string]string{"X-GitHub-Event": "push"}, GitHub},
		{"ghes", map[string]string{"X-GitHub-Event": "push", "X-GitHub-Enterprise-Host": "ghe.example.com"}, GitHub},
		{"gitlab", map[string]string{"X-Gitlab-Event": "Push Hook"}, GitLab},
		{"gitea also sends X-GitHub-Event", map[string]string{"X-GitHub-Event": "push", "X-Gitea-Event": "push", "X-Gogs-Event": "push"}, Gitea},
		{"forgejo", map[string]string{"X-GitHub-Event": "push", "X-Forgejo-Event": "push"}, Gitea},
		{"bitbucket cloud", map[string]string{"X-Event-Key": "repo:push", "X-Request-UUID": "x", "X-Hook-UUID": "{y}"}, BitbucketCloud},
		{"bitbucket cloud behind a proxy adding X-Request-Id", map[string]string{"X-Event-Key": "repo:push", "X-Request-UUID": "x", "X-Request-Id": "z"}, BitbucketCloud},
		{"bitbucket server", map[string]string{"X-Event-Key": "repo:refs_changed", "X-Request-Id": "x"}, BitbucketServer},
		{"bitbucket server ping", map[string]string{"X-Event-Key": "diagnostics:ping", "X-Request-Id": "x"}, BitbucketServer},
		{"bitbucket server, event key only", map[string]string{"X-Event-Key": "repo:refs_changed"}, BitbucketServer},
		{"bitbucket cloud, event key only", map[string]string{"X-Event-Key": "repo:push"}, BitbucketCloud},
		{"nothing", map[string]string{"Content-Type": "application/json"}, ""},
		{"gogs alone", map[string]string{"X-Gogs-Event": "push"}, ""},
		{"empty event header", map[string]string{"X-GitHub-Event": ""}, ""},
	} {
		h := http.Header{}
		for k, v := range c.h {
			h.Set(k, v)
		}
		p, ok := Detect(h)
		if p != c.want || ok != (c.want != "") {
			t.Errorf("%s: Detect = %q, %v; want %q", c.name, p, ok, c.want)
		}
	}
}

// TestReplay: the same delivery parsed twice has the same id (the caller
// deduplicates on it); without a delivery header the id is the body's
// digest, still the same for the same delivery.
func TestReplay(t *testing.T) {
	for _, p := range Providers {
		body := fixture(t, p, "push.json")
		h := delivery(p, pushType[p], body, secret)
		a, errA := Parse(p, h, body)
		b, errB := Parse(p, h.Clone(), bytes.Clone(body))
		if errA != nil || errB != nil || a.DeliveryID != b.DeliveryID || a.DeliveryID != pushEvent[p].DeliveryID {
			t.Errorf("%s: ids %q %q (%v %v)", p, a.DeliveryID, b.DeliveryID, errA, errB)
		}
		for _, n := range []string{"X-GitHub-Delivery", "X-Gitlab-Event-UUID", "Idempotency-Key", "X-Request-UUID",
			"X-Request-Id", "X-Gitea-Delivery", "X-Gogs-Delivery"} {
			h.Del(n)
		}
		h.Set("X-GitHub-Delivery", "bad id with spaces") // unusable: ignored
		c, err := Parse(p, h, body)
		if err != nil || c.DeliveryID != "sha256:"+a.Digest || len(a.Digest) != 64 {
			t.Errorf("%s without a delivery header: id %q, digest %q, %v", p, c.DeliveryID, a.Digest, err)
		}
	}
	// GitLab's retries keep Idempotency-Key; X-Gitlab-Event-UUID is the fallback.
	h := delivery(GitLab, "Push Hook", nil, secret)
	h.Del("Idempotency-Key")
	if ev, _ := Parse(GitLab, h, fixture(t, GitLab, "push.json")); ev.DeliveryID != "13792a34-cac6-4fda-95a8-c58e00a3954e" {
		t.Errorf("GitLab without Idempotency-Key: %q", ev.DeliveryID)
	}
}

func TestReadBody(t *testing.T) {
	b, err := ReadBody(bytes.NewReader(make([]byte, MaxBody)))
	if err != nil || len(b) != MaxBody {
		t.Errorf("MaxBody bytes: %d, %v", len(b), err)
	}
	if _, err := ReadBody(bytes.NewReader(make([]byte, MaxBody+1))); !errors.Is(err, ErrTooLarge) {
		t.Errorf("MaxBody+1 bytes: %v, want ErrTooLarge", err)
	}
	if b, err := ReadBody(strings.NewReader("")); err != nil || len(b) != 0 {
		t.Errorf("empty body: %q, %v", b, err)
	}
}

// TestFormBody: GitHub and Gitea hooks made with the "form" content type
// sign the form body; Parse reads the JSON from its payload field.
func TestFormBody(t *testing.T) {
	for _, p := range []Provider{GitHub, Gitea} {
		body := []byte("payload=" + url.QueryEscape(string(fixture(t, p, "push.json"))))
		h := delivery(p, "push", body, secret)
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		if err := Verify(p, h, body, secret); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		ev, err := Parse(p, h, body)
		if err != nil || ev.Kind != Push || ev.RepoID != pushEvent[p].RepoID {
			t.Errorf("%s: Parse = %+v, %v", p, ev, err)
		}
		if _, err := Parse(p, h, []byte("other=1")); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: form without payload: %v", p, err)
		}
	}
}

// TestMalformed: verified bodies that are not what their event promises.
func TestMalformed(t *testing.T) {
	gh := string(fixture(t, GitHub, "push.json"))
	for name, c := range map[string]struct {
		p     Provider
		event string
		body  string
	}{
		"not json":                     {GitHub, "push", "{"},
		"truncated":                    {GitHub, "push", gh[:len(gh)/2]},
		"array":                        {Gitea, "push", "[]"},
		"no repository":                {GitHub, "push", strings.Replace(gh, `"repository"`, `"repo"`, 1)},
		"repository id a float":        {GitHub, "push", strings.Replace(gh, `"id": 1296269`, `"id": 1.5`, 1)},
		"short ref":                    {GitHub, "push", strings.Replace(gh, `"refs/heads/main"`, `"main"`, 1)},
		"ref with ..":                  {GitHub, "push", strings.Replace(gh, `"refs/heads/main"`, `"refs/heads/a..b"`, 1)},
		"ref with a newline":           {GitHub, "push", strings.Replace(gh, `"refs/heads/main"`, `"refs/heads/a\nb"`, 1)},
		"after not hex":                {GitHub, "push", strings.Replace(gh, `"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"`, `"--upload-pack=x"`, 1)},
		"before missing":               {GitHub, "push", strings.Replace(gh, `"before"`, `"b"`, 1)},
		"created and deleted":          {Gitea, "push", `{"ref":"refs/heads/x","before":"` + strings.Repeat("0", 40) + `","after":"` + strings.Repeat("0", 40) + `","repository":{"id":1}}`},
		"gitlab object_kind":           {GitLab, "Push Hook", `{"object_kind":"merge_request","project":{"id":1}}`},
		"bitbucket cloud empty change": {BitbucketCloud, "repo:push", `{"repository":{"uuid":"{x}"},"push":{"changes":[{"old":null,"new":null}]}}`},
		"bitbucket server ref":         {BitbucketServer, "repo:refs_changed", `{"repository":{"id":1},"changes":[{"refId":"main","fromHash":"` + strings.Repeat("a", 40) + `","toHash":"` + strings.Repeat("b", 40) + `","type":"UPDATE"}]}`},
	} {
		ev, err := Parse(c.p, delivery(c.p, c.event, []byte(c.body), secret), []byte(c.body))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
		if ev.Changes != nil || ev.RepoID != "" || ev.DeliveryID == "" {
			t.Errorf("%s: a malformed event carries %+v", name, ev)
		}
	}
	if _, err := Parse(GitHub, http.Header{}, []byte("{}")); !errors.Is(err, ErrUnsupported) {
		t.Errorf("no event header: %v, want ErrUnsupported", err)
	}
	if _, err := Parse("gogs", http.Header{}, []byte("{}")); !errors.Is(err, ErrUnknownProvider) {
		t.Errorf("unknown provider: %v", err)
	}
}

// TestUpperCaseIDs: ids are lower-cased, so one commit has one spelling.
func TestUpperCaseIDs(t *testing.T) {
	body := []byte(`{"ref":"refs/heads/main","before":"9049F1265B7D61BE4A8904A9A27120D2064DAB3B","after":"0D1A26E67D8F5EAF1F6BA5C57FC3C7D91AC0FD1C","repository":{"id":1}}`)
	ev, err := Parse(GitHub, delivery(GitHub, "push", body, secret), body)
	if err != nil || ev.Changes[0].After != "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c" {
		t.Errorf("Parse = %+v, %v", ev, err)
	}
}

func TestBranch(t *testing.T) {
	if b, ok := (RefChange{Ref: "refs/heads/main"}).Branch(); !ok || b != "main" {
		t.Errorf("refs/heads/main: %q %v", b, ok)
	}
	if _, ok := (RefChange{Ref: "refs/tags/v1"}).Branch(); ok {
		t.Error("refs/tags/v1 is a branch")
	}
}
