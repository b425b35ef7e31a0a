package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// timeNow is time.Now; tests replace it only through verifyAt.
var timeNow = time.Now

// signingTolerance is how far a GitLab signing-token timestamp may be
// from now, either way (the Standard Webhooks default).
const signingTolerance = 5 * time.Minute

func verifyAt(p Provider, h http.Header, body []byte, secret string, now time.Time) error {
	if !p.Valid() {
		return fmt.Errorf("%w %q", ErrUnknownProvider, p)
	}
	if secret == "" {
		return ErrNoSecret
	}
	switch p {
	case GitHub:
		return verifyPrefixed(h.Get("X-Hub-Signature-256"), body, secret)
	case BitbucketCloud, BitbucketServer:
		return verifyPrefixed(h.Get("X-Hub-Signature"), body, secret)
	case Gitea:
		sig := strings.TrimSpace(h.Get("X-Gitea-Signature"))
		if sig == "" {
			sig = strings.TrimSpace(h.Get("X-Forgejo-Signature"))
		}
		if sig == "" {
			return ErrNoSignature
		}
		return verifyHex(sig, body, secret)
	default: // GitLab
		if key, ok := strings.CutPrefix(secret, "whsec_"); ok && h.Get("webhook-signature") != "" {
			return verifyStandard(h, body, key, now)
		}
		return verifyToken(h.Get("X-Gitlab-Token"), secret)
	}
}

// verifyPrefixed checks a "sha256=<hex>" header value.
func verifyPrefixed(v string, body []byte, secret string) error {
	v = strings.TrimSpace(v)
	if v == "" {
		return ErrNoSignature
	}
	algo, sig, ok := strings.Cut(v, "=")
	if !ok || !strings.EqualFold(algo, "sha256") {
		return fmt.Errorf("%w (want sha256=<hex>)", ErrBadSignature)
	}
	return verifyHex(sig, body, secret)
}

// verifyHex checks a bare hex HMAC-SHA256 (either case).
func verifyHex(sig string, body []byte, secret string) error {
	got, err := hex.DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%w (not a hex SHA-256)", ErrBadSignature)
	}
	if !hmac.Equal(got, mac([]byte(secret), body)) {
		return ErrBadSignature
	}
	return nil
}

func mac(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// verifyToken compares GitLab's plain-text token with the secret through
// their hashes, so neither the content nor the length leaks by timing.
func verifyToken(token, secret string) error {
	if strings.TrimSpace(token) == "" {
		return ErrNoSignature
	}
	a, b := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(secret))
	if !hmac.Equal(a[:], b[:]) {
		return ErrBadSignature
	}
	return nil
}

// verifyStandard checks a Standard-Webhooks signature (GitLab signing
// tokens): webhook-signature is a space-separated list of "v1,<base64>",
// any of which may match.
func verifyStandard(h http.Header, body []byte, b64key string, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(b64key)
	if err != nil || len(key) == 0 {
		return fmt.Errorf("%w (the whsec_ signing token is not base64)", ErrNoSecret)
	}
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	if id == "" || ts == "" {
		return fmt.Errorf("%w (webhook-signature without webhook-id and webhook-timestamp)", ErrBadSignature)
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w (webhook-timestamp is not a number)", ErrBadSignature)
	}
	if d := now.Sub(time.Unix(secs, 0)); d > signingTolerance || d < -signingTolerance {
		return fmt.Errorf("%w (webhook-timestamp is %v from now)", ErrBadSignature, d.Round(time.Second))
	}
	want := mac(key, []byte(id), []byte("."), []byte(ts), []byte("."), body)
	ok := false
	for _, s := range strings.Fields(h.Get("webhook-signature")) {
		v, sig, _ := strings.Cut(s, ",")
		if v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			ok = true // keep going: the time taken does not depend on which one matched
		}
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}
