package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Provider names the kind of server that sent a delivery.
type Provider string

// The providers this package verifies and parses.
const (
	GitHub          Provider = "github"           // github.com and GitHub Enterprise Server
	GitLab          Provider = "gitlab"           // gitlab.com and self-managed
	BitbucketCloud  Provider = "bitbucket-cloud"  // bitbucket.org
	BitbucketServer Provider = "bitbucket-server" // Bitbucket Server / Data Center
	Gitea           Provider = "gitea"            // Gitea and Forgejo
)

// Providers lists every Provider, in a fixed order.
var Providers = []Provider{GitHub, GitLab, BitbucketCloud, BitbucketServer, Gitea}

// Valid reports whether p is one of Providers.
func (p Provider) Valid() bool {
	switch p {
	case GitHub, GitLab, BitbucketCloud, BitbucketServer, Gitea:
		return true
	}
	return false
}

// Kind is what a delivery means to the server.
type Kind string

const (
	Push  Kind = "push"  // refs moved: Changes says which
	Ping  Kind = "ping"  // the provider checks the hook works (GitHub ping, Bitbucket Server diagnostics:ping)
	Other Kind = "other" // anything else; Parse returns ErrUnsupported with it
)

// MaxBody is the largest body ReadBody accepts: GitHub's own cap on
// payloads, above what the others send.
const MaxBody = 25 << 20

var (
	// ErrTooLarge: the body is over MaxBody (answer 413).
	ErrTooLarge = errors.New("webhook: body larger than 25 MiB")
	// ErrUnknownProvider: a Provider this package does not know.
	ErrUnknownProvider = errors.New("webhook: unknown provider")
	// ErrNoSecret: the hook has no usable secret (empty, or a GitLab
	// whsec_ signing token that is not base64). Nothing can be verified
	// with it, so every delivery is refused.
	ErrNoSecret = errors.New("webhook: the hook has no usable secret")
	// ErrNoSignature: the delivery carries no signature or token (the
	// header is missing or empty), e.g. a hook created upstream without
	// the secret.
	ErrNoSignature = errors.New("webhook: delivery is not signed")
	// ErrBadSignature: the signature or token does not match the body and
	// the secret (or is malformed, or a signed timestamp is stale).
	ErrBadSignature = errors.New("webhook: signature does not match")
	// ErrUnsupported: a verified delivery of an event this package does
	// not handle; answer 2xx and ignore it.
	ErrUnsupported = errors.New("webhook: event not handled")
	// ErrMalformed: a verified delivery of a handled event whose payload
	// cannot be understood; the error says where.
	ErrMalformed = errors.New("webhook: malformed payload")
)

// Event is what Parse understood of one delivery.
type Event struct {
	Provider Provider
	Kind     Kind
	// Type is the provider's own event name ("push", "Push Hook",
	// "repo:refs_changed", ...), for logs.
	Type string
	// DeliveryID identifies the delivery, the same on the provider's
	// retries: X-GitHub-Delivery; GitLab's Idempotency-Key (else
	// webhook-id, else X-Gitlab-Event-UUID); X-Request-UUID;
	// X-Request-Id; X-Forgejo-Delivery or X-Gitea-Delivery. When the
	// header is missing or unusable (over 128 bytes, not printable ASCII)
	// it is "sha256:" + Digest. The headers are not signed: deduplicate on
	// it against provider retries, and rely on Digest (or on syncing being
	// idempotent) against deliberate replays.
	DeliveryID string
	// Digest is the lowercase hex SHA-256 of the raw body, which the
	// signature covers (except with GitLab's plain token).
	Digest string
	// RepoID is the provider's stable id of the repository (GitHub and
	// Gitea repository.id, GitLab project.id, Bitbucket Cloud
	// repository.uuid with its braces, Bitbucket Server repository.id);
	// "" when the payload names no repository (e.g. a Bitbucket Server
	// ping).
	RepoID string
	// RepoFullName is the repository's path as the provider names it now
	// ("owner/name", GitLab "group/sub/project", Bitbucket Server
	// "PROJECTKEY/slug"), to notice renames.
	RepoFullName string
	// SSHURL is the repository's SSH clone URL as the payload gives it,
	// "" when it gives none (Bitbucket Cloud).
	SSHURL string
	// DefaultBranch is the repository's default branch (short name), ""
	// when the payload does not say (both Bitbucket products).
	DefaultBranch string
	// Pusher is the login of who pushed, "" if the payload does not say.
	Pusher string
	// Changes has one entry per ref the push moved (Bitbucket may send
	// several; the others one).
	Changes []RefChange
}

// RefChange is one ref moved by a push. Ref is the full name
// (refs/heads/main, refs/tags/v1). Before and After are object ids
// (lowercase hex); a created ref has Created set and Before "", a deleted
// one Deleted set and After "" (providers' all-zero ids are normalised
// into the flags).
type RefChange struct {
	Ref, Before, After string
	Created, Deleted   bool
}

// Branch returns the branch name of a change to refs/heads/..., and false
// for any other ref.
func (c RefChange) Branch() (string, bool) {
	return strings.CutPrefix(c.Ref, "refs/heads/")
}

// ReadBody reads a whole request body, at most MaxBody bytes; beyond that
// it returns ErrTooLarge. Verify and Parse need these exact bytes.
func ReadBody(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxBody {
		return nil, ErrTooLarge
	}
	return b, nil
}

// Detect recognises the sender of a delivery by its headers. Gitea and
// Forgejo also send GitHub's and Gogs' headers, so they are recognised
// first; Bitbucket Cloud and Server share X-Event-Key and are told apart
// by Cloud's X-Request-UUID / X-Hook-UUID, then Server's X-Request-Id,
// then the event key itself. When a hook's provider is known (it was
// recorded when the hook was made), use that one and treat a different
// answer from Detect as a refusal.
func Detect(h http.Header) (Provider, bool) {
	switch {
	case h.Get("X-Forgejo-Event") != "" || h.Get("X-Gitea-Event") != "":
		return Gitea, true
	case h.Get("X-Gitlab-Event") != "":
		return GitLab, true
	case h.Get("X-GitHub-Event") != "":
		return GitHub, true
	}
	key := h.Get("X-Event-Key")
	switch {
	case key == "":
		return "", false
	case h.Get("X-Request-UUID") != "" || h.Get("X-Hook-UUID") != "":
		return BitbucketCloud, true
	case h.Get("X-Request-Id") != "":
		return BitbucketServer, true
	case key == "repo:refs_changed" || key == "repo:modified" || key == "diagnostics:ping" ||
		strings.HasPrefix(key, "pr:") || strings.HasPrefix(key, "mirror:"):
		return BitbucketServer, true
	default:
		return BitbucketCloud, true
	}
}

// Verify checks that body was sent by the holder of secret, in constant
// time, before anything reads it:
//
//   - GitHub: X-Hub-Signature-256 = "sha256=" + hex HMAC-SHA256(secret, body)
//     (the legacy SHA-1 X-Hub-Signature is not accepted).
//   - GitLab: X-Gitlab-Token equals secret. When secret is a signing token
//     ("whsec_" + base64 key) and the delivery carries webhook-signature,
//     that signature is checked instead (Standard Webhooks: "v1," + base64
//     HMAC-SHA256(key, webhook-id "." webhook-timestamp "." body), the
//     timestamp within 5 minutes of now).
//   - Bitbucket Cloud and Server: X-Hub-Signature = "sha256=" + hex HMAC.
//     Bitbucket Server's basic-auth alternative is not supported.
//   - Gitea and Forgejo: X-Gitea-Signature (else X-Forgejo-Signature) = bare
//     hex HMAC-SHA256.
//
// A missing or empty header is ErrNoSignature, anything else that does not
// match ErrBadSignature (both: answer 401), an empty secret ErrNoSecret.
func Verify(p Provider, h http.Header, body []byte, secret string) error {
	return verifyAt(p, h, body, secret, timeNow())
}

// Parse reads a delivery Verify accepted. A push is Kind Push with its
// Changes; a ping Kind Ping; any other event returns Kind Other (with
// Type and DeliveryID) and an error wrapping ErrUnsupported. A payload
// that is not what the event promises is an error wrapping ErrMalformed.
// Bodies sent as application/x-www-form-urlencoded (GitHub's and Gitea's
// "form" content type) are read from their payload field.
func Parse(p Provider, h http.Header, body []byte) (Event, error) {
	sum := sha256.Sum256(body)
	ev := Event{Provider: p, Kind: Other, Digest: hex.EncodeToString(sum[:])}
	var err error
	switch p {
	case GitHub:
		err = parseGitHub(&ev, h, body)
	case GitLab:
		err = parseGitLab(&ev, h, body)
	case BitbucketCloud:
		err = parseBitbucketCloud(&ev, h, body)
	case BitbucketServer:
		err = parseBitbucketServer(&ev, h, body)
	case Gitea:
		err = parseGitea(&ev, h, body)
	default:
		return Event{}, fmt.Errorf("%w %q", ErrUnknownProvider, p)
	}
	if ev.DeliveryID == "" {
		ev.DeliveryID = "sha256:" + ev.Digest
	}
	if err != nil && !errors.Is(err, ErrUnsupported) {
		return Event{Provider: p, Kind: ev.Kind, Type: ev.Type, DeliveryID: ev.DeliveryID, Digest: ev.Digest}, err
	}
	return ev, err
}

// deliveryID returns the first usable value among the headers names.
func deliveryID(h http.Header, names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(h.Get(n)); usableID(v) {
			return v
		}
	}
	return ""
}

func usableID(v string) bool {
	if v == "" || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e {
			return false
		}
	}
	return true
}
