package webhook

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// seeds adds every fixture, with its provider and event name, to f.
func seeds(f *testing.F, add func(p uint8, event string, body []byte)) {
	for _, c := range fixtureCases {
		b, err := os.ReadFile(filepath.Join("testdata", string(c.p), c.file))
		if err != nil {
			f.Fatal(err)
		}
		for i, p := range Providers {
			if p == c.p {
				add(uint8(i), c.event, b)
			}
		}
	}
}

// FuzzParse: no payload makes Parse panic, and what it returns holds
// together: a push names a repository and only well-formed changes.
func FuzzParse(f *testing.F) {
	seeds(f, func(p uint8, event string, body []byte) { f.Add(p, event, body) })
	f.Fuzz(func(t *testing.T, pi uint8, event string, body []byte) {
		p := Providers[int(pi)%len(Providers)]
		h := delivery(p, event, body, secret)
		if p, ok := Detect(h); event != "" && (!ok || !p.Valid()) {
			t.Fatalf("Detect = %q, %v", p, ok)
		}
		ev, err := Parse(p, h, body)
		if ev.DeliveryID == "" || len(ev.Digest) != 64 {
			t.Fatalf("event without identity: %+v (%v)", ev, err)
		}
		if err != nil {
			if !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if ev.Kind == Push && ev.RepoID == "" {
			t.Fatalf("push without a repository: %+v", ev)
		}
		for _, c := range ev.Changes {
			if !validRef(c.Ref) || c.Created == (c.Before != "") || c.Deleted == (c.After != "") ||
				c.Before != "" && !objectID(c.Before) || c.After != "" && !objectID(c.After) {
				t.Fatalf("bad change %+v", c)
			}
		}
	})
}

// FuzzVerify: no header value makes Verify panic; a signature computed
// over the body with the secret is always accepted, and a fuzzed one only
// when it is that signature.
func FuzzVerify(f *testing.F) {
	seeds(f, func(p uint8, _ string, body []byte) {
		f.Add(p, body, secret, sign(Providers[p], body, secret))
		f.Add(p, body, secret, "sha256=00")
	})
	f.Add(uint8(0), []byte("Hello, World!"), "It's a Secret to Everybody",
		"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
	f.Fuzz(func(t *testing.T, pi uint8, body []byte, key, sig string) {
		p := Providers[int(pi)%len(Providers)]
		h := http.Header{}
		h.Set(sigHeader[p], sig)
		h.Set("webhook-signature", sig)
		h.Set("webhook-id", "x")
		h.Set("webhook-timestamp", "0")
		err := Verify(p, h, body, key)
		if key == "" {
			if !errors.Is(err, ErrNoSecret) {
				t.Fatalf("empty secret: %v", err)
			}
			return
		}
		if err == nil && p != GitLab && !bytes.EqualFold(bytes.TrimSpace([]byte(sig)), []byte(sign(p, body, key))) {
			t.Fatalf("accepted %q for a body whose signature is %q", sig, sign(p, body, key))
		}
		good := http.Header{}
		good.Set(sigHeader[p], sign(p, body, key))
		if err := Verify(p, good, body, key); err != nil && !(p == GitLab && isBlank(key)) {
			t.Fatalf("own signature refused: %v", err)
		}
	})
}

func isBlank(s string) bool { return len(bytes.TrimSpace([]byte(s))) == 0 }
